//! The error type of `lstm-core`.

/// Everything that can go wrong when building or running a recurrent model.
#[derive(Debug, thiserror::Error)]
pub enum LstmError {
    /// A configuration value is out of range (hidden size 0, dropout ≥ 1, …).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A tensor handed to a model has the wrong shape.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which argument was wrong.
        what: &'static str,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape it was given.
        got: Vec<usize>,
    },
    /// The lengths of a [`crate::PackedBatch`] do not fit its rows: a wrong count, a
    /// length of 0, or one longer than the padded steps.
    #[error("invalid sequence lengths: {0}")]
    Lengths(String),
    /// A weights file cannot be read, is not a complete safetensors file, or holds
    /// NaN or infinite values.
    #[error("{}: {message}", path.display())]
    WeightsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A state dict's tensor names or shapes differ from the model's parameters.
    #[error("{}: the weights do not match the model:{mismatch}", path.display())]
    StateDict {
        /// The file the state dict came from.
        path: std::path::PathBuf,
        /// Every missing, unexpected and wrongly shaped tensor.
        mismatch: Box<crate::mismatch::StateDictMismatch>,
    },
    /// An error from candle itself.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with [`LstmError`].
pub type Result<T> = std::result::Result<T, LstmError>;

impl From<LstmError> for candle_core::Error {
    fn from(e: LstmError) -> Self {
        match e {
            LstmError::Candle(e) => e,
            other => candle_core::Error::wrap(other),
        }
    }
}

/// Checks that `got` equals `expected`, naming the argument otherwise.
pub(crate) fn check_shape(what: &'static str, got: &[usize], expected: &[usize]) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(LstmError::Shape {
            what,
            expected: expected.to_vec(),
            got: got.to_vec(),
        })
    }
}
