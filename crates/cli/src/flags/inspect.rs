//! `lstm evaluate`'s and `lstm predict`'s flags.

use std::path::PathBuf;

use super::DataSource;

/// Flags of `lstm evaluate`.
#[derive(clap::Args, Debug)]
pub(crate) struct EvaluateArgs {
    /// Run directory of `lstm mnist` (config.json + model.safetensors), or a weights file
    /// inside one (e.g. checkpoint.safetensors or a PyTorch export).
    #[arg(long, value_name = "DIR")]
    pub(crate) checkpoint: PathBuf,
    /// Weights to load instead of the run's model.safetensors (same names and shapes).
    #[arg(long, value_name = "FILE")]
    pub(crate) weights: Option<PathBuf>,
    /// Where the test images come from.
    #[arg(long, value_enum, default_value_t = DataSource::Files)]
    pub(crate) source: DataSource,
    /// Directory with the MNIST idx files, for --source files.
    #[arg(long, default_value = "data/mnist")]
    pub(crate) data: PathBuf,
    /// Evaluate only the first N test images.
    #[arg(long)]
    pub(crate) test_limit: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1000)]
    pub(crate) batch_size: usize,
}

/// Flags of `lstm predict`.
#[derive(clap::Args, Debug)]
pub(crate) struct PredictArgs {
    /// Run directory of `lstm mnist` (config.json + model.safetensors), or a weights file
    /// inside one.
    #[arg(long, value_name = "DIR")]
    pub(crate) checkpoint: PathBuf,
    /// Weights to load instead of the run's model.safetensors.
    #[arg(long, value_name = "FILE")]
    pub(crate) weights: Option<PathBuf>,
    /// The digit: a PNG, ideally 28×28 grayscale; other sizes are padded to a square and
    /// resized, colour becomes gray, and dark ink on a light background is inverted.
    #[arg(long, value_name = "FILE.png")]
    pub(crate) image: PathBuf,
}
