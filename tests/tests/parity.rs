//! Our LSTM against PyTorch, on the committed fixtures (`fixtures/make_fixtures.py`).
//!
//! Forward values must agree to 1e-5 and gradients to 1e-4 (max absolute difference),
//! on both the fused and the reference kernels.

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use candle_nn::VarBuilder;
use lstm_core::{Gru, GruConfig, Nonlinearity, Rnn, RnnConfig};
use lstm_core::{Kernel, Lstm, LstmCell, LstmState};
use lstm_tests::{check_run, get, load_fixture, max_abs_diff, varmap_from};
use lstm_tests::{FORWARD_TOL, GRAD_TOL};

const CELL_PARAMS: [(&str, &str); 4] = [
    ("weight_ih", "x2h.weight"),
    ("bias_ih", "x2h.bias"),
    ("weight_hh", "h2h.weight"),
    ("bias_hh", "h2h.bias"),
];

fn check_cell(file: &str, kernel: Kernel) {
    let fx = load_fixture(file);
    let torch_names: Vec<&str> = CELL_PARAMS.iter().map(|(t, _)| *t).collect();
    let varmap = varmap_from(&fx, &torch_names, |n| {
        CELL_PARAMS
            .iter()
            .find(|(t, _)| *t == n)
            .map(|(_, ours)| ours.to_string())
            .expect("known name")
    });
    let (seq, batch, input) = get(&fx, "x").dims3().expect("x dims");
    let hidden = get(&fx, "h0").dim(1).expect("h0 dims");
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cell = LstmCell::new(input, hidden, vb)
        .expect("cell")
        .with_kernel(kernel);
    let x = Var::from_tensor(get(&fx, "x")).expect("x");
    let h0 = Var::from_tensor(get(&fx, "h0")).expect("h0");
    let c0 = Var::from_tensor(get(&fx, "c0")).expect("c0");
    let mut state = LstmState {
        h: h0.as_tensor().clone(),
        c: c0.as_tensor().clone(),
    };
    let mut hs = Vec::new();
    for t in 0..seq {
        state = cell
            .step(&x.as_tensor().i(t).expect("x_t"), &state)
            .expect("step");
        hs.push(state.h.clone());
    }
    let hs = Tensor::stack(&hs, 0).expect("stack");
    assert_eq!(hs.dims(), &[seq, batch, hidden]);
    let out_diff = max_abs_diff(&hs, get(&fx, "hs"));
    let c_diff = max_abs_diff(&state.c, get(&fx, "c_last"));
    assert!(
        out_diff <= FORWARD_TOL,
        "{file} {kernel:?}: h differs by {out_diff}"
    );
    assert!(
        c_diff <= FORWARD_TOL,
        "{file} {kernel:?}: c differs by {c_diff}"
    );
    let loss = ((&hs * get(&fx, "probe_out")).unwrap().sum_all().unwrap()
        + (&state.c * get(&fx, "probe_c")).unwrap().sum_all().unwrap())
    .unwrap();
    let grads = loss.backward().expect("backward");
    let mut worst_grad = 0f32;
    let mut checks: Vec<(String, &Tensor)> = vec![
        ("x".into(), x.as_tensor()),
        ("h0".into(), h0.as_tensor()),
        ("c0".into(), c0.as_tensor()),
    ];
    let data = varmap.data().lock().unwrap();
    for (torch, ours) in CELL_PARAMS {
        checks.push((torch.to_string(), data[ours].as_tensor()));
    }
    for (name, t) in checks {
        let g = grads
            .get(t)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let diff = max_abs_diff(g, get(&fx, &format!("grad.{name}")));
        assert!(
            diff <= GRAD_TOL,
            "{file} {kernel:?}: grad {name} differs by {diff}"
        );
        worst_grad = worst_grad.max(diff);
    }
    eprintln!(
        "{file} {kernel:?}: forward max |diff| {:.2e}, gradient max |diff| {worst_grad:.2e}",
        out_diff.max(c_diff)
    );
}

#[test]
fn lstm_cell_matches_torch_lstm_cell() {
    for kernel in [Kernel::Fused, Kernel::Reference] {
        check_cell("lstm_cell.safetensors", kernel);
        check_cell("lstm_cell_b1.safetensors", kernel);
    }
}

fn check_lstm(file: &str, layers: usize, bidirectional: bool, kernel: Kernel) {
    let fx = load_fixture(file);
    let param_names = lstm_tests::param_names(&fx);
    let refs: Vec<&str> = param_names.iter().map(String::as_str).collect();
    let varmap = varmap_from(&fx, &refs, |n| n.to_string());
    let (_, _, input) = get(&fx, "x").dims3().expect("x dims");
    let cfg = lstm_tests::recurrent_config(&fx, input)
        .with_layers(layers)
        .with_bidirectional(bidirectional);
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let lstm = Lstm::new(cfg, vb).expect("lstm").with_kernel(kernel);
    let x = Var::from_tensor(get(&fx, "x")).expect("x");
    let h0 = Var::from_tensor(get(&fx, "h0")).expect("h0");
    let c0 = Var::from_tensor(get(&fx, "c0")).expect("c0");
    let state = LstmState {
        h: h0.as_tensor().clone(),
        c: c0.as_tensor().clone(),
    };
    let (out, s) = lstm
        .forward(x.as_tensor(), Some(&state), true)
        .expect("forward");
    let tag = format!("{file} {kernel:?}");
    let outputs = [("out", &out), ("h_n", &s.h), ("c_n", &s.c)];
    let inputs = [("x", &x), ("h0", &h0), ("c0", &c0)];
    check_run(&fx, &tag, &outputs, &inputs, &varmap);
}

#[test]
fn two_layer_lstm_matches_torch_nn_lstm() {
    for kernel in [Kernel::Fused, Kernel::Reference] {
        check_lstm("lstm_2layer.safetensors", 2, false, kernel);
        check_lstm("lstm_b1_seq1.safetensors", 1, false, kernel);
    }
}

#[test]
fn bidirectional_lstm_matches_torch_nn_lstm() {
    for kernel in [Kernel::Fused, Kernel::Reference] {
        check_lstm("lstm_bidir_2layer.safetensors", 2, true, kernel);
    }
}

#[test]
fn projected_lstm_matches_torch_nn_lstm_with_proj_size() {
    for kernel in [Kernel::Fused, Kernel::Reference] {
        check_lstm("lstm_proj_bidir_2layer.safetensors", 2, true, kernel);
    }
}

/// The single-state models (GRU, RNN) of `torch.nn`, by fixture.
#[derive(Clone, Copy, Debug)]
enum SingleState {
    Gru,
    Rnn(Nonlinearity),
}

/// Checks a GRU or RNN fixture on both kernels.
fn check_single_state(file: &str, kind: SingleState, layers: usize, bidirectional: bool) {
    for kernel in [Kernel::Fused, Kernel::Reference] {
        check_single_state_with(file, kind, layers, bidirectional, kernel);
    }
}

/// Checks a GRU or RNN fixture with [`check_run`].
fn check_single_state_with(
    file: &str,
    kind: SingleState,
    layers: usize,
    bidirectional: bool,
    kernel: Kernel,
) {
    let fx = load_fixture(file);
    let param_names = lstm_tests::param_names(&fx);
    let refs: Vec<&str> = param_names.iter().map(String::as_str).collect();
    let varmap = varmap_from(&fx, &refs, |n| n.to_string());
    let (_, _, input) = get(&fx, "x").dims3().expect("x dims");
    let hidden = get(&fx, "h0").dim(2).expect("h0 dims");
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let x = Var::from_tensor(get(&fx, "x")).expect("x");
    let h0 = Var::from_tensor(get(&fx, "h0")).expect("h0");
    let (out, h_n) = match kind {
        SingleState::Gru => {
            let cfg = GruConfig::new(input, hidden)
                .with_layers(layers)
                .with_bidirectional(bidirectional);
            Gru::new(cfg, vb).expect("gru").with_kernel(kernel).forward(
                x.as_tensor(),
                Some(h0.as_tensor()),
                true,
            )
        }
        SingleState::Rnn(nonlinearity) => {
            let cfg = RnnConfig::new(input, hidden)
                .with_layers(layers)
                .with_bidirectional(bidirectional);
            Rnn::new_with_nonlinearity(cfg, nonlinearity, vb)
                .expect("rnn")
                .with_kernel(kernel)
                .forward(x.as_tensor(), Some(h0.as_tensor()), true)
        }
    }
    .expect("forward");
    let tag = format!("{file} {kind:?} {kernel:?}");
    let outputs = [("out", &out), ("h_n", &h_n)];
    check_run(&fx, &tag, &outputs, &[("x", &x), ("h0", &h0)], &varmap);
}

#[test]
fn two_layer_gru_matches_torch_nn_gru() {
    check_single_state("gru_2layer.safetensors", SingleState::Gru, 2, false);
}

#[test]
fn bidirectional_gru_matches_torch_nn_gru() {
    check_single_state("gru_bidir_2layer.safetensors", SingleState::Gru, 2, true);
}

#[test]
fn two_layer_rnn_matches_torch_nn_rnn() {
    check_single_state(
        "rnn_2layer.safetensors",
        SingleState::Rnn(Nonlinearity::Tanh),
        2,
        false,
    );
}

#[test]
fn bidirectional_rnn_matches_torch_nn_rnn() {
    let tanh = SingleState::Rnn(Nonlinearity::Tanh);
    check_single_state("rnn_bidir_2layer.safetensors", tanh, 2, true);
}

#[test]
fn bidirectional_relu_rnn_matches_torch_nn_rnn_relu() {
    let relu = SingleState::Rnn(Nonlinearity::Relu);
    check_single_state("rnn_relu_bidir_2layer.safetensors", relu, 2, true);
}

#[test]
fn gru_with_batch_one_and_one_step_matches_torch() {
    check_single_state("gru_b1_seq1.safetensors", SingleState::Gru, 1, false);
}
