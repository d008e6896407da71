//! Training and evaluating the chapter's MNIST classifier.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{loss, Optimizer, VarMap, SGD};
use lstm_core::{seeded_var_builder, Backbone, ClassifierConfig, Kernel, SequenceClassifier};
use lstm_datasets::{EpochSampler, Mnist, MnistSplit, ValidationSource};
use serde::Serialize;

use crate::error::{IoContext, Result, TrainError};
use crate::run_dir::RunDir;
use crate::snapshot::{progress_bar, restore, snapshot, Snapshot};

/// Everything that defines an MNIST training run.
#[derive(Clone, Debug, Serialize)]
pub struct ClassifierTrainConfig {
    /// Hidden size of the LSTM.
    pub hidden: usize,
    /// Stacked LSTM layers (1 for the cell backbone).
    pub layers: usize,
    /// The book's cell loop or the fused layer.
    #[serde(serialize_with = "ser_debug")]
    pub backbone: Backbone,
    /// Fused or reference kernels.
    #[serde(serialize_with = "ser_debug")]
    pub kernel: Kernel,
    /// SGD learning rate.
    pub lr: f64,
    /// How the learning rate changes over the run.
    #[serde(serialize_with = "ser_debug")]
    pub lr_schedule: LrSchedule,
    /// Images per batch.
    pub batch_size: usize,
    /// Passes over the training split (ignored when `iters` is set).
    pub epochs: usize,
    /// Total iterations, overriding `epochs`.
    pub iters: Option<usize>,
    /// Seed for the weights and the batch order.
    pub seed: u64,
    /// Validate (and print the book's line) every this many iterations.
    pub eval_every: usize,
    /// Held-out images or the test set (the book's choice, which leaks).
    #[serde(serialize_with = "ser_debug")]
    pub validate_on: ValidationSource,
    /// Which weights to keep and test: the best on validation, or the last.
    #[serde(serialize_with = "ser_debug")]
    pub select: Selection,
    /// Show a progress bar.
    pub progress: bool,
}

/// How the learning rate changes over a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LrSchedule {
    /// The same rate throughout (the book).
    Constant,
    /// The rate for the first 90% of the iterations, a tenth of it for the last 10%:
    /// SGD at lr 0.1 ends noisy, and the smaller final steps settle it.
    #[default]
    StepDown,
}

impl LrSchedule {
    /// The learning rate at `iteration` (1-based) of `total`, from the base rate.
    pub fn rate(self, base: f64, iteration: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::StepDown if iteration * 10 > total * 9 => base * 0.1,
            LrSchedule::StepDown => base,
        }
    }
}

/// Which weights a run keeps at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Selection {
    /// The weights with the best validation accuracy (early stopping; the validation
    /// split is held out of training, so this does not look at the test set).
    #[default]
    Best,
    /// The weights after the last iteration.
    Last,
}

/// `loss.svg` (validation loss, log scale) and `accuracy.svg` (validation accuracy, %)
/// over the iterations of a run.
fn write_curves(dir: &RunDir, history: &[EvalPoint]) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    let at = |f: &dyn Fn(&EvalPoint) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|p| (p.iteration as f64, f(p))).collect()
    };
    crate::plot::plot_curve(
        &dir.file("loss.svg"),
        "Validation loss (cross-entropy)",
        "Iteration",
        "Loss",
        &at(&|p| p.validation.loss),
        true,
    )?;
    crate::plot::plot_curve(
        &dir.file("accuracy.svg"),
        "Validation accuracy",
        "Iteration",
        "Accuracy (%)",
        &at(&|p| 100.0 * p.validation.accuracy),
        false,
    )
}

fn ser_debug<T: std::fmt::Debug, S: serde::Serializer>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:?}").to_lowercase())
}

impl Default for ClassifierTrainConfig {
    /// The book's run: hidden 128, one layer, SGD lr 0.1, batch 64, 10 epochs.
    fn default() -> Self {
        Self {
            hidden: 128,
            layers: 1,
            backbone: Backbone::Layer,
            kernel: Kernel::Fused,
            lr: 0.1,
            lr_schedule: LrSchedule::StepDown,
            batch_size: 64,
            epochs: 10,
            iters: None,
            seed: 42,
            eval_every: 500,
            validate_on: ValidationSource::HeldOut,
            select: Selection::Best,
            progress: true,
        }
    }
}

impl ClassifierTrainConfig {
    /// Rejects settings that cannot train, before any work is done.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "learning rate must be a positive number, got {}",
                self.lr
            ));
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if self.hidden == 0 {
            return bad("hidden size must be at least 1".into());
        }
        if self.layers == 0 {
            return bad("layers must be at least 1".into());
        }
        if self.iters == Some(0) || (self.iters.is_none() && self.epochs == 0) {
            return bad("nothing to train: iterations or epochs must be at least 1".into());
        }
        if self.eval_every == 0 {
            return bad("evaluation interval must be at least 1".into());
        }
        Ok(())
    }
}

/// Loss and accuracy of a model on a split.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    /// Summed cross-entropy over the split divided by its size (the book's `evaluate`).
    pub loss: f64,
    /// Fraction of images classified correctly.
    pub accuracy: f64,
    /// Images evaluated.
    pub count: usize,
}

/// One validation point of a run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct EvalPoint {
    /// Iterations done.
    pub iteration: usize,
    /// Loss of the last training batch.
    pub train_loss: f64,
    /// Validation loss and accuracy.
    pub validation: Evaluation,
}

/// What a finished run reports.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// Iterations done.
    pub iterations: usize,
    /// Validation points, every `eval_every` iterations.
    pub history: Vec<EvalPoint>,
    /// The iteration whose weights were kept (see [`Selection`]).
    pub selected_iteration: usize,
    /// The kept model on the test set.
    pub test: Evaluation,
    /// Wall time of the training loop, in seconds.
    pub train_seconds: f64,
    /// Training throughput.
    pub samples_per_second: f64,
    /// Where the outputs went.
    pub run_dir: Option<PathBuf>,
}

/// A model together with the variables it trains.
pub struct TrainedClassifier {
    /// The model.
    pub model: SequenceClassifier,
    /// Its parameters, by name.
    pub varmap: VarMap,
}

/// Builds the classifier of `cfg` with seeded weights.
pub fn build_classifier(cfg: &ClassifierTrainConfig) -> Result<TrainedClassifier> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, cfg.seed, DType::F32, &Device::Cpu);
    let model_cfg = ClassifierConfig {
        hidden_size: cfg.hidden,
        num_layers: cfg.layers,
        ..ClassifierConfig::mnist(cfg.backbone)
    };
    let model = SequenceClassifier::new(model_cfg, vb)?.with_kernel(cfg.kernel);
    Ok(TrainedClassifier { model, varmap })
}

/// Evaluates `model` on `split` in batches of `batch_size`.
pub fn evaluate(
    model: &SequenceClassifier,
    split: &MnistSplit,
    batch_size: usize,
) -> Result<Evaluation> {
    let n = split.len();
    let (mut loss_sum, mut correct) = (0f64, 0u64);
    let mut start = 0;
    while start < n {
        let len = batch_size.min(n - start);
        let images = split.images.narrow(0, start, len)?;
        let labels = split.labels.narrow(0, start, len)?;
        let logits = model.logits(&images, false)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        loss_sum += f64::from(
            loss::nll(&log_probs, &labels)?
                .affine(len as f64, 0.0)?
                .to_scalar::<f32>()?,
        );
        let predicted = logits.argmax(D::Minus1)?;
        correct += u64::from(
            predicted
                .eq(&labels)?
                .to_dtype(DType::U32)?
                .sum_all()?
                .to_scalar::<u32>()?,
        );
        start += len;
    }
    Ok(Evaluation {
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        count: n,
    })
}

/// Trains the classifier on `data`, printing the book's lines to `out`, and writes the
/// config, the metrics and the weights into `run_dir` when one is given.
pub fn train_classifier(
    data: &Mnist,
    cfg: &ClassifierTrainConfig,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<(TrainReport, TrainedClassifier)> {
    cfg.validate()?;
    let validation = data.validation_split(cfg.validate_on)?;
    let trained = build_classifier(cfg)?;
    let mut sgd = SGD::new(trained.varmap.all_vars(), cfg.lr)?;
    let mut sampler = EpochSampler::new(data.train.len(), cfg.batch_size, cfg.seed)?;
    let total = cfg
        .iters
        .unwrap_or(cfg.epochs * sampler.batches_per_epoch());
    if let Some(dir) = run_dir {
        dir.write_json("config.json", cfg)?;
    }
    let mut metrics = String::from("iteration,train_loss,val_loss,val_accuracy\n");
    let bar = progress_bar(cfg.progress, total, "iterations");
    let mut history = Vec::new();
    let mut best: Option<(usize, f64, Snapshot)> = None;
    let started = Instant::now();
    let mut samples = 0usize;
    for iteration in 1..=total {
        let (images, labels): (Tensor, Tensor) = data.train.batch(sampler.next_batch())?;
        samples += labels.dim(0)?;
        let logits = trained.model.logits(&images, true)?;
        let loss = loss::cross_entropy(&logits, &labels)?;
        let loss_value = loss.to_scalar::<f32>()?;
        if !loss_value.is_finite() {
            bar.finish_and_clear();
            return Err(TrainError::Diverged {
                iteration,
                loss: loss_value,
                kept: run_dir
                    .map(|d| d.path().display().to_string())
                    .unwrap_or_else(|| "memory".into()),
            });
        }
        sgd.set_learning_rate(cfg.lr_schedule.rate(cfg.lr, iteration, total));
        sgd.backward_step(&loss)?;
        bar.inc(1);
        if iteration % 20 == 0 || iteration == total {
            let rate = samples as f64 / started.elapsed().as_secs_f64();
            bar.set_message(format!("loss {loss_value:.4} · {rate:.0} samples/s"));
        }
        if iteration % cfg.eval_every == 0 || iteration == total {
            let eval = evaluate(&trained.model, validation, 1000)?;
            let line = format!(
                "Iteration: {iteration}. Loss: {loss_value:.4}. Accuracy: {:.2}",
                100.0 * eval.accuracy
            );
            bar.suspend(|| writeln!(out, "{line}"))
                .at(std::path::Path::new("<stdout>"))?;
            tracing::debug!(iteration, val_loss = eval.loss, "validation");
            metrics.push_str(&format!(
                "{iteration},{loss_value},{},{}\n",
                eval.loss, eval.accuracy
            ));
            history.push(EvalPoint {
                iteration,
                train_loss: f64::from(loss_value),
                validation: eval,
            });
            let improved = best
                .as_ref()
                .is_none_or(|(_, acc, _)| eval.accuracy >= *acc);
            if cfg.select == Selection::Best && improved {
                best = Some((iteration, eval.accuracy, snapshot(&trained.varmap)?));
                if let Some(dir) = run_dir {
                    dir.save_weights("model.safetensors", &trained.varmap)?;
                }
            }
            if let Some(dir) = run_dir {
                dir.write_atomic("metrics.csv", metrics.as_bytes())?;
            }
        }
    }
    bar.finish_and_clear();
    let selected_iteration = match best {
        Some((iteration, accuracy, weights)) => {
            restore(&trained.varmap, &weights)?;
            tracing::info!(iteration, accuracy, "kept the best validation weights");
            iteration
        }
        None => total,
    };
    let train_seconds = started.elapsed().as_secs_f64();
    let test = evaluate(&trained.model, &data.test, 1000)?;
    if selected_iteration != total {
        writeln!(
            out,
            "Kept the weights of iteration {selected_iteration} (best validation accuracy)"
        )
        .at(std::path::Path::new("<stdout>"))?;
    }
    writeln!(
        out,
        "Test Loss: {:.4} | Test Accuracy: {:.4}",
        test.loss, test.accuracy
    )
    .at(std::path::Path::new("<stdout>"))?;
    let report = TrainReport {
        iterations: total,
        history,
        selected_iteration,
        test,
        train_seconds,
        samples_per_second: samples as f64 / train_seconds,
        run_dir: run_dir.map(|d| d.path().to_path_buf()),
    };
    if let Some(dir) = run_dir {
        dir.write_atomic("metrics.csv", metrics.as_bytes())?;
        dir.save_weights("model.safetensors", &trained.varmap)?;
        dir.write_json("summary.json", &report)?;
        write_curves(dir, &report.history)?;
    }
    Ok((report, trained))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_down_schedule_drops_for_the_last_tenth() {
        let s = LrSchedule::StepDown;
        assert_eq!(s.rate(0.1, 1, 1000), 0.1);
        assert_eq!(s.rate(0.1, 900, 1000), 0.1);
        assert!((s.rate(0.1, 901, 1000) - 0.01).abs() < 1e-12);
        assert!((s.rate(0.1, 1000, 1000) - 0.01).abs() < 1e-12);
        assert_eq!(LrSchedule::Constant.rate(0.1, 1000, 1000), 0.1);
    }

    #[test]
    fn bad_settings_are_rejected_before_training() {
        let base = ClassifierTrainConfig::default();
        for (cfg, needle) in [
            (
                ClassifierTrainConfig {
                    lr: -0.1,
                    ..base.clone()
                },
                "learning rate",
            ),
            (
                ClassifierTrainConfig {
                    lr: 0.0,
                    ..base.clone()
                },
                "learning rate",
            ),
            (
                ClassifierTrainConfig {
                    lr: f64::NAN,
                    ..base.clone()
                },
                "learning rate",
            ),
            (
                ClassifierTrainConfig {
                    batch_size: 0,
                    ..base.clone()
                },
                "batch size",
            ),
            (
                ClassifierTrainConfig {
                    hidden: 0,
                    ..base.clone()
                },
                "hidden",
            ),
            (
                ClassifierTrainConfig {
                    iters: Some(0),
                    ..base.clone()
                },
                "nothing to train",
            ),
        ] {
            let err = cfg.validate().unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert!(base.validate().is_ok());
    }
}
