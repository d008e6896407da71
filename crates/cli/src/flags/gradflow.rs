//! `lstm gradflow`'s flags and the [`GradFlowConfig`] they make.

use std::path::PathBuf;

use lstm_train::GradFlowConfig;

/// Flags of `lstm gradflow`.
#[derive(clap::Args, Debug)]
pub(crate) struct GradflowArgs {
    /// Steps per sequence T.
    #[arg(long, default_value_t = 100)]
    seq_len: usize,
    /// Hidden size of both models.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Training iterations of each model (0: measure the initialisation only).
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    lr: f64,
    /// Global gradient-norm clip before every update.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    clip: f64,
    /// The LSTM's initial forget-gate bias, or `book` for the book's uniform
    /// initialisation of every bias.
    #[arg(long, default_value = "1.0", value_parser = parse_forget_bias, allow_negative_numbers = true)]
    forget_bias: ForgetBias,
    /// Seed of the weights and the data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Give every sequence its own length, drawn from T/2..=T (markers within it), and
    /// run the rows packed so padding is never read; the gradient norms are then measured
    /// back from each row's own last step.
    #[arg(long)]
    variable_length: bool,
    /// Output directory (default: runs/gradflow-<UTC time>). It must be new or empty.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// If --out holds a previous run, move it aside to <out>.old-<timestamp> (it is
    /// never deleted).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// `--forget-bias`: a number, or the book's initialisation.
#[derive(Clone, Copy, Debug)]
struct ForgetBias(Option<f64>);

fn parse_forget_bias(text: &str) -> Result<ForgetBias, String> {
    if text == "book" {
        return Ok(ForgetBias(None));
    }
    text.parse::<f64>()
        .map(|f| ForgetBias(Some(f)))
        .map_err(|_| format!("{text:?} is neither a number nor `book`"))
}

impl GradflowArgs {
    /// The run's settings.
    pub(crate) fn config(&self) -> GradFlowConfig {
        GradFlowConfig {
            seq_len: self.seq_len,
            hidden: self.hidden,
            steps: self.steps,
            batch_size: self.batch_size,
            lr: self.lr,
            clip: self.clip,
            forget_bias: self.forget_bias.0,
            seed: self.seed,
            variable_length: self.variable_length,
            progress: !self.quiet,
            ..GradFlowConfig::default()
        }
    }
}
