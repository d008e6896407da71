//! Rows of different lengths against PyTorch's packed sequences
//! (`pack_padded_sequence(..., enforce_sorted=False)` + `pad_packed_sequence`), on the
//! committed fixtures `*_packed_*.safetensors` of `fixtures/make_fixtures.py`: forward to
//! 1e-5, gradients of the input, the initial state and every weight to 1e-4, on the fused
//! and the reference kernels.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use lstm_core::{Family, Gru, Kernel, Lstm, LstmState, Nonlinearity, PackedBatch, Rnn};
use lstm_core::{LstmError, RecurrentConfig};
use lstm_tests::{check_run, get, load_fixture, param_names, varmap_from};

/// The fixture's `lengths` (stored as floats).
fn lengths(fx: &std::collections::HashMap<String, Tensor>) -> Vec<usize> {
    let l: Vec<f32> = get(fx, "lengths").to_vec1().expect("lengths");
    l.into_iter().map(|v| v as usize).collect()
}

fn check_packed(file: &str, family: Family, layers: usize, bidirectional: bool) {
    for kernel in [Kernel::Fused, Kernel::Reference] {
        let fx = load_fixture(file);
        let names = param_names(&fx);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let varmap = varmap_from(&fx, &refs, |n| n.to_string());
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let (_, _, input) = get(&fx, "x").dims3().expect("x dims");
        let cfg = lstm_tests::recurrent_config(&fx, input)
            .with_layers(layers)
            .with_bidirectional(bidirectional);
        let x = Var::from_tensor(get(&fx, "x")).expect("x");
        let h0 = Var::from_tensor(get(&fx, "h0")).expect("h0");
        let batch = PackedBatch::new(x.as_tensor(), &lengths(&fx)).expect("batch");
        let tag = format!("{file} {kernel:?}");
        match family {
            Family::Lstm => {
                let c0 = Var::from_tensor(get(&fx, "c0")).expect("c0");
                let lstm = Lstm::new(cfg, vb).expect("lstm").with_kernel(kernel);
                let state = LstmState {
                    h: h0.as_tensor().clone(),
                    c: c0.as_tensor().clone(),
                };
                let (out, s) = lstm
                    .forward_packed(&batch, Some(&state), true)
                    .expect("run");
                let outputs = [("out", &out), ("h_n", &s.h), ("c_n", &s.c)];
                let inputs = [("x", &x), ("h0", &h0), ("c0", &c0)];
                check_run(&fx, &tag, &outputs, &inputs, &varmap);
            }
            Family::Gru | Family::Rnn(_) => {
                let h = Some(h0.as_tensor());
                let (out, h_n) = match family {
                    Family::Gru => Gru::new(cfg, vb)
                        .expect("gru")
                        .with_kernel(kernel)
                        .forward_packed(&batch, h, true),
                    Family::Rnn(nl) => Rnn::new_with_nonlinearity(cfg, nl, vb)
                        .expect("rnn")
                        .with_kernel(kernel)
                        .forward_packed(&batch, h, true),
                    Family::Lstm => unreachable!(),
                }
                .expect("run");
                let outputs = [("out", &out), ("h_n", &h_n)];
                check_run(&fx, &tag, &outputs, &[("x", &x), ("h0", &h0)], &varmap);
            }
        }
    }
}

#[test]
fn packed_lstm_matches_torch() {
    check_packed(
        "lstm_packed_bidir_2layer.safetensors",
        Family::Lstm,
        2,
        true,
    );
    check_packed("lstm_packed_1layer.safetensors", Family::Lstm, 1, false);
}

#[test]
fn packed_projected_lstm_matches_torch() {
    let file = "lstm_proj_packed_bidir_2layer.safetensors";
    check_packed(file, Family::Lstm, 2, true);
}

#[test]
fn packed_gru_matches_torch() {
    check_packed("gru_packed_bidir_2layer.safetensors", Family::Gru, 2, true);
}

#[test]
fn packed_rnn_matches_torch() {
    let tanh = Family::Rnn(Nonlinearity::Tanh);
    check_packed("rnn_packed_bidir_2layer.safetensors", tanh, 2, true);
    let relu = Family::Rnn(Nonlinearity::Relu);
    check_packed("rnn_relu_packed_bidir_2layer.safetensors", relu, 2, true);
}

#[test]
fn a_nan_in_the_padding_changes_nothing() -> Result<(), LstmError> {
    let fx = load_fixture("gru_packed_bidir_2layer.safetensors");
    let lengths = lengths(&fx);
    let x = get(&fx, "x");
    let (b, t, i) = x.dims3()?;
    let mut values: Vec<f32> = x.flatten_all()?.to_vec1()?;
    for (r, &l) in lengths.iter().enumerate() {
        values[(r * t + l) * i..(r + 1) * t * i].fill(f32::NAN);
    }
    let poisoned = Tensor::from_vec(values, (b, t, i), &Device::Cpu)?;
    let names = param_names(&fx);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for kernel in [Kernel::Fused, Kernel::Reference] {
        let varmap = varmap_from(&fx, &refs, |n| n.to_string());
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let cfg = RecurrentConfig::new(i, 4)
            .with_layers(2)
            .with_bidirectional(true);
        let gru = Gru::new(cfg, vb)?.with_kernel(kernel);
        let batch = PackedBatch::new(&poisoned, &lengths)?;
        let (out, h_n) = gru.forward_packed(&batch, Some(get(&fx, "h0")), true)?;
        let loss = (out.sum_all()? + h_n.sum_all()?)?;
        let grads = loss.backward()?;
        let data = varmap.data().lock().expect("varmap lock");
        for (name, var) in data.iter() {
            let g = grads.get(var.as_tensor()).expect("gradient");
            let finite = g
                .flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .all(|v| v.is_finite());
            assert!(finite, "{kernel:?}: gradient of {name} is not finite");
        }
        let diff = lstm_tests::max_abs_diff(&out, get(&fx, "out"));
        assert!(diff <= 1e-5, "{kernel:?}: out differs by {diff}");
    }
    Ok(())
}
