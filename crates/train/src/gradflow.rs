//! Gradient flow through time: the chapter's central claim, measured.
//!
//! A plain tanh [`Rnn`] and an [`Lstm`] of the same hidden size learn the *adding problem*
//! (Hochreiter & Schmidhuber, 1997): every step carries a random value in `[0, 1)` and a
//! marker; two steps are marked, one among the first 10 and one in the second half of
//! the sequence, and the target is the sum of the two marked values. The answer is read
//! from the final hidden state through a `Linear(H, 1)` with a squared error, so the only
//! way to solve it is to carry the first marked value across 90 or more steps (at
//! `T = 100`) past random distractors.
//!
//! For each model, [`run_gradflow`] measures `‖∂L/∂h_t‖` at every step `t` — at
//! initialisation and after training — through the models' taps
//! ([`Rnn::forward_steps_with_taps`], [`Lstm::forward_steps_with_taps`]): the mean over a
//! fixed probe batch of `‖∂ℓ_b/∂h_t‖`, where `ℓ_b` is example `b`'s squared error. The
//! RNN's norms fall geometrically with the distance to the loss (each step back
//! multiplies by `W_hhᵀ diag(1 − h²)`); the LSTM's fall much more slowly, because the
//! cell path multiplies by the forget gate only (`∂c_t/∂c_{t−1} = f`), which training
//! drives towards 1 where memory is needed.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW, VarMap};
use lstm_core::{linear_torch, seeded_var_builder, Lstm, LstmConfig, Rnn, RnnConfig, SplitMix64};
use serde::Serialize;

use crate::error::{Result, TrainError};
use crate::plot::{Curve, Figure, Line};
use crate::run_dir::RunDir;
use crate::snapshot::progress_bar;

/// Input features per step of the adding problem: the value and the marker.
const FEATURES: usize = 2;

/// A prediction counts as correct when it is within this of the target (Hochreiter &
/// Schmidhuber's criterion for the adding problem).
pub const TOLERANCE: f64 = 0.04;

/// The settings of a gradient-flow run (`cargo xtask gradflow` flags in brackets).
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
            progress: false,
        }
    }
}

impl GradFlowConfig {
    /// Checks every setting; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.seq_len < 2 {
            return bad(format!(
                "--seq-len must be at least 2, got {}",
                self.seq_len
            ));
        }
        for (name, v) in [
            ("--hidden", self.hidden),
            ("--batch-size", self.batch_size),
            ("eval size", self.eval_size),
            ("probe size", self.probe_size),
            ("eval every", self.eval_every),
        ] {
            if v == 0 {
                return bad(format!("{name} must be above 0"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be a positive number, got {}", self.lr));
        }
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return bad(format!(
                "--clip must be a positive number, got {}",
                self.clip
            ));
        }
        if let Some(f) = self.forget_bias.filter(|f| !f.is_finite()) {
            return bad(format!("--forget-bias must be finite, got {f}"));
        }
        Ok(())
    }
}

/// The two models compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FlowModel {
    /// The plain tanh RNN ([`Rnn`]).
    Rnn,
    /// The LSTM ([`Lstm`]).
    Lstm,
}

impl FlowModel {
    /// `"RNN"` or `"LSTM"`.
    pub fn name(self) -> &'static str {
        match self {
            FlowModel::Rnn => "RNN",
            FlowModel::Lstm => "LSTM",
        }
    }
}

/// One batch of the adding problem: `x (B, T, 2)` (value, marker) and the targets `y (B)`.
///
/// The values are uniform in `[0, 1)`; the first marker is at one of the first
/// `min(10, T/2)` steps, the second at one of the steps of the second half (`T/2..T`).
/// Everything comes from `rng`.
pub fn adding_batch(
    batch: usize,
    seq_len: usize,
    rng: &mut SplitMix64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    if seq_len < 2 {
        return Err(TrainError::Config(format!(
            "the adding problem needs at least 2 steps, got {seq_len}"
        )));
    }
    let early = (seq_len / 2).clamp(1, 10);
    let half = seq_len / 2;
    let pick = |rng: &mut SplitMix64, lo: usize, hi: usize| {
        lo + (rng.next_u64() % (hi - lo) as u64) as usize
    };
    let mut x = vec![0f32; batch * seq_len * FEATURES];
    let mut y = Vec::with_capacity(batch);
    for b in 0..batch {
        let row = &mut x[b * seq_len * FEATURES..(b + 1) * seq_len * FEATURES];
        for t in 0..seq_len {
            row[t * FEATURES] = rng.next_f64() as f32;
        }
        let first = pick(rng, 0, early);
        let second = pick(rng, half, seq_len);
        row[first * FEATURES + 1] = 1.0;
        row[second * FEATURES + 1] = 1.0;
        y.push(row[first * FEATURES] + row[second * FEATURES]);
    }
    Ok((
        Tensor::from_vec(x, (batch, seq_len, FEATURES), device)?,
        Tensor::from_vec(y, batch, device)?,
    ))
}

/// A recurrent layer and its `Linear(H, 1)` head, with their variables.
struct AddingModel {
    rnn: Option<Rnn>,
    lstm: Option<Lstm>,
    head: Linear,
    varmap: VarMap,
}

impl AddingModel {
    fn new(kind: FlowModel, cfg: &GradFlowConfig, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, cfg.seed, DType::F32, device);
        let (mut rnn, mut lstm) = (None, None);
        match kind {
            FlowModel::Rnn => {
                rnn = Some(Rnn::new(
                    RnnConfig::new(FEATURES, cfg.hidden),
                    vb.pp("rnn"),
                )?)
            }
            FlowModel::Lstm => {
                lstm = Some(Lstm::new(
                    LstmConfig::new(FEATURES, cfg.hidden),
                    vb.pp("lstm"),
                )?);
            }
        }
        let head = linear_torch(cfg.hidden, 1, vb.pp("fc"))?;
        if let (FlowModel::Lstm, Some(bias)) = (kind, cfg.forget_bias) {
            set_forget_bias(&varmap, cfg.hidden, bias)?;
        }
        Ok(Self {
            rnn,
            lstm,
            head,
            varmap,
        })
    }

    /// The prediction `(B)` from the final hidden state `(B, H)`.
    fn predict(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = match (&self.rnn, &self.lstm) {
            (Some(rnn), _) => rnn.forward(x, None, train)?.1,
            (_, Some(lstm)) => lstm.forward_final(x, None, train)?.h,
            _ => unreachable!("an AddingModel has a recurrent layer"),
        };
        Ok(self.head.forward(&h.squeeze(0)?)?.squeeze(1)?)
    }

    /// The per-step hidden states and their taps.
    fn steps_with_taps(&self, x: &Tensor) -> Result<(Vec<Tensor>, Vec<Var>)> {
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

/// `‖∂ℓ_b/∂h_t‖` for every step `t` of `model` on `(x, y)`, averaged over the batch:
/// `ℓ_b` is example `b`'s squared error, so the loss is their sum. Computed in f64 from
/// the f32 gradients, so that tiny norms do not underflow when squared.
fn gradient_norms(model: &AddingModel, x: &Tensor, y: &Tensor) -> Result<Vec<f64>> {
    let (steps, taps) = model.steps_with_taps(x)?;
    let last = steps
        .last()
        .ok_or_else(|| TrainError::Config("no steps".into()))?;
    let pred = model.head.forward(last)?.squeeze(1)?;
    let loss = (pred - y)?.sqr()?.sum_all()?;
    let grads = loss.backward()?;
    taps.iter()
        .map(|tap| {
            let Some(g) = grads.get(tap.as_tensor()) else {
                return Ok(0.0);
            };
            let norms = g.to_dtype(DType::F64)?.sqr()?.sum_keepdim(1)?.sqrt()?;
            Ok(norms.mean_all()?.to_scalar::<f64>()?)
        })
        .collect()
}

/// Scales every gradient of `vars` so that their global norm is at most `max_norm`;
/// returns the norm before clipping.
fn clip_gradients(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Mean squared error and the fraction within [`TOLERANCE`] of the target.
fn evaluate(model: &AddingModel, x: &Tensor, y: &Tensor) -> Result<(f64, f64)> {
    let n = x.dim(0)?;
    let (mut se, mut hits) = (0f64, 0usize);
    let chunk = 500;
    for start in (0..n).step_by(chunk) {
        let len = chunk.min(n - start);
        let pred = model
            .predict(&x.narrow(0, start, len)?, false)?
            .to_vec1::<f32>()?;
        let target = y.narrow(0, start, len)?.to_vec1::<f32>()?;
        for (p, t) in pred.iter().zip(&target) {
            let d = (p - t) as f64;
            se += d * d;
            hits += usize::from(d.abs() < TOLERANCE);
        }
    }
    Ok((se / n as f64, hits as f64 / n as f64))
}

/// One model's measurements.
#[derive(Clone, Debug, Serialize)]
pub struct ModelFlow {
    /// Which model.
    pub model: FlowModel,
    /// `‖∂L/∂h_t‖` at initialisation, `t = 1..=T` (index `t − 1`).
    pub init: Vec<f64>,
    /// `‖∂L/∂h_t‖` after training, `t = 1..=T`.
    pub trained: Vec<f64>,
    /// Test MSE at initialisation.
    pub init_mse: f64,
    /// Test MSE after training.
    pub final_mse: f64,
    /// Fraction of test sequences within [`TOLERANCE`] of the target after training.
    pub final_accuracy: f64,
    /// `(iteration, test MSE)` every [`GradFlowConfig::eval_every`] iterations, and at
    /// the start and the end.
    pub history: Vec<(usize, f64)>,
    /// Seconds spent training.
    pub train_seconds: f64,
}

impl ModelFlow {
    /// `‖∂L/∂h_1‖ / ‖∂L/∂h_T‖` of the `norms` (`init` or `trained`): how much of the
    /// gradient at the last step reaches the first.
    pub fn ratio(norms: &[f64]) -> f64 {
        match (norms.first(), norms.last()) {
            (Some(first), Some(last)) if *last > 0.0 => first / last,
            _ => f64::NAN,
        }
    }
}

/// Both models' measurements.
#[derive(Clone, Debug, Serialize)]
pub struct GradFlowReport {
    /// The settings.
    pub config: GradFlowConfig,
    /// The plain tanh RNN.
    pub rnn: ModelFlow,
    /// The LSTM.
    pub lstm: ModelFlow,
    /// Test MSE of always predicting 1, the mean target (for scale: 1/6).
    pub baseline_mse: f64,
}

/// Trains the RNN, then the LSTM, on the same batches, and measures their gradient flow
/// before and after (see the [module](self) docs).
pub fn run_gradflow(cfg: &GradFlowConfig) -> Result<GradFlowReport> {
    cfg.validate()?;
    let device = Device::Cpu;
    let mut data_rng = SplitMix64::new(cfg.seed ^ 0x5EED_DA7A);
    let (eval_x, eval_y) = adding_batch(cfg.eval_size, cfg.seq_len, &mut data_rng, &device)?;
    let (probe_x, probe_y) = adding_batch(cfg.probe_size, cfg.seq_len, &mut data_rng, &device)?;
    let baseline_mse = eval_y
        .affine(1.0, -1.0)?
        .sqr()?
        .mean_all()?
        .to_scalar::<f32>()? as f64;
    let train_seed = data_rng.next_u64();
    let run = |kind: FlowModel| -> Result<ModelFlow> {
        let model = AddingModel::new(kind, cfg, &device)?;
        let init = gradient_norms(&model, &probe_x, &probe_y)?;
        let (init_mse, _) = evaluate(&model, &eval_x, &eval_y)?;
        let vars = model.varmap.all_vars();
        let mut adam = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: cfg.lr,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        let mut rng = SplitMix64::new(train_seed);
        let bar = progress_bar(cfg.progress, cfg.steps, "iterations");
        bar.set_prefix(kind.name());
        let mut history = vec![(0, init_mse)];
        let started = Instant::now();
        let mut eval_time = 0.0;
        for it in 1..=cfg.steps {
            let (x, y) = adding_batch(cfg.batch_size, cfg.seq_len, &mut rng, &device)?;
            let loss = (model.predict(&x, true)? - y)?.sqr()?.mean_all()?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    iteration: it,
                    loss: value,
                    kept: "nowhere (gradient-flow runs keep no weights)".into(),
                });
            }
            let mut grads = loss.backward()?;
            clip_gradients(&mut grads, &vars, cfg.clip)?;
            adam.step(&grads)?;
            if it % cfg.eval_every == 0 || it == cfg.steps {
                let t0 = Instant::now();
                let (mse, acc) = evaluate(&model, &eval_x, &eval_y)?;
                eval_time += t0.elapsed().as_secs_f64();
                history.push((it, mse));
                bar.set_message(format!(
                    "{}: test MSE {mse:.4}, {:.1}% within {TOLERANCE}",
                    kind.name(),
                    100.0 * acc
                ));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64() - eval_time;
        let (final_mse, final_accuracy) = evaluate(&model, &eval_x, &eval_y)?;
        let trained = gradient_norms(&model, &probe_x, &probe_y)?;
        Ok(ModelFlow {
            model: kind,
            init,
            trained,
            init_mse,
            final_mse,
            final_accuracy,
            history,
            train_seconds,
        })
    };
    let rnn = run(FlowModel::Rnn)?;
    let lstm = run(FlowModel::Lstm)?;
    Ok(GradFlowReport {
        config: cfg.clone(),
        rnn,
        lstm,
        baseline_mse,
    })
}

/// The steps of the printed table: 1, then every 10th, and the last (1-based).
pub fn table_steps(seq_len: usize) -> Vec<usize> {
    let mut steps: Vec<usize> = std::iter::once(1)
        .chain((10..=seq_len).step_by(10))
        .collect();
    if steps.last() != Some(&seq_len) {
        steps.push(seq_len);
    }
    steps.dedup();
    steps
}

impl GradFlowReport {
    /// The four curves in column order: RNN init, RNN trained, LSTM init, LSTM trained.
    fn columns(&self) -> [(&'static str, &[f64]); 4] {
        [
            ("RNN init", &self.rnn.init),
            ("RNN trained", &self.rnn.trained),
            ("LSTM init", &self.lstm.init),
            ("LSTM trained", &self.lstm.trained),
        ]
    }

    /// A markdown table of `‖∂L/∂h_t‖` at `steps` (1-based), then the ratio
    /// `‖∂L/∂h_1‖ / ‖∂L/∂h_T‖` of each curve.
    pub fn table(&self, steps: &[usize]) -> String {
        let cols = self.columns();
        let mut out = String::from("| t |");
        for (name, _) in &cols {
            out.push_str(&format!(" {name} |"));
        }
        out.push_str("\n|---:|---:|---:|---:|---:|\n");
        for &t in steps
            .iter()
            .filter(|&&t| t >= 1 && t <= self.config.seq_len)
        {
            out.push_str(&format!("| {t} |"));
            for (_, norms) in &cols {
                out.push_str(&format!(" {:.3e} |", norms[t - 1]));
            }
            out.push('\n');
        }
        out.push_str(&format!("| h_1 / h_{} |", self.config.seq_len));
        for (_, norms) in &cols {
            out.push_str(&format!(" {:.1e} |", ModelFlow::ratio(norms)));
        }
        out.push('\n');
        out
    }

    /// A markdown table of each model's test metrics.
    pub fn metrics_table(&self) -> String {
        let mut out = format!(
            "| model | test MSE at init | test MSE trained | within ±{TOLERANCE} | train time |\n|---|---:|---:|---:|---:|\n"
        );
        for m in [&self.rnn, &self.lstm] {
            out.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.1}% | {:.1} s |\n",
                m.model.name(),
                m.init_mse,
                m.final_mse,
                100.0 * m.final_accuracy,
                m.train_seconds
            ));
        }
        out.push_str(&format!(
            "| (always predicting 1) | {:.4} | {:.4} | | |\n",
            self.baseline_mse, self.baseline_mse
        ));
        out
    }

    /// `t,rnn_init,rnn_trained,lstm_init,lstm_trained`, one row per step (1-based).
    pub fn csv(&self) -> String {
        let mut out = String::from("t,rnn_init,rnn_trained,lstm_init,lstm_trained\n");
        for t in 0..self.config.seq_len {
            out.push_str(&format!("{}", t + 1));
            for (_, norms) in self.columns() {
                out.push_str(&format!(",{:e}", norms[t]));
            }
            out.push('\n');
        }
        out
    }

    /// The gradient-flow figure: the four curves over `t` on a log y axis, the RNN in blue
    /// and the LSTM in orange, dashed at initialisation and solid after training. Steps
    /// whose norm underflowed to 0 are left out of their curve.
    pub fn svg(&self) -> Result<String> {
        let points: Vec<Vec<(f64, f64)>> = self
            .columns()
            .iter()
            .map(|(_, norms)| {
                norms
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 0.0)
                    .map(|(t, v)| ((t + 1) as f64, *v))
                    .collect()
            })
            .collect();
        let mut figure = Figure::new(
            format!(
                "Gradient flow through time: adding problem, T = {}, H = {}",
                self.config.seq_len, self.config.hidden
            ),
            "Time step t (the loss reads the final state, t = T)",
            "Mean ‖∂L/∂h_t‖",
        )
        .with_log_y();
        for (k, ((label, _), pts)) in self.columns().iter().zip(points).enumerate() {
            let line = if k % 2 == 0 {
                Line::Dashed
            } else {
                Line::Solid
            };
            figure
                .curves
                .push(Curve::new(*label, pts, k / 2).with_line(line));
        }
        figure.svg()
    }

    /// The test MSE of both models over the iterations, on a log y axis.
    pub fn loss_svg(&self) -> Result<String> {
        let to_points = |m: &ModelFlow| -> Vec<(f64, f64)> {
            m.history.iter().map(|&(i, v)| (i as f64, v)).collect()
        };
        let (rnn, lstm) = (to_points(&self.rnn), to_points(&self.lstm));
        let baseline: Vec<(f64, f64)> = [0.0, self.config.steps.max(1) as f64]
            .iter()
            .map(|&x| (x, self.baseline_mse))
            .collect();
        Figure::new(
            "Adding problem: test MSE during training",
            "Iteration",
            "Test MSE",
        )
        .with_log_y()
        .with_curve(Curve::new("RNN", rnn, 0))
        .with_curve(Curve::new("LSTM", lstm, 1))
        .with_curve(
            Curve::new("always predicting 1 (the mean target)", baseline, 2)
                .with_line(Line::Dashed),
        )
        .svg()
    }

    /// Writes `gradflow.csv`, `gradflow.svg`, `loss.svg`, `table.md` and `summary.json`
    /// into `dir`; returns their paths.
    pub fn write(&self, dir: &RunDir) -> Result<Vec<PathBuf>> {
        let table = format!(
            "{}\n{}",
            self.table(&table_steps(self.config.seq_len)),
            self.metrics_table()
        );
        Ok(vec![
            dir.write_atomic("gradflow.csv", self.csv().as_bytes())?,
            dir.write_atomic("gradflow.svg", self.svg()?.as_bytes())?,
            dir.write_atomic("loss.svg", self.loss_svg()?.as_bytes())?,
            dir.write_atomic("table.md", table.as_bytes())?,
            dir.write_json("summary.json", self)?,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(seq_len: usize, steps: usize) -> GradFlowConfig {
        GradFlowConfig {
            seq_len,
            hidden: 16,
            steps,
            batch_size: 16,
            eval_size: 64,
            probe_size: 32,
            eval_every: 5,
            ..Default::default()
        }
    }

    #[test]
    fn adding_batches_have_two_markers_and_their_sum_as_target() -> Result<()> {
        let mut rng = SplitMix64::new(3);
        let (x, y) = adding_batch(200, 100, &mut rng, &Device::Cpu)?;
        assert_eq!(x.dims(), &[200, 100, 2]);
        let x = x.to_vec3::<f32>()?;
        let y = y.to_vec1::<f32>()?;
        let mut firsts = [0usize; 10];
        for (seq, target) in x.iter().zip(&y) {
            let marked: Vec<usize> = (0..100).filter(|&t| seq[t][1] == 1.0).collect();
            assert_eq!(marked.len(), 2, "{marked:?}");
            assert!(marked[0] < 10 && marked[1] >= 50, "{marked:?}");
            firsts[marked[0]] += 1;
            assert!((seq[marked[0]][0] + seq[marked[1]][0] - target).abs() < 1e-6);
            assert!(seq.iter().all(|s| (0.0..1.0).contains(&s[0])));
            assert!(seq.iter().all(|s| s[1] == 0.0 || s[1] == 1.0));
        }
        assert!(firsts.iter().all(|&n| n > 5), "{firsts:?}");
        let (short, _) = adding_batch(5, 2, &mut rng, &Device::Cpu)?;
        for seq in short.to_vec3::<f32>()? {
            assert_eq!(seq[0][1] + seq[1][1], 2.0);
        }
        assert!(adding_batch(5, 1, &mut rng, &Device::Cpu).is_err());
        Ok(())
    }

    /// At initialisation, on 30 steps, the RNN passes back a far smaller share of the
    /// gradient than the LSTM, and every norm is a finite positive number.
    #[test]
    fn at_init_the_rnn_gradient_vanishes_far_faster_than_the_lstm_one() -> Result<()> {
        let cfg = quick(30, 0);
        let report = run_gradflow(&cfg)?;
        for (name, norms) in report.columns() {
            assert_eq!(norms.len(), 30, "{name}");
            assert!(
                norms.iter().all(|v| v.is_finite() && *v > 0.0),
                "{name}: {norms:?}"
            );
        }
        let rnn = ModelFlow::ratio(&report.rnn.init);
        let lstm = ModelFlow::ratio(&report.lstm.init);
        eprintln!("h_1/h_T at init: RNN {rnn:.3e}, LSTM {lstm:.3e}");
        assert!(rnn < 1e-3, "RNN ratio {rnn:e}");
        assert!(rnn * 100.0 < lstm, "RNN {rnn:e} vs LSTM {lstm:e}");
        // Without training the trained curves are the initial ones.
        for (a, b) in report.rnn.init.iter().zip(&report.rnn.trained) {
            assert!((a - b).abs() <= 1e-6 * a, "{a} vs {b}");
        }
        Ok(())
    }

    #[test]
    fn a_short_run_writes_its_table_csv_and_plots() -> Result<()> {
        let cfg = quick(12, 10);
        let report = run_gradflow(&cfg)?;
        assert_eq!(report.rnn.history.len(), 3);
        assert!(report.lstm.final_mse.is_finite());
        assert_ne!(report.lstm.init, report.lstm.trained);
        let table = report.table(&table_steps(12));
        assert!(table.starts_with("| t | RNN init | RNN trained | LSTM init | LSTM trained |"));
        assert_eq!(table.lines().count(), 2 + 3 + 1, "{table}");
        let dir = std::env::temp_dir().join(format!("lstm-gradflow-{}", std::process::id()));
        let run = RunDir::create(&dir)?;
        let files = report.write(&run)?;
        assert_eq!(files.len(), 5);
        let csv = std::fs::read_to_string(run.file("gradflow.csv")).unwrap();
        assert_eq!(csv.lines().count(), 13);
        let svg = std::fs::read_to_string(run.file("gradflow.svg")).unwrap();
        for label in [
            "RNN init",
            "RNN trained",
            "LSTM init",
            "LSTM trained",
            "log scale",
        ] {
            assert!(svg.contains(label), "no {label}");
        }
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            4,
            "two dashed curves and their legend samples"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        Ok(())
    }

    #[test]
    fn table_steps_are_one_every_tenth_and_the_last() {
        assert_eq!(
            table_steps(100),
            [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
        );
        assert_eq!(table_steps(25), [1, 10, 20, 25]);
        assert_eq!(table_steps(1), [1]);
    }

    #[test]
    fn bad_settings_are_rejected() {
        for cfg in [
            GradFlowConfig {
                seq_len: 1,
                ..quick(10, 0)
            },
            GradFlowConfig {
                hidden: 0,
                ..quick(10, 0)
            },
            GradFlowConfig {
                lr: -1.0,
                ..quick(10, 0)
            },
            GradFlowConfig {
                clip: f64::NAN,
                ..quick(10, 0)
            },
            GradFlowConfig {
                forget_bias: Some(f64::INFINITY),
                ..quick(10, 0)
            },
        ] {
            assert!(
                matches!(run_gradflow(&cfg), Err(TrainError::Config(_))),
                "{cfg:?}"
            );
        }
    }
}
