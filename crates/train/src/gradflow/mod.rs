//! Gradient flow through time: the chapter's central claim, measured.
//!
//! A plain tanh [`lstm_core::Rnn`] and an [`lstm_core::Lstm`] of the same hidden size learn the *adding problem*
//! (Hochreiter & Schmidhuber, 1997): every step carries a random value in `[0, 1)` and a
//! marker; two steps are marked, one among the first 10 and one in the second half of
//! the sequence, and the target is the sum of the two marked values. The answer is read
//! from the final hidden state through a `Linear(H, 1)` with a squared error, so the only
//! way to solve it is to carry the first marked value across 90 or more steps (at
//! `T = 100`) past random distractors.
//!
//! For each model, [`run_gradflow`] measures `‖∂L/∂h_t‖` at every step `t` — at
//! initialisation and after training — through the models' taps
//! ([`lstm_core::Rnn::forward_steps_with_taps`], [`lstm_core::Lstm::forward_steps_with_taps`]): the mean over a
//! fixed probe batch of `‖∂ℓ_b/∂h_t‖`, where `ℓ_b` is example `b`'s squared error. The
//! RNN's norms fall geometrically with the distance to the loss (each step back
//! multiplies by `W_hhᵀ diag(1 − h²)`); the LSTM's fall much more slowly, because the
//! cell path multiplies by the forget gate only (`∂c_t/∂c_{t−1} = f`), which training
//! drives towards 1 where memory is needed.
//!
//! With [`GradFlowConfig::variable_length`] every sequence has its own length, drawn from
//! `T/2..=T` ([`crate::tasks::adding::length_range`]), its two markers within it and its
//! target from its real steps only; training and the test metrics run the rows packed
//! (`forward_final_packed`), so padding is never read. The taps have no lengths, so the
//! probe batch runs padded through them and each row's loss reads its own last step:
//! steps past a row's end get no gradient from it. The curves are then measured back
//! from each row's own last step: entry `i` is the mean of `‖∂ℓ_b/∂h‖` at `T − 1 − i`
//! steps before row `b`'s end, over the rows long enough to have that step
//! ([`GradFlowReport::reach`]), so the last entry is every row's last step.

use candle_core::{DType, Device, Module, Tensor};
use lstm_core::{Family, Nonlinearity, SplitMix64};
use serde::Serialize;

mod report;
#[cfg(test)]
mod tests;

pub use report::{lengths_text, table_steps, GradFlowReport, ModelFlow};

use crate::error::{Result, TrainError};
use crate::session::{train, SessionConfig};
pub use crate::tasks::adding::TOLERANCE;
use crate::tasks::adding::{
    check_positive as check_adding, evaluate, AddingBatch, AddingConfig, AddingModel, AddingTask,
};

/// The settings of a gradient-flow run (`lstm gradflow` flags in brackets).
#[derive(Clone, Debug, Serialize)]
pub struct GradFlowConfig {
    /// Steps per sequence `T` (`--seq-len`).
    pub seq_len: usize,
    /// Hidden size `H` of both models (`--hidden`).
    pub hidden: usize,
    /// Training iterations of each model (`--steps`); 0 measures the initialisation only.
    pub steps: usize,
    /// Sequences per training batch (`--batch-size`).
    pub batch_size: usize,
    /// Adam learning rate, both models (`--lr`).
    pub lr: f64,
    /// Global gradient-norm clip applied before every update, both models (`--clip`).
    pub clip: f64,
    /// The LSTM's initial forget-gate bias `b_if + b_hf` (`--forget-bias`), the usual
    /// 1.0 (Gers et al., 2000; Jozefowicz et al., 2015); `None` keeps the book's uniform
    /// ±1/√H initialisation of every bias (`--forget-bias book`).
    pub forget_bias: Option<f64>,
    /// Test sequences for the final metrics.
    pub eval_size: usize,
    /// Sequences of the fixed batch the gradient norms are averaged over.
    pub probe_size: usize,
    /// Evaluate on the test sequences every this many iterations (for the loss curves).
    pub eval_every: usize,
    /// Seed of the weights and of the data (`--seed`).
    pub seed: u64,
    /// Sequences of lengths drawn from `T/2..=T`, run packed (`--variable-length`); the
    /// gradient norms are then measured back from each row's own last step.
    pub variable_length: bool,
    /// Show a progress bar.
    #[serde(skip)]
    pub progress: bool,
}

impl Default for GradFlowConfig {
    fn default() -> Self {
        Self {
            seq_len: 100,
            hidden: 64,
            steps: 3000,
            batch_size: 32,
            lr: 3e-3,
            clip: 1.0,
            forget_bias: Some(1.0),
            eval_size: 1000,
            probe_size: 256,
            eval_every: 100,
            seed: 42,
            variable_length: false,
            progress: false,
        }
    }
}

impl GradFlowConfig {
    /// Checks every setting; the error names the field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("eval_size", self.eval_size),
            ("probe_size", self.probe_size),
        ] {
            if v == 0 {
                return Err(TrainError::setting(field, "must be above 0"));
            }
        }
        self.session(self.progress).validate()?;
        check_adding(&self.adding(Family::Lstm, 0))
    }

    /// The session both models train with: Adam at `lr`, clipped at `clip`.
    fn session(&self, progress: bool) -> SessionConfig {
        SessionConfig {
            seed: self.seed,
            clip: Some(self.clip),
            checkpoint_every: 0,
            progress,
            ..SessionConfig::adam(self.lr)
        }
    }

    /// The adding task of `family`, its batches drawn from `data_seed`.
    fn adding(&self, family: Family, data_seed: u64) -> AddingConfig {
        AddingConfig {
            family,
            seq_len: self.seq_len,
            hidden: self.hidden,
            batch_size: self.batch_size,
            steps: self.steps,
            forget_bias: self.forget_bias,
            eval_every: self.eval_every,
            data_seed,
            variable_length: self.variable_length,
        }
    }

    /// A batch of `rows` sequences of this run's lengths, from `rng`.
    fn batch(&self, rows: usize, rng: &mut SplitMix64, device: &Device) -> Result<AddingBatch> {
        AddingBatch::draw(rows, self.seq_len, self.variable_length, rng, device)
    }
}
/// `‖∂ℓ_b/∂h_t‖` for every step `t` of `model` on `probe`, averaged over the batch:
/// `ℓ_b` is example `b`'s squared error, so the loss is their sum. Computed in f64 from
/// the f32 gradients, so that tiny norms do not underflow when squared.
///
/// With lengths, row `b`'s loss reads its state at its own last step `L_b − 1`, and the
/// norms are aligned at that step: entry `i` averages, over the rows that reach that
/// far back, the norm `T − 1 − i` steps before each row's end ([`reach`]; NaN where no
/// row does).
fn gradient_norms(model: &AddingModel, probe: &AddingBatch) -> Result<Vec<f64>> {
    let (steps, taps) = model.steps_with_taps(&probe.x)?;
    let last = match &probe.lengths {
        None => steps
            .last()
            .cloned()
            .ok_or_else(|| TrainError::Config("no steps".into()))?,
        Some(lengths) => own_last_steps(&steps, lengths)?,
    };
    let pred = model.head.forward(&last)?.squeeze(1)?;
    let loss = (pred - &probe.y)?.sqr()?.sum_all()?;
    let grads = loss.backward()?;
    let row_norms = |tap: &candle_core::Var| -> Result<Option<Tensor>> {
        let Some(g) = grads.get(tap.as_tensor()) else {
            return Ok(None);
        };
        Ok(Some(g.to_dtype(DType::F64)?.sqr()?.sum_keepdim(1)?.sqrt()?))
    };
    let Some(lengths) = &probe.lengths else {
        return taps
            .iter()
            .map(|tap| match row_norms(tap)? {
                Some(norms) => Ok(norms.mean_all()?.to_scalar::<f64>()?),
                None => Ok(0.0),
            })
            .collect();
    };
    let per_step = taps
        .iter()
        .map(|tap| match row_norms(tap)? {
            Some(norms) => Ok(Some(norms.flatten_all()?.to_vec1::<f64>()?)),
            None => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(aligned_at_ends(&per_step, lengths))
}

/// Per-row norms `per_step[t][b]` (`None`: no gradient at step `t`) aligned at each
/// row's own last step and averaged over the rows that reach each entry (see
/// [`gradient_norms`]).
fn aligned_at_ends(per_step: &[Option<Vec<f64>>], lengths: &[usize]) -> Vec<f64> {
    let t_max = per_step.len();
    let mut sums = vec![0f64; t_max];
    for (t, norms) in per_step.iter().enumerate() {
        for (norm, &len) in norms.iter().flatten().zip(lengths) {
            if t < len {
                sums[t_max - len + t] += norm;
            }
        }
    }
    sums.iter()
        .zip(reach(lengths, t_max))
        .map(|(s, n)| if n == 0 { f64::NAN } else { s / n as f64 })
        .collect()
}

/// Each row's hidden state at its own last step, `(B, H)`, from the per-step states.
fn own_last_steps(steps: &[Tensor], lengths: &[usize]) -> Result<Tensor> {
    let all = Tensor::stack(steps, 1)?;
    let (b, t, h) = all.dims3()?;
    let rows: Vec<u32> = lengths
        .iter()
        .enumerate()
        .map(|(r, &len)| (r * t + len - 1) as u32)
        .collect();
    let rows = Tensor::from_vec(rows, b, all.device())?;
    Ok(all.reshape((b * t, h))?.index_select(&rows, 0)?)
}

/// For each entry of a curve aligned at the rows' own last steps (`T` entries), the rows
/// that have that step: entry `i` counts the rows of length at least `T − i`.
pub fn reach(lengths: &[usize], seq_len: usize) -> Vec<usize> {
    (0..seq_len)
        .map(|i| lengths.iter().filter(|&&l| l >= seq_len - i).count())
        .collect()
}

/// Trains the RNN, then the LSTM, on the same batches, and measures their gradient flow
/// before and after (see the [module](self) docs).
pub fn run_gradflow(cfg: &GradFlowConfig) -> Result<GradFlowReport> {
    cfg.validate()?;
    let device = Device::Cpu;
    let mut data_rng = SplitMix64::new(cfg.seed ^ 0x5EED_DA7A);
    let eval = cfg.batch(cfg.eval_size, &mut data_rng, &device)?;
    let probe = cfg.batch(cfg.probe_size, &mut data_rng, &device)?;
    let baseline_mse = eval
        .y
        .affine(1.0, -1.0)?
        .sqr()?
        .mean_all()?
        .to_scalar::<f32>()? as f64;
    let train_seed = data_rng.next_u64();
    let session = cfg.session(cfg.progress);
    let run = |family: Family| -> Result<ModelFlow> {
        let adding = cfg.adding(family, train_seed);
        let mut task = AddingTask::new(&adding, &session, &eval)?;
        let init = gradient_norms(task.model(), &probe)?;
        let (init_mse, _) = evaluate(task.model(), &eval)?;
        task.record_initial(init_mse);
        let trained = train(
            task,
            &session,
            serde_json::Value::Null,
            None,
            &mut std::io::sink(),
        )?;
        let (final_mse, final_accuracy) = evaluate(&trained.model, &eval)?;
        Ok(ModelFlow {
            model: family,
            trained: gradient_norms(&trained.model, &probe)?,
            init,
            init_mse,
            final_mse,
            final_accuracy,
            history: trained.history,
            train_seconds: trained.seconds,
        })
    };
    let rnn = run(Family::Rnn(Nonlinearity::Tanh))?;
    let lstm = run(Family::Lstm)?;
    Ok(GradFlowReport {
        config: cfg.clone(),
        rnn,
        lstm,
        baseline_mse,
        reach: probe.lengths.as_deref().map(|l| reach(l, cfg.seq_len)),
    })
}
