//! The chapter's MNIST classifier as a [`Task`]: rows of an image as the steps of a
//! sequence, cross-entropy, the book's `Iteration: N. Loss: L. Accuracy: A` lines, the
//! best weights on validation, and the test line at the end.

mod evaluate;
mod format1;
mod outputs;
mod sampler;
mod saved;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{loss, VarMap};
use lstm_core::{seeded_var_builder, ClassifierConfig, Family, Kernel, SequenceClassifier};
use lstm_datasets::mnist::{IMAGE_SIDE, NUM_CLASSES};
use lstm_datasets::{EpochSampler, Mnist, MnistSplit, SamplerState, ValidationSource};
use serde::{Deserialize, Serialize};

pub use evaluate::{evaluate, predict_digit, EvalPoint, Evaluation};
pub use outputs::TrainReport;
pub use sampler::SamplerSnapshot;

use outputs::{metrics_csv, write_curves, write_training_loss};

use crate::choice::ser_choice;
use crate::error::{Result, TrainError};
use crate::limits::{
    check_parameters, check_range, recurrent_parameters, MAX_BATCH, MAX_HIDDEN, MAX_ITERATIONS,
    MAX_LAYERS,
};
use crate::run_dir::RunDir;
use crate::session::{End, Io, SessionConfig, Settings, Step, Task, Unit};
use crate::snapshot::{restore, snapshot, Snapshot};

/// Which weights a run keeps at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Selection {
    /// The weights with the best validation accuracy (early stopping; the validation
    /// split is held out of training, so this does not look at the test set).
    #[default]
    Best,
    /// The weights after the last iteration.
    Last,
}

/// The MNIST task's settings: the model, the batches, validation (saved as the run's
/// `config.json`, with the session's, and inside its checkpoints).
///
/// Read back, it also accepts the `backbone` of earlier runs (`cell`, `layer`, `gru`) in
/// place of `family` and `book_cell`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "saved::SavedMnistConfig")]
pub struct MnistConfig {
    /// Hidden size of the recurrent layer.
    pub hidden: usize,
    /// Stacked recurrent layers (1 for the book's cell).
    pub layers: usize,
    /// The recurrent family: the LSTM (the book), the GRU (its comparison), a plain RNN.
    #[serde(serialize_with = "ser_choice")]
    pub family: Family,
    /// The book's from-scratch cell unrolled in a loop, instead of the engine's layers.
    pub book_cell: bool,
    /// Fused or reference kernels.
    #[serde(serialize_with = "ser_choice")]
    pub kernel: Kernel,
    /// Images per batch.
    pub batch_size: usize,
    /// Passes over the training split (ignored when `iters` is set).
    pub epochs: usize,
    /// Total iterations, overriding `epochs`.
    pub iters: Option<usize>,
    /// Validate (and print the book's line) every this many iterations.
    pub eval_every: usize,
    /// Held-out images or the test set (the book's choice, which leaks).
    #[serde(serialize_with = "ser_choice")]
    pub validate_on: ValidationSource,
    /// Which weights to keep and test: the best on validation, or the last.
    pub select: Selection,
}

impl Default for MnistConfig {
    /// The book's model: hidden 128, one fused LSTM layer, batch 64, 10 epochs.
    fn default() -> Self {
        Self {
            hidden: 128,
            layers: 1,
            family: Family::Lstm,
            book_cell: false,
            kernel: Kernel::Fused,
            batch_size: 64,
            epochs: 10,
            iters: None,
            eval_every: 500,
            validate_on: ValidationSource::HeldOut,
            select: Selection::Best,
        }
    }
}

impl MnistConfig {
    /// The book's session: SGD at lr 0.1 (stepped down for the last tenth), seed 42,
    /// a checkpoint every 500 iterations.
    pub fn session() -> SessionConfig {
        SessionConfig {
            lr_schedule: crate::LrSchedule::StepDown,
            ..SessionConfig::sgd(0.1)
        }
    }

    /// The iterations of a run on a training split of `train_len` images: `iters`, or
    /// `epochs` × the batches per epoch, checked against [`MAX_ITERATIONS`] (never
    /// wrapping, whatever `epochs` says).
    pub fn total_iterations(&self, train_len: usize) -> Result<usize> {
        if let Some(iters) = self.iters {
            return Ok(iters);
        }
        let per_epoch = EpochSampler::new(train_len, self.batch_size, 0)?.batches_per_epoch();
        self.epochs
            .checked_mul(per_epoch)
            .filter(|&n| n <= MAX_ITERATIONS)
            .ok_or_else(|| {
                TrainError::setting(
                    "epochs",
                    format!(
                        "{} × {per_epoch} batches per epoch is over the limit of \
                         {MAX_ITERATIONS} iterations",
                        self.epochs
                    ),
                )
            })
    }
}

impl Settings for MnistConfig {
    /// Rejects settings that cannot train, before any work is done; errors name the field.
    fn validate(&self) -> Result<()> {
        match self.iters {
            Some(0) => {
                return Err(TrainError::setting(
                    "iters",
                    "nothing to train: 0 iterations",
                ))
            }
            None if self.epochs == 0 => {
                return Err(TrainError::setting("epochs", "nothing to train: 0 epochs"))
            }
            _ => {}
        }
        check_range("batch_size", self.batch_size, MAX_BATCH)?;
        check_range("hidden", self.hidden, MAX_HIDDEN)?;
        check_range("layers", self.layers, MAX_LAYERS)?;
        if self.book_cell && (self.layers != 1 || self.family != Family::Lstm) {
            return Err(TrainError::setting(
                "book_cell",
                "the book's cell is one LSTM layer; use the engine's layers for more layers \
                 or other families",
            ));
        }
        match self.iters {
            Some(iters) => check_range("iters", iters, MAX_ITERATIONS)?,
            None => check_range("epochs", self.epochs, MAX_ITERATIONS)?,
        }
        check_range("eval_every", self.eval_every, usize::MAX)?;
        let gates = self.family.gates() as u64;
        let (input, hidden) = (IMAGE_SIDE as u64, self.hidden as u64);
        let parameters = recurrent_parameters(gates, input, hidden, self.layers as u64, 1)
            .and_then(|n| n.checked_add(hidden * NUM_CLASSES as u64 + NUM_CLASSES as u64));
        check_parameters(
            parameters,
            &format!("hidden {}, {} layers", self.hidden, self.layers),
        )
    }
}

/// A model together with the variables it trains.
pub struct TrainedClassifier {
    /// The model.
    pub model: SequenceClassifier,
    /// Its parameters, by name.
    pub varmap: VarMap,
}

/// Builds the classifier of `cfg` with weights drawn from `seed`.
pub fn build_classifier(cfg: &MnistConfig, seed: u64) -> Result<TrainedClassifier> {
    cfg.validate()?;
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let model_cfg = ClassifierConfig {
        hidden_size: cfg.hidden,
        num_layers: cfg.layers,
        book_cell: cfg.book_cell,
        ..ClassifierConfig::mnist(cfg.family)
    };
    let model = SequenceClassifier::new(model_cfg, vb)?.with_kernel(cfg.kernel);
    Ok(TrainedClassifier { model, varmap })
}

/// What an MNIST run accumulates (saved in its checkpoints).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MnistState {
    /// The batch order's position.
    pub sampler: SamplerSnapshot,
    /// Validation points so far.
    pub history: Vec<EvalPoint>,
    /// The iteration and validation accuracy of the best weights so far.
    pub best: Option<(usize, f64)>,
}

/// The MNIST classifier's training, for [`crate::train`] and [`crate::resume`].
pub struct MnistTask<'a> {
    data: &'a Mnist,
    validation: &'a MnistSplit,
    config: MnistConfig,
    trained: TrainedClassifier,
    sampler: EpochSampler,
    history: Vec<EvalPoint>,
    /// The iteration and validation accuracy of `best`.
    best_point: Option<(usize, f64)>,
    best: Option<Snapshot>,
    total: usize,
}

impl<'a> MnistTask<'a> {
    /// The task of `config` on `data`, its weights and batch order drawn from `session`'s
    /// seed.
    pub fn new(data: &'a Mnist, config: &MnistConfig, session: &SessionConfig) -> Result<Self> {
        config.validate()?;
        let total = config.total_iterations(data.train.len())?;
        let sampler = EpochSampler::new(data.train.len(), config.batch_size, session.seed)?;
        Ok(Self {
            validation: data.validation_split(config.validate_on)?,
            data,
            config: config.clone(),
            trained: build_classifier(config, session.seed)?,
            history: Vec::new(),
            best_point: None,
            sampler,
            best: None,
            total,
        })
    }
}

impl Task for MnistTask<'_> {
    const NAME: &'static str = "mnist";
    const UNIT: Unit = Unit::Iterations;
    type Config = MnistConfig;
    type State = MnistState;
    type Report = (TrainReport, TrainedClassifier);

    fn saved(&self) -> (&MnistConfig, MnistState) {
        let state = MnistState {
            sampler: self.sampler.state().into(),
            history: self.history.clone(),
            best: self.best_point,
        };
        (&self.config, state)
    }

    fn varmap(&self) -> &VarMap {
        &self.trained.varmap
    }

    fn total_steps(&self) -> usize {
        self.total
    }

    fn write_config(&self, session: &SessionConfig, dir: &RunDir) -> Result<()> {
        #[derive(Serialize)]
        struct RunConfig<'a> {
            #[serde(flatten)]
            session: &'a SessionConfig,
            #[serde(flatten)]
            task: &'a MnistConfig,
        }
        dir.write_json(
            "config.json",
            &RunConfig {
                session,
                task: &self.config,
            },
        )?;
        Ok(())
    }

    fn check_state(
        &self,
        s: &MnistState,
        steps: usize,
        kept: bool,
    ) -> std::result::Result<(), String> {
        if let Some(point) = s.history.iter().find(|h| h.iteration > steps) {
            return Err(format!(
                "its history has a validation at iteration {}, after the iteration {steps} \
                 it is at",
                point.iteration
            ));
        }
        match s.best {
            Some((iteration, _)) if iteration > steps => Err(format!(
                "its best weights are from iteration {iteration}, after the iteration \
                 {steps} it is at"
            )),
            Some((_, accuracy)) if !(0.0..=1.0).contains(&accuracy) => {
                Err(format!("its best accuracy {accuracy} is not within [0, 1]"))
            }
            Some(_) if !kept => Err("it names a best iteration but holds no best weights".into()),
            _ => Ok(()),
        }
    }

    fn restore(&mut self, state: MnistState, kept: Option<Snapshot>, path: &Path) -> Result<()> {
        self.sampler = EpochSampler::from_state(
            self.data.train.len(),
            self.config.batch_size,
            SamplerState::from(state.sampler),
        )
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!("its batch order does not fit the training data: {e}"),
        })?;
        self.best = kept.filter(|_| state.best.is_some());
        self.best_point = state.best;
        self.history = state.history;
        Ok(())
    }

    fn loss(&mut self, _index: usize) -> Result<(Tensor, usize)> {
        let (images, labels): (Tensor, Tensor) =
            self.data.train.batch(self.sampler.next_batch())?;
        let logits = self.trained.model.logits(&images, true)?;
        let loss = loss::cross_entropy(&logits, &labels)?;
        Ok((loss, labels.dim(0)?))
    }

    fn after_step(&mut self, step: &Step, io: &mut Io) -> Result<()> {
        let iteration = step.done();
        if !(iteration.is_multiple_of(self.config.eval_every) || step.is_last()) {
            return Ok(());
        }
        let eval = evaluate(&self.trained.model, self.validation, 1000)?;
        io.line(&format!(
            "Iteration: {iteration}. Loss: {:.4}. Accuracy: {:.2}",
            step.loss,
            100.0 * eval.accuracy
        ))?;
        io.scalars(
            iteration,
            &[
                ("validation/loss", eval.loss),
                ("validation/accuracy", eval.accuracy),
            ],
        )?;
        self.history.push(EvalPoint {
            iteration,
            train_loss: f64::from(step.loss),
            validation: eval,
        });
        let improved = self.best_point.is_none_or(|(_, acc)| eval.accuracy >= acc);
        if self.config.select == Selection::Best && improved {
            self.best_point = Some((iteration, eval.accuracy));
            self.best = Some(snapshot(&self.trained.varmap)?);
            if let Some(dir) = io.run_dir() {
                dir.save_weights("model.safetensors", &self.trained.varmap)?;
            }
        }
        if let Some(dir) = io.run_dir() {
            dir.write_atomic("metrics.csv", metrics_csv(&self.history).as_bytes())?;
        }
        Ok(())
    }

    fn kept(&self) -> Option<&Snapshot> {
        self.best.as_ref()
    }

    fn finish(self, end: &End, io: &mut Io) -> Result<Self::Report> {
        let mut report = TrainReport {
            iterations: end.steps,
            total_iterations: end.total,
            history: self.history,
            selected_iteration: end.steps,
            test: None,
            train_seconds: end.seconds,
            samples_per_second: end.samples_per_second(),
            run_dir: io.run_dir().map(|d| d.path().to_path_buf()),
            checkpoint: end.checkpoint.clone(),
        };
        if let Some(dir) = io.run_dir() {
            write_training_loss(dir, end)?;
        }
        if !end.completed() {
            return Ok((report, self.trained));
        }
        if let (Some((iteration, accuracy)), Some(weights)) = (self.best_point, &self.best) {
            restore(&self.trained.varmap, weights)?;
            tracing::info!(iteration, accuracy, "kept the best validation weights");
            report.selected_iteration = iteration;
        }
        let test = evaluate(&self.trained.model, &self.data.test, 1000)?;
        if report.selected_iteration != end.total {
            io.line(&format!(
                "Kept the weights of iteration {} (best validation accuracy)",
                report.selected_iteration
            ))?;
        }
        io.line(&format!(
            "Test Loss: {:.4} | Test Accuracy: {:.4}",
            test.loss, test.accuracy
        ))?;
        report.test = Some(test);
        if let Some(dir) = io.run_dir() {
            dir.write_atomic("metrics.csv", metrics_csv(&report.history).as_bytes())?;
            dir.save_weights("model.safetensors", &self.trained.varmap)?;
            dir.write_json("summary.json", &report)?;
            write_curves(dir, &report.history)?;
        }
        Ok((report, self.trained))
    }
}

#[cfg(test)]
mod tests;
