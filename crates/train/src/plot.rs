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
/// 1 to 9 when the range is too narrow to show three of those, or powers of ten only
/// (every k-th, k chosen for at most about ten) when it spans more than four decades.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi.log10() - lo.log10() > 4.0 {
        // Powers of ten, at most about ten of them.
        let (first, last) = (lo.log10().ceil() as i32, hi.log10().floor() as i32);
        let stride = ((last - first) / 10 + 1) as usize;
        let mut ticks: Vec<f64> = (first..=last)
            .rev()
            .step_by(stride)
            .map(|k| 10f64.powi(k))
            .collect();
        ticks.reverse();
        return ticks;
    }
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
    let curve = Curve {
        label: "",
        points,
        color: 0,
        dashed: false,
    };
    curves_svg(title, x_desc, y_desc, &[curve], log_y)
}

/// One line of a figure drawn by [`curves_svg`].
#[derive(Clone, Copy, Debug)]
pub struct Curve<'a> {
    /// The legend entry; a figure whose labels are all empty gets no legend.
    pub label: &'a str,
    /// The points `(x, y)`, in x order.
    pub points: &'a [(f64, f64)],
    /// Index into matplotlib's default colours: 0 blue, 1 orange, 2 green, 3 purple,
    /// 4 brown.
    pub color: usize,
    /// Draw the line dashed (`stroke-dasharray`) instead of solid.
    pub dashed: bool,
}

/// Several curves as SVG, with a legend: the x axis over every curve's x, the y axis on a
/// log scale when `log_y` is asked for and every y is positive (" (log scale)" is then
/// added to `y_desc`). A log axis over more than four decades is labelled at powers of
/// ten only (`1e-20`).
///
/// Errors ([`TrainError::Plot`]): no curves, an empty curve, a colour out of the
/// palette, or a value that is not finite.
pub fn curves_svg(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
    log_y: bool,
) -> Result<String> {
    let what = "curve plot";
    if curves.is_empty() || curves.iter().any(|c| c.points.is_empty()) {
        return Err(plot_error(what, "no values to plot"));
    }
    for c in curves {
        if c.color >= PALETTE.len() {
            return Err(plot_error(
                what,
                format!("{:?}: colour {} is not in the palette", c.label, c.color),
            ));
        }
        if let Some((x, y)) = c
            .points
            .iter()
            .find(|(x, y)| !x.is_finite() || !y.is_finite())
        {
            return Err(plot_error(what, format!("the value at {x} is {y}")));
        }
    }
    let x_lo = curves
        .iter()
        .map(|c| c.points[0].0)
        .fold(f64::INFINITY, f64::min);
    let x_hi = curves
        .iter()
        .map(|c| c.points[c.points.len() - 1].0)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(x_lo + 1.0);
    let ys: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .collect();
    // Dashed curves are drawn in a colour one bit off their own, then given their real
    // colour and a dash pattern in the SVG text (plotters draws no dashed strokes).
    let stroke_of = |c: &Curve| {
        let RGBColor(r, g, b) = PALETTE[c.color];
        if c.dashed {
            RGBColor(r, g, b ^ 1)
        } else {
            RGBColor(r, g, b)
        }
    };
    let legend = curves.iter().any(|c| !c.label.is_empty());
    let x_fmt = |x: &f64| format!("{x:.0}");
    let svg = render(what, |root| {
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
        macro_rules! draw_curves {
            ($chart:expr, $corner:expr) => {{
                for c in curves {
                    let style = stroke_of(c).stroke_width(2);
                    let series = $chart
                        .draw_series(LineSeries::new(c.points.iter().copied(), style))
                        .map_err(e)?;
                    if !c.label.is_empty() {
                        series.label(c.label).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 28, y)], style)
                        });
                    }
                }
                if legend {
                    $chart
                        .configure_series_labels()
                        .position($corner)
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK.mix(0.4))
                        .label_font(("sans-serif", 15))
                        .draw()
                        .map_err(e)?;
                }
            }};
        }
        if log_y && lo > 0.0 {
            let (lo, hi) = if hi > lo {
                (lo, hi)
            } else {
                (lo * 0.5, hi * 2.0)
            };
            let (lo, hi) = (lo / 1.15, hi * 1.15);
            let wide = hi.log10() - lo.log10() > 4.0;
            let y_fmt = |y: &f64| {
                if wide {
                    format!("{y:.0e}")
                } else {
                    short_number(*y)
                }
            };
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
            let (l0, l1) = (lo.log10(), hi.log10());
            let corner = emptiest_corner(curves, (x_lo, x_hi), |y| (y.log10() - l0) / (l1 - l0));
            draw_curves!(chart, corner);
        } else {
            let (lo, hi) = padded_range(ys.iter());
            let y_fmt = |y: &f64| short_number(*y);
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
            let corner = emptiest_corner(curves, (x_lo, x_hi), |y| (y - lo) / (hi - lo));
            draw_curves!(chart, corner);
        }
        Ok(())
    })?;
    let mut svg = svg;
    for c in curves.iter().filter(|c| c.dashed) {
        let RGBColor(r, g, b) = stroke_of(c);
        let RGBColor(rr, rg, rb) = PALETTE[c.color];
        svg = svg.replace(
            &format!("stroke=\"#{r:02X}{g:02X}{b:02X}\""),
            &format!("stroke=\"#{rr:02X}{rg:02X}{rb:02X}\" stroke-dasharray=\"9,6\""),
        );
    }
    Ok(svg)
}

/// Where the legend of [`curves_svg`] covers the fewest points: the corner (upper right,
/// upper left, lower right, lower left, in that order of preference) whose box of 30% of
/// the width and 25% of the height holds the fewest. `y_frac` maps a y value to its
/// height in the plot, 0 at the bottom and 1 at the top.
fn emptiest_corner(
    curves: &[Curve],
    (x_lo, x_hi): (f64, f64),
    y_frac: impl Fn(f64) -> f64,
) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let inside = |right: bool, upper: bool, (x, y): (f64, f64)| {
        let fx = (x - x_lo) / (x_hi - x_lo);
        let fy = y_frac(y);
        (if right { fx > 0.7 } else { fx < 0.3 }) && (if upper { fy > 0.75 } else { fy < 0.25 })
    };
    let mut best = (SeriesLabelPosition::UpperRight, usize::MAX);
    for (corner, right, upper) in corners {
        let count = curves
            .iter()
            .flat_map(|c| c.points.iter())
            .filter(|&&p| inside(right, upper, p))
            .count();
        if count < best.1 {
            best = (corner, count);
        }
    }
    best.0
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
    fn wide_log_ranges_get_powers_of_ten() {
        assert_eq!(log_ticks(3e-6, 0.5), [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]);
        let huge = log_ticks(2e-27, 3.0);
        assert!(huge.len() <= 11, "{huge:?}");
        assert_eq!(huge.last(), Some(&1.0));
        assert!(huge.iter().all(|v| (2e-27..=3.0).contains(v)));
    }

    #[test]
    fn several_curves_get_a_legend_and_dashes() -> Result<()> {
        let a: Vec<(f64, f64)> = (1..=50).map(|t| (t as f64, 0.6f64.powi(50 - t))).collect();
        let b: Vec<(f64, f64)> = (1..=50).map(|t| (t as f64, 0.9f64.powi(50 - t))).collect();
        let curve = |label, points, color, dashed| Curve {
            label,
            points,
            color,
            dashed,
        };
        let svg = curves_svg(
            "title",
            "t",
            "norm",
            &[
                curve("a init", &a, 0, true),
                curve("b trained", &b, 1, false),
            ],
            true,
        )?;
        assert!(svg.contains("norm (log scale)") && svg.contains(">\n1e-10\n</text>"));
        assert!(svg.contains("a init") && svg.contains("b trained"));
        // The dashed curve and its legend sample are blue and dashed; the other is solid.
        assert_eq!(
            svg.matches("stroke=\"#1F77B4\" stroke-dasharray").count(),
            2
        );
        assert!(!svg.contains("#1F77B5"));
        assert!(svg.contains("stroke=\"#FF7F0E\" stroke-width"));
        assert!(curves_svg("t", "x", "y", &[], true).is_err());
        assert!(curves_svg("t", "x", "y", &[curve("c", &a, 9, false)], true).is_err());
        Ok(())
    }

    #[test]
    fn the_legend_goes_where_the_curves_are_not() {
        let rising: Vec<(f64, f64)> = (0..=100).map(|t| (t as f64, t as f64)).collect();
        let curve = Curve {
            label: "a",
            points: &rising,
            color: 0,
            dashed: false,
        };
        let frac = |y: f64| y / 100.0;
        // A diagonal from lower left to upper right leaves the other two corners free.
        let corner = emptiest_corner(&[curve], (0.0, 100.0), frac);
        assert_eq!(corner, SeriesLabelPosition::UpperLeft);
        let falling: Vec<(f64, f64)> = rising.iter().map(|&(x, y)| (x, 100.0 - y)).collect();
        let both = [
            curve,
            Curve {
                points: &falling,
                ..curve
            },
        ];
        assert_eq!(
            emptiest_corner(&both, (0.0, 100.0), frac),
            SeriesLabelPosition::UpperRight,
            "all four corners taken: the first preference"
        );
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
