//! The optimizers against candle-nn's (bit for bit), saved state resuming exactly, and
//! gradient clipping.

use super::*;
use candle_core::{DType, Device};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW, SGD};

fn problem(seed: f32) -> Result<(VarMap, Tensor, Tensor)> {
    let varmap = VarMap::new();
    varmap.get(
        (3, 2),
        "w",
        candle_nn::Init::Const(0.0),
        DType::F32,
        &Device::Cpu,
    )?;
    varmap.data().lock().unwrap()["w"].set(&Tensor::new(
        &[[0.5f32, -0.2], [seed, 0.3], [0.0, 1.0]],
        &Device::Cpu,
    )?)?;
    let x = Tensor::new(&[[1f32, 2., 3.], [-1., 0.5, 2.]], &Device::Cpu)?;
    let y = Tensor::new(&[[1f32, 0.], [0., 1.]], &Device::Cpu)?;
    Ok((varmap, x, y))
}

fn loss(varmap: &VarMap, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let w = varmap.data().lock().unwrap()["w"].as_tensor().clone();
    Ok(candle_nn::loss::mse(&x.matmul(&w)?, y)?)
}

fn weights(varmap: &VarMap) -> Vec<f32> {
    varmap.data().lock().unwrap()["w"]
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn plain_sgd_and_adam_match_candle_bit_for_bit() -> Result<()> {
    let (ours, x, y) = problem(0.1)?;
    let (theirs, ..) = problem(0.1)?;
    let mut a = Optimizer::new(OptimizerKind::Sgd { momentum: 0.0 }, &ours, 0.05);
    let mut b = SGD::new(theirs.all_vars(), 0.05)?;
    for _ in 0..5 {
        a.backward_step(&loss(&ours, &x, &y)?)?;
        b.backward_step(&loss(&theirs, &x, &y)?)?;
    }
    assert_eq!(weights(&ours), weights(&theirs));
    assert_ne!(weights(&ours), weights(&problem(0.1)?.0));

    let (ours, x, y) = problem(0.1)?;
    let (theirs, ..) = problem(0.1)?;
    let mut a = Optimizer::new(OptimizerKind::adam(), &ours, 0.01);
    let mut b = AdamW::new(
        theirs.all_vars(),
        ParamsAdamW {
            lr: 0.01,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    for _ in 0..5 {
        a.backward_step(&loss(&ours, &x, &y)?)?;
        b.backward_step(&loss(&theirs, &x, &y)?)?;
    }
    assert_eq!(weights(&ours), weights(&theirs));
    Ok(())
}

#[test]
fn momentum_follows_pytorch() -> Result<()> {
    // d/dw of sum(w) is 1 everywhere: buf_1 = 1, buf_2 = 0.9 + 1 = 1.9.
    let varmap = VarMap::new();
    varmap.get(
        2,
        "w",
        candle_nn::Init::Const(0.0),
        DType::F32,
        &Device::Cpu,
    )?;
    let w = varmap.data().lock().unwrap()["w"].clone();
    let mut opt = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9 }, &varmap, 0.1);
    opt.backward_step(&w.as_tensor().sum_all()?)?;
    opt.backward_step(&w.as_tensor().sum_all()?)?;
    let got: Vec<f32> = w.as_tensor().to_vec1()?;
    for v in got {
        assert!((v - (-0.1 - 0.19)).abs() < 1e-6, "{v}");
    }
    Ok(())
}

#[test]
fn saved_state_resumes_exactly() -> Result<()> {
    for kind in [OptimizerKind::Sgd { momentum: 0.9 }, OptimizerKind::adam()] {
        let (straight, x, y) = problem(0.7)?;
        let mut opt = Optimizer::new(kind, &straight, 0.02);
        for _ in 0..6 {
            opt.backward_step(&loss(&straight, &x, &y)?)?;
        }

        let (first, ..) = problem(0.7)?;
        let mut opt = Optimizer::new(kind, &first, 0.02);
        for _ in 0..3 {
            opt.backward_step(&loss(&first, &x, &y)?)?;
        }
        let state: HashMap<String, Tensor> = opt.state_tensors()?.into_iter().collect();
        assert_eq!(
            state.len(),
            if kind == OptimizerKind::adam() { 2 } else { 1 }
        );
        let (second, ..) = problem(0.0)?;
        second.data().lock().unwrap()["w"].set(&Tensor::from_vec(
            weights(&first),
            (3, 2),
            &Device::Cpu,
        )?)?;
        let mut resumed = Optimizer::new(kind, &second, 0.02);
        resumed.load_state(opt.steps(), &state, std::path::Path::new("ckpt"))?;
        for _ in 0..3 {
            resumed.backward_step(&loss(&second, &x, &y)?)?;
        }
        assert_eq!(weights(&straight), weights(&second), "{kind:?}");
    }
    Ok(())
}

#[test]
fn clipping_scales_the_global_norm_down_to_the_limit_only() -> Result<()> {
    let (varmap, x, y) = problem(0.7)?;
    let vars = varmap.all_vars();
    let norm_of = |grads: &GradStore| -> Result<f64> {
        let mut total = 0f64;
        for v in &vars {
            let g = grads.get(v.as_tensor()).expect("a gradient");
            total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        Ok(total.sqrt())
    };
    let mut grads = loss(&varmap, &x, &y)?.backward()?;
    let before = norm_of(&grads)?;
    assert!(before > 0.01, "{before}");
    let reported = clip_gradients(&mut grads, &vars, before / 4.0)?;
    assert!((reported - before).abs() < 1e-6 * before);
    assert!((norm_of(&grads)? - before / 4.0).abs() < 1e-5 * before);
    let mut grads = loss(&varmap, &x, &y)?.backward()?;
    clip_gradients(&mut grads, &vars, before * 2.0)?;
    assert!(
        (norm_of(&grads)? - before).abs() < 1e-6 * before,
        "changed below the limit"
    );
    assert!(OptimizerKind::Sgd { momentum: 1.0 }.validate().is_err());
    assert!(OptimizerKind::adam().validate().is_ok());
    Ok(())
}

#[test]
fn state_for_an_unknown_parameter_is_rejected() -> Result<()> {
    let (varmap, ..) = problem(0.0)?;
    let mut opt = Optimizer::new(OptimizerKind::adam(), &varmap, 0.1);
    let t = Tensor::zeros((3, 2), DType::F32, &Device::Cpu)?;
    let err = opt
        .load_state(
            1,
            &HashMap::from([("optimizer.first.v".into(), t)]),
            "c".as_ref(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("optimizer.first.v belongs to no parameter"),
        "{err}"
    );
    let t = Tensor::zeros(4, DType::F32, &Device::Cpu)?;
    let err = opt
        .load_state(
            1,
            &HashMap::from([("optimizer.second.w".into(), t)]),
            "c".as_ref(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected shape [3, 2], found [4]"), "{err}");
    Ok(())
}
