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

/// Runs `lstm` with `args` under a virtual-memory limit of `limit_mb` MiB (`ulimit -v`,
/// one malloc arena so the limit measures the heap), from `dir` when given.
pub fn lstm_limited(limit_mb: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {}; exec \"$0\" \"$@\"", limit_mb * 1024))
        .arg(env!("CARGO_BIN_EXE_lstm"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .expect("run lstm under a memory limit")
}

/// A small, quick MNIST run into `out` (hidden 16, 40 iterations, checkpoints every 10),
/// plus `extra` flags.
pub fn quick_mnist(out: &std::path::Path, extra: &[&str]) -> Output {
    let (d, o) = (data(), out.display().to_string());
    let mut args = vec![
        "mnist",
        "--data",
        &d,
        "--hidden",
        "16",
        "--iters",
        "40",
        "--eval-every",
        "20",
        "--checkpoint-every",
        "10",
        "--batch-size",
        "32",
        "--lr",
        "0.5",
        "--train-limit",
        "600",
        "--validation-size",
        "100",
        "--test-limit",
        "100",
        "--quiet",
        "--out",
        &o,
    ];
    args.extend_from_slice(extra);
    lstm(&args)
}

/// Rewrites the checkpoint `path`: `progress` edits the progress JSON (the `progress`
/// object of its envelope), `tensors` the tensors by name.
pub fn rewrite_checkpoint(
    path: &std::path::Path,
    progress: impl FnOnce(&mut serde_json::Value),
    tensors: impl FnOnce(&mut std::collections::HashMap<String, candle_core::Tensor>),
) {
    let bytes = std::fs::read(path).expect("read checkpoint");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("metadata");
    let mut metadata = meta.metadata().clone().expect("progress metadata");
    let key = "lstm.checkpoint";
    let mut envelope: serde_json::Value = serde_json::from_str(&metadata[key]).unwrap();
    progress(&mut envelope["progress"]);
    metadata.insert(key.into(), envelope.to_string());
    let mut all =
        candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).expect("tensors");
    tensors(&mut all);
    let out = safetensors::serialize(all, Some(metadata)).expect("serialise");
    std::fs::write(path, out).expect("write checkpoint");
}

/// The repository's SBUX.csv, as a string for the command line.
pub fn sbux() -> String {
    repo().join("data/SBUX.csv").display().to_string()
}
