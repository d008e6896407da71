//! How the step GEMMs read each direction's `W_hh`: as it lies in the parameters, laid
//! out transposed for the `gemm` crate, or packed in panels for the panel kernels
//! ([`super::panels`]), once per call and shared by every step.

use super::buffers::{parallel_for, recycle, take_buffer, DirWeights, Mat, Shared, Weights};
use super::panels::{self, Panels};
use super::recurrence::{isa, Isa};

/// Floats between the rows of the laid-out `W_hhᵀ` ([`StepWeights::Transposed`]) of
/// `G·H` columns: a multiple of 64 gets one cache line more, so that the rows the GEMM
/// reads one after the other do not fall into the same few cache sets (hidden 256: rows
/// 4 KiB apart all fell into one).
pub(crate) fn w_hh_t_stride(gh: usize) -> usize {
    match gh % 64 {
        0 => gh + 16,
        _ => gh,
    }
}

/// How the step GEMMs read each direction's `W_hh (G·H, P)`: laid out once per call when
/// several steps read it with several rows each (a step of one or two rows is a
/// matrix-vector product, which reads `W_hh` best as it is).
#[derive(Clone, Copy)]
pub(crate) enum StepWeights<'a> {
    /// From the parameters.
    AsIs,
    /// `W_hhᵀ` of every direction, `(D, P, G·H)` with rows [`w_hh_t_stride`] apart, for
    /// the `gemm` crate (forward only, where the panels are not used).
    Transposed(&'a [f32]),
    /// Every direction's operand packed in panels ([`panels`]), one after the other:
    /// `W_hhᵀ (P × G·H)` forward, `W_hh (G·H × P)` backward.
    Panels(&'a [f32]),
}

impl StepWeights<'_> {
    /// How the forward step GEMMs should lay `W_hh` out for `t` steps of `b` rows of
    /// `h` `p` wide: in panels from `p = 256` on. Below, the panel kernels' per-call copy
    /// of the left operand costs what they gain over the `gemm` crate: the MNIST step
    /// (`p = 128`) was as fast either way forward and slower backward, where the copy
    /// serves only three panels (`docs/benchmarks.md`).
    pub fn forward_kind(t: usize, b: usize, p: usize) -> WeightLayout {
        match (t > 2 && b > 2, isa()) {
            (false, _) => WeightLayout::AsIs,
            (true, Isa::Avx2 | Isa::Avx512) if p >= PANELS_MIN_P => WeightLayout::Panels,
            (true, _) => WeightLayout::Transposed,
        }
    }

    /// How the backward step GEMMs should: in panels where the forward ones are.
    pub fn backward_kind(t: usize, b: usize, p: usize) -> WeightLayout {
        match Self::forward_kind(t, b, p) {
            WeightLayout::Panels => WeightLayout::Panels,
            _ => WeightLayout::AsIs,
        }
    }

    /// The operand `h_{t-1} W_hhᵀ` reads for direction `dir`.
    pub fn forward(self, w: &DirWeights, dir: usize, (p, gh): (usize, usize)) -> Weights {
        match self {
            StepWeights::AsIs => Weights::Strided(Mat::transposed(w.w_hh.ptr, w.w_hh.rs)),
            StepWeights::Transposed(wt) => {
                let ld = w_hh_t_stride(gh);
                Weights::Strided(Mat::rows(wt[dir * p * ld..].as_ptr(), ld))
            }
            StepWeights::Panels(pk) => Weights::Panels(Panels {
                ptr: pk[dir * panels::packed_len(p, gh)..].as_ptr(),
                k: p,
            }),
        }
    }

    /// The operand `dG_t W_hh` reads for direction `dir`.
    pub fn backward(self, w: &DirWeights, dir: usize, (p, gh): (usize, usize)) -> Weights {
        match self {
            StepWeights::Panels(pk) => Weights::Panels(Panels {
                ptr: pk[dir * panels::packed_len(gh, p)..].as_ptr(),
                k: gh,
            }),
            _ => Weights::Strided(w.w_hh),
        }
    }
}

/// The smallest width of `h` whose step GEMMs run on the panel kernels.
const PANELS_MIN_P: usize = 256;

/// Which layout of [`StepWeights`] a pass builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WeightLayout {
    /// [`StepWeights::AsIs`].
    AsIs,
    /// [`StepWeights::Transposed`].
    Transposed,
    /// [`StepWeights::Panels`].
    Panels,
}

/// `W_hh` of every direction laid out for the step GEMMs, in a recycled buffer.
pub(crate) struct LaidOut {
    layout: WeightLayout,
    buf: Vec<f32>,
}

impl LaidOut {
    /// The layout as the step loops read it.
    pub fn view(&self) -> StepWeights<'_> {
        match self.layout {
            WeightLayout::AsIs => StepWeights::AsIs,
            WeightLayout::Transposed => StepWeights::Transposed(&self.buf),
            WeightLayout::Panels => StepWeights::Panels(&self.buf),
        }
    }

    /// Hands the buffer back for reuse.
    pub fn recycle(self) {
        recycle(self.buf)
    }
}

/// Lays every direction's `W_hh (G·H, P)` out as `layout` says: for the forward pass
/// (`W_hhᵀ`, `P × G·H`) or the backward pass (`W_hh`, `G·H × P`).
pub(crate) fn lay_out_w_hh(
    w: &[DirWeights],
    (p, gh): (usize, usize),
    layout: WeightLayout,
    fwd: bool,
) -> LaidOut {
    let buf = match layout {
        WeightLayout::AsIs => Vec::new(),
        WeightLayout::Transposed => {
            let mut buf = take_buffer(w.len() * p * w_hh_t_stride(gh));
            transpose_w_hh(w, (p, gh), &mut buf);
            buf
        }
        WeightLayout::Panels => {
            let (k, n) = if fwd { (p, gh) } else { (gh, p) };
            let len = panels::packed_len(k, n);
            let mut buf = take_buffer(w.len() * len);
            for (d, dw) in w.iter().enumerate() {
                let src = if fwd { dw.w_hh.t() } else { dw.w_hh };
                panels::pack(src, (k, n), &mut buf[d * len..][..len]);
            }
            buf
        }
    };
    LaidOut { layout, buf }
}

/// `W_hhᵀ` of every direction into `dst` `(D, P, G·H)`, rows [`w_hh_t_stride`] apart, in
/// parallel blocks of 16 of its rows. A block goes through `W_hh (G·H, P)` in tiles of
/// 16 × 16: each tile reads 16 rows of 16 contiguous floats and writes 16 rows of 16 (one
/// cache line each), so that the 16 destination rows, a power of two apart for the usual
/// sizes, do not evict each other's lines between element-wise writes.
fn transpose_w_hh(w: &[DirWeights], (p, gh): (usize, usize), dst: &mut [f32]) {
    const BLOCK: usize = 16;
    let blocks = p.div_ceil(BLOCK);
    let ld = w_hh_t_stride(gh);
    let out = Shared::new(dst);
    parallel_for(w.len() * blocks, |k| {
        let (d, j0) = (k / blocks, (k % blocks) * BLOCK);
        let width = BLOCK.min(p - j0);
        let w_hh = w[d].w_hh;
        // SAFETY: block k writes rows j0..j0 + width of direction d's W_hhᵀ alone.
        let rows = unsafe { out.slice((d * p + j0) * ld, width * ld) };
        let mut tile = [[0f32; BLOCK]; BLOCK];
        for n0 in (0..gh).step_by(BLOCK) {
            let height = BLOCK.min(gh - n0);
            for (dn, row) in tile.iter_mut().enumerate().take(height) {
                // SAFETY: row n0 + dn of W_hh has P elements, j0 + width <= P.
                let src = unsafe { w_hh.ptr.add((n0 + dn) * w_hh.rs + j0) };
                match width {
                    // A whole tile row: a fixed-size copy (vector moves, no memmove call).
                    BLOCK => *row = unsafe { src.cast::<[f32; BLOCK]>().read_unaligned() },
                    _ => row[..width]
                        .copy_from_slice(unsafe { std::slice::from_raw_parts(src, width) }),
                }
            }
            for j in 0..width {
                let dst = &mut rows[j * ld + n0..][..height];
                for (dn, v) in dst.iter_mut().enumerate() {
                    *v = tile[dn][j];
                }
            }
        }
    });
}
