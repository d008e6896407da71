//! How a command fails: a message, and whether it failed before training started (exit
//! code 2: bad flags, files or data) or during it (exit code 1). Settings the training
//! crate refuses name a configuration field; they are reported under its flag.

use lstm_train::TrainError;

/// A failure, and whether it happened before training started (exit code 2) or during it.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) before_training: bool,
}

/// The command-line flag of a configuration field (`batch_size` → `--batch-size`).
pub(crate) fn flag_of(field: &str) -> String {
    match field {
        "backbone" | "kind" | "family" | "book_cell" | "bidirectional" => "--model".into(),
        "select" => "--select".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// The message of `e`, with a setting named by its flag.
fn message<E: std::fmt::Display + 'static>(e: E) -> String {
    match (&e as &dyn std::any::Any).downcast_ref::<TrainError>() {
        Some(TrainError::Setting { field, message }) => {
            format!("invalid setting {}: {message}", flag_of(field))
        }
        Some(e @ TrainError::RunDirNotEmpty { .. }) => format!(
            "{e}; continue it with --resume, move it aside with --overwrite, or choose \
             another --out"
        ),
        _ => e.to_string(),
    }
}

/// A failure before training started.
pub(crate) fn setup<E: std::fmt::Display + 'static>(e: E) -> Failure {
    Failure {
        message: message(e),
        before_training: true,
    }
}

/// A failure during training.
pub(crate) fn during<E: std::fmt::Display + 'static>(e: E) -> Failure {
    Failure {
        message: message(e),
        before_training: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_reported_under_their_flags() {
        let f = setup(TrainError::setting("batch_size", "must be at least 1"));
        assert_eq!(
            f.message,
            "invalid setting --batch-size: must be at least 1"
        );
        assert!(f.before_training);
        assert_eq!(flag_of("backbone"), "--model");
        assert_eq!(flag_of("stop_after"), "--stop-after");
        let other = during("disk full");
        assert_eq!(other.message, "disk full");
        assert!(!other.before_training);
    }
}
