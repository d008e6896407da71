//! Training-loss figures: the regressor's loss per epoch.

use super::curves::{Curve, Figure};

/// The regressor's training loss per epoch (epoch 0 first), on a log y axis when every
/// loss is positive.
pub fn epoch_loss_figure(losses: &[f64]) -> Figure {
    let points = losses
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as f64, v))
        .collect();
    Figure::new("Training loss (MSE, scaled target)", "Epoch", "Loss")
        .with_log_y()
        .with_curve(Curve::new("", points, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    #[test]
    fn epoch_loss_uses_a_log_axis_when_it_can() -> Result<()> {
        let losses: Vec<f64> = (0..200).map(|i| 0.5 * (-(i as f64) / 40.0).exp()).collect();
        let svg = epoch_loss_figure(&losses).svg()?;
        assert!(svg.contains("log scale") && svg.contains("Epoch"));
        let with_zero = epoch_loss_figure(&[0.2, 0.1, 0.0]).svg()?;
        assert!(!with_zero.contains("log scale"));
        assert!(epoch_loss_figure(&[0.3]).svg()?.contains("log scale"));
        assert!(epoch_loss_figure(&[]).svg().is_err());
        assert!(epoch_loss_figure(&[0.1, f64::INFINITY]).svg().is_err());
        Ok(())
    }
}
