//! The book's "Time-Series Prediction" figure: the actual values and one to four models'
//! predictions over the dates, with a red dashed vertical line where the test period
//! starts.

use plotters::prelude::*;

use super::plot_error;
use super::style::{self, Axes, PALETTE};
use crate::error::Result;

/// The book's title of the prediction figure.
pub const PREDICTION_TITLE: &str = "Time-Series Prediction";

/// The legend label of the actual values.
const ACTUAL_LABEL: &str = "Actual Data";

/// The colour of the train/test boundary (drawn dashed).
const BOUNDARY: RGBColor = RED;

/// The data of a prediction figure.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictionFigure {
    /// One date per row: the x axis labels.
    pub dates: Vec<String>,
    /// The actual value of every row (legend "Actual Data").
    pub actual: Vec<f64>,
    /// One to four models' predictions: `(legend label, one value per row)`; the book's
    /// figure has one, `"Predicted Data"`.
    pub predictions: Vec<(String, Vec<f64>)>,
    /// The first test row, where the dashed boundary is drawn (the book's
    /// `axvline(x=200)`).
    pub boundary: usize,
    /// The y axis description (`"Volume (shares)"`).
    pub y_label: String,
}

impl PredictionFigure {
    /// The figure as SVG: the title [`PREDICTION_TITLE`], every series over the dates, the
    /// red dashed boundary, dates on the x axis, [`PredictionFigure::y_label`] on the y
    /// axis and a legend.
    ///
    /// Errors ([`crate::TrainError::Plot`]): no rows, more than four predictions, series
    /// of different lengths, a boundary past the last row, or a value that is not finite.
    pub fn svg(&self) -> Result<String> {
        let what = "prediction plot";
        let dates = &self.dates;
        let n = dates.len();
        if n == 0 {
            return Err(plot_error(what, "no rows to plot"));
        }
        if self.predictions.len() + 1 > PALETTE.len() {
            return Err(plot_error(
                what,
                format!("at most {} prediction series", PALETTE.len() - 1),
            ));
        }
        let series: Vec<(&str, &[f64])> = std::iter::once((ACTUAL_LABEL, self.actual.as_slice()))
            .chain(
                self.predictions
                    .iter()
                    .map(|(l, v)| (l.as_str(), v.as_slice())),
            )
            .collect();
        for (label, values) in &series {
            if values.len() != n {
                return Err(plot_error(
                    what,
                    format!("{label:?} has {} values for {n} dates", values.len()),
                ));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(plot_error(
                    what,
                    format!("{label:?} at {}: {} is not finite", dates[i], values[i]),
                ));
            }
        }
        if self.boundary > n {
            return Err(plot_error(
                what,
                format!("boundary {} is past the last of {n} rows", self.boundary),
            ));
        }
        let (y_lo, y_hi) = style::padded_range(series.iter().flat_map(|(_, v)| v.iter()));
        let x_hi = (n.max(2) - 1) as f64;
        let date_label = |x: &f64| -> String {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                dates.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let y_fmt = |y: &f64| style::short_number(*y);
        let svg = style::render(what, |root| {
            let mut chart = style::chart(root, PREDICTION_TITLE)
                .build_cartesian_2d(0f64..x_hi, y_lo..y_hi)
                .map_err(|e| e.to_string())?;
            let axes = Axes {
                x_desc: "Date",
                y_desc: &self.y_label,
                x_fmt: &date_label,
                y_fmt: &y_fmt,
            };
            style::draw_mesh(&mut chart, &axes)?;
            for (k, (label, values)) in series.iter().enumerate() {
                let points = values.iter().enumerate().map(|(i, &v)| (i as f64, v));
                style::draw_line(&mut chart, points, PALETTE[k].stroke_width(2), label)?;
            }
            let b = self.boundary as f64;
            let boundary = style::dash_key(BOUNDARY).stroke_width(2);
            style::draw_line(&mut chart, [(b, y_lo), (b, y_hi)], boundary, "Train | test")?;
            style::draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
        })?;
        Ok(style::apply_dashes(svg, [BOUNDARY]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrainError;

    fn dates(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("2020-{:02}-{:02}", 1 + i / 28, 1 + i % 28))
            .collect()
    }

    fn figure(
        n: usize,
        actual: &[f64],
        predictions: &[(&str, &[f64])],
        boundary: usize,
    ) -> PredictionFigure {
        PredictionFigure {
            dates: dates(n),
            actual: actual.to_vec(),
            predictions: predictions
                .iter()
                .map(|(l, v)| (l.to_string(), v.to_vec()))
                .collect(),
            boundary,
            y_label: "y".into(),
        }
    }

    #[test]
    fn prediction_figure_has_title_dashed_boundary_legend_and_dates() -> Result<()> {
        let actual: Vec<f64> = (0..60)
            .map(|i| 1e6 * (1.0 + (i as f64 / 5.0).sin()))
            .collect();
        let predicted: Vec<f64> = actual.iter().map(|v| v * 0.9 + 1e5).collect();
        let fig = PredictionFigure {
            y_label: "Volume".into(),
            ..figure(60, &actual, &[("Predicted Data", &predicted)], 40)
        };
        let svg = fig.svg()?;
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains(PREDICTION_TITLE));
        assert!(svg.contains("Actual Data") && svg.contains("Predicted Data"));
        assert!(svg.contains("Volume") && svg.contains("Date"));
        assert!(svg.contains("2020-01-01"), "no date tick labels");
        // The boundary and its legend sample: dashed and red, the stand-in colour gone.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert!(!svg.contains("#FF0001"));
        let dashed = svg
            .split('<')
            .find(|tag| tag.contains("stroke-dasharray"))
            .unwrap();
        assert!(
            dashed.starts_with("polyline") && dashed.contains("#FF0000"),
            "{dashed}"
        );
        // Two series lines of 60 points each.
        let long_lines = svg
            .split("<polyline")
            .filter(|t| {
                t.split("points=\"")
                    .nth(1)
                    .is_some_and(|p| p.split(' ').count() > 50)
            })
            .count();
        assert_eq!(long_lines, 2);
        Ok(())
    }

    #[test]
    fn multi_figure_draws_every_model() -> Result<()> {
        let actual: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let a: Vec<f64> = actual.iter().map(|v| v + 1.0).collect();
        let b: Vec<f64> = actual.iter().map(|v| v - 1.0).collect();
        let c: Vec<f64> = actual.iter().map(|v| v * 1.1).collect();
        let svg = figure(
            30,
            &actual,
            &[("lstm", &a), ("gru", &b), ("bilstm", &c)],
            20,
        )
        .svg()?;
        for label in ["lstm", "gru", "bilstm", "Actual Data"] {
            assert!(
                svg.contains(&format!(">\n{label}\n</text>")),
                "no legend entry {label}"
            );
        }
        for color in ["#1F77B4", "#FF7F0E", "#2CA02C", "#9467BD"] {
            assert!(svg.contains(color), "no series in {color}");
        }
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        let five = [("a", &a[..]), ("b", &b), ("c", &c), ("d", &a), ("e", &b)];
        let err = figure(30, &actual, &five, 20).svg().unwrap_err();
        assert!(err.to_string().contains("at most 4"), "{err}");
        Ok(())
    }

    #[test]
    fn bad_series_are_errors_not_panics() {
        let ok = vec![1.0; 10];
        let short = vec![1.0; 9];
        let mut nan = ok.clone();
        nan[3] = f64::NAN;
        for (p, boundary, needle) in [
            (&short, 5, "9 values"),
            (&nan, 5, "not finite"),
            (&ok, 11, "boundary"),
        ] {
            let err = figure(10, &ok, &[("p", p)], boundary).svg().unwrap_err();
            assert!(matches!(err, TrainError::Plot { .. }), "{err:?}");
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert!(figure(0, &[], &[], 0).svg().is_err());
        // A flat series and a single row still draw.
        assert!(figure(1, &ok[..1], &[("p", &ok[..1])], 1).svg().is_ok());
    }
}
