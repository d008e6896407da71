//! The `Date` column's text: `YYYY-MM-DD` to days since 1970-01-01 and back.

/// `YYYY-MM-DD` → days since 1970-01-01 (proleptic Gregorian).
///
/// A time part after a space or `T` (`2019-12-11 00:00:00-05:00`) is ignored.
pub(super) fn parse_date(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = b.get(r)?;
        if s.iter().all(u8::is_ascii_digit) {
            s.iter()
                .try_fold(0i64, |acc, &d| Some(acc * 10 + i64::from(d - b'0')))
        } else {
            None
        }
    };
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), None | Some(b' ') | Some(b'T')) {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

/// Days since 1970-01-01 → `YYYY-MM-DD` (Howard Hinnant's civil_from_days).
pub fn format_date(days: i32) -> String {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2019-12-11"), Some(18_241));
        assert_eq!(parse_date("2020-02-29"), Some(18_321));
        assert_eq!(parse_date("2019-12-11 00:00:00-05:00"), Some(18_241));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        for bad in [
            "2019-02-29",
            "2019-13-01",
            "2019-00-10",
            "2019-04-31",
            "2019/12/11",
            "2019-12-1",
            "2019-12-11x",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        for days in [-700_000, -1, 0, 18_241, 18_321, 2_932_896] {
            assert_eq!(parse_date(&format_date(days)), Some(days), "{days}");
        }
        assert_eq!(format_date(18_606), "2020-12-10");
    }
}
