//! The adding problem (Hochreiter & Schmidhuber, 1997) as a [`Task`]: a recurrent
//! layer reads `(value, marker)` pairs and a `Linear(H, 1)` head reads its final state;
//! the target is the sum of the two marked values. The rows have `T` steps, or lengths
//! that vary (run packed, each read at its own last step). See [`crate::gradflow`].

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Linear, VarMap};
use lstm_core::{
    linear_torch, seeded_var_builder, Family, Lstm, LstmConfig, PackedBatch, Rnn, RnnConfig,
    SplitMix64,
};
use serde::{Deserialize, Serialize};

use crate::choice::{de_choice, ser_choice};
use crate::error::{Result, TrainError};
use crate::run_dir::RunDir;
use crate::session::{End, Io, SessionConfig, Settings, Step, Task, Unit};
use crate::snapshot::Snapshot;

/// Input features per step of the adding problem: the value and the marker.
const FEATURES: usize = 2;

/// A prediction counts as correct when it is within this of the target (Hochreiter &
/// Schmidhuber's criterion for the adding problem).
pub const TOLERANCE: f64 = 0.04;

/// One batch of the adding problem: `x (B, T, 2)` (value, marker) and the targets `y (B)`,
/// every row `T` steps long ([`AddingBatch::draw`] with fixed lengths).
pub fn adding_batch(
    batch: usize,
    seq_len: usize,
    rng: &mut SplitMix64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let b = AddingBatch::draw(batch, seq_len, false, rng, device)?;
    Ok((b.x, b.y))
}

/// The lengths of the rows of a variable-length batch of `seq_len` padded steps:
/// `max(T/2, 2) ..= T` (two steps at least, for the two markers).
pub fn length_range(seq_len: usize) -> std::ops::RangeInclusive<usize> {
    (seq_len / 2).max(2)..=seq_len
}

/// A batch of the adding problem, its rows of `T` steps or of lengths that vary.
#[derive(Clone, Debug)]
pub struct AddingBatch {
    /// `(B, T, 2)`: (value, marker) per step, zeros past each row's length.
    pub x: Tensor,
    /// `(B)`: the sum of each row's two marked values.
    pub y: Tensor,
    /// Each row's real steps; `None` when every row has all `T`.
    pub lengths: Option<Vec<usize>>,
}

impl AddingBatch {
    /// `batch` rows of the adding problem, padded to `seq_len` steps, from `rng`.
    ///
    /// Each row has a length `L`: `T`, or with `variable_length` one drawn uniformly
    /// from [`length_range`]. Its first `L` values are uniform in `[0, 1)`; the first
    /// marker is at one of its first `min(10, L/2)` steps, the second at one of the
    /// steps of its second half (`L/2..L`), so both lie within the row; the steps past
    /// `L` are zeros. With fixed lengths the draws are those of the fixed-length batches
    /// before lengths could vary.
    pub fn draw(
        batch: usize,
        seq_len: usize,
        variable_length: bool,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Result<Self> {
        if seq_len < 2 {
            return Err(TrainError::Config(format!(
                "the adding problem needs at least 2 steps, got {seq_len}"
            )));
        }
        let pick = |rng: &mut SplitMix64, lo: usize, hi: usize| {
            lo + (rng.next_u64() % (hi - lo) as u64) as usize
        };
        let range = length_range(seq_len);
        let mut x = vec![0f32; batch * seq_len * FEATURES];
        let mut y = Vec::with_capacity(batch);
        let mut lengths = Vec::with_capacity(batch);
        for b in 0..batch {
            let len = if variable_length {
                pick(rng, *range.start(), range.end() + 1)
            } else {
                seq_len
            };
            let row = &mut x[b * seq_len * FEATURES..(b * seq_len + len) * FEATURES];
            for t in 0..len {
                row[t * FEATURES] = rng.next_f64() as f32;
            }
            let first = pick(rng, 0, (len / 2).clamp(1, 10));
            let second = pick(rng, len / 2, len);
            row[first * FEATURES + 1] = 1.0;
            row[second * FEATURES + 1] = 1.0;
            y.push(row[first * FEATURES] + row[second * FEATURES]);
            lengths.push(len);
        }
        Ok(Self {
            x: Tensor::from_vec(x, (batch, seq_len, FEATURES), device)?,
            y: Tensor::from_vec(y, batch, device)?,
            lengths: variable_length.then_some(lengths),
        })
    }

    /// Rows `start..start + len`.
    fn rows(&self, start: usize, len: usize) -> Result<Self> {
        Ok(Self {
            x: self.x.narrow(0, start, len)?,
            y: self.y.narrow(0, start, len)?,
            lengths: self
                .lengths
                .as_ref()
                .map(|l| l[start..start + len].to_vec()),
        })
    }
}

/// A recurrent layer and its `Linear(H, 1)` head, with their variables.
pub(crate) struct AddingModel {
    rnn: Option<Rnn>,
    lstm: Option<Lstm>,
    pub(crate) head: Linear,
    pub(crate) varmap: VarMap,
}

impl AddingModel {
    pub(crate) fn new(
        family: Family,
        hidden: usize,
        seed: u64,
        forget_bias: Option<f64>,
        device: &Device,
    ) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, seed, DType::F32, device);
        let (mut rnn, mut lstm) = (None, None);
        match family {
            Family::Rnn(nonlinearity) => {
                rnn = Some(Rnn::new_with_nonlinearity(
                    RnnConfig::new(FEATURES, hidden),
                    nonlinearity,
                    vb.pp("rnn"),
                )?)
            }
            Family::Lstm => {
                lstm = Some(Lstm::new(LstmConfig::new(FEATURES, hidden), vb.pp("lstm"))?);
            }
            Family::Gru => {
                return Err(TrainError::setting(
                    "family",
                    "the gradient-flow study compares the RNN and the LSTM",
                ))
            }
        }
        let head = linear_torch(hidden, 1, vb.pp("fc"))?;
        if let (Family::Lstm, Some(bias)) = (family, forget_bias) {
            set_forget_bias(&varmap, hidden, bias)?;
        }
        Ok(Self {
            rnn,
            lstm,
            head,
            varmap,
        })
    }

    /// The prediction `(B)` from the final hidden state `(B, H)`: with `lengths`, each
    /// row's state at its own last step, through the packed path (the padding is never
    /// read).
    pub(crate) fn predict(
        &self,
        x: &Tensor,
        lengths: Option<&[usize]>,
        train: bool,
    ) -> Result<Tensor> {
        let h = match (lengths, &self.rnn, &self.lstm) {
            (None, Some(rnn), _) => rnn.forward(x, None, train)?.1,
            (None, _, Some(lstm)) => lstm.forward_final(x, None, train)?.h,
            (Some(lengths), Some(rnn), _) => {
                rnn.forward_final_packed(&PackedBatch::new(x, lengths)?, None, train)?
            }
            (Some(lengths), _, Some(lstm)) => {
                let batch = PackedBatch::new(x, lengths)?;
                lstm.forward_final_packed(&batch, None, train)?.h
            }
            _ => unreachable!("an AddingModel has a recurrent layer"),
        };
        Ok(self.head.forward(&h.squeeze(0)?)?.squeeze(1)?)
    }

    /// The per-step hidden states and their taps.
    pub(crate) fn steps_with_taps(&self, x: &Tensor) -> Result<(Vec<Tensor>, Vec<Var>)> {
        Ok(match (&self.rnn, &self.lstm) {
            (Some(rnn), _) => rnn.forward_steps_with_taps(x, None)?,
            (_, Some(lstm)) => lstm.forward_steps_with_taps(x, None)?,
            _ => unreachable!("an AddingModel has a recurrent layer"),
        })
    }
}

/// Sets the forget-gate block of the LSTM's biases so that `b_if + b_hf = bias`
/// (`bias_ih` gets `bias`, `bias_hh` gets 0; gates are ordered i, f, g, o).
fn set_forget_bias(varmap: &VarMap, hidden: usize, bias: f64) -> Result<()> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    for (name, value) in [("lstm.bias_ih_l0", bias), ("lstm.bias_hh_l0", 0.0)] {
        let var = data
            .get(name)
            .ok_or_else(|| TrainError::Config(format!("no variable {name}")))?;
        let b = var.as_tensor();
        let forget = (Tensor::ones(hidden, b.dtype(), b.device())? * value)?;
        let updated = Tensor::cat(
            &[
                &b.narrow(0, 0, hidden)?,
                &forget,
                &b.narrow(0, 2 * hidden, 2 * hidden)?,
            ],
            0,
        )?;
        var.set(&updated)?;
    }
    Ok(())
}

/// Mean squared error and the fraction within [`TOLERANCE`] of the target.
pub(crate) fn evaluate(model: &AddingModel, test: &AddingBatch) -> Result<(f64, f64)> {
    let n = test.x.dim(0)?;
    let (mut se, mut hits) = (0f64, 0usize);
    let chunk = 500;
    for start in (0..n).step_by(chunk) {
        let len = chunk.min(n - start);
        let part = test.rows(start, len)?;
        let pred = model
            .predict(&part.x, part.lengths.as_deref(), false)?
            .to_vec1::<f32>()?;
        let target = part.y.to_vec1::<f32>()?;
        for (p, t) in pred.iter().zip(&target) {
            let d = (p - t) as f64;
            se += d * d;
            hits += usize::from(d.abs() < TOLERANCE);
        }
    }
    Ok((se / n as f64, hits as f64 / n as f64))
}

/// The settings of one model's training on the adding problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddingConfig {
    /// The recurrent family: the tanh RNN or the LSTM.
    #[serde(serialize_with = "ser_choice", deserialize_with = "de_choice")]
    pub family: Family,
    /// Steps per sequence.
    pub seq_len: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Training iterations.
    pub steps: usize,
    /// The LSTM's initial `b_if + b_hf` (`None`: the book's uniform initialisation).
    pub forget_bias: Option<f64>,
    /// Evaluate on the test sequences every this many iterations.
    pub eval_every: usize,
    /// Seed of the training batches.
    pub data_seed: u64,
    /// Rows of lengths drawn from [`length_range`], run packed ([`AddingBatch::draw`]);
    /// settings saved before lengths could vary read back as `false`.
    #[serde(default)]
    pub variable_length: bool,
}

impl Settings for AddingConfig {
    fn validate(&self) -> Result<()> {
        check_positive(self)
    }
}

/// What an adding run accumulates: the batch generator's position and the test MSE
/// over the iterations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddingState {
    /// The training batches' generator ([`SplitMix64::state`]).
    pub rng: u64,
    /// `(iteration, test MSE)` every `eval_every` iterations and at the end.
    pub history: Vec<(usize, f64)>,
}

/// One model trained on the adding problem, and how its test error went.
pub struct AddingOutcome {
    /// The trained model.
    pub(crate) model: AddingModel,
    /// `(iteration, test MSE)` over the run.
    pub history: Vec<(usize, f64)>,
    /// Seconds spent training.
    pub seconds: f64,
}

/// Training one model on the adding problem, for [`crate::train`].
pub struct AddingTask<'a> {
    config: AddingConfig,
    model: AddingModel,
    rng: SplitMix64,
    test: &'a AddingBatch,
    /// `(iteration, test MSE)` so far.
    history: Vec<(usize, f64)>,
}

impl<'a> AddingTask<'a> {
    /// The task of `config`, evaluated on the test sequences `test`, its weights drawn
    /// from `session`'s seed.
    pub(crate) fn new(
        config: &AddingConfig,
        session: &SessionConfig,
        test: &'a AddingBatch,
    ) -> Result<Self> {
        check_positive(config)?;
        let model = AddingModel::new(
            config.family,
            config.hidden,
            session.seed,
            config.forget_bias,
            test.x.device(),
        )?;
        Ok(Self {
            history: Vec::new(),
            rng: SplitMix64::new(config.data_seed),
            config: config.clone(),
            model,
            test,
        })
    }

    /// The model before training.
    pub(crate) fn model(&self) -> &AddingModel {
        &self.model
    }

    /// Records the test MSE at iteration 0.
    pub(crate) fn record_initial(&mut self, mse: f64) {
        self.history.insert(0, (0, mse));
    }
}

/// Rejects sizes of 0 and sequences too short for the problem; errors name the field.
pub(crate) fn check_positive(c: &AddingConfig) -> Result<()> {
    if c.seq_len < 2 {
        return Err(TrainError::setting(
            "seq_len",
            format!("must be at least 2, got {}", c.seq_len),
        ));
    }
    for (field, v) in [
        ("hidden", c.hidden),
        ("batch_size", c.batch_size),
        ("eval_every", c.eval_every),
    ] {
        if v == 0 {
            return Err(TrainError::setting(field, "must be above 0"));
        }
    }
    if let Some(f) = c.forget_bias.filter(|f| !f.is_finite()) {
        return Err(TrainError::setting(
            "forget_bias",
            format!("must be finite, got {f}"),
        ));
    }
    Ok(())
}

impl Task for AddingTask<'_> {
    const NAME: &'static str = "adding";
    const UNIT: Unit = Unit::Iterations;
    type Config = AddingConfig;
    type State = AddingState;
    type Report = AddingOutcome;

    fn saved(&self) -> (&AddingConfig, AddingState) {
        let state = AddingState {
            rng: self.rng.state(),
            history: self.history.clone(),
        };
        (&self.config, state)
    }

    fn varmap(&self) -> &VarMap {
        &self.model.varmap
    }

    fn total_steps(&self) -> usize {
        self.config.steps
    }

    fn write_config(&self, session: &SessionConfig, dir: &RunDir) -> Result<()> {
        dir.write_json("config.json", &(session, &self.config))?;
        Ok(())
    }

    fn check_state(
        &self,
        s: &AddingState,
        steps: usize,
        _kept: bool,
    ) -> std::result::Result<(), String> {
        match s.history.iter().find(|(i, _)| *i > steps) {
            Some((i, _)) => Err(format!("its history has iteration {i}, after {steps}")),
            None => Ok(()),
        }
    }

    fn restore(&mut self, state: AddingState, _kept: Option<Snapshot>, _path: &Path) -> Result<()> {
        self.rng = SplitMix64::new(state.rng);
        self.history = state.history;
        Ok(())
    }

    fn loss(&mut self, _index: usize) -> Result<(Tensor, usize)> {
        let c = &self.config;
        let device = self.test.x.device();
        let batch = AddingBatch::draw(
            c.batch_size,
            c.seq_len,
            c.variable_length,
            &mut self.rng,
            device,
        )?;
        let pred = self
            .model
            .predict(&batch.x, batch.lengths.as_deref(), true)?;
        let loss = (pred - batch.y)?.sqr()?.mean_all()?;
        Ok((loss, c.batch_size))
    }

    fn after_step(&mut self, step: &Step, io: &mut Io) -> Result<()> {
        if !(step.done().is_multiple_of(self.config.eval_every) || step.is_last()) {
            return Ok(());
        }
        let (mse, accuracy) = evaluate(&self.model, self.test)?;
        self.history.push((step.done(), mse));
        io.message(format!(
            "{}: test MSE {mse:.4}, {:.1}% within {TOLERANCE}",
            self.config.family.name(),
            100.0 * accuracy
        ));
        io.scalars(
            step.done(),
            &[("test/mse", mse), ("test/accuracy", accuracy)],
        )
    }

    fn label(&self) -> Option<&str> {
        Some(self.config.family.name())
    }

    fn finish(self, end: &End, _io: &mut Io) -> Result<AddingOutcome> {
        Ok(AddingOutcome {
            model: self.model,
            history: self.history,
            seconds: end.seconds,
        })
    }
}
