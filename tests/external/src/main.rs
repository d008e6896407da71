//! Builds a 2-layer LSTM with `lstm-core`, loads PyTorch's weights for it from the
//! committed fixture, runs a forward pass and checks it against PyTorch's output.

use std::path::PathBuf;
use std::process::ExitCode;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use lstm_core::{Lstm, LstmConfig, LstmState};

fn run() -> Result<f32, Box<dyn std::error::Error>> {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/lstm_2layer.safetensors");
    let tensors = candle_core::safetensors::load(&fixture, &Device::Cpu)?;
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    let lstm = Lstm::new(LstmConfig::new(5, 6).with_layers(2), vb)?;
    let state = LstmState {
        h: tensors["h0"].clone(),
        c: tensors["c0"].clone(),
    };
    let (out, final_state) = lstm.forward(&tensors["x"], Some(&state), false)?;
    let diff = |a: &candle_core::Tensor, b: &candle_core::Tensor| -> candle_core::Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    };
    let worst = diff(&out, &tensors["out"])?
        .max(diff(&final_state.h, &tensors["h_n"])?)
        .max(diff(&final_state.c, &tensors["c_n"])?);
    println!(
        "2-layer LSTM, output {:?}, max |diff| vs PyTorch {worst:.2e}",
        out.dims()
    );
    Ok(worst)
}

fn main() -> ExitCode {
    match run() {
        Ok(worst) if worst <= 1e-5 => ExitCode::SUCCESS,
        Ok(worst) => {
            eprintln!("output differs from PyTorch by {worst}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
