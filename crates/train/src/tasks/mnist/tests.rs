//! The MNIST task's settings and saved names.

use super::*;

#[test]
fn bad_settings_are_rejected_naming_the_field() {
    let base = MnistConfig::default();
    assert!(base.validate().is_ok());
    for (cfg, field) in [
        (
            MnistConfig {
                batch_size: 0,
                ..base.clone()
            },
            "batch_size",
        ),
        (
            MnistConfig {
                hidden: 0,
                ..base.clone()
            },
            "hidden",
        ),
        (
            MnistConfig {
                hidden: 1 << 20,
                ..base.clone()
            },
            "hidden",
        ),
        (
            MnistConfig {
                layers: 17,
                ..base.clone()
            },
            "layers",
        ),
        (
            MnistConfig {
                iters: Some(0),
                ..base.clone()
            },
            "iters",
        ),
        (
            MnistConfig {
                epochs: 0,
                ..base.clone()
            },
            "epochs",
        ),
        (
            MnistConfig {
                eval_every: 0,
                ..base.clone()
            },
            "eval_every",
        ),
        (
            MnistConfig {
                book_cell: true,
                layers: 2,
                ..base.clone()
            },
            "book_cell",
        ),
        (
            MnistConfig {
                book_cell: true,
                family: Family::Gru,
                ..base.clone()
            },
            "book_cell",
        ),
    ] {
        match cfg.validate().unwrap_err() {
            TrainError::Setting { field: f, .. } => assert_eq!(f, field, "{cfg:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_run_of_too_many_epochs_is_refused_without_wrapping() {
    let huge = MnistConfig {
        epochs: MAX_ITERATIONS,
        ..MnistConfig::default()
    };
    let err = huge.total_iterations(55_000).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
    assert_eq!(
        MnistConfig::default().total_iterations(55_000).unwrap(),
        8_600
    );
}

#[test]
fn settings_are_saved_with_the_command_line_spellings_and_old_ones_still_read() {
    let json = serde_json::to_value(MnistConfig::default()).unwrap();
    assert_eq!(json["validate_on"], "held-out");
    assert_eq!(json["select"], "best");
    assert_eq!(json["family"], "lstm");
    assert_eq!(json["book_cell"], false);
    let session = serde_json::to_value(MnistConfig::session()).unwrap();
    assert_eq!(session["lr_schedule"], "step-down");
    let mut old = json.clone();
    old["validate_on"] = "heldout".into();
    let back: MnistConfig = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(back, MnistConfig::default());
    // Runs before the one session named the model `backbone`.
    let object = old.as_object_mut().unwrap();
    object.remove("family");
    object.remove("book_cell");
    for (word, family, book_cell) in [
        ("cell", Family::Lstm, true),
        ("layer", Family::Lstm, false),
        ("gru", Family::Gru, false),
    ] {
        old["backbone"] = word.into();
        let back: MnistConfig = serde_json::from_value(old.clone()).unwrap();
        assert_eq!((back.family, back.book_cell), (family, book_cell), "{word}");
    }
    old["backbone"] = "lyer".into();
    let err = serde_json::from_value::<MnistConfig>(old).unwrap_err();
    assert!(
        err.to_string().contains("expected one of cell, layer, gru"),
        "{err}"
    );
    let mut typo = json;
    typo["validate_on"] = "held_out".into();
    let err = serde_json::from_value::<MnistConfig>(typo).unwrap_err();
    assert!(
        err.to_string().contains("expected one of held-out, test"),
        "{err}"
    );
}
