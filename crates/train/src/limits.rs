//! Upper limits on settings, checked before anything is allocated: a hidden size of
//! 10⁹ or a million layers is a typo or an attack, and would otherwise abort the process
//! while allocating the model. The same checks run on command-line flags, on a run's
//! `config.json` and on a checkpoint's saved settings.

use crate::error::{Result, TrainError};

/// Largest hidden size.
pub const MAX_HIDDEN: usize = 4096;
/// Most stacked layers.
pub const MAX_LAYERS: usize = 16;
/// Largest batch.
pub const MAX_BATCH: usize = 65_536;
/// Most parameters a model may have (256 MB of `f32`; a checkpoint holds up to four
/// copies: weights, best weights, two Adam moments).
pub const MAX_PARAMETERS: u64 = 64_000_000;
/// Most training iterations (MNIST) of a run.
pub const MAX_ITERATIONS: usize = 1_000_000_000;
/// Most epochs of a stock run (each epoch's loss is kept).
pub const MAX_EPOCHS: usize = 1_000_000;
/// Largest `config.json` read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest weights file read (the most parameters, as `f64`, plus room for metadata).
pub const MAX_WEIGHTS_BYTES: u64 = MAX_PARAMETERS * 8 + (16 << 20);
/// Largest checkpoint read (four `f32` copies of the most parameters, plus progress).
pub const MAX_CHECKPOINT_BYTES: u64 = MAX_PARAMETERS * 16 + (64 << 20);

/// An error unless `1 <= value <= max`; `field` names the setting.
pub(crate) fn check_range(field: &str, value: usize, max: usize) -> Result<()> {
    let what = field.replace('_', " ");
    if value == 0 {
        return Err(TrainError::setting(
            field,
            format!("{what} must be at least 1"),
        ));
    }
    if value > max {
        return Err(TrainError::setting(
            field,
            format!("{what} = {value} is over the limit of {max}"),
        ));
    }
    Ok(())
}

/// Parameters of a recurrent stack with `gates` gate blocks per cell (LSTM 4, GRU 3,
/// plain RNN 1), `None` on overflow. Each layer and direction has `W_ih`, `W_hh` and
/// two biases.
pub fn recurrent_parameters(
    gates: u64,
    input: u64,
    hidden: u64,
    layers: u64,
    directions: u64,
) -> Option<u64> {
    let per_direction = |layer_input: u64| {
        gates
            .checked_mul(hidden)?
            .checked_mul(layer_input.checked_add(hidden)?.checked_add(2)?)
    };
    let first = per_direction(input)?.checked_mul(directions)?;
    let others = per_direction(hidden.checked_mul(directions)?)?
        .checked_mul(directions)?
        .checked_mul(layers.checked_sub(1)?)?;
    first.checked_add(others)
}

/// An error when a model of `parameters` (`None`: overflowed) is over
/// [`MAX_PARAMETERS`]; `what` describes the model's settings.
pub(crate) fn check_parameters(parameters: Option<u64>, what: &str) -> Result<()> {
    match parameters {
        Some(n) if n <= MAX_PARAMETERS => Ok(()),
        n => Err(TrainError::Config(format!(
            "the model ({what}) would have {} parameters, over the limit of {MAX_PARAMETERS}",
            n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_pytorch_and_do_not_wrap() {
        // nn.LSTM(28, 128): 4·128·(28 + 128 + 2) = 80,896.
        assert_eq!(recurrent_parameters(4, 28, 128, 1, 1), Some(80_896));
        // nn.LSTM(5, 2, num_layers=2, bidirectional=True): 2·(4·2·(5+2+2)) + 2·(4·2·(4+2+2)).
        assert_eq!(recurrent_parameters(4, 5, 2, 2, 2), Some(144 + 128));
        assert_eq!(recurrent_parameters(4, 28, u64::MAX, 1, 1), None);
        assert!(check_parameters(recurrent_parameters(4, 28, 4096, 16, 1), "x").is_err());
        let err = check_range("hidden", 50_000, MAX_HIDDEN).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting `hidden`: hidden = 50000 is over the limit of 4096"
        );
    }
}
