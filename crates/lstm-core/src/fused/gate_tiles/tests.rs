//! The gate tiles against the two products, the biases and the LSTM row kernel.

use super::*;
use crate::fused::buffers::{Mat, Strided};
use crate::kernels::{LstmRows, Rows};

fn values(len: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|n| (((n * 7 + seed * 13) % 23) as f32 - 11.0) * scale)
        .collect()
}

/// One step of `m` rows with `i` inputs and `h` units, operands with padded row strides,
/// the tiles against the plain computation; for a backward pass (`train`) or not.
fn check(m: usize, i: usize, h: usize, train: bool) {
    let (k, gh) = (i + h + 2, 4 * h);
    // The packed parameters' layout: rows of [W_ih | W_hh | b_ih | b_hh].
    let params = values(gh * k, 1, 0.02);
    let w = DirWeights {
        w_ih: Mat::rows(params.as_ptr(), k),
        w_hh: Mat::rows(params[i..].as_ptr(), k),
        b_ih: Strided {
            ptr: params[i + h..].as_ptr(),
            stride: k,
        },
        b_hh: Strided {
            ptr: params[i + h + 1..].as_ptr(),
            stride: k,
        },
        w_hr_t: None,
    };
    let mut panels = vec![f32::NAN; packed_len(i, h)];
    pack(&[w], (i, h), &mut panels);
    let (x_rs, h_rs, c_rs) = (i + 3, h + 5, 2 * h + 1);
    let x = values(m * x_rs, 2, 0.1);
    let h_prev = values(m * h_rs, 3, 0.05);
    let c_prev = values(m * c_rs, 4, 0.3);
    let (out_rs, saved_rs, gates_rs) = (h + 7, 2 * h + 16, 4 * h + 2);
    let mut out = vec![f32::NAN; m * out_rs];
    let mut saved = vec![f32::NAN; m * saved_rs];
    let mut gates = vec![f32::NAN; m * gates_rs];
    let rows = StepRows {
        rows: m,
        x: (x.as_ptr(), x_rs),
        h_prev: (h_prev.as_ptr(), h_rs),
        c_prev: (c_prev.as_ptr(), c_rs),
        h: (out.as_mut_ptr(), out_rs),
        saved: (saved.as_mut_ptr(), saved_rs),
        gates: train.then_some((gates.as_mut_ptr(), gates_rs)),
    };
    // SAFETY: every operand holds its m rows; this test runs only with AVX-512.
    unsafe { step(GatePanels::of(&panels, 0, (i, h)), rows) };
    for r in 0..m {
        let mut want_gates: Vec<f32> = (0..gh)
            .map(|n| {
                let row = &params[n * k..][..k];
                let dot = |a: &[f32], w: &[f32]| a.iter().zip(w).map(|(a, w)| a * w).sum::<f32>();
                dot(&x[r * x_rs..][..i], &row[..i])
                    + dot(&h_prev[r * h_rs..][..h], &row[i..i + h])
                    + row[i + h]
                    + row[i + h + 1]
            })
            .collect();
        let (mut want_h, mut want_saved) = (vec![0f32; h], vec![0f32; 2 * h]);
        let c = &c_prev[r * c_rs..][..h];
        LstmRows::default().forward(&mut want_gates, &[], &[], c, &mut want_h, &mut want_saved);
        let close = |got: &[f32], want: &[f32], what: &str| {
            for (n, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 2e-5,
                    "{m}×{i}+{h} train {train}: {what}[{r}][{n}] {g} against {w}"
                );
            }
        };
        close(&out[r * out_rs..][..h], &want_h, "h");
        close(&saved[r * saved_rs..][..h], &want_saved[..h], "c");
        let untouched = |v: &[f32], what: &str| {
            assert!(v.iter().all(|v| v.is_nan()), "{what} written in inference")
        };
        match train {
            true => {
                close(&saved[r * saved_rs + h..][..h], &want_saved[h..], "tanh c");
                close(&gates[r * gates_rs..][..gh], &want_gates, "gates");
            }
            false => {
                untouched(&saved[r * saved_rs + h..][..h], "tanh c");
                untouched(&gates[r * gates_rs..][..gh], "gates");
            }
        }
        // Nothing written past a row's own floats.
        assert!(
            out[r * out_rs + h..(r + 1) * out_rs]
                .iter()
                .all(|v| v.is_nan()),
            "past h"
        );
    }
}

/// Every tile height (1–6 rows and runs of near-equal tiles), one panel and several, an
/// input narrower and wider than a panel row, training and inference.
#[test]
fn tiles_match_the_products_and_the_row_kernel() {
    if !runs_on_tiles(16, 16) {
        eprintln!("no AVX-512: the gate tiles are not used on this CPU");
        return;
    }
    for (m, i, h) in [
        (1, 3, 16),
        (2, 28, 32),
        (5, 1, 16),
        (6, 7, 48),
        (7, 28, 128),
        (13, 70, 32),
        (50, 28, 128),
    ] {
        for train in [true, false] {
            check(m, i, h, train);
        }
    }
}

/// The rule: AVX2 or AVX-512, no projection, whole panels.
#[test]
fn tiles_need_whole_panels_and_no_projection() {
    assert!(!runs_on_tiles(20, 20));
    assert!(!runs_on_tiles(32, 16));
    assert_eq!(runs_on_tiles(128, 128), isa() != Isa::Baseline);
    assert_eq!(runs_on_tiles(24, 24), isa() == Isa::Avx2);
    assert_eq!(units(Isa::Avx512), Some(16));
    assert_eq!(units(Isa::Avx2), Some(8));
    assert_eq!(units(Isa::Baseline), None);
}
