//! The scenario table of the recurrent-engine issue: what a user of lstm-core writes for
//! each workload, timed in this process.
//!
//! `scripts/bench_torch.py --scenario ID` runs the same workloads in PyTorch; both print
//! one JSON line with the same shape fields, so `cargo xtask bench` can check that the two
//! sides agree and compute the FLOPs once.
//!
//! The variable-length rows (`packed-*`, and `padmean-*` to compare them with) are in
//! `packed.rs`; they run through the model, loss and step below.
//!
//! Nothing here calls `lstm_core::configure_cpu_threads()`: the figures are what a
//! program that only builds a model and runs it gets.

use std::time::Instant;

use anyhow::{bail, Result};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{loss, Linear, Optimizer, VarBuilder, VarMap, SGD};
use lstm_core::{
    linear_torch, seeded_var_builder, Gru, Lstm, LstmState, PackedBatch, RecurrentConfig,
};

use crate::packed;

const CLASSES: usize = 10;

/// The recurrent family a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Family {
    /// `Lstm` / `nn.LSTM`.
    Lstm,
    /// `Gru` / `nn.GRU`.
    Gru,
}

/// What one timed iteration does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// `forward`, the last step of the output → Linear → cross-entropy → backward → SGD.
    TrainForward,
    /// `Lstm::forward_final`, `h_n` of the last layer → Linear → the same training step.
    TrainFinal,
    /// `forward`, last step → Linear, no gradients.
    Infer,
    /// `forward` (`forward_packed` for a packed row), each row's final `h` of the last
    /// layer (both directions concatenated) → Linear → the same training step.
    TrainState,
    /// The same as [`Mode::TrainState`] without gradients.
    InferState,
    /// `seq` single-step `forward` calls on batch 1, carrying the state, no gradients.
    Stream,
}

/// One row of the scenario table.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// The name both sides and the report use.
    pub id: &'static str,
    /// Recurrent family.
    pub family: Family,
    /// What an iteration does.
    pub mode: Mode,
    /// Batch size.
    pub batch: usize,
    /// Steps per sequence (for [`Mode::Stream`]: single-step calls per iteration).
    pub seq: usize,
    /// Features per step.
    pub input: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Stacked layers.
    pub layers: usize,
    /// Both directions.
    pub bidirectional: bool,
    /// Rows of different lengths ([`packed::LENGTHS`], `seq` padded steps), run packed.
    pub packed: bool,
}

/// A row of the MNIST classifier shape (batch 100, 28 steps × 28 features, hidden 128).
pub(crate) const fn row(id: &'static str, family: Family, mode: Mode) -> Scenario {
    Scenario {
        id,
        family,
        mode,
        batch: 100,
        seq: 28,
        input: 28,
        hidden: 128,
        layers: 1,
        bidirectional: false,
        packed: false,
    }
}

const LSTM2: Scenario = Scenario {
    batch: 64,
    seq: 100,
    input: 64,
    hidden: 256,
    layers: 2,
    ..row("lstm2-train", Family::Lstm, Mode::TrainForward)
};

/// The fixed-length scenarios, in the order of the report (then [`packed::SCENARIOS`]).
pub const SCENARIOS: [Scenario; 11] = [
    row("lstm-train-forward", Family::Lstm, Mode::TrainForward),
    row("lstm-train-final", Family::Lstm, Mode::TrainFinal),
    row("lstm-infer", Family::Lstm, Mode::Infer),
    row("gru-train", Family::Gru, Mode::TrainForward),
    row("gru-infer", Family::Gru, Mode::Infer),
    Scenario {
        bidirectional: true,
        ..row("bilstm-train", Family::Lstm, Mode::TrainForward)
    },
    // h_n of both directions: every step of both carries a gradient.
    Scenario {
        bidirectional: true,
        ..row("bilstm-train-state", Family::Lstm, Mode::TrainState)
    },
    LSTM2,
    Scenario {
        id: "lstm2-infer",
        mode: Mode::Infer,
        ..LSTM2
    },
    // A batch too small for the row split to use both cores: the layers run in a wavefront.
    Scenario {
        id: "lstm2-infer-b8",
        mode: Mode::Infer,
        batch: 8,
        ..LSTM2
    },
    Scenario {
        batch: 1,
        seq: 100,
        ..row("stream", Family::Lstm, Mode::Stream)
    },
];

/// Every scenario, in the order of the report.
pub fn all() -> impl Iterator<Item = &'static Scenario> {
    SCENARIOS.iter().chain(packed::SCENARIOS.iter())
}

/// The scenario called `id`.
pub fn find(id: &str) -> Result<Scenario> {
    match all().find(|s| s.id == id) {
        Some(s) => Ok(*s),
        None => {
            let ids: Vec<_> = all().map(|s| s.id).collect();
            bail!("unknown scenario {id}: {}", ids.join(" | "))
        }
    }
}

/// The recurrent part of a model.
enum Net {
    Lstm(Lstm),
    Gru(Gru),
}

/// A model of a scenario: the recurrent layers and the classifier head.
struct Model {
    net: Net,
    fc: Linear,
    last: usize,
    directions: usize,
    /// Each row's length, for a packed scenario.
    lengths: Option<&'static [usize]>,
}

impl Model {
    fn new(s: &Scenario, vb: VarBuilder) -> Result<Self> {
        let cfg = RecurrentConfig::new(s.input, s.hidden)
            .with_layers(s.layers)
            .with_bidirectional(s.bidirectional);
        let dirs = if s.bidirectional { 2 } else { 1 };
        let net = match s.family {
            Family::Lstm => Net::Lstm(Lstm::new(cfg, vb.pp("rnn"))?),
            Family::Gru => Net::Gru(Gru::new(cfg, vb.pp("rnn"))?),
        };
        let fc = linear_torch(s.hidden * dirs, CLASSES, vb.pp("fc"))?;
        Ok(Self {
            net,
            fc,
            last: s.seq - 1,
            directions: dirs,
            lengths: s.packed.then_some(&packed::LENGTHS[..]),
        })
    }

    /// The logits `mode` reads.
    fn logits_for(&self, mode: Mode, x: &Tensor, train: bool) -> Result<Tensor> {
        match mode {
            Mode::TrainFinal => self.logits_final(x, train),
            Mode::TrainState | Mode::InferState => self.logits_state(x, train),
            Mode::TrainForward | Mode::Infer | Mode::Stream => self.logits(x, train),
        }
    }

    /// Logits from the last step of the output sequence, as `out[:, -1]` in PyTorch.
    fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let out = match &self.net {
            Net::Lstm(m) => m.forward(x, None, train)?.0,
            Net::Gru(m) => m.forward(x, None, train)?.0,
        };
        Ok(self.fc.forward(&out.i((.., self.last, ..))?)?)
    }

    /// Logits from `h_n` of the last layer (`Lstm::forward_final`).
    fn logits_final(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let Net::Lstm(m) = &self.net else {
            bail!("forward_final is an Lstm path");
        };
        let state = m.forward_final(x, None, train)?;
        let layers = state.h.dim(0)?;
        Ok(self.fc.forward(&state.h.i(layers - 1)?)?)
    }

    /// Logits from each row's final `h` of the last layer, both directions concatenated
    /// (`forward_packed` over the lengths for a packed scenario, else `forward`), as
    /// PyTorch's `h_n`. The batch is packed here, every iteration, as a training loop does.
    fn logits_state(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let batch = self.lengths.map(|l| PackedBatch::new(x, l)).transpose()?;
        let h_n = match (&self.net, &batch) {
            (Net::Lstm(m), Some(b)) => m.forward_packed(b, None, train)?.1.h,
            (Net::Lstm(m), None) => m.forward(x, None, train)?.1.h,
            (Net::Gru(m), Some(b)) => m.forward_packed(b, None, train)?.1,
            (Net::Gru(m), None) => m.forward(x, None, train)?.1,
        };
        let last = packed::last_layer(&h_n, self.directions)?;
        Ok(self.fc.forward(&last)?)
    }
}

/// Builds the scenario's model and returns one iteration as a closure.
fn iteration(s: &Scenario) -> Result<Box<dyn FnMut() -> Result<()>>> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let model = Model::new(s, seeded_var_builder(&vm, 1, DType::F32, &dev))?;
    let y: Vec<u32> = (0..s.batch as u32).map(|i| i % CLASSES as u32).collect();
    let y = Tensor::from_vec(y, s.batch, &dev)?;
    let mode = s.mode;
    Ok(match mode {
        Mode::TrainForward | Mode::TrainFinal | Mode::TrainState => {
            let x = Tensor::randn(0f32, 0.3, (s.batch, s.seq, s.input), &dev)?;
            let mut sgd = SGD::new(vm.all_vars(), 0.01)?;
            Box::new(move || {
                let logits = model.logits_for(mode, &x, true)?;
                sgd.backward_step(&loss::cross_entropy(&logits, &y)?)?;
                Ok(())
            })
        }
        Mode::Infer | Mode::InferState => {
            let x = Tensor::randn(0f32, 0.3, (s.batch, s.seq, s.input), &dev)?;
            Box::new(move || {
                model.logits_for(mode, &x, false)?;
                Ok(())
            })
        }
        Mode::Stream => {
            let Net::Lstm(lstm) = model.net else {
                bail!("the stream scenario runs an Lstm");
            };
            let xs = (0..s.seq)
                .map(|_| Ok(Tensor::randn(0f32, 0.3, (s.batch, 1, s.input), &dev)?))
                .collect::<Result<Vec<_>>>()?;
            Box::new(move || {
                let mut state: Option<LstmState> = None;
                for x in &xs {
                    let (_out, next) = lstm.forward(x, state.as_ref(), false)?;
                    state = Some(next);
                }
                Ok(())
            })
        }
    })
}

/// The result of one process's measurement of a scenario.
pub struct Timing {
    /// Median milliseconds per iteration over the timed iterations.
    pub ms: f64,
    /// Timed iterations.
    pub iters: usize,
    /// Warm-up iterations before them.
    pub warmup: usize,
}

/// Runs `warmup` iterations (and more until `seconds / 4` have passed), then times
/// iterations one by one for about `seconds` (at least 3, at most 500).
pub fn measure(s: &Scenario, warmup: usize, seconds: f64) -> Result<Timing> {
    let mut step = iteration(s)?;
    let t0 = Instant::now();
    let mut done = 0;
    while done < warmup || t0.elapsed().as_secs_f64() < seconds / 4.0 {
        step()?;
        done += 1;
    }
    let mut times = Vec::new();
    let t1 = Instant::now();
    while times.len() < 3 || (t1.elapsed().as_secs_f64() < seconds && times.len() < 500) {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(Timing {
        ms: times[times.len() / 2],
        iters: times.len(),
        warmup: done,
    })
}

/// The JSON line `cargo xtask bench` reads (same keys as `bench_torch.py --scenario`).
pub fn json(s: &Scenario, t: &Timing) -> String {
    let family = match s.family {
        Family::Lstm => "lstm",
        Family::Gru => "gru",
    };
    let train = matches!(
        s.mode,
        Mode::TrainForward | Mode::TrainFinal | Mode::TrainState
    );
    // The real steps (the sum of the lengths), and for a packed row the lengths themselves.
    let (steps, lengths) = if s.packed {
        (
            packed::STEPS,
            format!(",\"lengths\":\"{}\"", packed::lengths_field()),
        )
    } else {
        (s.batch * s.seq, String::new())
    };
    format!(
        "{{\"id\":\"{}\",\"family\":\"{family}\",\"batch\":{},\"seq\":{},\"steps\":{steps},\"packed\":{}{lengths},\"input\":{},\"hidden\":{},\"layers\":{},\"directions\":{},\"train\":{train},\"ms\":{:.4},\"iters\":{},\"warmup\":{},\"threads\":{}}}",
        s.id,
        s.batch,
        s.seq,
        s.packed,
        s.input,
        s.hidden,
        s.layers,
        if s.bidirectional { 2 } else { 1 },
        t.ms,
        t.iters,
        t.warmup,
        candle_core::utils::get_num_threads(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small model of a variable-length row (hidden 16, 8 features), packed or not.
    fn small(packed: bool) -> Result<Model> {
        let s = Scenario {
            input: 8,
            hidden: 16,
            ..packed::SCENARIOS[if packed { 12 } else { 13 }]
        };
        assert!(s.layers == 2 && s.bidirectional && s.packed == packed);
        Model::new(
            &s,
            seeded_var_builder(&VarMap::new(), 1, DType::F32, &Device::Cpu),
        )
    }

    #[test]
    fn packed_logits_are_each_rows_own_run() -> Result<()> {
        let (packed, padded) = (small(true)?, small(false)?);
        let x = Tensor::randn(
            0f32,
            1.0,
            (packed::BATCH, packed::PADDED_LEN, 8),
            &Device::Cpu,
        )?;
        let all = packed.logits_for(Mode::InferState, &x, false)?;
        assert_eq!(all.dims(), &[packed::BATCH, CLASSES]);
        for r in [0, 9, 25, 63] {
            let len = packed::LENGTHS[r];
            let alone = x.i((r..=r, ..len, ..))?;
            let want = padded.logits_for(Mode::InferState, &alone, false)?;
            let diff = (all.i(r..=r)? - want)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(diff < 1e-5, "row {r} (length {len}): {diff}");
        }
        Ok(())
    }
}
