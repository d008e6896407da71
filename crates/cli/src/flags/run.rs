//! The flags every training command shares: where the run goes, stopping and resuming.

use std::path::PathBuf;

/// Where a training run goes, and how far it goes this time.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Stop after N steps in all (iterations for mnist, epochs for stock), with a
    /// checkpoint, to continue later with --resume.
    #[arg(long, value_name = "N")]
    pub(crate) stop_after: Option<usize>,
    /// Continue the run in DIR from its checkpoint, with the settings and data it was
    /// started with (other training flags are ignored).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub(crate) resume: Option<PathBuf>,
    /// Run directory (default: runs/<command>-<timestamp>). It must be new or empty.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// If --out holds a previous run, move it aside to <out>.old-<timestamp> (it is
    /// never deleted) and start afresh.
    #[arg(long, conflicts_with = "resume")]
    pub(crate) overwrite: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}
