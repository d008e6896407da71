//! # lstm-core
//!
//! LSTM cells and multi-layer LSTMs on [candle], with PyTorch-compatible parameter
//! names and a fused CPU kernel for training.
//!
//! - [`LstmCell`]: the chapter's from-scratch cell (`x2h`, `h2h`, gates i, f, g, o).
//! - [`Lstm`]: a multi-layer, optionally bidirectional LSTM over `(batch, seq, features)`,
//!   loadable from a PyTorch `nn.LSTM` state dict, with `proj_size` projections; [`Gru`]
//!   and [`Rnn`] the same for `nn.GRU` and `nn.RNN`.
//! - [`PackedBatch`]: rows of different lengths, as PyTorch's packed sequences, for every
//!   family's `forward_packed` (no work on the padding).
//! - [`SequenceClassifier`]: the chapter's MNIST model (a recurrent layer of any
//!   [`Family`] read row by row, then a linear head).
//! - [`SequenceRegressor`]: the chapter's stock-price model (LSTM, GRU or RNN, one or two
//!   directions, final hidden state, then a two-layer head).
//! - [`memory`]: the first model run keeps freed memory in glibc's heap for the next
//!   training step (`LSTM_CORE_KEEP_MEMORY=0` turns it off).
//! - [`seeded_var_builder`]: reproducible initialisation.
//! - [`load_state_dict`] / [`save_state_dict`]: PyTorch state dicts as safetensors,
//!   loaded strictly with a listing of every name or shape that differs.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use lstm_core::{seeded_var_builder, Lstm, LstmConfig};
//!
//! let varmap = VarMap::new();
//! let vb = seeded_var_builder(&varmap, 42, DType::F32, &Device::Cpu);
//! let lstm = Lstm::new(LstmConfig::new(28, 64).with_layers(2), vb)?;
//! let x = Tensor::zeros((4, 10, 28), DType::F32, &Device::Cpu)?;
//! let (out, state) = lstm.forward(&x, None, false)?;
//! assert_eq!(out.dims(), &[4, 10, 64]);
//! assert_eq!(state.h.dims(), &[2, 4, 64]);
//! # Ok::<(), lstm_core::LstmError>(())
//! ```
//!
//! [candle]: https://github.com/huggingface/candle

#[macro_use]
mod single_state;
pub mod cell;
mod engine;
pub mod error;
mod fused;
pub mod gru;
pub mod init;
mod kernels;
pub mod lstm;
pub mod memory;
mod mismatch;
pub mod model;
pub mod packed;
pub mod regressor;
pub mod rnn;
pub mod state_dict;
#[cfg(test)]
mod test_util;
pub mod threads;

pub use cell::LstmCell;
pub use engine::{Family, Nonlinearity, RecurrentConfig};
pub use error::{LstmError, Result};
pub use gru::{Gru, GruCell, GruConfig};
pub use init::{linear_torch, seeded_var_builder, SplitMix64};
pub use lstm::{Lstm, LstmConfig};
pub use model::{ClassifierConfig, SequenceClassifier};
pub use packed::PackedBatch;
pub use regressor::{RegressorConfig, SequenceRegressor};
pub use rnn::{Rnn, RnnConfig};
pub use state_dict::{
    assign_state_dict, load_state_dict, read_safetensors, save_state_dict, StateDictMismatch,
};
pub use threads::configure_cpu_threads;

use candle_core::Tensor;

/// The instruction set the fused kernels run with on this CPU, detected at run time:
/// `"avx512"`, `"avx2+fma"` or `"baseline"`. No build flag is needed for the best one.
pub fn fused_instruction_set() -> &'static str {
    match fused::isa() {
        fused::Isa::Avx512 => "avx512",
        fused::Isa::Avx2 => "avx2+fma",
        fused::Isa::Baseline => "baseline",
    }
}

/// The recurrent state `(h, c)`.
///
/// For an [`LstmCell`] each is `(batch, H)`; for an [`Lstm`] each is
/// `(layers·directions, batch, H)`, as PyTorch's `(h_n, c_n)`.
#[derive(Clone, Debug)]
pub struct LstmState {
    /// Hidden state.
    pub h: Tensor,
    /// Cell state.
    pub c: Tensor,
}

/// How the recurrence is computed.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernel {
    /// One fused op per layer (f32 on the CPU; other tensors fall back to
    /// [`Kernel::Reference`]): the whole sequence, every direction, with vectorised gate
    /// kernels picked at run time for the CPU (AVX-512, AVX2 + FMA or baseline).
    #[default]
    Fused,
    /// Step by step with plain candle ops: the definition, and the path on other devices.
    Reference,
}
