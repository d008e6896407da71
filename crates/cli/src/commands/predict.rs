//! `lstm predict`: the digit in one PNG, with a trained MNIST model.

use candle_core::{Device, Tensor};
use lstm_datasets::{normalize_pixels, read_digit_image};
use lstm_train::{load_classifier, predict_digit};

use crate::failure::{during, setup, Failure};
use crate::flags::PredictArgs;
use crate::output::print;

/// `lstm predict`: the digit in one image.
pub(crate) fn run(args: PredictArgs) -> Result<(), Failure> {
    let (_, trained) = load_classifier(&args.checkpoint, args.weights.as_deref()).map_err(setup)?;
    let pixels = read_digit_image(&args.image).map_err(setup)?;
    let image =
        Tensor::from_vec(normalize_pixels(&pixels), (28, 28), &Device::Cpu).map_err(during)?;
    let ranked = predict_digit(&trained.model, &image).map_err(during)?;
    let (digit, p) = ranked[0];
    print(format_args!(
        "Predicted digit: {digit} (probability {p:.4})"
    ))?;
    let others: Vec<String> = ranked[1..4]
        .iter()
        .map(|(d, p)| format!("{d}: {p:.4}"))
        .collect();
    print(format_args!("Next most likely: {}", others.join(", ")))
}
