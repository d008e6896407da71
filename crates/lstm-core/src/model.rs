//! The chapter's sequence classifier: an LSTM read row by row, then a linear head.

use candle_core::{IndexOp, Module, Tensor};
use candle_nn::{Linear, ModuleT, VarBuilder};

use crate::error::{LstmError, Result};
use crate::init::linear_torch;
use crate::{Gru, GruConfig, Kernel, Lstm, LstmCell, LstmConfig};

/// Which recurrent part a [`SequenceClassifier`] uses.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backbone {
    /// The book's from-scratch [`LstmCell`], unrolled in a Rust loop (one layer).
    Cell,
    /// The multi-layer [`Lstm`], whose recurrence runs in the fused kernel.
    #[default]
    Layer,
    /// A multi-layer [`Gru`] (PyTorch's `nn.GRU`; parameters `gru.*`), in the fused
    /// kernel: the chapter's GRU comparison.
    Gru,
}

/// The shape of a [`SequenceClassifier`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassifierConfig {
    /// Features per step (28 pixels per MNIST row).
    pub input_size: usize,
    /// Hidden size of the LSTM (128 in the book).
    pub hidden_size: usize,
    /// Stacked LSTM layers (only 1 with [`Backbone::Cell`]).
    pub num_layers: usize,
    /// Output classes (10 digits).
    pub num_classes: usize,
    /// Dropout between LSTM layers, in training only.
    pub dropout: f32,
    /// Cell loop or layer.
    pub backbone: Backbone,
}

impl ClassifierConfig {
    /// The book's MNIST model: 28 features, hidden 128, one layer, 10 classes.
    pub fn mnist(backbone: Backbone) -> Self {
        Self {
            input_size: 28,
            hidden_size: 128,
            num_layers: 1,
            num_classes: 10,
            dropout: 0.0,
            backbone,
        }
    }
}

#[derive(Clone, Debug)]
enum Recurrent {
    Cell(LstmCell),
    Layer(Lstm),
    Gru(Gru),
}

/// The book's `LSTMModel`: zero initial state, the sequence through the LSTM, the last
/// hidden state through `fc = Linear(H, classes)`.
///
/// Parameter names: `lstm.x2h.*`/`lstm.h2h.*` for the cell backbone, `lstm.weight_ih_l0`…
/// for the layer backbone, `gru.weight_ih_l0`… for the GRU backbone, and `fc.weight`,
/// `fc.bias`.
#[derive(Clone, Debug)]
pub struct SequenceClassifier {
    recurrent: Recurrent,
    fc: Linear,
    config: ClassifierConfig,
}

impl SequenceClassifier {
    /// Builds the model under `vb` (`vb.pp("lstm")` or `vb.pp("gru")`, and `vb.pp("fc")`).
    pub fn new(config: ClassifierConfig, vb: VarBuilder) -> Result<Self> {
        if config.num_classes == 0 {
            return Err(LstmError::Config("num_classes must be above 0".into()));
        }
        let recurrent = match config.backbone {
            Backbone::Cell => {
                if config.num_layers != 1 {
                    return Err(LstmError::Config(format!(
                        "the book's cell model has one layer, got {} (use the layer backbone to stack)",
                        config.num_layers
                    )));
                }
                Recurrent::Cell(LstmCell::new(
                    config.input_size,
                    config.hidden_size,
                    vb.pp("lstm"),
                )?)
            }
            Backbone::Gru => Recurrent::Gru(Gru::new(
                GruConfig::new(config.input_size, config.hidden_size)
                    .with_layers(config.num_layers)
                    .with_dropout(config.dropout),
                vb.pp("gru"),
            )?),
            Backbone::Layer => Recurrent::Layer(Lstm::new(
                LstmConfig::new(config.input_size, config.hidden_size)
                    .with_layers(config.num_layers)
                    .with_dropout(config.dropout),
                vb.pp("lstm"),
            )?),
        };
        let fc = linear_torch(config.hidden_size, config.num_classes, vb.pp("fc"))?;
        Ok(Self {
            recurrent,
            fc,
            config,
        })
    }

    /// Selects the kernel of the recurrent part.
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.recurrent = match self.recurrent {
            Recurrent::Cell(c) => Recurrent::Cell(c.with_kernel(kernel)),
            Recurrent::Layer(l) => Recurrent::Layer(l.with_kernel(kernel)),
            Recurrent::Gru(g) => Recurrent::Gru(g.with_kernel(kernel)),
        };
        self
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Logits `(B, classes)` for a batch of sequences `(B, T, input_size)`.
    pub fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (batch, steps, _) = x.dims3()?;
        if steps == 0 {
            return Err(LstmError::Config("input has no time steps".into()));
        }
        let last = match &self.recurrent {
            Recurrent::Cell(cell) => {
                let state = cell.zero_state(batch, x.dtype(), x.device())?;
                cell.unroll(x, state)?.h
            }
            Recurrent::Gru(gru) => {
                let h_n = gru.forward_final(x, None, train)?;
                h_n.i(self.config.num_layers - 1)?
            }
            Recurrent::Layer(lstm) => {
                // The book reads `out[:, -1, :]`; for one direction that is `h_n` of the
                // last layer, which the fused kernel returns without the whole sequence.
                let state = lstm.forward_final(x, None, train)?;
                state.h.i(self.config.num_layers - 1)?
            }
        };
        Ok(self.fc.forward(&last)?)
    }
}

impl ModuleT for SequenceClassifier {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Ok(self.logits(xs, train)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_var_builder;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn both_backbones_give_logits_and_name_parameters_as_the_book() -> Result<()> {
        for backbone in [Backbone::Cell, Backbone::Layer, Backbone::Gru] {
            let vm = VarMap::new();
            let vb = seeded_var_builder(&vm, 3, DType::F32, &Device::Cpu);
            let model = SequenceClassifier::new(ClassifierConfig::mnist(backbone), vb)?;
            let x = Tensor::randn(0f32, 1.0, (3, 28, 28), &Device::Cpu)?;
            assert_eq!(model.logits(&x, false)?.dims(), &[3, 10]);
            let data = vm.data().lock().unwrap();
            assert!(data.contains_key("fc.weight"));
            let (key, rows) = match backbone {
                Backbone::Cell => ("lstm.x2h.weight", 512),
                Backbone::Layer => ("lstm.weight_ih_l0", 512),
                Backbone::Gru => ("gru.weight_ih_l0", 384),
            };
            assert_eq!(data[key].dims(), &[rows, 28], "{backbone:?}");
        }
        Ok(())
    }

    #[test]
    fn cell_backbone_rejects_stacking() {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 3, DType::F32, &Device::Cpu);
        let mut cfg = ClassifierConfig::mnist(Backbone::Cell);
        cfg.num_layers = 2;
        assert!(matches!(
            SequenceClassifier::new(cfg, vb),
            Err(LstmError::Config(_))
        ));
    }
}
