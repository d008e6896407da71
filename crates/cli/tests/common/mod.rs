//! Helpers shared by the `lstm` binary's integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `lstm` with `args` and warnings-only logging.
pub fn lstm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run lstm")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The vendored MNIST directory, as a string for the command line.
pub fn data() -> String {
    repo().join("data/mnist").display().to_string()
}

/// A fresh (removed) temporary path unique to this test process.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
