//! SVG plots of a regression run, drawn with [plotters]: the book's "Time-Series
//! Prediction" figure (actual against predicted values over every row, with a red dashed
//! vertical line where the test period starts) and the training loss per epoch.
//!
//! SVG needs no system fonts: the text is left to whatever displays the file. The
//! renderers return the SVG as a string; the `plot_*` functions write it to a file,
//! atomically.
//!
//! plotters draws no dashed strokes in SVG (its `DashedLineSeries` is a run of short
//! segments), so the boundary line is drawn in a marker colour and given a real
//! `stroke-dasharray` afterwards: one `<polyline>`, dashed by the viewer.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{IoContext, Result, TrainError};

/// The book's title of the prediction figure.
pub const PREDICTION_TITLE: &str = "Time-Series Prediction";

/// Width and height of every figure, in pixels.
const SIZE: (u32, u32) = (1000, 560);

/// matplotlib's default cycle (`C0`, `C1`, `C2`, `C4`, `C5`): actual, then predictions.
const PALETTE: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// The colour the boundary is drawn in, replaced by red plus a dash pattern afterwards.
const MARKER: RGBColor = RGBColor(0xfe, 0x00, 0x01);
const MARKER_SVG: &str = "stroke=\"#FE0001\"";
const DASHED_RED_SVG: &str = "stroke=\"#FF0000\" stroke-dasharray=\"9,6\"";

fn plot_error(what: &str, message: impl std::fmt::Display) -> TrainError {
    TrainError::Plot {
        what: what.to_string(),
        message: message.to_string(),
    }
}

/// Draws on an SVG canvas of [`SIZE`] and returns the document.
fn render(
    what: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> std::result::Result<(), String>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(what, e))?;
        draw(&root).map_err(|e| plot_error(what, e))?;
        root.present().map_err(|e| plot_error(what, e))?;
    }
    Ok(svg)
}

/// `1.25M`, `830k`, `0.042`: short tick labels for values of any size.
fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.1e}")
    }
}

/// Tick values for a log axis over `lo..hi` (both positive): 1-2-5 in each decade, or
/// 1 to 9 when the range is too narrow to show three of those.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let ticks = |mantissas: &[f64]| -> Vec<f64> {
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        (first..=last)
            .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let coarse = ticks(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 {
        coarse
    } else {
        ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

/// `lo..hi` of every value, widened by 5% on each side (and never empty).
fn padded_range<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad, hi + pad)
}

/// The prediction figure as SVG: `actual` and each of `predictions` (a legend label and
/// one value per row) over `dates`, a red dashed vertical line at row `boundary` (the
/// first test row; the book's `axvline(x=200)`), the title [`PREDICTION_TITLE`], dates on
/// the x axis, `y_label` on the y axis and a legend.
///
/// Errors ([`TrainError::Plot`]): no rows, series of different lengths, a boundary past
/// the last row, or a value that is not finite.
pub fn prediction_svg(
    dates: &[String],
    actual: &[f64],
    predictions: &[(&str, &[f64])],
    boundary: usize,
    y_label: &str,
) -> Result<String> {
    let what = "prediction plot";
    let n = dates.len();
    if n == 0 {
        return Err(plot_error(what, "no rows to plot"));
    }
    if predictions.len() + 1 > PALETTE.len() {
        return Err(plot_error(
            what,
            format!("at most {} prediction series", PALETTE.len() - 1),
        ));
    }
    let series: Vec<(&str, &[f64])> = std::iter::once(("Actual Data", actual))
        .chain(predictions.iter().copied())
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
    if boundary > n {
        return Err(plot_error(
            what,
            format!("boundary {boundary} is past the last of {n} rows"),
        ));
    }
    let (y_lo, y_hi) = padded_range(series.iter().flat_map(|(_, v)| v.iter()));
    let x_hi = (n.max(2) - 1) as f64;
    let date_label = |x: &f64| -> String {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            dates.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let y_fmt = |y: &f64| short_number(*y);
    let svg = render(what, |root| {
        let e = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
        let mut chart = ChartBuilder::on(root)
            .caption(PREDICTION_TITLE, ("sans-serif", 26))
            .margin(18)
            .margin_right(48)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..x_hi, y_lo..y_hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&date_label)
            .y_label_formatter(&y_fmt)
            .x_desc("Date")
            .y_desc(y_label)
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(e)?;
        for (k, (label, values)) in series.iter().enumerate() {
            let color = PALETTE[k];
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, &v)| (i as f64, v)),
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
                });
        }
        let b = boundary as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(b, y_lo), (b, y_hi)],
                MARKER.stroke_width(2),
            )))
            .map_err(e)?
            .label("Train | test")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], MARKER.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        Ok(())
    })?;
    Ok(svg.replace(MARKER_SVG, DASHED_RED_SVG))
}

/// The training loss per epoch as SVG, on a log y axis when every loss is positive.
///
/// Errors ([`TrainError::Plot`]): no losses, or one that is not finite.
pub fn loss_svg(losses: &[f64]) -> Result<String> {
    let points: Vec<(f64, f64)> = losses
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as f64, v))
        .collect();
    curve_svg(
        "Training loss (MSE, scaled target)",
        "Epoch",
        "Loss",
        &points,
        true,
    )
}

/// One curve `(x, y)` as SVG: the x axis from the first to the last x, the y axis on a
/// log scale when `log_y` is asked for and every y is positive (" (log scale)" is then
/// added to `y_desc`).
///
/// Errors ([`TrainError::Plot`]): no points, or a value that is not finite.
pub fn curve_svg(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
    log_y: bool,
) -> Result<String> {
    let what = "curve plot";
    if points.is_empty() {
        return Err(plot_error(what, "no values to plot"));
    }
    if let Some((x, y)) = points
        .iter()
        .find(|(x, y)| !x.is_finite() || !y.is_finite())
    {
        return Err(plot_error(what, format!("the value at {x} is {y}")));
    }
    let x_lo = points[0].0;
    let x_hi = points[points.len() - 1].0.max(x_lo + 1.0);
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let x_fmt = |x: &f64| format!("{x:.0}");
    let y_fmt = |y: &f64| short_number(*y);
    render(what, |root| {
        let e = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(title, ("sans-serif", 24))
            .margin(18)
            .margin_right(36)
            .x_label_area_size(48)
            .y_label_area_size(72);
        let style = PALETTE[0].stroke_width(2);
        if log_y && lo > 0.0 {
            let (lo, hi) = if hi > lo {
                (lo, hi)
            } else {
                (lo * 0.5, hi * 2.0)
            };
            let (lo, hi) = (lo / 1.15, hi * 1.15);
            let y = (lo..hi).log_scale().with_key_points(log_ticks(lo, hi));
            let mut chart = builder.build_cartesian_2d(x_lo..x_hi, y).map_err(e)?;
            chart
                .configure_mesh()
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .x_desc(x_desc)
                .y_desc(format!("{y_desc} (log scale)"))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.12))
                .draw()
                .map_err(e)?;
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(e)?;
        } else {
            let (lo, hi) = padded_range(ys.iter());
            let mut chart = builder.build_cartesian_2d(x_lo..x_hi, lo..hi).map_err(e)?;
            chart
                .configure_mesh()
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .x_desc(x_desc)
                .y_desc(y_desc)
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.12))
                .draw()
                .map_err(e)?;
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(e)?;
        }
        Ok(())
    })
}

/// A curve ([`curve_svg`]) written to `path`.
pub fn plot_curve(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
    log_y: bool,
) -> Result<()> {
    write_file(path, &curve_svg(title, x_desc, y_desc, points, log_y)?)
}

/// Writes `text` to `path` atomically (a temporary file beside it, then a rename).
fn write_file(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot.svg".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// The book's figure for one model ([`prediction_svg`] with the legend "Predicted
/// Data"), written to `path`.
pub fn plot_predictions(
    path: &Path,
    dates: &[String],
    actual: &[f64],
    predicted: &[f64],
    boundary: usize,
    y_label: &str,
) -> Result<()> {
    let svg = prediction_svg(
        dates,
        actual,
        &[("Predicted Data", predicted)],
        boundary,
        y_label,
    )?;
    write_file(path, &svg)
}

/// The actual values and several models' predictions (`(legend label, values)`, at most
/// four) in one figure, written to `path`.
pub fn plot_predictions_multi(
    path: &Path,
    dates: &[String],
    actual: &[f64],
    predictions: &[(&str, &[f64])],
    boundary: usize,
    y_label: &str,
) -> Result<()> {
    let svg = prediction_svg(dates, actual, predictions, boundary, y_label)?;
    write_file(path, &svg)
}

/// The loss per epoch ([`loss_svg`]), written to `path`.
pub fn plot_losses(path: &Path, losses: &[f64]) -> Result<()> {
    write_file(path, &loss_svg(losses)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("2020-{:02}-{:02}", 1 + i / 28, 1 + i % 28))
            .collect()
    }

    #[test]
    fn prediction_figure_has_title_dashed_boundary_legend_and_dates() -> Result<()> {
        let d = dates(60);
        let actual: Vec<f64> = (0..60)
            .map(|i| 1e6 * (1.0 + (i as f64 / 5.0).sin()))
            .collect();
        let predicted: Vec<f64> = actual.iter().map(|v| v * 0.9 + 1e5).collect();
        let svg = prediction_svg(&d, &actual, &[("Predicted Data", &predicted)], 40, "Volume")?;
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains(PREDICTION_TITLE));
        assert!(svg.contains("Actual Data") && svg.contains("Predicted Data"));
        assert!(svg.contains("Volume") && svg.contains("Date"));
        assert!(svg.contains("2020-01-01"), "no date tick labels");
        // The boundary and its legend sample: dashed and red, the marker colour gone.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert!(!svg.contains("#FE0001"));
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
        let d = dates(30);
        let actual: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let a: Vec<f64> = actual.iter().map(|v| v + 1.0).collect();
        let b: Vec<f64> = actual.iter().map(|v| v - 1.0).collect();
        let c: Vec<f64> = actual.iter().map(|v| v * 1.1).collect();
        let svg = prediction_svg(
            &d,
            &actual,
            &[("lstm", &a), ("gru", &b), ("bilstm", &c)],
            20,
            "y",
        )?;
        for label in ["lstm", "gru", "bilstm", "Actual Data"] {
            assert!(
                svg.contains(&format!(">\n{label}\n</text>")),
                "no legend entry {label}"
            );
        }
        for color in ["#1F77B4", "#FF7F0E", "#2CA02C", "#9467BD"] {
            assert!(svg.contains(color), "no series in {color}");
        }
        let path = std::env::temp_dir().join(format!("lstm-plot-{}.svg", std::process::id()));
        plot_predictions_multi(&path, &d, &actual, &[("lstm", &a)], 20, "y")?;
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains(PREDICTION_TITLE));
        std::fs::remove_file(&path).unwrap();
        Ok(())
    }

    #[test]
    fn bad_series_are_errors_not_panics() {
        let d = dates(10);
        let ok = vec![1.0; 10];
        let short = vec![1.0; 9];
        let mut nan = ok.clone();
        nan[3] = f64::NAN;
        for (p, boundary, needle) in [
            (&short, 5, "9 values"),
            (&nan, 5, "not finite"),
            (&ok, 11, "boundary"),
        ] {
            let err = prediction_svg(&d, &ok, &[("p", p)], boundary, "y").unwrap_err();
            assert!(matches!(err, TrainError::Plot { .. }), "{err:?}");
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert!(prediction_svg(&[], &[], &[], 0, "y").is_err());
        assert!(loss_svg(&[]).is_err());
        assert!(loss_svg(&[0.1, f64::INFINITY]).is_err());
        // A flat series and a single row still draw.
        assert!(prediction_svg(&d[..1], &ok[..1], &[("p", &ok[..1])], 1, "y").is_ok());
    }

    #[test]
    fn log_ticks_are_round_numbers_inside_the_range() {
        let wide = log_ticks(0.006, 0.6);
        let expected = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5];
        assert_eq!(wide.len(), expected.len(), "{wide:?}");
        assert!(
            wide.iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-12),
            "{wide:?}"
        );
        let narrow = log_ticks(0.027, 0.18);
        assert_eq!(narrow.len(), 8, "{narrow:?}");
        assert!(narrow.iter().all(|v| (0.027..=0.18).contains(v)));
        assert!((narrow[0] - 0.03).abs() < 1e-12, "{narrow:?}");
    }

    #[test]
    fn loss_figure_uses_a_log_axis_when_it_can() -> Result<()> {
        let losses: Vec<f64> = (0..200).map(|i| 0.5 * (-(i as f64) / 40.0).exp()).collect();
        let svg = loss_svg(&losses)?;
        assert!(svg.contains("log scale") && svg.contains("Epoch"));
        let with_zero = loss_svg(&[0.2, 0.1, 0.0])?;
        assert!(!with_zero.contains("log scale"));
        assert!(loss_svg(&[0.3])?.contains("log scale"));
        Ok(())
    }
}
