//! The steps of a backward pass that carry a gradient.
//!
//! A model that reads only some steps of a layer's output (a classifier reading
//! `out[:, -1]`) back-propagates exact zeros through the others. In each direction's own
//! order, the steps after the last one whose output gradient is non-zero carry no
//! gradient when the final state's gradient is zero too, so the backward pass stops short
//! of them ([`live_steps`]) and the weight gradients read only the steps that remain
//! ([`live_spans`]). A bidirectional classifier reading `out[:, -1]` so runs a single
//! step of its second direction's backward instead of all of them. The result is the
//! same: the skipped steps' contributions are exact zeros.

use super::positions::Positions;
use super::recurrence::{at, Dims};

/// For each direction, how many of its steps, counted from its first (direction 1 starts
/// at the last time step), may carry a gradient: all of them when the gradient of its
/// final state `d_final (D, B, SW)` has a non-zero, else up to its last step with a
/// non-zero in the output gradient `d_out (positions, D·P)`. A NaN counts as non-zero.
pub(crate) fn live_steps(dm: Dims, d_out: Option<&[f32]>, d_final: &[f32]) -> Vec<usize> {
    let per_dir = d_final.len() / dm.dirs;
    let nonzero = |v: &[f32]| v.iter().any(|&x| x != 0.0);
    (0..dm.dirs)
        .map(|d| {
            if nonzero(&d_final[d * per_dir..][..per_dir]) {
                return dm.t;
            }
            let Some(g) = d_out else { return 0 };
            let p = dm.p;
            (0..dm.t)
                .rev()
                .find(|&s| {
                    let ti = dm.time(d, s);
                    (0..dm.pos.active(ti)).any(|r| nonzero(&g[at(dm, r, ti, d, p)..][..p]))
                })
                .map_or(0, |s| s + 1)
        })
        .collect()
}

/// The positions `start, start + step, …` (`len` of them) of a `(positions, ·)` buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub len: usize,
    pub step: usize,
}

/// The positions of direction `dir`'s first `live` steps, in as few spans as the layout
/// allows: all positions in one when every step is live; else one per live time step, or
/// one per row when the rows are fewer (a padded layout is batch-major); the live steps
/// of a packed layout (time-major) are one span.
pub(crate) fn live_spans(dm: Dims, dir: usize, live: usize) -> Vec<Span> {
    let t = dm.t;
    let lo = if dir == 1 { t - live } else { 0 };
    let hi = lo + live;
    match dm.pos {
        _ if live == 0 => Vec::new(),
        _ if live == t => vec![Span {
            start: 0,
            len: dm.n(),
            step: 1,
        }],
        Positions::Packed(p) => {
            let end = if hi == t { p.count() } else { p.offsets[hi] };
            vec![Span {
                start: p.offsets[lo],
                len: end - p.offsets[lo],
                step: 1,
            }]
        }
        Positions::Padded { b, t } if live < b => (lo..hi)
            .map(|ti| Span {
                start: ti,
                len: b,
                step: t,
            })
            .collect(),
        Positions::Padded { b, t } => (0..b)
            .map(|r| Span {
                start: r * t + lo,
                len: live,
                step: 1,
            })
            .collect(),
    }
}

/// The positions `from..to` of `spans` counted one after the other (all of them:
/// `0..` the sum of their lengths), without listing the others.
pub(crate) fn span_positions(
    spans: &[Span],
    (from, to): (usize, usize),
) -> impl Iterator<Item = usize> + '_ {
    let mut first = 0;
    spans.iter().flat_map(move |s| {
        let (lo, hi) = (first, first + s.len);
        first = hi;
        let k = (from.clamp(lo, hi) - lo)..(to.clamp(lo, hi) - lo);
        k.map(move |k| s.start + k * s.step)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::positions::PackedSteps;

    fn padded(b: usize, t: usize, dirs: usize) -> Dims<'static> {
        Dims {
            b,
            t,
            i: 1,
            h: 2,
            p: 2,
            dirs,
            pos: Positions::Padded { b, t },
        }
    }

    #[test]
    fn a_gradient_on_the_last_step_leaves_direction_one_a_single_live_step() {
        let dm = padded(3, 5, 2);
        let mut d_out = vec![0f32; dm.n() * 2 * 2];
        for r in 0..3 {
            d_out[at(dm, r, 4, 0, 2)] = 1.0;
            d_out[at(dm, r, 4, 1, 2) + 1] = -2.0;
        }
        let d_final = vec![0f32; 2 * 3 * 2];
        assert_eq!(live_steps(dm, Some(&d_out), &d_final), [5, 1]);
        // A gradient of direction 1's final state (time 0) makes all its steps live.
        let mut d_final = d_final;
        d_final[2 * 3 + 1] = 0.5;
        assert_eq!(live_steps(dm, Some(&d_out), &d_final), [5, 5]);
        // Only the final states' gradients: nothing or everything.
        assert_eq!(live_steps(dm, None, &d_final), [0, 5]);
    }

    #[test]
    fn a_gradient_in_the_middle_bounds_each_direction_on_its_own_side() {
        let dm = padded(2, 6, 2);
        let mut d_out = vec![0f32; dm.n() * 2 * 2];
        d_out[at(dm, 1, 2, 0, 2)] = f32::NAN;
        d_out[at(dm, 0, 3, 1, 2) + 1] = 1e-30;
        assert_eq!(live_steps(dm, Some(&d_out), &[0.0; 8]), [3, 3]);
    }

    #[test]
    fn spans_cover_exactly_the_live_positions() {
        let steps = PackedSteps::new(&[4, 3, 3, 1]);
        let packed = Dims {
            b: 4,
            t: 4,
            pos: Positions::Packed(&steps),
            ..padded(4, 4, 2)
        };
        for dm in [padded(3, 5, 2), padded(7, 2, 2), padded(4, 4, 1), packed] {
            for dir in 0..dm.dirs {
                for live in 0..=dm.t {
                    let times: Vec<usize> = (0..live).map(|s| dm.time(dir, s)).collect();
                    let mut want: Vec<usize> = (0..dm.b)
                        .flat_map(|r| (0..dm.pos.len(r)).map(move |t| (r, t)))
                        .filter(|(_, t)| times.contains(t))
                        .map(|(r, t)| dm.pos.at(r, t))
                        .collect();
                    want.sort_unstable();
                    let spans = live_spans(dm, dir, live);
                    let mut got: Vec<usize> = span_positions(&spans, (0, usize::MAX)).collect();
                    // A window of the positions is the same window of the whole list.
                    let window: Vec<usize> = span_positions(&spans, (2, 7)).collect();
                    assert_eq!(window, got[got.len().min(2)..got.len().min(7)]);
                    got.sort_unstable();
                    assert_eq!(got, want, "{dm:?} dir {dir} live {live}");
                }
            }
        }
    }
}
