//! The JSON lines `lstm-bench` and `scripts/bench_torch.py` print, read without a JSON
//! dependency (flat objects of numbers, booleans and strings without commas), and
//! running a command for its standard output.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// One flat JSON object as `(key, value)` pairs, quotes stripped; `None` for other lines.
pub fn parse_line(line: &str) -> Option<Vec<(String, String)>> {
    let body = line.trim().strip_prefix('{')?.strip_suffix('}')?;
    Some(
        body.split(',')
            .filter_map(|kv| {
                let (k, v) = kv.split_once(':')?;
                Some((
                    k.trim().trim_matches('"').to_string(),
                    v.trim().trim_matches('"').to_string(),
                ))
            })
            .collect(),
    )
}

/// The value of `key`, or `-` when the line has none.
pub fn field<'a>(row: &'a [(String, String)], key: &str) -> &'a str {
    row.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("-")
}

/// The value of `key` as a number (NaN when missing or not a number).
pub fn num(row: &[(String, String)], key: &str) -> f64 {
    field(row, key).parse().unwrap_or(f64::NAN)
}

/// Runs `cmd` and returns its standard output; fails with its standard error.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first line of `cmd`'s output that parses as a JSON object.
pub fn capture_row(cmd: &mut Command) -> Result<Vec<(String, String)>> {
    let out = capture(cmd)?;
    out.lines()
        .find_map(parse_line)
        .with_context(|| format!("{:?} printed no result: {out}", cmd.get_program()))
}
