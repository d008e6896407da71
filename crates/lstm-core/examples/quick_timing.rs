//! Times one training iteration of the classifier at the MNIST shape (batch 100).
use candle_core::{DType, Device, Tensor};
use candle_nn::{loss, Optimizer, VarMap, SGD};
use lstm_core::{seeded_var_builder, Backbone, ClassifierConfig, SequenceClassifier};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    lstm_core::configure_cpu_threads();
    let backbone = if std::env::args().any(|a| a == "cell") {
        Backbone::Cell
    } else {
        Backbone::Layer
    };
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu);
    let model = SequenceClassifier::new(ClassifierConfig::mnist(backbone), vb)?;
    let mut sgd = SGD::new(vm.all_vars(), 0.1)?;
    let x = Tensor::randn(0f32, 0.3, (100, 28, 28), &Device::Cpu)?;
    let y = Tensor::arange(0u32, 100, &Device::Cpu)?
        .affine(1.0, 0.0)?
        .to_dtype(DType::U32)?;
    let y = (y.to_dtype(DType::F32)? / 10.0)?
        .floor()?
        .to_dtype(DType::U32)?;
    let (mut tf, mut tb) = (0.0, 0.0);
    for i in 0..40 {
        let t0 = Instant::now();
        let logits = model.logits(&x, true)?;
        let l = loss::cross_entropy(&logits, &y)?;
        let _ = l.to_scalar::<f32>()?;
        let t1 = Instant::now();
        sgd.backward_step(&l)?;
        let t2 = Instant::now();
        if i >= 10 {
            tf += (t1 - t0).as_secs_f64();
            tb += (t2 - t1).as_secs_f64();
        }
    }
    println!(
        "forward {:.2} ms, backward+step {:.2} ms",
        tf / 30.0 * 1e3,
        tb / 30.0 * 1e3
    );
    Ok(())
}
