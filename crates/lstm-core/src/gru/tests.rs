//! Tests of the GRU cell and the multi-layer GRU.

use super::*;
use crate::init::seeded_var_builder;
use crate::test_util::max_diff;
use candle_core::{IndexOp, Var};
use candle_nn::VarMap;

fn gru(cfg: GruConfig, seed: u64) -> Result<(Gru, VarMap)> {
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, seed, DType::F32, &Device::Cpu);
    Ok((Gru::new(cfg, vb)?, vm))
}

/// A cell holding the weights `{name}_l{layer}{suffix}` of `vm`.
fn cell_from(
    vm: &VarMap,
    layer: usize,
    suffix: &str,
    input: usize,
    hidden: usize,
) -> Result<GruCell> {
    let cell_vm = VarMap::new();
    {
        let src = vm.data().lock().unwrap();
        let mut dst = cell_vm.data().lock().unwrap();
        for name in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
            let var = &src[&format!("{name}_l{layer}{suffix}")];
            dst.insert(name.to_string(), var.clone());
        }
    }
    let vb = VarBuilder::from_varmap(&cell_vm, DType::F32, &Device::Cpu);
    GruCell::new(input, hidden, vb)
}

#[test]
fn parameter_names_follow_pytorch() -> Result<()> {
    let cfg = GruConfig::new(3, 5).with_layers(2).with_bidirectional(true);
    let (_, vm) = gru(cfg, 0)?;
    let data = vm.data().lock().unwrap();
    assert_eq!(data.len(), 16);
    for suffix in ["", "_reverse"] {
        let shape = |n: &str| data[&format!("{n}{suffix}")].dims().to_vec();
        assert_eq!(shape("weight_ih_l0"), [15, 3]);
        assert_eq!(shape("weight_hh_l0"), [15, 5]);
        assert_eq!(shape("bias_ih_l0"), [15]);
        assert_eq!(shape("bias_hh_l0"), [15]);
        assert_eq!(shape("weight_ih_l1"), [15, 10]);
        assert_eq!(shape("weight_hh_l1"), [15, 5]);
        assert_eq!(shape("bias_ih_l1"), [15]);
        assert_eq!(shape("bias_hh_l1"), [15]);
    }
    let bound = 1.0 / 5f32.sqrt();
    for var in data.values() {
        let v = var.as_tensor().abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(v <= bound, "max |w| = {v}");
    }
    Ok(())
}

#[test]
fn cell_parameters_are_named_and_shaped_as_torch_gru_cell() -> Result<()> {
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu);
    let _ = GruCell::new(7, 4, vb)?;
    let data = vm.data().lock().unwrap();
    let mut names: Vec<_> = data.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]);
    assert_eq!(data["weight_ih"].dims(), &[12, 7]);
    assert_eq!(data["weight_hh"].dims(), &[12, 4]);
    assert_eq!(data["bias_ih"].dims(), &[12]);
    assert_eq!(data["bias_hh"].dims(), &[12]);
    for var in data.values() {
        let v = var.as_tensor().abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(v <= 0.5 && v > 0.3, "max |w| = {v}");
    }
    Ok(())
}

#[test]
fn bad_config_and_bad_shapes_are_errors() -> Result<()> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 0, DType::F32, &dev);
    for cfg in [
        GruConfig::new(0, 4),
        GruConfig::new(3, 0),
        GruConfig::new(3, 4).with_layers(0),
        GruConfig::new(3, 4).with_dropout(1.0),
        GruConfig::new(3, 4).with_dropout(-0.1),
    ] {
        assert!(
            matches!(Gru::new(cfg, vb.clone()), Err(LstmError::Config(_))),
            "{cfg:?}"
        );
    }
    assert!(matches!(
        GruCell::new(3, 0, vb.pp("cell0")),
        Err(LstmError::Config(_))
    ));
    let model = Gru::new(GruConfig::new(3, 4).with_layers(2), vb.pp("gru"))?;
    let x = Tensor::zeros((2, 5, 4), DType::F32, &dev)?;
    assert!(matches!(
        model.forward(&x, None, false),
        Err(LstmError::Shape { .. })
    ));
    let x = Tensor::zeros((2, 0, 3), DType::F32, &dev)?;
    assert!(matches!(
        model.forward(&x, None, false),
        Err(LstmError::Config(_))
    ));
    let x = Tensor::zeros((2, 5, 3), DType::F32, &dev)?;
    for bad in [(1, 2, 4), (2, 3, 4), (2, 2, 5)] {
        let h0 = Tensor::zeros(bad, DType::F32, &dev)?;
        assert!(matches!(
            model.forward(&x, Some(&h0), false),
            Err(LstmError::Shape { .. })
        ));
        assert!(matches!(
            model.forward_steps(&x, Some(&h0)),
            Err(LstmError::Shape { .. })
        ));
    }
    let cell = GruCell::new(3, 4, vb.pp("cell"))?;
    let h = cell.zero_state(2, DType::F32, &dev)?;
    let bad_x = Tensor::zeros((2, 4), DType::F32, &dev)?;
    assert!(matches!(
        cell.step(&bad_x, &h),
        Err(LstmError::Shape { .. })
    ));
    let good_x = Tensor::zeros((2, 3), DType::F32, &dev)?;
    let bad_h = Tensor::zeros((3, 4), DType::F32, &dev)?;
    assert!(matches!(
        cell.step(&good_x, &bad_h),
        Err(LstmError::Shape { .. })
    ));
    let bidir = Gru::new(GruConfig::new(3, 4).with_bidirectional(true), vb.pp("bi"))?;
    assert!(matches!(
        bidir.forward_steps(&x, None),
        Err(LstmError::Config(_))
    ));
    Ok(())
}

#[test]
fn batch_of_one_works() -> Result<()> {
    let dev = Device::Cpu;
    let cfg = GruConfig::new(5, 7).with_layers(2).with_bidirectional(true);
    let (model, vm) = gru(cfg, 3)?;
    let x = Tensor::randn(0f32, 1.0, (1, 4, 5), &dev)?;
    let (out, h_n) = model.forward(&x, None, false)?;
    assert_eq!(out.dims(), &[1, 4, 14]);
    assert_eq!(h_n.dims(), &[4, 1, 7]);
    let cell = cell_from(&vm, 0, "", 5, 7)?;
    let h = cell.step(&x.i((.., 0, ..))?, &cell.zero_state(1, DType::F32, &dev)?)?;
    assert_eq!(h.dims(), &[1, 7]);
    Ok(())
}

/// A `GruCell` holding a layer's weights, unrolled by hand, gives that layer's states:
/// the whole output of a one-layer model (both directions), and `h_n` of layer 0 of a
/// two-layer one.
#[test]
fn cell_with_layer_weights_matches_the_sequence_model() -> Result<()> {
    let dev = Device::Cpu;
    let (b, t, i, h) = (3, 6, 4, 5);
    let x = Tensor::randn(0f32, 1.0, (b, t, i), &dev)?;
    let h0 = Tensor::randn(0f32, 0.5, (4, b, h), &dev)?;

    let unroll = |cell: &GruCell, h_init: Tensor, reverse: bool| -> Result<Vec<Tensor>> {
        let mut hs = vec![None; t];
        let mut state = h_init;
        for step in 0..t {
            let ti = if reverse { t - 1 - step } else { step };
            state = cell.step(&x.i((.., ti, ..))?, &state)?;
            hs[ti] = Some(state.clone());
        }
        Ok(hs.into_iter().flatten().collect())
    };

    let cfg = GruConfig::new(i, h).with_bidirectional(true);
    let (model, vm) = gru(cfg, 9)?;
    let h0_1 = h0.narrow(0, 0, 2)?;
    let (out, h_n) = model.forward(&x, Some(&h0_1), false)?;
    for (d, suffix) in ["", "_reverse"].iter().enumerate() {
        let cell = cell_from(&vm, 0, suffix, i, h)?;
        let hs = unroll(&cell, h0_1.i(d)?, d == 1)?;
        let expected = Tensor::stack(&hs, 1)?;
        assert!(
            max_diff(&out.narrow(2, d * h, h)?, &expected) < 1e-6,
            "{suffix}"
        );
        let last = if d == 1 { 0 } else { t - 1 };
        assert!(max_diff(&h_n.i(d)?, &hs[last]) < 1e-6);
    }

    let (model, vm) = gru(GruConfig::new(i, h).with_layers(2), 4)?;
    let h0_2 = h0.narrow(0, 2, 2)?;
    let (_, h_n) = model.forward(&x, Some(&h0_2), false)?;
    let cell = cell_from(&vm, 0, "", i, h)?;
    let hs = unroll(&cell, h0_2.i(0)?, false)?;
    assert!(max_diff(&h_n.i(0)?, &hs[t - 1]) < 1e-6);
    Ok(())
}

#[test]
fn dropout_only_in_training() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (4, 5, 3), &dev)?;
    let (plain, _) = gru(GruConfig::new(3, 8).with_layers(2), 2)?;
    let (dropped, _) = gru(GruConfig::new(3, 8).with_layers(2).with_dropout(0.5), 2)?;
    let (a, ha) = plain.forward(&x, None, false)?;
    let (b, hb) = dropped.forward(&x, None, false)?;
    assert_eq!(max_diff(&a, &b), 0.0);
    assert_eq!(max_diff(&ha, &hb), 0.0);
    let (c, _) = dropped.forward(&x, None, true)?;
    assert!(max_diff(&a, &c) > 1e-3);
    let (d, _) = plain.forward(&x, None, true)?;
    assert_eq!(max_diff(&a, &d), 0.0);
    Ok(())
}

/// `forward_steps` are the output's steps; the taps' gradients are `∂L/∂h_t`, checked
/// against one GRU step: `h_{t+1}` depends on `h_t` only through that step, so the
/// gradient of `h_t` is the vector-Jacobian product of the step with the gradient of
/// `h_{t+1}`, plus the loss's direct term.
#[test]
fn forward_steps_and_taps_give_per_step_gradients() -> Result<()> {
    let dev = Device::Cpu;
    let (b, t, i, h) = (2, 5, 3, 4);
    let (model, vm) = gru(GruConfig::new(i, h).with_layers(2), 6)?;
    let x = Tensor::randn(0f32, 1.0, (b, t, i), &dev)?;
    let h0 = Tensor::randn(0f32, 0.5, (2, b, h), &dev)?;
    let (out, _) = model.forward(&x, Some(&h0), false)?;
    let steps = model.forward_steps(&x, Some(&h0))?;
    assert_eq!(steps.len(), t);
    assert!(max_diff(&Tensor::stack(&steps, 1)?, &out) < 1e-6);

    let probe = Tensor::randn(0f32, 1.0, (b, t, h), &dev)?;
    let (tapped, taps) = model.forward_steps_with_taps(&x, Some(&h0))?;
    assert!(max_diff(&Tensor::stack(&tapped, 1)?, &out) < 1e-6);
    let loss = (Tensor::stack(&tapped, 1)? * &probe)?.sum_all()?;
    let grads = loss.backward()?;
    assert!(
        grads.get(&tapped[0]).is_none(),
        "candle drops non-variable gradients"
    );
    let g: Vec<Tensor> = taps
        .iter()
        .map(|v| grads.get(v.as_tensor()).expect("tap gradient").clone())
        .collect();
    assert!(max_diff(&g[t - 1], &probe.i((.., t - 1, ..))?) < 1e-6);

    // Layer 0's outputs, by a cell; then layer 1 as a cell, step by step.
    let cell0 = cell_from(&vm, 0, "", i, h)?;
    let mut state = h0.i(0)?;
    let mut layer0 = Vec::new();
    for step in 0..t {
        state = cell0.step(&x.i((.., step, ..))?, &state)?;
        layer0.push(state.clone());
    }
    let cell = cell_from(&vm, 1, "", h, h)?;
    for step in 0..t - 1 {
        let h_t = Var::from_tensor(&tapped[step].detach())?;
        let next = cell.step(&layer0[step + 1], h_t.as_tensor())?;
        let vjp = (next * &g[step + 1])?.sum_all()?.backward()?;
        let expected = (vjp.get(h_t.as_tensor()).expect("vjp") + probe.i((.., step, ..))?)?;
        assert!(max_diff(&g[step], &expected) < 1e-5, "step {step}");
    }
    Ok(())
}

#[test]
fn every_parameter_gets_a_gradient() -> Result<()> {
    let dev = Device::Cpu;
    let cfg = GruConfig::new(3, 4).with_layers(2).with_bidirectional(true);
    let (model, vm) = gru(cfg, 8)?;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 3), &dev)?)?;
    let h0 = Var::from_tensor(&Tensor::randn(0f32, 0.5, (4, 2, 4), &dev)?)?;
    let (out, h_n) = model.forward(x.as_tensor(), Some(h0.as_tensor()), true)?;
    let loss = (out.sqr()?.sum_all()? + h_n.sum_all()?)?;
    let grads = loss.backward()?;
    for var in vm.all_vars().iter().chain([&x, &h0]) {
        let g = grads.get(var.as_tensor()).expect("gradient");
        assert_eq!(g.dims(), var.dims());
        assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
    }
    Ok(())
}
