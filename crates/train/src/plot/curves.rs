//! Figures of x/y curves: one or several [`Curve`]s on a linear or log y axis, with a
//! legend in the emptiest corner.

use plotters::coord::CoordTranslate;
use plotters::prelude::*;

use super::plot_error;
use super::style::{self, Axes, PALETTE};
use crate::error::Result;

/// How a [`Curve`] is stroked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Line {
    /// A solid line, 2 px.
    #[default]
    Solid,
    /// A dashed line, 2 px.
    Dashed,
    /// A thin, faint line (1 px, 35% opacity), for noisy raw values under a smoothed curve.
    Light,
    /// A bold line, 3 px.
    Bold,
}

/// One line of a [`Figure`].
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// The legend entry; a figure whose labels are all empty gets no legend.
    pub label: String,
    /// The points `(x, y)`, in x order.
    pub points: Vec<(f64, f64)>,
    /// Index into matplotlib's default colours: 0 blue, 1 orange, 2 green, 3 purple,
    /// 4 brown.
    pub color: usize,
    /// How the line is stroked.
    pub line: Line,
}

impl Curve {
    /// A solid curve.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            line: Line::Solid,
        }
    }

    /// The same curve stroked as `line`.
    pub fn with_line(self, line: Line) -> Self {
        Self { line, ..self }
    }

    /// The stroke it is drawn with (a dashed one in its stand-in colour, see
    /// [`super`]).
    fn stroke(&self) -> ShapeStyle {
        let color = PALETTE[self.color];
        match self.line {
            Line::Solid => color.stroke_width(2),
            Line::Dashed => style::dash_key(color).stroke_width(2),
            Line::Light => color.mix(0.35).stroke_width(1),
            Line::Bold => color.stroke_width(3),
        }
    }
}

/// A figure of curves: a title, the axis descriptions, the curves, and whether the y axis
/// is logarithmic.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The caption.
    pub title: String,
    /// The x axis description.
    pub x_desc: String,
    /// The y axis description (" (log scale)" is added when the axis is logarithmic).
    pub y_desc: String,
    /// The curves, drawn in this order (later ones on top).
    pub curves: Vec<Curve>,
    /// A log y axis, when every y is positive (else a linear one).
    pub log_y: bool,
}

impl Figure {
    /// A figure with no curves yet and a linear y axis.
    pub fn new(
        title: impl Into<String>,
        x_desc: impl Into<String>,
        y_desc: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            curves: Vec::new(),
            log_y: false,
        }
    }

    /// The same figure with a log y axis (used when every y is positive).
    pub fn with_log_y(self) -> Self {
        Self {
            log_y: true,
            ..self
        }
    }

    /// The same figure with `curve` added on top.
    pub fn with_curve(mut self, curve: Curve) -> Self {
        self.curves.push(curve);
        self
    }

    /// What makes the figure undrawable, if anything: no curves, an empty curve, a
    /// colour out of the palette, a value that is not finite.
    fn check(&self) -> std::result::Result<(), String> {
        if self.curves.is_empty() || self.curves.iter().any(|c| c.points.is_empty()) {
            return Err("no values to plot".into());
        }
        for c in &self.curves {
            if c.color >= PALETTE.len() {
                return Err(format!(
                    "{:?}: colour {} is not in the palette",
                    c.label, c.color
                ));
            }
            if let Some((x, y)) = c
                .points
                .iter()
                .find(|(x, y)| !x.is_finite() || !y.is_finite())
            {
                return Err(format!("the value at {x} is {y}"));
            }
        }
        Ok(())
    }

    /// The x axis: from the first x of any curve to the last (at least 1 wide).
    fn x_range(&self) -> (f64, f64) {
        let x_lo = self
            .curves
            .iter()
            .map(|c| c.points[0].0)
            .fold(f64::INFINITY, f64::min);
        let x_hi = self
            .curves
            .iter()
            .map(|c| c.points[c.points.len() - 1].0)
            .fold(f64::NEG_INFINITY, f64::max)
            .max(x_lo + 1.0);
        (x_lo, x_hi)
    }

    /// The figure as SVG: the x axis over every curve's x, the y axis on a log scale when
    /// [`Figure::log_y`] is asked for and every y is positive (" (log scale)" is then
    /// added to the y description). A log axis over more than four decades is labelled
    /// at powers of ten only (`1e-20`).
    ///
    /// Errors ([`crate::TrainError::Plot`]): no curves, an empty curve, a colour out of
    /// the palette, or a value that is not finite.
    pub fn svg(&self) -> Result<String> {
        let what = "curve plot";
        let curves = &self.curves;
        self.check().map_err(|m| plot_error(what, m))?;
        let (x_lo, x_hi) = self.x_range();
        let ys = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
        let lo = ys().fold(f64::INFINITY, f64::min);
        let hi = ys().fold(f64::NEG_INFINITY, f64::max);
        let x_fmt = |x: &f64| format!("{x:.0}");
        let svg = style::render(what, |root| {
            let builder = &mut style::chart(root, &self.title);
            if self.log_y && lo > 0.0 {
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
                        style::short_number(*y)
                    }
                };
                let y = (lo..hi)
                    .log_scale()
                    .with_key_points(style::log_ticks(lo, hi));
                let mut chart = builder
                    .build_cartesian_2d(x_lo..x_hi, y)
                    .map_err(|e| e.to_string())?;
                let y_desc = format!("{} (log scale)", self.y_desc);
                let axes = Axes {
                    x_desc: &self.x_desc,
                    y_desc: &y_desc,
                    x_fmt: &x_fmt,
                    y_fmt: &y_fmt,
                };
                style::draw_mesh(&mut chart, &axes)?;
                let (l0, l1) = (lo.log10(), hi.log10());
                let corner =
                    emptiest_corner(curves, (x_lo, x_hi), |y| (y.log10() - l0) / (l1 - l0));
                draw_curves(&mut chart, curves, corner)
            } else {
                let (lo, hi) =
                    style::padded_range(curves.iter().flat_map(|c| c.points.iter().map(|p| &p.1)));
                let y_fmt = |y: &f64| style::short_number(*y);
                let mut chart = builder
                    .build_cartesian_2d(x_lo..x_hi, lo..hi)
                    .map_err(|e| e.to_string())?;
                let axes = Axes {
                    x_desc: &self.x_desc,
                    y_desc: &self.y_desc,
                    x_fmt: &x_fmt,
                    y_fmt: &y_fmt,
                };
                style::draw_mesh(&mut chart, &axes)?;
                let corner = emptiest_corner(curves, (x_lo, x_hi), |y| (y - lo) / (hi - lo));
                draw_curves(&mut chart, curves, corner)
            }
        })?;
        let dashed = curves
            .iter()
            .filter(|c| c.line == Line::Dashed)
            .map(|c| PALETTE[c.color]);
        Ok(style::apply_dashes(svg, dashed))
    }
}

/// Draws every curve, then (when any has a label) the legend in `corner`.
fn draw_curves<'a, 'c: 'a, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'a, SVGBackend<'c>, CT>,
    curves: &[Curve],
    corner: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    for c in curves {
        style::draw_line(chart, c.points.iter().copied(), c.stroke(), &c.label)?;
    }
    if curves.iter().any(|c| !c.label.is_empty()) {
        style::draw_legend(chart, corner)?;
    }
    Ok(())
}

/// Where the legend covers the fewest points: the corner (upper right, upper left, lower
/// right, lower left, in that order of preference) whose box of 30% of the width and 25%
/// of the height holds the fewest. `y_frac` maps a y value to its height in the plot, 0
/// at the bottom and 1 at the top.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_curves_get_a_legend_and_dashes() -> Result<()> {
        let a: Vec<(f64, f64)> = (1..=50).map(|t| (t as f64, 0.6f64.powi(50 - t))).collect();
        let b: Vec<(f64, f64)> = (1..=50).map(|t| (t as f64, 0.9f64.powi(50 - t))).collect();
        let svg = Figure::new("title", "t", "norm")
            .with_log_y()
            .with_curve(Curve::new("a init", a.clone(), 0).with_line(Line::Dashed))
            .with_curve(Curve::new("b trained", b, 1))
            .svg()?;
        assert!(svg.contains("norm (log scale)") && svg.contains(">\n1e-10\n</text>"));
        assert!(svg.contains("a init") && svg.contains("b trained"));
        // The dashed curve and its legend sample are blue and dashed; the other is solid.
        assert_eq!(
            svg.matches("stroke=\"#1F77B4\" stroke-dasharray").count(),
            2
        );
        assert!(!svg.contains("#1F77B5"));
        assert!(svg.contains("stroke=\"#FF7F0E\" stroke-width"));
        assert!(Figure::new("t", "x", "y").with_log_y().svg().is_err());
        let bad_colour = Figure::new("t", "x", "y").with_curve(Curve::new("c", a, 9));
        assert!(bad_colour.svg().is_err());
        Ok(())
    }

    #[test]
    fn one_colour_can_be_both_dashed_and_solid() -> Result<()> {
        let a: Vec<(f64, f64)> = (0..10).map(|t| (t as f64, t as f64)).collect();
        let b: Vec<(f64, f64)> = a.iter().map(|&(x, y)| (x, y + 3.0)).collect();
        let svg = Figure::new("t", "x", "y")
            .with_curve(Curve::new("init", a, 0).with_line(Line::Dashed))
            .with_curve(Curve::new("trained", b, 0))
            .svg()?;
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "line + legend");
        assert_eq!(
            svg.matches("stroke=\"#1F77B4\" stroke-width").count(),
            2,
            "the solid line and its legend sample"
        );
        Ok(())
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let nan = Figure::new("t", "x", "y").with_curve(Curve::new("", vec![(0.0, f64::NAN)], 0));
        let err = nan.svg().unwrap_err();
        assert!(matches!(err, crate::TrainError::Plot { .. }), "{err:?}");
        let empty = Figure::new("t", "x", "y").with_curve(Curve::new("", vec![], 0));
        assert!(empty.svg().unwrap_err().to_string().contains("no values"));
        // A single point still draws, on either axis.
        let one = Figure::new("t", "x", "y").with_curve(Curve::new("", vec![(1.0, 0.3)], 0));
        assert!(one.svg().is_ok() && one.with_log_y().svg().is_ok());
    }

    #[test]
    fn the_legend_goes_where_the_curves_are_not() {
        let rising: Vec<(f64, f64)> = (0..=100).map(|t| (t as f64, t as f64)).collect();
        let falling: Vec<(f64, f64)> = rising.iter().map(|&(x, y)| (x, 100.0 - y)).collect();
        let frac = |y: f64| y / 100.0;
        // A diagonal from lower left to upper right leaves the other two corners free.
        let up = Curve::new("a", rising, 0);
        let corner = emptiest_corner(std::slice::from_ref(&up), (0.0, 100.0), frac);
        assert_eq!(corner, SeriesLabelPosition::UpperLeft);
        let both = [up, Curve::new("a", falling, 0)];
        assert_eq!(
            emptiest_corner(&both, (0.0, 100.0), frac),
            SeriesLabelPosition::UpperRight,
            "all four corners taken: the first preference"
        );
    }
}
