//! The variable-length table of `cargo xtask bench`: each `packed-*` row (rows of
//! different lengths through `Lstm::forward_packed`, PyTorch's `pack_padded_sequence`)
//! next to its `padmean-*` row (our padded run of a full batch at the mean length), with
//! the targets.

use std::fmt::Write as _;

use crate::bench::{fmt_ms, ratio, Side};

/// PyTorch's packed path over our plain packed run, at least.
const TARGET_TORCH: f64 = 3.0;
/// Our packed run over our padded run at the mean length, at most.
const TARGET_PADDED: f64 = 1.15;

/// The table for the `packed-*` ids among `ids`; `ms(id, side)` is the median over runs
/// (NaN where not run), `steps(id)` the real steps and `seq(id)` the padded steps of a
/// row. Empty when no packed row ran.
pub fn table(
    ids: &[String],
    ms: impl Fn(&str, Side) -> f64,
    steps: impl Fn(&str) -> f64,
    seq: impl Fn(&str) -> f64,
) -> String {
    let packed: Vec<&String> = ids.iter().filter(|id| id.starts_with("packed-")).collect();
    if packed.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nVariable-length rows: targets **PyTorch packed / plain packed ≥ {TARGET_TORCH:.0}×** and **plain packed / plain padded at the mean length ≤ {TARGET_PADDED:.2}** (✓ met, ✗ not met); medians over runs\n"
    );
    out.push_str("| workload | real steps (padded T; mean T) | plain packed ms | native packed ms | PyTorch packed ms | **PyTorch / plain, packed** | PyTorch / native, packed | plain padded-at-mean ms | native padded-at-mean ms | **plain packed / padded** | native packed / padded | PyTorch padded-at-mean ms | PyTorch packed / padded |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for id in packed {
        let name = &id["packed-".len()..];
        let pad = format!("padmean-{name}");
        let (p, n, t) = (
            ms(id, Side::Plain),
            ms(id, Side::Native),
            ms(id, Side::Torch),
        );
        let (pp, np, tp) = (
            ms(&pad, Side::Plain),
            ms(&pad, Side::Native),
            ms(&pad, Side::Torch),
        );
        let mean = if ids.contains(&pad) {
            format!("{:.0}", seq(&pad))
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "| {name} | {:.0} ({:.0}; {mean}) | {} | {} | {} | **{}** | {} | {} | {} | **{}** | {} | {} | {} |",
            steps(id),
            seq(id),
            fmt_ms(p),
            fmt_ms(n),
            fmt_ms(t),
            judged(t / p, t / p >= TARGET_TORCH),
            ratio(t, n),
            fmt_ms(pp),
            fmt_ms(np),
            judged(p / pp, p / pp <= TARGET_PADDED),
            ratio(n, np),
            fmt_ms(tp),
            ratio(t, tp),
        );
    }
    out
}

/// `x.xx×` followed by whether it meets its target; `-` when not measured.
pub(crate) fn judged(x: f64, met: bool) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.2}× {}", if met { "✓" } else { "✗" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_packed_row_meets_its_padded_row_and_the_targets_are_marked() {
        let ids: Vec<String> = ["lstm-infer", "packed-lstm-train", "padmean-lstm-train"]
            .map(String::from)
            .to_vec();
        let ms = |id: &str, side| match (id, side) {
            ("packed-lstm-train", Side::Torch) => 300.0,
            ("packed-lstm-train", _) => 50.0,
            ("padmean-lstm-train", Side::Torch) => 60.0,
            ("padmean-lstm-train", _) => 40.0,
            _ => f64::NAN,
        };
        let seq = |id: &str| {
            if id.starts_with("packed-") {
                100.0
            } else {
                58.0
            }
        };
        let table = table(&ids, ms, |_| 3704.0, seq);
        let row = table
            .lines()
            .find(|l| l.starts_with("| lstm-train"))
            .unwrap();
        assert!(row.contains("| 3704 (100; 58) |"), "{row}");
        assert!(row.contains("**6.00× ✓**"), "{row}");
        assert!(row.contains("**1.25× ✗**"), "{row}");
        assert!(row.contains("| 5.00× |"), "{row}");
        assert_eq!(table.lines().filter(|l| l.starts_with("| lstm")).count(), 1);
        assert!(super::table(&ids[..1], ms, |_| 0.0, seq).is_empty());
    }
}
