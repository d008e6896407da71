//! The gate tiles' AVX-512 kernel: up to six batch rows × the four gates of 16 units in
//! 24 registers, the products, then the cell on each row's four registers.

use std::arch::x86_64::*;

use super::{GatePanels, StepRows, COLS, MAX_ROWS, UNITS};
use crate::kernels::{cell, denominators_of, tanh_of, F32x16};

/// The step of `s.rows` rows: for each panel, the rows in near-equal tiles of at most
/// [`MAX_ROWS`] (50 rows: five of 5, then five of 6... in order, so that no tile is
/// left with one or two rows).
///
/// # Safety
/// As [`super::step`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn step_512(w: GatePanels, s: StepRows) {
    let tiles = s.rows.div_ceil(MAX_ROWS);
    for u in 0..w.h / UNITS {
        let panel = w.panel(u);
        let mut r0 = 0;
        for t in 0..tiles {
            let m = (s.rows - r0) / (tiles - t);
            match m {
                1 => tile::<1>(w, panel, u * UNITS, r0, s),
                2 => tile::<2>(w, panel, u * UNITS, r0, s),
                3 => tile::<3>(w, panel, u * UNITS, r0, s),
                4 => tile::<4>(w, panel, u * UNITS, r0, s),
                5 => tile::<5>(w, panel, u * UNITS, r0, s),
                6 => tile::<6>(w, panel, u * UNITS, r0, s),
                _ => unreachable!("tile of {m} rows"),
            }
            r0 += m;
        }
    }
}

/// Rows `r0..r0 + R` of the step, units `unit..unit + 16`.
#[inline(always)]
unsafe fn tile<const R: usize>(
    w: GatePanels,
    panel: *const f32,
    unit: usize,
    r0: usize,
    s: StepRows,
) {
    let bias = panel.add((w.i + w.h) * COLS);
    let start: [__m512; 4] = std::array::from_fn(|g| _mm512_loadu_ps(bias.add(g * UNITS)));
    let (x, x_rs) = s.x;
    let acc = products([start; R], panel, x.add(r0 * x_rs), x_rs, w.i);
    let (h, h_rs) = s.h_prev;
    let acc = products(acc, panel.add(w.i * COLS), h.add(r0 * h_rs), h_rs, w.h);
    for (r, sums) in acc.into_iter().enumerate() {
        finish(sums, unit, r0 + r, w.h, s);
    }
}

/// `acc + a (R × k, row stride a_rs) · b (k × 64, the panel's rows)`. The accumulators
/// go in and out by value: behind a reference LLVM stored them to the stack at every
/// `kk`.
#[inline(always)]
unsafe fn products<const R: usize>(
    mut acc: [[__m512; 4]; R],
    b: *const f32,
    a: *const f32,
    a_rs: usize,
    k: usize,
) -> [[__m512; 4]; R] {
    for kk in 0..k {
        let bv: [__m512; 4] =
            std::array::from_fn(|g| _mm512_loadu_ps(b.add(kk * COLS + g * UNITS)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(r * a_rs + kk));
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = _mm512_fmadd_ps(av, bv, *acc);
            }
        }
    }
    acc
}

/// The cell of row `r`, units `unit..unit + 16`, from its four gates' pre-activations:
/// `c_t`, `h_t`, and for a backward pass the activations and `tanh(c_t)`.
#[inline(always)]
unsafe fn finish(sums: [__m512; 4], unit: usize, r: usize, h: usize, s: StepRows) {
    let [a_i, a_f, a_g, a_o] = sums.map(F32x16);
    let (d_i, d_f, d_g, d_o) = denominators_of(a_i, a_f, a_g, a_o);
    let c_prev = F32x16(_mm512_loadu_ps(s.c_prev.0.add(r * s.c_prev.1 + unit)));
    let ((i, f, g, o), c) = cell(d_i, d_f, d_g, d_o, c_prev);
    let tanh_c = tanh_of(c);
    let saved = s.saved.0.add(r * s.saved.1 + unit);
    _mm512_storeu_ps(saved, c.0);
    _mm512_storeu_ps(s.h.0.add(r * s.h.1 + unit), (o * tanh_c).0);
    if let Some((gates, rs)) = s.gates {
        let row = gates.add(r * rs + unit);
        for (block, v) in [i, f, g, o].into_iter().enumerate() {
            _mm512_storeu_ps(row.add(block * h), v.0);
        }
        _mm512_storeu_ps(saved.add(h), tanh_c.0);
    }
}
