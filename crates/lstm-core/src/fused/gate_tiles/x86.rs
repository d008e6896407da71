//! The gate tiles' x86-64 kernels, written once over the register type ([`Lanes`]):
//! AVX-512 tiles of up to six batch rows × the four gates of 16 units (24 accumulators
//! of 32 registers), AVX2 tiles of up to three rows × the four gates of 8 units (12 of
//! 16): the products, then the cell on each row's four registers.

use super::{GatePanels, StepRows};
use crate::kernels::{cell, denominators_of, tanh_of, F32x16, F32x8, Lanes};

/// [`step_tiles`] with AVX-512.
///
/// # Safety
/// As [`super::step`], with AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn step_512(w: GatePanels, s: StepRows) {
    step_tiles::<F32x16, 6>(w, s)
}

/// [`step_tiles`] with AVX2 and FMA.
///
/// # Safety
/// As [`super::step`], with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn step_256(w: GatePanels, s: StepRows) {
    step_tiles::<F32x8, 3>(w, s)
}

/// The step of `s.rows` rows: for each panel, the rows in near-equal tiles of at most
/// `MAX` (50 rows with AVX-512: five tiles of 5, then four of 6), so that no tile is left
/// with one or two rows.
#[inline(always)]
unsafe fn step_tiles<L: Lanes, const MAX: usize>(w: GatePanels, s: StepRows) {
    debug_assert_eq!(w.units, L::LANES);
    let tiles = s.rows.div_ceil(MAX);
    for u in 0..w.h / L::LANES {
        let (panel, unit) = (w.panel(u), u * L::LANES);
        let mut r0 = 0;
        for t in 0..tiles {
            let m = (s.rows - r0) / (tiles - t);
            match m {
                1 => tile::<L, 1>(w, panel, unit, r0, s),
                2 => tile::<L, 2>(w, panel, unit, r0, s),
                3 => tile::<L, 3>(w, panel, unit, r0, s),
                4 if MAX >= 4 => tile::<L, 4>(w, panel, unit, r0, s),
                5 if MAX >= 5 => tile::<L, 5>(w, panel, unit, r0, s),
                6 if MAX >= 6 => tile::<L, 6>(w, panel, unit, r0, s),
                _ => unreachable!("tile of {m} rows"),
            }
            r0 += m;
        }
    }
}

/// Rows `r0..r0 + R` of the step, units `unit..unit + LANES`.
#[inline(always)]
unsafe fn tile<L: Lanes, const R: usize>(
    w: GatePanels,
    panel: *const f32,
    unit: usize,
    r0: usize,
    s: StepRows,
) {
    let cols = w.cols();
    let bias = panel.add((w.i + w.h) * cols);
    let start: [L; 4] = std::array::from_fn(|g| L::load(bias.add(g * L::LANES)));
    let (x, x_rs) = s.x;
    let acc = products([start; R], panel, cols, (x.add(r0 * x_rs), x_rs), w.i);
    let (h, h_rs) = s.h_prev;
    let b = panel.add(w.i * cols);
    let acc = products(acc, b, cols, (h.add(r0 * h_rs), h_rs), w.h);
    for (r, sums) in acc.into_iter().enumerate() {
        finish(sums, unit, r0 + r, w.h, s);
    }
}

/// `acc + a (R × k, row stride a_rs) · b (k rows of the panel, `cols` apart)`: per depth
/// the rows' broadcasts, then each gate's register of the panel row and its `R`
/// multiply-adds. The accumulators go in and out by value: behind a reference LLVM stored
/// them to the stack at every depth.
#[inline(always)]
unsafe fn products<L: Lanes, const R: usize>(
    mut acc: [[L; 4]; R],
    b: *const f32,
    cols: usize,
    (a, a_rs): (*const f32, usize),
    k: usize,
) -> [[L; 4]; R] {
    for kk in 0..k {
        let av: [L; R] = std::array::from_fn(|r| L::splat(*a.add(r * a_rs + kk)));
        for g in 0..4 {
            let bv = L::load(b.add(kk * cols + g * L::LANES));
            for (acc, &av) in acc.iter_mut().zip(&av) {
                acc[g] = av.mul_add(bv, acc[g]);
            }
        }
    }
    acc
}

/// The cell of row `r`, units `unit..unit + LANES`, from its four gates' pre-activations:
/// `c_t`, `h_t`, and for a backward pass the activations and `tanh(c_t)`.
#[inline(always)]
unsafe fn finish<L: Lanes>(sums: [L; 4], unit: usize, r: usize, h: usize, s: StepRows) {
    let [a_i, a_f, a_g, a_o] = sums;
    let (d_i, d_f, d_g, d_o) = denominators_of(a_i, a_f, a_g, a_o);
    let c_prev = L::load(s.c_prev.0.add(r * s.c_prev.1 + unit));
    let ((i, f, g, o), c) = cell(d_i, d_f, d_g, d_o, c_prev);
    let tanh_c = tanh_of(c);
    let saved = s.saved.0.add(r * s.saved.1 + unit);
    c.store(saved);
    (o * tanh_c).store(s.h.0.add(r * s.h.1 + unit));
    if let Some((gates, rs)) = s.gates {
        let row = gates.add(r * rs + unit);
        for (block, v) in [i, f, g, o].into_iter().enumerate() {
            v.store(row.add(block * h));
        }
        tanh_c.store(saved.add(h));
    }
}
