//! Training and evaluating the chapter's MNIST classifier.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{loss, VarMap};
use lstm_core::{seeded_var_builder, Backbone, ClassifierConfig, Kernel, SequenceClassifier};
use lstm_datasets::mnist::{IMAGE_SIDE, NUM_CLASSES};
use lstm_datasets::{EpochSampler, Mnist, MnistSplit, SamplerState, ValidationSource};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    parse_checkpoint, read_checkpoint, save_checkpoint, Checkpoint, CHECKPOINT_FILE,
};
use crate::choice::{de_choice, ser_choice};
use crate::error::{divergence, is_divergent, IoContext, Result, TrainError};
use crate::limits::{
    check_parameters, check_range, recurrent_parameters, MAX_BATCH, MAX_HIDDEN, MAX_ITERATIONS,
    MAX_LAYERS,
};
use crate::optim::{Optimizer, OptimizerKind};
use crate::run_dir::RunDir;
use crate::snapshot::{all_finite, progress_bar, restore, snapshot, Snapshot};

/// Everything that defines an MNIST training run (saved as the run's `config.json` and
/// inside its checkpoint).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifierTrainConfig {
    /// Hidden size of the LSTM.
    pub hidden: usize,
    /// Stacked LSTM layers (1 for the cell backbone).
    pub layers: usize,
    /// The book's cell loop, the fused LSTM layer, or a GRU layer.
    #[serde(serialize_with = "ser_choice", deserialize_with = "de_choice")]
    pub backbone: Backbone,
    /// Fused or reference kernels.
    #[serde(serialize_with = "ser_choice", deserialize_with = "de_choice")]
    pub kernel: Kernel,
    /// SGD learning rate.
    pub lr: f64,
    /// SGD momentum (0, the book's plain SGD, by default).
    #[serde(default)]
    pub momentum: f64,
    /// How the learning rate changes over the run.
    #[serde(serialize_with = "ser_choice", deserialize_with = "de_choice")]
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
    #[serde(serialize_with = "ser_choice", deserialize_with = "de_choice")]
    pub validate_on: ValidationSource,
    /// Which weights to keep and test: the best on validation, or the last.
    #[serde(serialize_with = "ser_choice", deserialize_with = "de_choice")]
    pub select: Selection,
    /// Write a checkpoint every this many iterations (and at the end); 0 = only at the
    /// end. Needs a run directory.
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Stop (with a checkpoint) once this many iterations are done, to resume later.
    #[serde(default, skip_serializing)]
    pub stop_after: Option<usize>,
    /// Show a progress bar.
    #[serde(default, skip_serializing)]
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
    use crate::plot::{Curve, Figure};
    if history.is_empty() {
        return Ok(());
    }
    let at = |f: &dyn Fn(&EvalPoint) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|p| (p.iteration as f64, f(p))).collect()
    };
    let loss = Figure::new("Validation loss (cross-entropy)", "Iteration", "Loss")
        .with_log_y()
        .with_curve(Curve::new("", at(&|p| p.validation.loss), 0));
    crate::plot::write_curves(dir, "loss.svg", &loss)?;
    let accuracy = Figure::new("Validation accuracy", "Iteration", "Accuracy (%)")
        .with_curve(Curve::new("", at(&|p| 100.0 * p.validation.accuracy), 0));
    crate::plot::write_curves(dir, "accuracy.svg", &accuracy)?;
    Ok(())
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
            momentum: 0.0,
            lr_schedule: LrSchedule::StepDown,
            batch_size: 64,
            epochs: 10,
            iters: None,
            seed: 42,
            eval_every: 500,
            validate_on: ValidationSource::HeldOut,
            select: Selection::Best,
            checkpoint_every: 500,
            stop_after: None,
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
        check_range("batch size (--batch-size)", self.batch_size, MAX_BATCH)?;
        check_range("hidden size (--hidden)", self.hidden, MAX_HIDDEN)?;
        check_range("layers (--layers)", self.layers, MAX_LAYERS)?;
        if self.iters == Some(0) || (self.iters.is_none() && self.epochs == 0) {
            return bad("nothing to train: iterations or epochs must be at least 1".into());
        }
        match self.iters {
            Some(iters) => check_range("iterations (--iters)", iters, MAX_ITERATIONS)?,
            None => check_range("epochs (--epochs)", self.epochs, MAX_ITERATIONS)?,
        }
        let gates = match self.backbone {
            Backbone::Gru => 3,
            Backbone::Cell | Backbone::Layer => 4,
        };
        let (input, hidden) = (IMAGE_SIDE as u64, self.hidden as u64);
        let parameters = recurrent_parameters(gates, input, hidden, self.layers as u64, 1)
            .and_then(|n| n.checked_add(hidden * NUM_CLASSES as u64 + NUM_CLASSES as u64));
        check_parameters(
            parameters,
            &format!("hidden {}, {} layers", self.hidden, self.layers),
        )?;
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return bad(format!("momentum must be in [0, 1), got {}", self.momentum));
        }
        if self.stop_after == Some(0) {
            return bad("--stop-after must be at least 1".into());
        }
        if self.eval_every == 0 {
            return bad("evaluation interval must be at least 1".into());
        }
        Ok(())
    }

    /// The iterations of a run on a training split of `train_len` images: `iters`, or
    /// `epochs` × the batches per epoch, checked against [`MAX_ITERATIONS`] (never
    /// wrapping, whatever `--epochs` says).
    pub fn total_iterations(&self, train_len: usize) -> Result<usize> {
        if let Some(iters) = self.iters {
            return Ok(iters);
        }
        let per_epoch =
            EpochSampler::new(train_len, self.batch_size, self.seed)?.batches_per_epoch();
        self.epochs
            .checked_mul(per_epoch)
            .filter(|&n| n <= MAX_ITERATIONS)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "epochs (--epochs) = {} × {per_epoch} batches per epoch is over the \
                     limit of {MAX_ITERATIONS} iterations",
                    self.epochs
                ))
            })
    }
}

/// Loss and accuracy of a model on a split.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Summed cross-entropy over the split divided by its size (the book's `evaluate`);
    /// infinite for a model that diverged.
    #[serde(with = "crate::choice::lenient_f64")]
    pub loss: f64,
    /// Fraction of images classified correctly.
    pub accuracy: f64,
    /// Images evaluated.
    pub count: usize,
}

/// One validation point of a run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
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
    /// Iterations done (fewer than `total_iterations` when stopped by `stop_after`).
    pub iterations: usize,
    /// Iterations the run is configured for.
    pub total_iterations: usize,
    /// Validation points, every `eval_every` iterations.
    pub history: Vec<EvalPoint>,
    /// The iteration whose weights were kept (see [`Selection`]).
    pub selected_iteration: usize,
    /// The kept model on the test set (`None` when the run stopped early to resume later).
    pub test: Option<Evaluation>,
    /// Wall time of the training loop, in seconds (summed over resumed sessions).
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
    cfg.validate()?;
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
    if n == 0 {
        return Err(TrainError::Config(
            "nothing to evaluate: the split holds no images".into(),
        ));
    }
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

/// Class probabilities of one image `(28, 28)` (already normalised), most likely first:
/// `(digit, probability)`.
pub fn predict_digit(model: &SequenceClassifier, image: &Tensor) -> Result<Vec<(usize, f32)>> {
    let logits = model.logits(&image.unsqueeze(0)?, false)?;
    let probs = candle_nn::ops::softmax(&logits, D::Minus1)?
        .squeeze(0)?
        .to_vec1::<f32>()?;
    let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(ranked)
}

/// The progress of an MNIST run, as saved in its checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifierProgress {
    /// The run's settings.
    pub config: ClassifierTrainConfig,
    /// What the caller stored about the data (e.g. the command line's data options), so
    /// a resume can load the same data.
    pub context: serde_json::Value,
    /// Iterations done.
    pub iteration: usize,
    /// Iterations the run is configured for.
    pub total: usize,
    /// Where the batch order stands.
    pub sampler: SamplerSnapshot,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerKind,
    /// Optimizer steps taken.
    pub optimizer_steps: u64,
    /// Validation points so far.
    pub history: Vec<EvalPoint>,
    /// `(iteration, accuracy)` of the best validation point so far.
    pub best: Option<(usize, f64)>,
    /// Training images seen.
    pub samples: usize,
    /// Seconds spent training so far.
    pub seconds: f64,
    /// Loss of the run's first iteration (the reference for [`crate::DIVERGENCE_FACTOR`]).
    #[serde(default)]
    pub first_loss: Option<f64>,
}

/// [`SamplerState`] in a checkpoint.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SamplerSnapshot {
    /// Seed of the per-epoch permutations.
    pub seed: u64,
    /// Current epoch.
    pub epoch: u64,
    /// Indices of the current epoch already used.
    pub position: u64,
}

impl From<SamplerState> for SamplerSnapshot {
    fn from(s: SamplerState) -> Self {
        Self {
            seed: s.seed,
            epoch: s.epoch,
            position: s.position,
        }
    }
}

impl From<SamplerSnapshot> for SamplerState {
    fn from(s: SamplerSnapshot) -> Self {
        Self {
            seed: s.seed,
            epoch: s.epoch,
            position: s.position,
        }
    }
}

/// An MNIST checkpoint read back from disk.
pub type ClassifierCheckpoint = Checkpoint<ClassifierProgress>;

/// Task name stored in MNIST checkpoints.
pub const MNIST_TASK: &str = "mnist";

/// Reads the checkpoint of an MNIST run (`path` is the run directory or the file).
///
/// Besides [`read_checkpoint`]'s checks, the progress is checked
/// ([`ClassifierCheckpoint::check_progress`]).
pub fn read_classifier_checkpoint(path: &std::path::Path) -> Result<ClassifierCheckpoint> {
    let checkpoint: ClassifierCheckpoint = read_checkpoint(path, MNIST_TASK)?;
    checkpoint.check_progress()?;
    Ok(checkpoint)
}

/// [`read_classifier_checkpoint`] on a checkpoint's bytes; `path` names them in errors.
pub fn parse_classifier_checkpoint(
    path: &std::path::Path,
    bytes: &[u8],
) -> Result<ClassifierCheckpoint> {
    let checkpoint: ClassifierCheckpoint = parse_checkpoint(path, bytes, MNIST_TASK)?;
    checkpoint.check_progress()?;
    Ok(checkpoint)
}

impl ClassifierCheckpoint {
    /// The batch order saved in the checkpoint, for a training split of `train_len`
    /// images: an error naming the file when the saved position does not fit it.
    pub fn sampler(&self, train_len: usize) -> Result<EpochSampler> {
        EpochSampler::from_state(
            train_len,
            self.progress.config.batch_size,
            SamplerState::from(self.progress.sampler),
        )
        .map_err(|e| TrainError::Checkpoint {
            path: self.path.clone(),
            message: format!("its batch order does not fit the training data: {e}"),
        })
    }
}

/// Trains the classifier on `data`, printing the book's lines to `out`, and writes the
/// config, the metrics, checkpoints and the weights into `run_dir` when one is given.
///
/// `context` is stored in the checkpoints for [`resume_classifier`]'s caller (e.g. how
/// the data was loaded). Errors: [`TrainError::Config`] for bad settings,
/// [`TrainError::Diverged`] when the loss becomes NaN or infinite (the last checkpoint,
/// written before that iteration, stays on disk).
pub fn train_classifier(
    data: &Mnist,
    cfg: &ClassifierTrainConfig,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<(TrainReport, TrainedClassifier)> {
    train_classifier_with_context(data, cfg, serde_json::Value::Null, run_dir, out)
}

/// [`train_classifier`] storing `context` in the checkpoints.
pub fn train_classifier_with_context(
    data: &Mnist,
    cfg: &ClassifierTrainConfig,
    context: serde_json::Value,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<(TrainReport, TrainedClassifier)> {
    cfg.validate()?;
    let total = cfg.total_iterations(data.train.len())?;
    let sampler = EpochSampler::new(data.train.len(), cfg.batch_size, cfg.seed)?;
    let trained = build_classifier(cfg)?;
    let optimizer = Optimizer::new(
        OptimizerKind::Sgd {
            momentum: cfg.momentum,
        },
        &trained.varmap,
        cfg.lr,
    );
    if let Some(dir) = run_dir {
        dir.write_json("config.json", cfg)?;
    }
    let start = Session {
        iteration: 0,
        total,
        sampler,
        optimizer,
        history: Vec::new(),
        best: None,
        samples: 0,
        seconds: 0.0,
        first_loss: None,
        context,
    };
    run(data, cfg, trained, start, run_dir, out)
}

/// Continues the run saved in `checkpoint` to its end (or to `stop_after`), writing into
/// `run_dir` (normally the directory the checkpoint came from).
///
/// The weights, optimizer state, batch order, schedule and history continue exactly
/// where they stopped, so the run ends with the same weights, bit for bit, as one that
/// was never interrupted. `stop_after` and `progress` replace the saved ones.
pub fn resume_classifier(
    data: &Mnist,
    checkpoint: &ClassifierCheckpoint,
    stop_after: Option<usize>,
    progress: bool,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<(TrainReport, TrainedClassifier)> {
    let saved = &checkpoint.progress;
    let cfg = ClassifierTrainConfig {
        stop_after,
        progress,
        ..saved.config.clone()
    };
    cfg.validate()?;
    checkpoint.check_progress()?;
    let sampler = checkpoint.sampler(data.train.len())?;
    let trained = build_classifier(&cfg)?;
    checkpoint.restore_weights(&trained.varmap)?;
    let mut optimizer = Optimizer::new(saved.optimizer, &trained.varmap, cfg.lr);
    optimizer.load_state(
        saved.optimizer_steps,
        &checkpoint.optimizer,
        &checkpoint.path,
    )?;
    let best = match (saved.best, checkpoint.best_snapshot()) {
        (Some((iteration, accuracy)), Some(weights)) => Some((iteration, accuracy, weights)),
        _ => None,
    };
    writeln!(
        out,
        "Resuming {} at iteration {} of {}",
        checkpoint.path.display(),
        saved.iteration,
        saved.total
    )
    .at(std::path::Path::new("<stdout>"))?;
    let start = Session {
        iteration: saved.iteration,
        total: saved.total,
        sampler,
        optimizer,
        history: saved.history.clone(),
        best,
        samples: saved.samples,
        seconds: saved.seconds,
        first_loss: saved.first_loss,
        context: saved.context.clone(),
    };
    run(data, &cfg, trained, start, run_dir, out)
}

/// Where a run stands: everything a checkpoint saves besides the weights.
struct Session {
    iteration: usize,
    total: usize,
    sampler: EpochSampler,
    optimizer: Optimizer,
    history: Vec<EvalPoint>,
    best: Option<(usize, f64, Snapshot)>,
    samples: usize,
    seconds: f64,
    first_loss: Option<f64>,
    context: serde_json::Value,
}

impl Session {
    fn progress(&self, cfg: &ClassifierTrainConfig, seconds: f64) -> ClassifierProgress {
        ClassifierProgress {
            config: cfg.clone(),
            context: self.context.clone(),
            iteration: self.iteration,
            total: self.total,
            sampler: self.sampler.state().into(),
            optimizer: self.optimizer.kind(),
            optimizer_steps: self.optimizer.steps(),
            history: self.history.clone(),
            best: self.best.as_ref().map(|(i, a, _)| (*i, *a)),
            samples: self.samples,
            seconds,
            first_loss: self.first_loss,
        }
    }

    fn checkpoint(
        &self,
        dir: &RunDir,
        cfg: &ClassifierTrainConfig,
        varmap: &VarMap,
        seconds: f64,
    ) -> Result<std::path::PathBuf> {
        save_checkpoint(
            dir,
            MNIST_TASK,
            &self.progress(cfg, seconds),
            varmap,
            self.best.as_ref().map(|(_, _, w)| w.as_slice()),
            &self.optimizer,
        )
    }
}

/// `metrics.csv` from the validation points.
fn metrics_csv(history: &[EvalPoint]) -> String {
    let mut text = String::from("iteration,train_loss,val_loss,val_accuracy\n");
    for p in history {
        text.push_str(&format!(
            "{},{},{},{}\n",
            p.iteration, p.train_loss, p.validation.loss, p.validation.accuracy
        ));
    }
    text
}

/// The training loop shared by fresh and resumed runs.
fn run(
    data: &Mnist,
    cfg: &ClassifierTrainConfig,
    trained: TrainedClassifier,
    mut s: Session,
    run_dir: Option<&RunDir>,
    out: &mut dyn Write,
) -> Result<(TrainReport, TrainedClassifier)> {
    let stdout = std::path::Path::new("<stdout>");
    let validation = data.validation_split(cfg.validate_on)?;
    let total = s.total;
    let stop_at = cfg.stop_after.map_or(total, |k| k.min(total));
    let bar = progress_bar(cfg.progress, total, "iterations");
    bar.set_position(s.iteration as u64);
    bar.reset_eta();
    let started = Instant::now();
    let session_samples = s.samples;
    let seconds_before = s.seconds;
    let mut last_checkpoint: Option<(usize, std::path::PathBuf)> = run_dir
        .map(|d| d.file(CHECKPOINT_FILE))
        .filter(|p| p.is_file())
        .map(|p| (s.iteration, p));
    while s.iteration < stop_at {
        let iteration = s.iteration + 1;
        let (images, labels): (Tensor, Tensor) = data.train.batch(s.sampler.next_batch())?;
        s.samples += labels.dim(0)?;
        let logits = trained.model.logits(&images, true)?;
        let loss = loss::cross_entropy(&logits, &labels)?;
        let loss_value = loss.to_scalar::<f32>()?;
        let first = *s.first_loss.get_or_insert(f64::from(loss_value));
        if is_divergent(loss_value, first) {
            bar.finish_and_clear();
            let kept = kept_description(&last_checkpoint);
            return Err(divergence(iteration, loss_value, Some(first), kept));
        }
        s.optimizer
            .set_learning_rate(cfg.lr_schedule.rate(cfg.lr, iteration, total));
        s.optimizer.backward_step(&loss)?;
        s.iteration = iteration;
        bar.inc(1);
        if iteration.is_multiple_of(20) || iteration == total {
            let rate = (s.samples - session_samples) as f64 / started.elapsed().as_secs_f64();
            bar.set_message(format!("loss {loss_value:.4} · {rate:.0} samples/s"));
        }
        if iteration.is_multiple_of(cfg.eval_every) || iteration == total {
            let eval = evaluate(&trained.model, validation, 1000)?;
            let line = format!(
                "Iteration: {iteration}. Loss: {loss_value:.4}. Accuracy: {:.2}",
                100.0 * eval.accuracy
            );
            bar.suspend(|| writeln!(out, "{line}")).at(stdout)?;
            tracing::debug!(iteration, val_loss = eval.loss, "validation");
            s.history.push(EvalPoint {
                iteration,
                train_loss: f64::from(loss_value),
                validation: eval,
            });
            let improved = s
                .best
                .as_ref()
                .is_none_or(|(_, acc, _)| eval.accuracy >= *acc);
            if cfg.select == Selection::Best && improved {
                s.best = Some((iteration, eval.accuracy, snapshot(&trained.varmap)?));
                if let Some(dir) = run_dir {
                    dir.save_weights("model.safetensors", &trained.varmap)?;
                }
            }
            if let Some(dir) = run_dir {
                dir.write_atomic("metrics.csv", metrics_csv(&s.history).as_bytes())?;
            }
        }
        let due = (cfg.checkpoint_every > 0 && iteration.is_multiple_of(cfg.checkpoint_every))
            || iteration == stop_at;
        if let (true, Some(dir)) = (due, run_dir) {
            if !all_finite(&trained.varmap)? {
                bar.finish_and_clear();
                let kept = kept_description(&last_checkpoint);
                return Err(divergence(iteration, f32::NAN, None, kept));
            }
            let seconds = seconds_before + started.elapsed().as_secs_f64();
            let path = s.checkpoint(dir, cfg, &trained.varmap, seconds)?;
            last_checkpoint = Some((iteration, path));
        }
    }
    bar.finish_and_clear();
    let train_seconds = seconds_before + started.elapsed().as_secs_f64();
    if s.iteration < total {
        let resume = match &last_checkpoint {
            Some((_, path)) => format!(
                "; resume with `lstm mnist --resume {}`",
                path.parent().unwrap_or(path).display()
            ),
            None => String::new(),
        };
        writeln!(
            out,
            "Stopped after iteration {} of {total}{resume}",
            s.iteration
        )
        .at(stdout)?;
        let report = TrainReport {
            iterations: s.iteration,
            total_iterations: total,
            history: s.history,
            selected_iteration: s.iteration,
            test: None,
            train_seconds,
            samples_per_second: s.samples as f64 / train_seconds.max(1e-9),
            run_dir: run_dir.map(|d| d.path().to_path_buf()),
        };
        return Ok((report, trained));
    }
    let selected_iteration = match &s.best {
        Some((iteration, accuracy, weights)) => {
            restore(&trained.varmap, weights)?;
            tracing::info!(iteration, accuracy, "kept the best validation weights");
            *iteration
        }
        None => total,
    };
    let test = evaluate(&trained.model, &data.test, 1000)?;
    if selected_iteration != total {
        writeln!(
            out,
            "Kept the weights of iteration {selected_iteration} (best validation accuracy)"
        )
        .at(stdout)?;
    }
    writeln!(
        out,
        "Test Loss: {:.4} | Test Accuracy: {:.4}",
        test.loss, test.accuracy
    )
    .at(stdout)?;
    let report = TrainReport {
        iterations: total,
        total_iterations: total,
        history: s.history,
        selected_iteration,
        test: Some(test),
        train_seconds,
        samples_per_second: s.samples as f64 / train_seconds.max(1e-9),
        run_dir: run_dir.map(|d| d.path().to_path_buf()),
    };
    if let Some(dir) = run_dir {
        dir.write_atomic("metrics.csv", metrics_csv(&report.history).as_bytes())?;
        dir.save_weights("model.safetensors", &trained.varmap)?;
        dir.write_json("summary.json", &report)?;
        write_curves(dir, &report.history)?;
    }
    Ok((report, trained))
}

/// Where the last good weights are, for the divergence errors.
fn kept_description(last_checkpoint: &Option<(usize, std::path::PathBuf)>) -> String {
    match last_checkpoint {
        Some((at, path)) => format!("{} (iteration {at})", path.display()),
        None => "none saved (no checkpoint was written before it diverged)".into(),
    }
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
