//! Fuzzes loading a run: arbitrary bytes as an MNIST checkpoint (safetensors header,
//! tensors, progress JSON, the checks on best weights and progress) and as a run's
//! `config.json`.
//!
//! Each must return `Ok` or a typed error naming the fake path, and never panic, abort
//! or allocate from an unchecked size (`-malloc_limit_mb`). A config that parses must be
//! within the limits, so that building its model is bounded.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lstm_train::limits::{MAX_HIDDEN, MAX_LAYERS};
use lstm_train::{classifier_config_from_json, parse_session_checkpoint, MnistTask};

const CHECKPOINT: &str = "fuzz/checkpoint.safetensors";
const CONFIG: &str = "fuzz/config.json";

fuzz_target!(|data: &[u8]| {
    match parse_session_checkpoint::<MnistTask>(Path::new(CHECKPOINT), data) {
        Ok(c) => {
            assert!(c.progress.step <= c.progress.total);
            assert!(c.progress.config.hidden <= MAX_HIDDEN);
        }
        Err(e) => assert!(e.to_string().starts_with(CHECKPOINT), "{e}"),
    }
    match classifier_config_from_json(Path::new(CONFIG), data) {
        Ok(cfg) => assert!(cfg.hidden <= MAX_HIDDEN && cfg.layers <= MAX_LAYERS),
        Err(e) => assert!(e.to_string().starts_with(CONFIG), "{e}"),
    }
});
