//! What a recurrent stack is: its shape ([`RecurrentConfig`]) and its family
//! ([`Family`]: LSTM, GRU or RNN with its non-linearity).

use crate::error::{LstmError, Result};

/// A recurrent family: what one step computes. [`crate::Lstm`], [`crate::Gru`] and
/// [`crate::Rnn`] are typed fronts over one engine that runs any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Long short-term memory: gates i, f, g, o, state `(h, c)` (`nn.LSTM`).
    Lstm,
    /// Gated recurrent unit: gates r, z, n, state `h` (`nn.GRU`).
    Gru,
    /// The plain (Elman) RNN, `h' = act(W_ih x + b_ih + W_hh h + b_hh)` (`nn.RNN`).
    Rnn(Nonlinearity),
}

impl Family {
    /// Gate blocks per step, the `G` of the `(G·H, ·)` weight shapes.
    pub fn gates(self) -> usize {
        match self {
            Family::Lstm => 4,
            Family::Gru => 3,
            Family::Rnn(_) => 1,
        }
    }

    /// Whether the state has a cell part `c` (the LSTM).
    pub fn has_cell(self) -> bool {
        self == Family::Lstm
    }

    /// The prefix of the family's parameters in PyTorch's models: `lstm`, `gru`, `rnn`.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Lstm => "lstm",
            Family::Gru => "gru",
            Family::Rnn(_) => "rnn",
        }
    }

    /// The family's usual name: `LSTM`, `GRU`, `RNN` (tanh) or `ReLU RNN`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Lstm => "LSTM",
            Family::Gru => "GRU",
            Family::Rnn(Nonlinearity::Tanh) => "RNN",
            Family::Rnn(Nonlinearity::Relu) => "ReLU RNN",
        }
    }
}

impl Default for Family {
    /// The LSTM, the chapter's model.
    fn default() -> Self {
        Family::Lstm
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The non-linearity of an [`crate::Rnn`], as `nn.RNN`'s `nonlinearity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `max(0, x)`.
    Relu,
}

/// The shape of a stack of recurrent layers: [`Lstm`](crate::Lstm), [`Gru`](crate::Gru) or
/// [`Rnn`](crate::Rnn) (as `LstmConfig`, `GruConfig`, `RnnConfig`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// Features per input step.
    pub input_size: usize,
    /// Size `H` of the hidden (and, for an LSTM, cell) state.
    pub hidden_size: usize,
    /// Stacked layers; layer `k > 0` reads the outputs of layer `k - 1`.
    pub num_layers: usize,
    /// Dropout on the outputs of every layer but the last, in training only.
    pub dropout: f32,
    /// Run a second direction from the last step to the first (`_reverse` parameters).
    pub bidirectional: bool,
    /// LSTM only: project `h` to this size with `weight_hr_l{k}` (`nn.LSTM`'s
    /// `proj_size`); 0 for none. Must be below `hidden_size`.
    pub proj_size: usize,
}

impl RecurrentConfig {
    /// One unidirectional layer without dropout.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Self {
            input_size,
            hidden_size,
            num_layers: 1,
            dropout: 0.0,
            bidirectional: false,
            proj_size: 0,
        }
    }

    /// Sets the number of stacked layers.
    pub fn with_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets the dropout between layers.
    pub fn with_dropout(mut self, dropout: f32) -> Self {
        self.dropout = dropout;
        self
    }

    /// Makes the layers bidirectional.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// Projects the LSTM's `h` to `proj_size` features (`nn.LSTM(proj_size=...)`).
    pub fn with_proj_size(mut self, proj_size: usize) -> Self {
        self.proj_size = proj_size;
        self
    }

    /// The size of `h` and of each direction's output: `proj_size`, or `hidden_size`
    /// without a projection.
    pub fn output_size(&self) -> usize {
        match self.proj_size {
            0 => self.hidden_size,
            p => p,
        }
    }

    /// Number of directions `D` (1 or 2).
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Checks that every size is usable.
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return Err(LstmError::Config(format!(
                "input size, hidden size and layers must all be above 0, got {self:?}"
            )));
        }
        if self.proj_size >= self.hidden_size {
            return Err(LstmError::Config(format!(
                "proj_size must be below hidden_size ({}), got {}",
                self.hidden_size, self.proj_size
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LstmError::Config(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }
}
