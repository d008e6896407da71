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
                backbone: Backbone::Cell,
                layers: 2,
                ..base.clone()
            },
            "layers",
        ),
    ] {
        match cfg.validate().unwrap_err() {
            TrainError::Setting { field: f, .. } => assert_eq!(f, field, "{cfg:?}"),
            other => panic!("{other:?}"),
        }
    }
    let huge = MnistConfig {
        epochs: MAX_ITERATIONS,
        ..base
    };
    let err = huge.total_iterations(55_000).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn settings_are_saved_with_the_command_line_spellings_and_old_ones_still_read() {
    let json = serde_json::to_value(MnistConfig::default()).unwrap();
    assert_eq!(json["validate_on"], "held-out");
    assert_eq!(json["select"], "best");
    assert_eq!(json["backbone"], "layer");
    let session = serde_json::to_value(MnistConfig::session()).unwrap();
    assert_eq!(session["lr_schedule"], "step-down");
    let mut old = json.clone();
    old["validate_on"] = "heldout".into();
    let back: MnistConfig = serde_json::from_value(old).unwrap();
    assert_eq!(back, MnistConfig::default());
    let mut typo = json;
    typo["validate_on"] = "held_out".into();
    let err = serde_json::from_value::<MnistConfig>(typo).unwrap_err();
    assert!(
        err.to_string().contains("expected one of held-out, test"),
        "{err}"
    );
}
