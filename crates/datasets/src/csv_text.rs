//! Checks on a CSV's raw text before polars parses it, for the mistakes polars would
//! accept silently or report confusingly: NUL bytes (a UTF-16 or binary file), a header
//! separated by tabs or semicolons, a column name given twice (polars renames the second
//! `<name>_duplicated_0`), and blank lines at the end (kept as rows of empty cells).

use std::path::Path;

use crate::error::DatasetError;

/// Largest CSV accepted, in bytes: 64 MiB, thousands of times a daily price history.
pub const MAX_CSV_BYTES: u64 = 64 << 20;

/// `bytes` without the blank (whitespace-only) lines at its end, ending in one newline.
pub(crate) fn without_trailing_blank_lines(mut bytes: Vec<u8>) -> Vec<u8> {
    let keep = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    bytes.truncate(keep);
    bytes.push(b'\n');
    bytes
}

/// Rejects text polars would misread; see the module's documentation.
pub(crate) fn check_csv_text(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    if bytes.contains(&0) {
        return Err(DatasetError::NotUtf8Text {
            path: path.to_path_buf(),
        });
    }
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let header = String::from_utf8_lossy(line);
    let names = header_names(header.trim_end_matches('\r'));
    if let [only] = names.as_slice() {
        for (separator, words) in [('\t', "tabs"), (';', "semicolons")] {
            if only.contains(separator) {
                return Err(DatasetError::WrongSeparator {
                    path: path.to_path_buf(),
                    separator: words.into(),
                });
            }
        }
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(DatasetError::DuplicateColumn {
                path: path.to_path_buf(),
                column: name.clone(),
            });
        }
    }
    Ok(())
}

/// The comma-separated names of a header line; a name in double quotes may hold commas
/// (and `""` for a quote).
fn header_names(line: &str) -> Vec<String> {
    let (mut names, mut name, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                name.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => names.push(std::mem::take(&mut name).trim().to_string()),
            c => name.push(c),
        }
    }
    names.push(name.trim().to_string());
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_follow_csv_quoting() {
        assert_eq!(header_names("Date,Open"), ["Date", "Open"]);
        assert_eq!(
            header_names("\"Adj, Close\",\"a\"\"b\", x "),
            ["Adj, Close", "a\"b", "x"]
        );
    }

    #[test]
    fn blank_lines_at_the_end_are_dropped() {
        assert_eq!(
            without_trailing_blank_lines(b"a\n1\n\n \r\n".to_vec()),
            b"a\n1\n"
        );
        assert_eq!(without_trailing_blank_lines(b"a\n1".to_vec()), b"a\n1\n");
    }

    #[test]
    fn each_mistake_has_its_error() {
        let p = Path::new("p.csv");
        let err = |text: &[u8]| check_csv_text(p, text).unwrap_err().to_string();
        assert_eq!(
            err(b"Date,Close,Close\n"),
            "p.csv: column \"Close\" appears more than once in the header"
        );
        assert!(err(b"Date\tOpen\n").contains("one column containing tabs"));
        assert!(err(b"Date;Open\n").contains("semicolons"));
        let utf16: Vec<u8> = "Date,Open\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let msg = err(&utf16);
        assert!(msg.contains("UTF-16") && !msg.contains('\0'), "{msg:?}");
        assert!(check_csv_text(p, b"Date,Open\n2020-01-01,1\n").is_ok());
    }
}
