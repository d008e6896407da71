//! The chapter's sequence classifier: a recurrent layer read row by row, then a linear
//! head.

use candle_core::{IndexOp, Module, Tensor};
use candle_nn::{Linear, ModuleT, VarBuilder};

use crate::engine::Stack;
use crate::error::{LstmError, Result};
use crate::init::linear_torch;
use crate::{Family, Kernel, LstmCell, RecurrentConfig};

/// The shape of a [`SequenceClassifier`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassifierConfig {
    /// Features per step (28 pixels per MNIST row).
    pub input_size: usize,
    /// Hidden size of the recurrent layer (128 in the book).
    pub hidden_size: usize,
    /// Stacked recurrent layers (only 1 with `book_cell`).
    pub num_layers: usize,
    /// Output classes (10 digits).
    pub num_classes: usize,
    /// Dropout between recurrent layers, in training only.
    pub dropout: f32,
    /// The recurrent family: the LSTM (the book), the GRU (its comparison) or a plain RNN.
    pub family: Family,
    /// The book's from-scratch [`LstmCell`], unrolled in a Rust loop, instead of the
    /// engine's layers (an LSTM of one layer; parameters `lstm.x2h.*`, `lstm.h2h.*`).
    pub book_cell: bool,
}

impl ClassifierConfig {
    /// The book's MNIST model with a recurrent layer of `family`: 28 features, hidden 128,
    /// one layer, 10 classes.
    pub fn mnist(family: Family) -> Self {
        Self {
            input_size: 28,
            hidden_size: 128,
            num_layers: 1,
            num_classes: 10,
            dropout: 0.0,
            family,
            book_cell: false,
        }
    }

    /// The book's MNIST model with its from-scratch cell.
    pub fn book_cell() -> Self {
        Self {
            book_cell: true,
            ..Self::mnist(Family::Lstm)
        }
    }
}

#[derive(Clone, Debug)]
enum Recurrent {
    Cell(LstmCell),
    Stack(Stack),
}

/// The book's `LSTMModel`: zero initial state, the sequence through the recurrent layer,
/// the last hidden state through `fc = Linear(H, classes)`.
///
/// Parameter names: `lstm.x2h.*`/`lstm.h2h.*` for the book's cell, PyTorch's
/// `lstm.weight_ih_l0`… (`gru.…`, `rnn.…`) for the engine's layers, and `fc.weight`,
/// `fc.bias`.
#[derive(Clone, Debug)]
pub struct SequenceClassifier {
    recurrent: Recurrent,
    fc: Linear,
    config: ClassifierConfig,
}

impl SequenceClassifier {
    /// Builds the model under `vb` (`vb.pp(family.prefix())` and `vb.pp("fc")`).
    pub fn new(config: ClassifierConfig, vb: VarBuilder) -> Result<Self> {
        if config.num_classes == 0 {
            return Err(LstmError::Config("num_classes must be above 0".into()));
        }
        let recurrent_vb = vb.pp(config.family.prefix());
        let recurrent = if config.book_cell {
            if config.family != Family::Lstm || config.num_layers != 1 {
                return Err(LstmError::Config(format!(
                    "the book's cell is one LSTM layer, got {} layers of {} (use the \
                     engine's layers to stack or for other families)",
                    config.num_layers, config.family
                )));
            }
            Recurrent::Cell(LstmCell::new(
                config.input_size,
                config.hidden_size,
                recurrent_vb,
            )?)
        } else {
            let shape = RecurrentConfig::new(config.input_size, config.hidden_size)
                .with_layers(config.num_layers)
                .with_dropout(config.dropout);
            Recurrent::Stack(Stack::new(shape, config.family, recurrent_vb)?)
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
            Recurrent::Stack(s) => Recurrent::Stack(s.with_kernel(kernel)),
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
            Recurrent::Stack(stack) => {
                // The book reads `out[:, -1, :]`; for one direction that is `h_n` of the
                // last layer, which the fused kernel returns without the whole sequence.
                let h_n = stack.run(x, None, None, train, true)?.h_n;
                h_n.i(self.config.num_layers - 1)?
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
    fn every_model_gives_logits_and_names_parameters_as_the_book() -> Result<()> {
        let models = [
            ClassifierConfig::book_cell(),
            ClassifierConfig::mnist(Family::Lstm),
            ClassifierConfig::mnist(Family::Gru),
            ClassifierConfig::mnist(Family::Rnn(crate::Nonlinearity::Tanh)),
        ];
        for cfg in models {
            let vm = VarMap::new();
            let vb = seeded_var_builder(&vm, 3, DType::F32, &Device::Cpu);
            let model = SequenceClassifier::new(cfg, vb)?;
            let x = Tensor::randn(0f32, 1.0, (3, 28, 28), &Device::Cpu)?;
            assert_eq!(model.logits(&x, false)?.dims(), &[3, 10]);
            let data = vm.data().lock().unwrap();
            assert!(data.contains_key("fc.weight"));
            let (key, rows) = match (cfg.book_cell, cfg.family) {
                (true, _) => ("lstm.x2h.weight", 512),
                (false, Family::Lstm) => ("lstm.weight_ih_l0", 512),
                (false, Family::Gru) => ("gru.weight_ih_l0", 384),
                (false, Family::Rnn(_)) => ("rnn.weight_ih_l0", 128),
            };
            assert_eq!(data[key].dims(), &[rows, 28], "{cfg:?}");
        }
        Ok(())
    }

    #[test]
    fn cell_backbone_rejects_stacking() {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 3, DType::F32, &Device::Cpu);
        let mut cfg = ClassifierConfig::book_cell();
        cfg.num_layers = 2;
        assert!(matches!(
            SequenceClassifier::new(cfg, vb.clone()),
            Err(LstmError::Config(_))
        ));
        let gru_cell = ClassifierConfig {
            family: Family::Gru,
            ..ClassifierConfig::book_cell()
        };
        assert!(matches!(
            SequenceClassifier::new(gru_cell, vb),
            Err(LstmError::Config(_))
        ));
    }
}
