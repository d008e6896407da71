//! `lstm stock`: train the book's stock-price model (or all three with `--compare`), or
//! resume a stopped run.

use std::path::Path;

use lstm_datasets::{prepare_stock, ShortHistory, StockDataset, StockFrame};
use lstm_train::tasks::stock::thousands;
use lstm_train::{
    read_session_checkpoint, train, write_predictions, PredictionFigure, RegressionReport, RunDir,
    Settings, StockTask,
};

use super::{new_run_dir, resume_hint, resume_in, saved_data};
use crate::failure::{during, setup, Failure};
use crate::flags::{StockArgs, StockData};
use crate::output::{absolute, print};

/// `lstm stock`.
pub(crate) fn run(args: StockArgs) -> Result<(), Failure> {
    if let Some(dir) = &args.run.resume {
        return resume_run(dir, args.run.stop_after, !args.run.quiet);
    }
    let configs: Vec<_> = args.models().into_iter().map(|m| args.configs(m)).collect();
    for (cfg, session) in &configs {
        cfg.validate().map_err(setup)?;
        session.validate().map_err(setup)?;
    }
    let features: Vec<String> = args.features.iter().map(|f| f.trim().to_string()).collect();
    if features.iter().any(String::is_empty) {
        return Err(setup(format!(
            "--features {:?}: empty column name (give comma-separated column names)",
            args.features.join(",")
        )));
    }
    let options = args.options(features);
    let frame = StockFrame::read_csv(&args.data).map_err(setup)?;
    let data = prepare_stock(&frame, &options).map_err(setup)?;
    for (cfg, _) in &configs {
        cfg.check_model_size(options.features.len())
            .map_err(setup)?;
    }
    let run_dir = new_run_dir(args.run.out.as_deref(), args.run.overwrite, "stock")?;
    let model_dirs: Vec<RunDir> = if args.compare {
        configs
            .iter()
            .map(|(cfg, _)| RunDir::create(run_dir.path().join(cfg.model_name())))
            .collect::<Result<_, _>>()
            .map_err(setup)?
    } else {
        vec![run_dir.clone()]
    };
    let data_json = StockData {
        path: absolute(&args.data)?,
        rows: frame.len(),
        features: options.features.clone(),
        target: options.target.clone(),
        train_rows: options.train_rows,
        window: options.window,
        fit_scalers_on: options.fit_scalers_on,
        short_history: options.short_history,
        train_samples: data.train_len(),
        test_samples: data.test_len(),
    };
    run_dir.write_json("data.json", &data_json).map_err(setup)?;
    print_history(&data)?;
    tracing::info!(
        rows = frame.len(),
        train = data.train_len(),
        test = data.test_len(),
        dir = %run_dir.path().display(),
        "starting stock training"
    );
    let mut stdout = std::io::stdout();
    let mut reports: Vec<RegressionReport> = Vec::new();
    for ((cfg, session), dir) in configs.iter().zip(&model_dirs) {
        if args.compare {
            print(format_args!("\n## {}\n", cfg.model_name()))?;
        }
        let context = serde_json::to_value(&data_json).map_err(setup)?;
        let task = StockTask::new(&data, cfg, session).map_err(setup)?;
        let report = train(task, session, context, Some(dir), &mut stdout).map_err(during)?;
        print_done(&report, dir)?;
        reports.push(report);
    }
    if args.compare {
        write_comparison(&run_dir, &reports, &args.target)?;
    }
    Ok(())
}

/// `lstm stock --resume DIR`.
fn resume_run(dir: &Path, stop_after: Option<usize>, progress: bool) -> Result<(), Failure> {
    // The lock first: a run that is still training is refused at once.
    let run_dir = RunDir::reopen(dir).map_err(setup)?;
    let checkpoint = read_session_checkpoint::<StockTask>(dir).map_err(setup)?;
    let saved = &checkpoint.progress;
    let data_json: StockData = saved_data(&checkpoint.path, &saved.context)?;
    let frame = StockFrame::read_csv(&data_json.path).map_err(setup)?;
    let data = prepare_stock(&frame, &data_json.options()).map_err(setup)?;
    let task = StockTask::new(&data, &saved.config, &saved.session).map_err(setup)?;
    print_history(&data)?;
    let report = resume_in(task, &checkpoint, stop_after, progress, &run_dir)?;
    print_done(&report, &run_dir)
}

/// With a window above 1: what happens to the first days, which have less history.
fn print_history(data: &StockDataset) -> Result<(), Failure> {
    let w = data.window;
    if w == 1 {
        return Ok(());
    }
    let short = if w == 2 {
        "the first day has 1 day".to_string()
    } else {
        format!("the first {} days have 1 to {} days", w - 1, w - 1)
    };
    match data.short_history {
        ShortHistory::Keep => print(format_args!(
            "Window of {w} days: {short} of history, kept as shorter sequences (run packed, \
             padding never read), so all {} days get a prediction (--short-history drop \
             leaves them out)",
            data.dates.len()
        )),
        ShortHistory::Drop => print(format_args!(
            "Window of {w} days: {short} of history and get no prediction \
             (--short-history drop); predictions start on {}",
            data.sample_dates.first().map_or("", String::as_str)
        )),
    }
}

fn print_done(report: &RegressionReport, dir: &RunDir) -> Result<(), Failure> {
    if let Some(hint) = report
        .stopped_at
        .and_then(|_| resume_hint("stock", report.checkpoint.as_deref()))
    {
        print(format_args!("{hint}"))?;
    }
    print(format_args!(
        "Trained {} epochs in {:.1} s; outputs in {}",
        report.epochs,
        report.train_seconds,
        dir.path().display()
    ))
}

/// `comparison.md` and `comparison.svg` of `--compare`.
fn write_comparison(
    run_dir: &RunDir,
    reports: &[RegressionReport],
    target: &str,
) -> Result<(), Failure> {
    let table = comparison_table(reports);
    print(format_args!("\n{table}"))?;
    run_dir
        .write_atomic("comparison.md", table.as_bytes())
        .map_err(during)?;
    let first = &reports[0];
    let figure = PredictionFigure {
        dates: first.dates(),
        actual: first.actual(),
        predictions: reports
            .iter()
            .map(|r| (format!("{} predicted", label(&r.model)), r.predicted()))
            .collect(),
        boundary: first.boundary(),
        y_label: format!("{target} ({})", first.unit),
    };
    let path = write_predictions(run_dir, "comparison.svg", &figure).map_err(during)?;
    print(format_args!(
        "Wrote {} and {}",
        path.display(),
        run_dir.file("comparison.md").display()
    ))
}

fn label(model: &str) -> &str {
    match model {
        "lstm" => "LSTM",
        "gru" => "GRU",
        "bilstm" => "BiLSTM",
        other => other,
    }
}

/// The markdown table of `--compare`.
fn comparison_table(reports: &[RegressionReport]) -> String {
    let epoch = reports.first().map_or(0, |r| r.last_logged_epoch);
    let unit = reports.first().map_or("shares", |r| r.unit.as_str());
    let mut table = format!(
        "| model | loss at epoch {epoch} | test MSE (scaled) | test MAE ({unit}) | test RMSE ({unit}) |\n\
         |---|---:|---:|---:|---:|\n"
    );
    for r in reports {
        table.push_str(&format!(
            "| {} | {:.5} | {:.5} | {} | {} |\n",
            r.model,
            r.loss_at_900,
            r.test_mse,
            thousands(r.test_mae),
            thousands(r.test_rmse),
        ));
    }
    table
}
