//! PyTorch state dicts in both directions, on committed files written by
//! `fixtures/make_fixtures.py` exactly as a user would (`save_file(model.state_dict())`).

use candle_core::{DType, Device};
use candle_nn::VarMap;
use lstm_core::{
    load_state_dict, save_state_dict, seeded_var_builder, ClassifierConfig, Family, LstmError,
    SequenceClassifier,
};
use lstm_tests::{fixtures_dir, get, load_fixture, max_abs_diff};

/// The book's classifier (`book_cell`: its from-scratch cell) with an LSTM of `hidden`.
fn classifier(book_cell: bool, hidden: usize, layers: usize) -> (VarMap, SequenceClassifier) {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 0, DType::F32, &Device::Cpu);
    let cfg = ClassifierConfig {
        hidden_size: hidden,
        num_layers: layers,
        book_cell,
        ..ClassifierConfig::mnist(Family::Lstm)
    };
    let model = SequenceClassifier::new(cfg, vb).expect("model");
    (varmap, model)
}

/// Names and shapes of a safetensors file, sorted.
fn entries(path: &std::path::Path) -> Vec<(String, Vec<usize>)> {
    let mut e: Vec<(String, Vec<usize>)> = candle_core::safetensors::load(path, &Device::Cpu)
        .expect("load")
        .into_iter()
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect();
    e.sort();
    e
}

#[test]
fn torch_state_dicts_load_into_the_classifier_and_give_torch_logits() {
    for (name, book_cell, layers) in [("classifier_cell", true, 1), ("classifier_layer", false, 2)]
    {
        let (varmap, model) = classifier(book_cell, 16, layers);
        let path = fixtures_dir().join(format!("{name}.safetensors"));
        load_state_dict(&varmap, &path).expect("strict load of the torch state dict");
        let io = load_fixture(&format!("{name}_io.safetensors"));
        let logits = model.logits(get(&io, "x"), false).expect("forward");
        let diff = max_abs_diff(&logits, get(&io, "logits"));
        assert!(
            diff < 1e-5,
            "{name}: logits differ from PyTorch's by {diff}"
        );

        // Export: exactly the names and shapes torch's load_state_dict(strict=True) needs.
        let out = std::env::temp_dir().join(format!("lstm-export-{}-{name}", std::process::id()));
        save_state_dict(&varmap, &out).expect("save");
        assert_eq!(entries(&out), entries(&path), "{name}");
        std::fs::remove_file(out).ok();
    }
}

#[test]
fn a_state_dict_of_another_model_lists_every_difference() {
    // The 2-layer torch model into a 1-layer model of hidden 8.
    let (varmap, _) = classifier(false, 8, 1);
    let path = fixtures_dir().join("classifier_layer.safetensors");
    let err = load_state_dict(&varmap, &path).unwrap_err();
    let LstmError::StateDict { mismatch, .. } = &err else {
        panic!("{err:?}");
    };
    let unexpected: Vec<&str> = mismatch
        .unexpected
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        unexpected,
        [
            "lstm.bias_hh_l1",
            "lstm.bias_ih_l1",
            "lstm.weight_hh_l1",
            "lstm.weight_ih_l1"
        ]
    );
    assert!(mismatch.missing.is_empty());
    let text = err.to_string();
    assert!(text.contains("classifier_layer.safetensors"), "{text}");
    assert!(
        text.contains("lstm.weight_hh_l0: expected [32, 8], found [64, 16]"),
        "{text}"
    );
    assert!(
        text.contains("fc.weight: expected [10, 8], found [10, 16]"),
        "{text}"
    );

    // The book's cell model's state dict into the layer model: another kind.
    let (varmap, _) = classifier(false, 16, 1);
    let err = load_state_dict(&varmap, &fixtures_dir().join("classifier_cell.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing from the file"), "{err}");
    assert!(err.contains("lstm.weight_ih_l0 [64, 28]"), "{err}");
    assert!(err.contains("lstm.x2h.weight [64, 28]"), "{err}");
}

/// The parameters of a parity fixture (PyTorch's own `weight_*` / `bias_*` names).
fn torch_params(
    fx: &std::collections::HashMap<String, candle_core::Tensor>,
) -> std::collections::HashMap<String, candle_core::Tensor> {
    fx.iter()
        .filter(|(k, _)| k.starts_with("weight_") || k.starts_with("bias_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn torch_lstm_and_gru_state_dicts_with_reverse_layers_load_through_the_public_api() {
    use lstm_core::{assign_state_dict, Gru, GruConfig, Lstm, LstmConfig, LstmState};
    let source = std::path::Path::new("nn.LSTM state_dict");

    let fx = load_fixture("lstm_bidir_2layer.safetensors");
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 5, DType::F32, &Device::Cpu);
    let lstm = Lstm::new(
        LstmConfig::new(5, 6)
            .with_layers(2)
            .with_bidirectional(true),
        vb,
    )
    .expect("lstm");
    assign_state_dict(&varmap, &torch_params(&fx), source).expect("strict load");
    let state = LstmState {
        h: get(&fx, "h0").clone(),
        c: get(&fx, "c0").clone(),
    };
    let (out, _) = lstm
        .forward(get(&fx, "x"), Some(&state), false)
        .expect("forward");
    let diff = max_abs_diff(&out, get(&fx, "out"));
    assert!(diff < 1e-5, "bidirectional LSTM output differs by {diff}");

    let fx = load_fixture("gru_bidir_2layer.safetensors");
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 5, DType::F32, &Device::Cpu);
    let gru = Gru::new(
        GruConfig::new(5, 6).with_layers(2).with_bidirectional(true),
        vb,
    )
    .expect("gru");
    assign_state_dict(&varmap, &torch_params(&fx), source).expect("strict load");
    let (out, _) = gru
        .forward(get(&fx, "x"), Some(get(&fx, "h0")), false)
        .expect("forward");
    let diff = max_abs_diff(&out, get(&fx, "out"));
    assert!(diff < 1e-5, "bidirectional GRU output differs by {diff}");

    // Without the reverse direction the file has tensors the model lacks.
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 5, DType::F32, &Device::Cpu);
    Gru::new(GruConfig::new(5, 6).with_layers(2), vb).expect("gru");
    let err = assign_state_dict(&varmap, &torch_params(&fx), source)
        .unwrap_err()
        .to_string();
    assert!(err.contains("weight_hh_l1_reverse [18, 6]"), "{err}");
}
