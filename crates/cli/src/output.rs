//! Standard output and error without panics: a closed pipe (`| head -1`) or a full disk
//! ends the command with a clear error and exit code 1 instead of "failed printing to
//! stdout".

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::failure::{setup, Failure};

/// Writes one line to standard output; a failed write is a [`Failure`] (exit code 1).
pub(crate) fn print(line: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure {
            message: format!("cannot write to standard output: {e}"),
            before_training: false,
        })
}

/// Writes one line to standard error, ignoring a failure (there is nowhere left to
/// report it).
pub(crate) fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `path` made absolute against the current directory, so that a run stores where its
/// data is independently of where it is resumed from.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| {
        setup(format!(
            "{}: cannot make the path absolute: {e}",
            path.display()
        ))
    })
}
