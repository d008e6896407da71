//! The chapter's stock-price regressor: a small recurrent layer read to its final hidden
//! state, then a two-layer head down to one number.
//!
//! The book's model (PyTorch):
//!
//! ```text
//! lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
//! fc_1 = nn.Linear(hidden_size, 128); fc = nn.Linear(128, 1)
//! _, (hn, cn) = lstm(x, (zeros, zeros))
//! out = fc(relu(fc_1(relu(hn.view(-1, hidden_size)))))
//! ```
//!
//! [`SequenceRegressor`] is that model with the recurrent part of any [`Family`], in one or
//! both directions: the book's LSTM, its GRU variant, its bidirectional LSTM (whose two
//! final states are concatenated, so the head reads `2H` features), or a plain RNN.

use candle_core::{IndexOp, Module, Tensor, D};
use candle_nn::{Linear, ModuleT, VarBuilder};

use crate::engine::Stack;
use crate::error::Result;
use crate::init::linear_torch;
use crate::{Family, PackedBatch, RecurrentConfig};

/// Width of the hidden layer of the head (`fc_1`), 128 as in the book.
pub const HEAD_SIZE: usize = 128;

/// The shape of a [`SequenceRegressor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegressorConfig {
    /// Features per step (5 price columns in the book).
    pub input_size: usize,
    /// Hidden size `H` of the recurrent layer (2 in the book).
    pub hidden_size: usize,
    /// Stacked recurrent layers (1 in the book).
    pub num_layers: usize,
    /// The recurrent family: the LSTM (the book), the GRU or a plain RNN.
    pub family: Family,
    /// Both directions, their final states concatenated for the head (the book's
    /// bidirectional LSTM).
    pub bidirectional: bool,
}

impl RegressorConfig {
    /// The book's model with a recurrent layer of `family`: 5 features, hidden size 2, one
    /// layer, one direction.
    pub fn book(family: Family) -> Self {
        Self {
            input_size: 5,
            hidden_size: 2,
            num_layers: 1,
            family,
            bidirectional: false,
        }
    }

    /// Directions `D`: 2 when bidirectional.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Features the head reads: `H·D`.
    pub fn head_input(&self) -> usize {
        self.hidden_size * self.directions()
    }
}

/// The book's stock-price model: final hidden state of the last layer (both directions
/// concatenated when bidirectional) → ReLU → `fc_1 = Linear(H·D, 128)` → ReLU →
/// `fc = Linear(128, 1)`.
///
/// Parameter names: `lstm.weight_ih_l0`… (or `gru.…`, `rnn.…`), `fc_1.weight`,
/// `fc_1.bias`, `fc.weight`, `fc.bias`, so a PyTorch `state_dict` of the book's model
/// loads unchanged. Every parameter is initialised as PyTorch does (uniform in ±1/√fan),
/// in PyTorch's order (recurrent layer, `fc_1`, `fc`), through the [`VarBuilder`].
#[derive(Clone, Debug)]
pub struct SequenceRegressor {
    recurrent: Stack,
    fc_1: Linear,
    fc: Linear,
    config: RegressorConfig,
}

impl SequenceRegressor {
    /// Builds the model under `vb` (`vb.pp(family.prefix())`, `vb.pp("fc_1")`,
    /// `vb.pp("fc")`).
    pub fn new(config: RegressorConfig, vb: VarBuilder) -> Result<Self> {
        let shape = RecurrentConfig::new(config.input_size, config.hidden_size)
            .with_layers(config.num_layers)
            .with_bidirectional(config.bidirectional);
        let recurrent = Stack::new(shape, config.family, vb.pp(config.family.prefix()))?;
        let fc_1 = linear_torch(config.head_input(), HEAD_SIZE, vb.pp("fc_1"))?;
        let fc = linear_torch(HEAD_SIZE, 1, vb.pp("fc"))?;
        Ok(Self {
            recurrent,
            fc_1,
            fc,
            config,
        })
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &RegressorConfig {
        &self.config
    }

    /// The final hidden state of the last layer, `(B, H·D)`, before the head.
    pub fn final_hidden(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h_n = self.recurrent.run(x, None, None, train, true)?.h_n;
        self.last_layer(&h_n)
    }

    /// [`SequenceRegressor::final_hidden`] of rows of different lengths: each row's state
    /// at its own last step (the reverse direction's after reading back from it to the
    /// first step), as PyTorch's model on a packed sequence. Padding is never read.
    pub fn final_hidden_packed(&self, batch: &PackedBatch, train: bool) -> Result<Tensor> {
        let h_n = self
            .recurrent
            .run_packed(batch, (None, None), train, true)?
            .h_n;
        self.last_layer(&h_n)
    }

    /// The last layer's slots of `h_n (layers·D, B, H)`, directions concatenated.
    fn last_layer(&self, h_n: &Tensor) -> Result<Tensor> {
        let dirs = self.config.directions();
        let first = (self.config.num_layers - 1) * dirs;
        if dirs == 1 {
            return Ok(h_n.i(first)?);
        }
        let parts = (first..first + dirs)
            .map(|slot| h_n.i(slot))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, D::Minus1)?)
    }

    /// Predictions `(B, 1)` for a batch of sequences `(B, T, input_size)`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.head(&self.final_hidden(x, train)?)
    }

    /// Predictions `(B, 1)` for rows of different lengths (a [`PackedBatch`] of
    /// `(B, T, input_size)`), in the batch's row order: row `r`'s prediction is the one
    /// [`SequenceRegressor::forward`] gives its first `lengths[r]` steps alone.
    pub fn forward_packed(&self, batch: &PackedBatch, train: bool) -> Result<Tensor> {
        self.head(&self.final_hidden_packed(batch, train)?)
    }

    /// ReLU → `fc_1` → ReLU → `fc` of the final hidden states `(B, H·D)`.
    fn head(&self, hidden: &Tensor) -> Result<Tensor> {
        let out = self.fc_1.forward(&hidden.relu()?)?.relu()?;
        Ok(self.fc.forward(&out)?)
    }
}

impl ModuleT for SequenceRegressor {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Ok(self.forward(xs, train)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_var_builder;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use crate::error::LstmError;
    use crate::{Gru, GruConfig, Lstm, LstmConfig};

    fn build(config: RegressorConfig, seed: u64) -> Result<(SequenceRegressor, VarMap)> {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, seed, DType::F32, &Device::Cpu);
        Ok((SequenceRegressor::new(config, vb)?, vm))
    }

    fn names(vm: &VarMap) -> Vec<String> {
        let mut names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    /// The book's three models, and a plain RNN.
    fn models() -> [RegressorConfig; 4] {
        let rnn = Family::Rnn(crate::Nonlinearity::Tanh);
        [
            RegressorConfig::book(Family::Lstm),
            RegressorConfig::book(Family::Gru),
            RegressorConfig {
                bidirectional: true,
                ..RegressorConfig::book(Family::Lstm)
            },
            RegressorConfig::book(rnn),
        ]
    }

    #[test]
    fn every_model_gives_one_output_per_sequence_with_the_books_names() -> Result<()> {
        for kind in models() {
            for (batch, steps, layers) in [(7, 1, 1), (3, 4, 2), (1, 2, 1)] {
                let cfg = RegressorConfig {
                    num_layers: layers,
                    ..kind
                };
                let (model, vm) = build(cfg, 1)?;
                let x = Tensor::randn(0f32, 1.0, (batch, steps, 5), &Device::Cpu)?;
                let hidden = model.final_hidden(&x, false)?;
                assert_eq!(hidden.dims(), &[batch, 2 * kind.directions()], "{kind:?}");
                let y = model.forward(&x, false)?;
                assert_eq!(y.dims(), &[batch, 1], "{kind:?}");
                let diff = (model.forward(&x, true)? - &y)?.abs()?.max_all()?;
                assert!(diff.to_scalar::<f32>()? < 1e-6, "{kind:?}: train vs eval");

                let data = vm.data().lock().unwrap();
                let p = kind.family.prefix();
                let gates = kind.family.gates();
                assert_eq!(data[&format!("{p}.weight_ih_l0")].dims(), &[gates * 2, 5]);
                assert_eq!(data[&format!("{p}.weight_hh_l0")].dims(), &[gates * 2, 2]);
                assert_eq!(
                    data.contains_key(&format!("{p}.weight_ih_l0_reverse")),
                    kind.bidirectional
                );
                assert_eq!(data["fc_1.weight"].dims(), &[128, 2 * kind.directions()]);
                assert_eq!(data["fc_1.bias"].dims(), &[128]);
                assert_eq!(data["fc.weight"].dims(), &[1, 128]);
                assert_eq!(data["fc.bias"].dims(), &[1]);
                let expected = 4 * layers * kind.directions() + 4;
                assert_eq!(data.len(), expected, "{kind:?} with {layers} layers");
            }
        }
        let (_, vm) = build(RegressorConfig::book(Family::Lstm), 0)?;
        assert_eq!(
            names(&vm),
            [
                "fc.bias",
                "fc.weight",
                "fc_1.bias",
                "fc_1.weight",
                "lstm.bias_hh_l0",
                "lstm.bias_ih_l0",
                "lstm.weight_hh_l0",
                "lstm.weight_ih_l0"
            ]
        );
        let (_, vm) = build(RegressorConfig::book(Family::Gru), 0)?;
        assert!(names(&vm).iter().all(|n| !n.starts_with("lstm.")));
        Ok(())
    }

    /// The head reads the last layer's final state: for the bidirectional model the
    /// forward direction's `h` at the last step and the backward one's at the first,
    /// both taken from the full output sequence.
    #[test]
    fn head_reads_the_last_layers_final_state_of_each_direction() -> Result<()> {
        let x = Tensor::randn(0f32, 1.0, (3, 4, 5), &Device::Cpu)?;
        let cfg = RegressorConfig {
            num_layers: 2,
            bidirectional: true,
            ..RegressorConfig::book(Family::Lstm)
        };
        let (model, vm) = build(cfg, 4)?;
        let hidden = model.final_hidden(&x, false)?;
        let vb = candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let lstm = Lstm::new(
            LstmConfig::new(5, 2)
                .with_layers(2)
                .with_bidirectional(true),
            vb.pp("lstm"),
        )?;
        let (out, _) = lstm.forward(&x, None, false)?;
        let fwd = out.i((.., 3, 0..2))?;
        let bwd = out.i((.., 0, 2..4))?;
        let expected = Tensor::cat(&[fwd, bwd], 1)?;
        let diff = (hidden - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");

        // The GRU: the last layer's h_n is the last step of its output.
        let cfg = RegressorConfig {
            num_layers: 2,
            ..RegressorConfig::book(Family::Gru)
        };
        let (model, vm) = build(cfg, 4)?;
        let vb = candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let gru = Gru::new(GruConfig::new(5, 2).with_layers(2), vb.pp("gru"))?;
        let (out, _) = gru.forward(&x, None, false)?;
        let diff = (model.final_hidden(&x, false)? - out.i((.., 3, ..))?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        Ok(())
    }

    /// Rows of different lengths: each row's prediction is the model's on its own real
    /// steps, for every family, bidirectional and stacked too; the padding's values do
    /// not matter; bad lengths are typed errors.
    #[test]
    fn packed_rows_predict_as_their_real_steps_alone() -> Result<()> {
        let lengths = [3, 1, 5, 2];
        let x = Tensor::randn(0f32, 1.0, (4, 5, 5), &Device::Cpu)?;
        let noise = Tensor::randn(0f32, 10.0, (4, 5, 5), &Device::Cpu)?;
        let mask: Vec<f32> = (0..4 * 5 * 5)
            .map(|i| f32::from(u8::from((i / 5) % 5 >= lengths[i / 25])))
            .collect();
        let mask = Tensor::from_vec(mask, (4, 5, 5), &Device::Cpu)?;
        let other_padding = (&x + noise.mul(&mask)?)?;
        for kind in models() {
            let (model, _) = build(
                RegressorConfig {
                    num_layers: 2,
                    ..kind
                },
                3,
            )?;
            let packed = model.forward_packed(&PackedBatch::new(&x, &lengths)?, false)?;
            assert_eq!(packed.dims(), &[4, 1], "{kind:?}");
            let repadded =
                model.forward_packed(&PackedBatch::new(&other_padding, &lengths)?, true)?;
            let packed = packed.to_vec2::<f32>()?;
            for (r, &len) in lengths.iter().enumerate() {
                let alone = model
                    .forward(&x.narrow(0, r, 1)?.narrow(1, 0, len)?, false)?
                    .to_vec2::<f32>()?;
                let diff = (packed[r][0] - alone[0][0]).abs();
                assert!(diff < 1e-5, "{kind:?} row {r}: {diff}");
            }
            for (r, (a, b)) in repadded.to_vec2::<f32>()?.iter().zip(&packed).enumerate() {
                let diff = (a[0] - b[0]).abs();
                assert!(
                    diff < 1e-5,
                    "{kind:?} row {r}: the padding was read ({diff})"
                );
            }
        }
        assert!(matches!(
            PackedBatch::new(&x, &[3, 0, 5, 2]),
            Err(LstmError::Lengths(_))
        ));
        Ok(())
    }

    #[test]
    fn same_seed_same_model_and_bad_sizes_are_errors() -> Result<()> {
        let x = Tensor::randn(0f32, 1.0, (4, 1, 5), &Device::Cpu)?;
        let cfg = RegressorConfig::book(Family::Lstm);
        let a = build(cfg, 9)?.0.forward(&x, false)?.to_vec2::<f32>()?;
        let b = build(cfg, 9)?.0.forward(&x, false)?.to_vec2::<f32>()?;
        let c = build(cfg, 10)?.0.forward(&x, false)?.to_vec2::<f32>()?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        for bad in [
            RegressorConfig {
                hidden_size: 0,
                ..cfg
            },
            RegressorConfig {
                num_layers: 0,
                ..cfg
            },
            RegressorConfig {
                input_size: 0,
                family: Family::Gru,
                ..cfg
            },
        ] {
            assert!(
                matches!(build(bad, 0), Err(LstmError::Config(_))),
                "{bad:?}"
            );
        }
        let (model, _) = build(cfg, 0)?;
        let wrong = Tensor::zeros((2, 1, 4), DType::F32, &Device::Cpu)?;
        assert!(matches!(
            model.forward(&wrong, false),
            Err(LstmError::Shape { .. })
        ));
        Ok(())
    }
}
