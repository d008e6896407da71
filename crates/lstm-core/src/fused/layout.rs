//! How the step GEMMs read each direction's `W_hh` (and, where the steps project their
//! own input, `W_ih`): as it lies in the parameters, laid out transposed for the `gemm`
//! crate, or packed in panels for the panel kernels ([`super::panels`]), once per call
//! and shared by every step.

use super::buffers::{parallel_for, recycle, take_buffer, DirWeights, Mat, Shared};
use super::matmul::Weights;
use super::panels::{self, Panels};
use super::recurrence::{isa, Isa};

/// Floats between the rows of a laid-out `Wᵀ` ([`StepWeights::Transposed`]) of `G·H`
/// columns: a multiple of 64 gets one cache line more, so that the rows the GEMM
/// reads one after the other do not fall into the same few cache sets (hidden 256: rows
/// 4 KiB apart all fell into one).
pub(crate) fn transposed_stride(gh: usize) -> usize {
    match gh % 64 {
        0 => gh + 16,
        _ => gh,
    }
}

/// How the step GEMMs read each direction's `W (G·H, K)` (`W_hh`, `K = P`, or `W_ih`,
/// `K = I`): laid out once per call when several steps read it with several rows each (a
/// step of one or two rows is a matrix-vector product, which reads `W` best as it is).
#[derive(Clone, Copy)]
pub(crate) enum StepWeights<'a> {
    /// From the parameters.
    AsIs,
    /// `Wᵀ` of every direction, `(D, K, G·H)` with rows [`transposed_stride`] apart, for
    /// the `gemm` crate (forward only, where the panels are not used).
    Transposed(&'a [f32]),
    /// Every direction's operand packed in panels ([`panels`]), one after the other:
    /// `Wᵀ (K × G·H)` forward, `W (G·H × K)` backward.
    Panels(&'a [f32]),
}

impl StepWeights<'_> {
    /// How the forward step GEMMs should lay `W_hh` (and `W_ih`) out for `t` steps of `b`
    /// rows of `h` `p` wide:
    /// - more than two rows: in panels from [`panels_min_p`] on (128 with AVX2, 256 with
    ///   AVX-512). Below, the `gemm` crate's kernels over `Wᵀ` laid out in tiles;
    /// - one or two rows (matrix-vector steps): in panels below `p = 256`, where the
    ///   `gemm` crate's matrix-vector path took three quarters of a batch-1 step (batch 1,
    ///   hidden 128, 100 steps: inference 0.80 → 0.52 ms, training 2.0 → 1.44 ms); from
    ///   256 on as they are, since `W` no longer fits in L2 and packing it reads it once
    ///   more than the steps gain.
    pub fn forward_kind(t: usize, b: usize, p: usize) -> WeightLayout {
        let panels = panels_isa();
        match (t > 2, b > 2) {
            (false, _) => WeightLayout::AsIs,
            (true, true) if panels && p >= panels_min_p() => WeightLayout::Panels,
            (true, true) => WeightLayout::Transposed,
            (true, false) if panels && p < FEW_ROWS_AS_IS_MIN_P => WeightLayout::Panels,
            (true, false) => WeightLayout::AsIs,
        }
    }

    /// How the backward step GEMMs should: in panels where the forward ones are, and for
    /// one or two rows at any width (`dG W_hh` as it lies went through the `gemm` crate's
    /// slow matrix-vector path).
    pub fn backward_kind(t: usize, b: usize, p: usize) -> WeightLayout {
        match Self::forward_kind(t, b, p) {
            WeightLayout::Panels => WeightLayout::Panels,
            _ if t > 2 && b <= 2 && panels_isa() => WeightLayout::Panels,
            _ => WeightLayout::AsIs,
        }
    }

    /// The operand `v Wᵀ` reads for direction `dir`, whose `W (G·H, K)` in the
    /// parameters is `w` (`h_{t-1} W_hhᵀ`, `x_t W_ihᵀ`).
    pub fn forward(self, w: Mat, dir: usize, (k, gh): (usize, usize)) -> Weights {
        match self {
            StepWeights::AsIs => Weights::Strided(Mat::transposed(w.ptr, w.rs)),
            StepWeights::Transposed(wt) => {
                let ld = transposed_stride(gh);
                Weights::Strided(Mat::rows(wt[dir * k * ld..].as_ptr(), ld))
            }
            StepWeights::Panels(pk) => Weights::Panels(Panels {
                ptr: pk[dir * panels::packed_len(k, gh)..].as_ptr(),
                k,
                isa: isa(),
            }),
        }
    }

    /// The operand `dG_t W_hh` reads for direction `dir`, whose `W_hh` in the parameters
    /// is `w`.
    pub fn backward(self, w: Mat, dir: usize, (p, gh): (usize, usize)) -> Weights {
        match self {
            StepWeights::Panels(pk) => Weights::Panels(Panels {
                ptr: pk[dir * panels::packed_len(gh, p)..].as_ptr(),
                k: gh,
                isa: isa(),
            }),
            _ => Weights::Strided(w),
        }
    }
}

/// The smallest width of `h` whose step GEMMs of more than two rows run on the panel
/// kernels of this CPU's instruction set.
///
/// AVX2: 128. Against the `gemm` crate there, both alternating inside one process (AMD
/// Zen 3, plain build, medians of 15–30 paired ratios): 64 × 128 × 28 training 3.9% and
/// inference 9.0% faster, 100 × 128 × 28 4.7% and 6.3%, 256 × 128 × 28 5.5% and 9.2%,
/// 32 × 128 × 100 8.1% and 11.9%, `gru-train` 3.6%; at 64 training was 2–6% slower.
/// (Judged across processes on a noisy host, 128 had looked level in training.)
///
/// AVX-512: 256, where the MNIST step (`p = 128`) ran as fast either way forward and
/// slower backward, whose copy of the left operand serves only three panels (measured
/// across processes on an Intel Xeon). Inside one process on AMD Zen 4, panels from 128
/// against from 256: level (MNIST shape, 16 paired rounds: training 1.005, inference
/// 0.996).
fn panels_min_p() -> usize {
    match isa() {
        Isa::Avx512 => 256,
        _ => 128,
    }
}

/// The width of `h` from which steps of one or two rows read the weights as they lie
/// rather than in panels.
const FEW_ROWS_AS_IS_MIN_P: usize = 256;

/// Whether the CPU runs the panel kernels (AVX2 or AVX-512).
fn panels_isa() -> bool {
    matches!(isa(), Isa::Avx2 | Isa::Avx512)
}

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

/// A weight matrix of every direction laid out for the step GEMMs, in a recycled buffer.
pub(crate) struct LaidOut {
    layout: WeightLayout,
    buf: Vec<f32>,
}

impl Default for LaidOut {
    /// Read as it lies: no buffer.
    fn default() -> Self {
        Self {
            layout: WeightLayout::AsIs,
            buf: Vec::new(),
        }
    }
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

/// Lays out every direction's `W (G·H, K)`, `pick(w[d])` (a row-major matrix with unit
/// column stride: `W_hh`, or `W_ih` with `K = I`), as `layout` says: for the forward pass
/// (`Wᵀ`, `K × G·H`) or the backward pass (`W`, `G·H × K`).
pub(crate) fn lay_out(
    w: &[DirWeights],
    pick: fn(&DirWeights) -> Mat,
    (k, gh): (usize, usize),
    layout: WeightLayout,
    fwd: bool,
) -> LaidOut {
    let w: Vec<Mat> = w.iter().map(pick).collect();
    let buf = match layout {
        WeightLayout::AsIs => Vec::new(),
        WeightLayout::Transposed => {
            let mut buf = take_buffer(w.len() * k * transposed_stride(gh));
            transpose(&w, (k, gh), &mut buf);
            buf
        }
        WeightLayout::Panels => {
            let (rows, n) = if fwd { (k, gh) } else { (gh, k) };
            let len = panels::packed_len(rows, n);
            let mut buf = take_buffer(w.len() * len);
            for (d, &wd) in w.iter().enumerate() {
                let src = if fwd { wd.t() } else { wd };
                panels::pack(src, (rows, n), &mut buf[d * len..][..len]);
            }
            buf
        }
    };
    LaidOut { layout, buf }
}

/// `Wᵀ` of every direction into `dst` `(D, K, G·H)`, rows [`transposed_stride`] apart, in
/// parallel blocks of 16 of its rows. A block goes through `W (G·H, K)` in tiles of
/// 16 × 16: each tile reads 16 rows of 16 contiguous floats and writes 16 rows of 16 (one
/// cache line each), so that the 16 destination rows, a power of two apart for the usual
/// sizes, do not evict each other's lines between element-wise writes.
fn transpose(w: &[Mat], (k, gh): (usize, usize), dst: &mut [f32]) {
    const BLOCK: usize = 16;
    let blocks = k.div_ceil(BLOCK);
    let ld = transposed_stride(gh);
    let out = Shared::new(dst);
    parallel_for(w.len() * blocks, |task| {
        let (d, j0) = (task / blocks, (task % blocks) * BLOCK);
        let width = BLOCK.min(k - j0);
        let wd = w[d];
        // SAFETY: block `task` writes rows j0..j0 + width of direction d's Wᵀ alone.
        let rows = unsafe { out.slice((d * k + j0) * ld, width * ld) };
        let mut tile = [[0f32; BLOCK]; BLOCK];
        for n0 in (0..gh).step_by(BLOCK) {
            let height = BLOCK.min(gh - n0);
            for (dn, row) in tile.iter_mut().enumerate().take(height) {
                // SAFETY: row n0 + dn of W has K elements, j0 + width <= K.
                let src = unsafe { wd.ptr.add((n0 + dn) * wd.rs + j0) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_layout_follows_the_width_the_rows_and_the_instruction_set() {
        let kind = StepWeights::forward_kind;
        let panels = match panels_isa() {
            true => WeightLayout::Panels,
            false => WeightLayout::Transposed,
        };
        // More than two rows: the gemm crate below the threshold, panels from it on
        // (hidden 128: panels with AVX2 only).
        assert_eq!(kind(28, 64, 64), WeightLayout::Transposed);
        let mnist = match isa() {
            Isa::Avx2 => WeightLayout::Panels,
            _ => WeightLayout::Transposed,
        };
        assert_eq!(kind(28, 64, 128), mnist);
        assert_eq!(kind(28, 64, 256), panels);
        // One or two rows: panels below 256 wide (where any), as they lie from 256 on.
        let few = match panels_isa() {
            true => WeightLayout::Panels,
            false => WeightLayout::AsIs,
        };
        assert_eq!(kind(28, 2, 128), few);
        assert_eq!(kind(28, 1, 256), WeightLayout::AsIs);
        // Two steps or fewer: as they lie.
        assert_eq!(kind(2, 64, 512), WeightLayout::AsIs);
        // Backward: panels wherever the forward has them.
        assert_eq!(
            StepWeights::backward_kind(28, 64, 128),
            match mnist {
                WeightLayout::Panels => WeightLayout::Panels,
                _ => WeightLayout::AsIs,
            }
        );
    }
}
