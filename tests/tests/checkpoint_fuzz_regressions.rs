//! Replays the checkpoint fuzzing corpus (`tests/fuzz-regressions/checkpoint/`) through
//! the byte-level loaders the `checkpoint` fuzz target drives, on every `cargo test`:
//! each file as an MNIST checkpoint and as a run's `config.json`. Every file must give
//! `Ok` or an error naming the fake path, without panicking; a `crash-…` file must be an
//! error for both, an `ok-…` file must load as one of them. See `fuzz/README.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use lstm_train::{classifier_config_from_json, parse_session_checkpoint, MnistTask};

const FAKE: &str = "fuzz-regressions/input";

#[test]
fn checkpoint_and_config_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-regressions/checkpoint");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{}: no regression inputs", dir.display());
    for file in names {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&file).unwrap();
        let (checkpoint, config) = catch_unwind(AssertUnwindSafe(|| {
            (
                parse_session_checkpoint::<MnistTask>(Path::new(FAKE), &bytes).map(|_| ()),
                classifier_config_from_json(Path::new(FAKE), &bytes).map(|_| ()),
            )
        }))
        .unwrap_or_else(|_| panic!("{name}: a loader panicked"));
        for result in [&checkpoint, &config] {
            if let Err(e) = result {
                assert!(e.to_string().starts_with(FAKE), "{name}: {e}");
            }
        }
        if name.starts_with("crash-") {
            assert!(checkpoint.is_err() && config.is_err(), "{name}: accepted");
        }
        if name.starts_with("ok-") {
            assert!(
                checkpoint.is_ok() || config.is_ok(),
                "{name}: {checkpoint:?} / {config:?}"
            );
        }
    }
}
