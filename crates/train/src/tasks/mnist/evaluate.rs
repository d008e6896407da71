//! Loss and accuracy of a classifier on a split, and the class probabilities of one image.

use candle_core::{DType, Tensor, D};
use candle_nn::loss;
use lstm_core::SequenceClassifier;
use lstm_datasets::MnistSplit;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Loss and accuracy of a model on a split.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Summed cross-entropy over the split divided by its size (the book's `evaluate`);
    /// infinite for a model that diverged.
    #[serde(with = "crate::choice::lenient_f64")]
    pub loss: f64,
    /// Fraction of images classified correctly.
    pub accuracy: f64,
    /// Images evaluated.
    pub count: usize,
}

/// One validation point of a run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalPoint {
    /// Iterations done.
    pub iteration: usize,
    /// Loss of the last training batch.
    pub train_loss: f64,
    /// Validation loss and accuracy.
    pub validation: Evaluation,
}

/// Evaluates `model` on `split` in batches of `batch_size`.
pub fn evaluate(
    model: &SequenceClassifier,
    split: &MnistSplit,
    batch_size: usize,
) -> Result<Evaluation> {
    let n = split.len();
    if n == 0 {
        return Err(TrainError::Config(
            "nothing to evaluate: the split holds no images".into(),
        ));
    }
    let (mut loss_sum, mut correct) = (0f64, 0u64);
    let mut start = 0;
    while start < n {
        let len = batch_size.min(n - start);
        let images = split.images.narrow(0, start, len)?;
        let labels = split.labels.narrow(0, start, len)?;
        let logits = model.logits(&images, false)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        loss_sum += f64::from(
            loss::nll(&log_probs, &labels)?
                .affine(len as f64, 0.0)?
                .to_scalar::<f32>()?,
        );
        let predicted = logits.argmax(D::Minus1)?;
        correct += u64::from(
            predicted
                .eq(&labels)?
                .to_dtype(DType::U32)?
                .sum_all()?
                .to_scalar::<u32>()?,
        );
        start += len;
    }
    Ok(Evaluation {
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        count: n,
    })
}

/// Class probabilities of one image `(28, 28)` (already normalised), most likely first:
/// `(digit, probability)`.
pub fn predict_digit(model: &SequenceClassifier, image: &Tensor) -> Result<Vec<(usize, f32)>> {
    let logits = model.logits(&image.unsqueeze(0)?, false)?;
    let probs = candle_nn::ops::softmax(&logits, D::Minus1)?
        .squeeze(0)?
        .to_vec1::<f32>()?;
    let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(ranked)
}
