//! Training-loss figures: the regressor's loss per epoch, and the classifier's loss per
//! iteration (noisy raw values under a moving average).

use super::curves::{Curve, Figure, Line};

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

/// The classifier's training loss per iteration (iteration 1 first), on a log y axis when
/// every loss is positive: each iteration's loss thin and faint, and their moving average
/// over [`loss_window`] iterations bold on top. Drawing it fails (not this function) when
/// `losses` is empty or holds a value that is not finite.
pub fn training_loss_figure(losses: &[f64]) -> Figure {
    let window = loss_window(losses.len());
    let at_iteration = |values: &[f64]| -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect()
    };
    let average = at_iteration(&moving_average(losses, window));
    Figure::new("Training loss (cross-entropy)", "Iteration", "Loss")
        .with_log_y()
        .with_curve(Curve::new("per iteration", at_iteration(losses), 0).with_line(Line::Light))
        .with_curve(
            Curve::new(format!("mean of the last {window}"), average, 0).with_line(Line::Bold),
        )
}

/// The moving-average window for `n` losses: a fiftieth of them, at least one.
pub fn loss_window(n: usize) -> usize {
    (n / 50).max(1)
}

/// The trailing moving average of `values` over `window` of them: element `i` is the
/// mean of `values[i + 1 - window..=i]`, or of `values[..=i]` while fewer than `window`
/// precede it. A window of 0 is taken as 1.
fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(1);
    let mut sum = 0.0;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            sum += v;
            if i >= window {
                sum -= values[i - window];
            }
            sum / (i + 1).min(window) as f64
        })
        .collect()
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

    #[test]
    fn moving_average_is_trailing_with_a_short_start() {
        let avg = moving_average(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3);
        assert_eq!(avg, [1.0, 1.5, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(moving_average(&[4.0, 2.0], 0), [4.0, 2.0]);
        assert_eq!(moving_average(&[4.0, 2.0], 10), [4.0, 3.0]);
        assert!(moving_average(&[], 5).is_empty());
        assert_eq!(
            (loss_window(0), loss_window(99), loss_window(1000)),
            (1, 1, 20)
        );
    }

    #[test]
    fn training_loss_draws_raw_values_faint_and_their_mean_bold() -> Result<()> {
        let losses: Vec<f64> = (0..500)
            .map(|i| 2.3 * (-(i as f64) / 150.0).exp() * (1.0 + 0.3 * (i as f64).sin()))
            .collect();
        let fig = training_loss_figure(&losses);
        assert_eq!(fig.curves.len(), 2);
        let (raw, mean) = (&fig.curves[0], &fig.curves[1]);
        assert_eq!((raw.line, mean.line), (Line::Light, Line::Bold));
        assert_eq!(raw.points.len(), 500);
        assert_eq!(
            raw.points[0],
            (1.0, losses[0]),
            "x is the iteration, from 1"
        );
        assert_eq!(mean.points[499].0, 500.0);
        let last10: f64 = losses[490..].iter().sum::<f64>() / 10.0;
        assert!((mean.points[499].1 - last10).abs() < 1e-12);
        let svg = fig.svg()?;
        assert!(svg.contains("Loss (log scale)") && svg.contains("Iteration"));
        assert!(svg.contains("per iteration") && svg.contains("mean of the last 10"));
        assert!(svg.contains("stroke-width=\"1\"") && svg.contains("stroke-width=\"3\""));
        assert!(svg.contains("opacity=\"0.35\""), "the raw curve is faint");
        assert!(training_loss_figure(&[]).svg().is_err());
        assert!(training_loss_figure(&[0.5, f64::NAN, 0.4]).svg().is_err());
        Ok(())
    }
}
