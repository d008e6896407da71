//! Times the issue-10 scenarios of our recurrent layers (ms per iteration, median of 7
//! runs of 10 iterations), as a library user runs them: no thread setup call.
//!
//! `cargo run --release -p lstm-core --example quick_timing [SCENARIO...]`
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{loss, Linear, Optimizer, VarMap, SGD};
use lstm_core::{linear_torch, seeded_var_builder, Gru, Lstm, LstmConfig, LstmState};
use std::time::Instant;

enum Net {
    Lstm(Lstm),
    Gru(Gru),
}

fn time(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let mut runs = Vec::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        for _ in 0..10 {
            f()?;
        }
        runs.push(t0.elapsed().as_secs_f64() * 100.0);
    }
    runs.sort_by(|a, b| a.total_cmp(b));
    Ok(runs[3])
}

fn scenario(name: &str) -> anyhow::Result<f64> {
    let dev = Device::Cpu;
    let (b, t, i, h, layers, bi) = match name {
        "lstm2-train" | "lstm2-infer" => (64, 100, 64, 256, 2, false),
        "bilstm-train" => (100, 28, 28, 128, 1, true),
        "stream" => (1, 1, 28, 128, 1, false),
        _ => (100, 28, 28, 128, 1, false),
    };
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 1, DType::F32, &dev);
    let cfg = LstmConfig::new(i, h)
        .with_layers(layers)
        .with_bidirectional(bi);
    let net = if name.starts_with("gru") {
        Net::Gru(Gru::new(cfg, vb.pp("rnn"))?)
    } else {
        Net::Lstm(Lstm::new(cfg, vb.pp("rnn"))?)
    };
    let d = cfg.directions();
    let fc: Linear = linear_torch(d * h, 10, vb.pp("fc"))?;
    let mut sgd = SGD::new(vm.all_vars(), 0.01)?;
    let x = Tensor::randn(0f32, 0.3, (b, t, i), &dev)?;
    let y = Tensor::zeros(b, DType::U32, &dev)?;
    let train = name.ends_with("train") || name.ends_with("final");
    let logits = |x: &Tensor| -> anyhow::Result<Tensor> {
        let last = match (&net, name) {
            (Net::Lstm(l), "lstm-final") => l.forward_final(x, None, true)?.h.i(0)?,
            (Net::Lstm(l), _) => l.forward(x, None, train)?.0.i((.., t - 1, ..))?,
            (Net::Gru(g), _) => g.forward(x, None, train)?.0.i((.., t - 1, ..))?,
        };
        Ok(fc.forward(&last)?)
    };
    if name == "stream" {
        let Net::Lstm(l) = &net else { unreachable!() };
        let xs = Tensor::randn(0f32, 0.3, (1, 100, i), &dev)?;
        return time(|| {
            let mut s = LstmState {
                h: Tensor::zeros((1, 1, h), DType::F32, &dev)?,
                c: Tensor::zeros((1, 1, h), DType::F32, &dev)?,
            };
            for k in 0..100 {
                s = l.forward(&xs.narrow(1, k, 1)?, Some(&s), false)?.1;
            }
            let _ = s.h.sum_all()?.to_scalar::<f32>()?;
            Ok(())
        });
    }
    time(|| {
        let lg = logits(&x)?;
        if train {
            sgd.backward_step(&loss::cross_entropy(&lg, &y)?)?;
        } else {
            let _ = lg.sum_all()?.to_scalar::<f32>()?;
        }
        Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let all = [
        "lstm-train",
        "lstm-final",
        "lstm-infer",
        "gru-train",
        "gru-infer",
        "bilstm-train",
        "lstm2-train",
        "lstm2-infer",
        "stream",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("kernels: {}", lstm_core::fused_instruction_set());
    for name in all
        .iter()
        .filter(|n| args.is_empty() || args.iter().any(|a| a == *n))
    {
        println!("{name:>14}: {:8.3} ms", scenario(name)?);
    }
    Ok(())
}
