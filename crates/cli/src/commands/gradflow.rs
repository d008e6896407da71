//! `lstm gradflow`: the gradient-flow study (see `lstm_train::gradflow`) with its table
//! on standard output and its files in a run directory.

use std::time::Instant;

use lstm_train::gradflow::{lengths_text, run_gradflow, table_steps};

use super::new_run_dir;
use crate::failure::{during, setup, Failure};
use crate::flags::GradflowArgs;
use crate::output::print;

/// `lstm gradflow`.
pub(crate) fn run(args: GradflowArgs) -> Result<(), Failure> {
    let cfg = args.config();
    cfg.validate().map_err(setup)?;
    let dir = new_run_dir(args.out.as_deref(), args.overwrite, "gradflow")?;
    let forget = cfg
        .forget_bias
        .map_or("the book's uniform init".to_string(), |f| format!("{f}"));
    let lengths = if cfg.variable_length {
        format!(
            " (lengths vary: each sequence {}, run packed, padding never read)",
            lengths_text(cfg.seq_len)
        )
    } else {
        String::new()
    };
    print(format_args!(
        "Adding problem, T = {}{lengths}: tanh RNN and LSTM, hidden {}, {} iterations each of \
         batch {}, Adam lr {}, clip {}, LSTM forget-gate bias {forget}, seed {}",
        cfg.seq_len, cfg.hidden, cfg.steps, cfg.batch_size, cfg.lr, cfg.clip, cfg.seed
    ))?;
    let started = Instant::now();
    let report = run_gradflow(&cfg).map_err(during)?;
    let wall = started.elapsed().as_secs_f64();
    if cfg.variable_length {
        print(format_args!(
            "\nMean ‖∂L/∂h‖ over {} probe sequences of lengths {}, measured back from each \
             sequence's own last step (where L reads it); `rows`: the probe sequences long \
             enough to have that step:\n",
            cfg.probe_size,
            lengths_text(cfg.seq_len)
        ))?;
    } else {
        print(format_args!(
            "\nMean ‖∂L/∂h_t‖ over {} probe sequences (L reads the final state, t = {}):\n",
            cfg.probe_size, cfg.seq_len
        ))?;
    }
    print(format_args!("{}", report.table(&table_steps(cfg.seq_len))))?;
    print(format_args!(
        "Test metrics on {} sequences:\n",
        cfg.eval_size
    ))?;
    print(format_args!("{}", report.metrics_table()))?;
    report.write(&dir).map_err(during)?;
    print(format_args!(
        "Wall time {wall:.1} s. Wrote {} (gradflow.svg, gradflow.csv, loss.svg, table.md, \
         summary.json)",
        dir.path().display()
    ))
}
