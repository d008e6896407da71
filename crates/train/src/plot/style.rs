//! The one look of every figure: canvas, palette, caption and margins, mesh, legend box,
//! the dashed-line mechanism, and number and tick formatting.

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::plot_error;
use crate::error::Result;

/// Width and height of every figure, in pixels.
pub(super) const SIZE: (u32, u32) = (1000, 560);

/// matplotlib's default cycle (`C0`, `C1`, `C2`, `C4`, `C5`).
pub(super) const PALETTE: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// The dash pattern of every dashed line: 9 px drawn, 6 px left out.
const DASH_PATTERN: &str = "9,6";

/// Length of a legend sample line, in pixels.
const LEGEND_SAMPLE: i32 = 28;

/// Draws on a white SVG canvas of [`SIZE`] and returns the document.
pub(super) fn render(
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

/// A chart with `title` as its caption and the margins and label areas of every figure.
pub(super) fn chart<'a, 'b, 'c>(
    root: &'a DrawingArea<SVGBackend<'c>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'c>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(18)
        .margin_right(40)
        .x_label_area_size(48)
        .y_label_area_size(72);
    builder
}

/// The axes of a chart: their descriptions and how their tick labels are written.
pub(super) struct Axes<'f, X, Y> {
    pub x_desc: &'f str,
    pub y_desc: &'f str,
    pub x_fmt: &'f dyn Fn(&X) -> String,
    pub y_fmt: &'f dyn Fn(&Y) -> String,
}

/// Draws the mesh of every figure: about eight labels per axis, no light grid lines,
/// faint bold ones.
pub(super) fn draw_mesh<Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, Y>>,
    axes: &Axes<f64, Y::ValueType>,
) -> std::result::Result<(), String>
where
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(axes.x_fmt)
        .y_label_formatter(axes.y_fmt)
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(|e| e.to_string())
}

/// Draws the series `points` in `style`, with a legend entry `label` unless it is empty.
pub(super) fn draw_line<CT>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, CT>,
    points: impl IntoIterator<Item = (f64, f64)>,
    style: ShapeStyle,
    label: &str,
) -> std::result::Result<(), String>
where
    CT: CoordTranslate<From = (f64, f64)>,
{
    let series = chart
        .draw_series(LineSeries::new(points, style))
        .map_err(|e| e.to_string())?;
    if !label.is_empty() {
        series
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + LEGEND_SAMPLE, y)], style));
    }
    Ok(())
}

/// Draws the legend box of every figure in `corner`.
pub(super) fn draw_legend<'a, 'c: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'c>, CT>,
    corner: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())
}

/// The stand-in colour a dashed line of `color` is drawn in: `color` with the lowest bit
/// of its blue channel flipped, invisible to the eye and unused by anything else drawn.
pub(super) fn dash_key(color: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = color;
    RGBColor(r, g, b ^ 1)
}

/// Turns every stroke drawn in [`dash_key`]`(c)` for each `c` of `colors` into a dashed
/// stroke of `c` itself (`stroke-dasharray`), in the SVG text.
pub(super) fn apply_dashes(mut svg: String, colors: impl IntoIterator<Item = RGBColor>) -> String {
    let hex = |RGBColor(r, g, b): RGBColor| format!("#{r:02X}{g:02X}{b:02X}");
    for color in colors {
        svg = svg.replace(
            &format!("stroke=\"{}\"", hex(dash_key(color))),
            &format!(
                "stroke=\"{}\" stroke-dasharray=\"{DASH_PATTERN}\"",
                hex(color)
            ),
        );
    }
    svg
}

/// `1.3M`, `830k`, `0.042`: short tick labels for values of any size.
pub(super) fn short_number(v: f64) -> String {
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
pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi.log10() - lo.log10() > 4.0 {
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
pub(super) fn padded_range<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn short_numbers_and_padded_ranges() {
        assert_eq!(short_number(1_340_000.0), "1.3M");
        assert_eq!(short_number(830_000.0), "830k");
        assert_eq!(short_number(0.042), "0.042");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(3e-5), "3.0e-5");
        assert_eq!(padded_range([0.0, 10.0].iter()), (-0.5, 10.5));
        let (lo, hi) = padded_range([2.0].iter());
        assert!(lo < 2.0 && hi > 2.0);
    }

    #[test]
    fn dashes_replace_only_the_stand_in_colour() {
        let blue = PALETTE[0];
        let svg = format!(
            "<polyline stroke=\"#1F77B5\"/><polyline stroke=\"#1F77B4\"/>{}",
            "<polyline stroke=\"#FF0001\"/>"
        );
        let out = apply_dashes(svg, [blue, RED]);
        assert_eq!(
            out,
            "<polyline stroke=\"#1F77B4\" stroke-dasharray=\"9,6\"/>\
             <polyline stroke=\"#1F77B4\"/>\
             <polyline stroke=\"#FF0000\" stroke-dasharray=\"9,6\"/>"
        );
        for c in PALETTE {
            assert!(!PALETTE.contains(&dash_key(c)) && dash_key(dash_key(c)) == c);
        }
    }
}
