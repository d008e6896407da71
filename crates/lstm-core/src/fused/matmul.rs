//! The fused op's GEMM calls: the `gemm` crate on strided operands, or the panel kernels
//! ([`super::panels`]) on packed weights, split over the pool's threads.

use super::buffers::{parallel_for, threads, Mat, Shared};
use super::panels::{self, Panels};
use super::recurrence::{isa, Isa};

/// GEMMs below this many multiply-adds run on one thread.
pub(crate) const PARALLEL_GEMM_MIN: usize = 256 * 1024;

/// The weight operand of a GEMM: a strided matrix, or one packed in panels for the
/// step kernels ([`panels`]).
#[derive(Clone, Copy)]
pub(crate) enum Weights {
    Strided(Mat),
    Panels(Panels),
}

impl Weights {
    /// The operand from column `c` on (a multiple of [`panels::NR`] for panels).
    pub fn skip_cols(self, c: usize) -> Self {
        match self {
            Weights::Strided(m) => Weights::Strided(m.skip_cols(c)),
            Weights::Panels(p) => Weights::Panels(p.skip_cols(c)),
        }
    }

    /// How many columns a column split's chunks are a multiple of.
    fn col_align(self) -> usize {
        match self {
            Weights::Strided(_) => 16,
            Weights::Panels(_) => panels::NR,
        }
    }
}

/// `dst (m×n, row stride dst_rs) = [dst +] lhs (m×k) · rhs (k×n)`; with `parallel`, a
/// large product is split over the pool's threads: by rows of `dst` when it has enough,
/// else by columns (a product of a few rows, such as one step of a small batch, whose
/// cost is reading `rhs`: each thread then reads its own columns of it), and by columns
/// too where rows would have the `gemm` crate copy a column-major `lhs`
/// ([`columns_spare_a_copy`]).
///
/// # Safety
/// Every pointer must address the full strided extent its dimensions and strides imply,
/// and `dst` must not overlap the operands.
pub(crate) unsafe fn matmul(
    dims: (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    parallel: bool,
) {
    let rhs = Weights::Strided(rhs);
    // SAFETY: as this function's.
    unsafe { split_matmul(dims, dst, dst_rs, accumulate, lhs, rhs, parallel) }
}

/// [`matmul`] with either kind of weight operand.
///
/// # Safety
/// As [`matmul`]; with panels, `lhs` has a unit column stride and the CPU has the
/// panels' instruction set.
unsafe fn split_matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Weights,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let threads = if parallel && m * n * k >= PARALLEL_GEMM_MIN {
        threads()
    } else {
        1
    };
    // Split by rows (8 at a time) or by columns (16 or a panel at a time), or not at all.
    let align = rhs.col_align();
    let col_chunk = n.div_ceil(threads).next_multiple_of(align);
    let split = match threads > 1 {
        true if m >= 16 && !columns_spare_a_copy(n, col_chunk, lhs, rhs) => {
            Some((true, m, m.div_ceil(threads).next_multiple_of(8)))
        }
        true if n >= 4 * align => Some((false, n, col_chunk)),
        _ => None,
    };
    let Some((by_rows, len, chunk)) = split else {
        serial_matmul((m, n, k), dst, dst_rs, accumulate, lhs, rhs);
        return;
    };
    let shared = Shared::from_raw(dst, (m - 1) * dst_rs + n);
    parallel_for(len.div_ceil(chunk), |c| {
        let (at, size) = (c * chunk, chunk.min(len - c * chunk));
        let (dims, dst, lhs, rhs) = match by_rows {
            true => ((size, n, k), shared.at(at * dst_rs), lhs.skip_rows(at), rhs),
            false => ((m, size, k), shared.at(at), lhs, rhs.skip_cols(at)),
        };
        // SAFETY: the chunk's rows (or columns) of dst and of its operand lie inside the
        // caller's extents; the chunks write disjoint parts of dst.
        unsafe { serial_matmul(dims, dst, dst_rs, accumulate, lhs, rhs) }
    });
}

/// Whether splitting a product by columns of `chunk` spares the `gemm` crate a copy of
/// `lhs`, where a split by rows would have each thread copy its rows of it.
///
/// The crate runs a product with a row-major destination transposed (`dstᵀ = rhsᵀ ·
/// lhsᵀ`, `lhsᵀ` the operand whose elements it broadcasts), and copies that operand
/// into its own layout first when its depth stride is not 1 and the destination has more
/// than twice its tile's rows: more than `2 · MR` columns here. A weight gradient
/// `dW = dGᵀ · [x | h]` is such a product (`dGᵀ` column-major): the MNIST shape's
/// `(512 × 156) = (512 × 2800) · (2800 × 156)` copied all 5.7 MB of `dG` (a fifth of the
/// GEMM's time on AMD Zen 4). Split by columns into chunks of at most `2 · MR` (128 with
/// AVX-512), each thread reads `dG` where it lies: that GEMM 1.155× faster, a whole
/// training step 0–3% (Zen 4, both splits alternating in one process). With AVX2 (`MR` =
/// 16) the chunks would be too narrow for anything but the smallest models, which stay
/// split by rows.
fn columns_spare_a_copy(n: usize, chunk: usize, lhs: Mat, rhs: Weights) -> bool {
    if !matches!(rhs, Weights::Strided(_)) || lhs.cs == 1 {
        return false;
    }
    let copied_past = 2 * gemm_tile_rows();
    n > copied_past && chunk <= copied_past
}

/// The rows of the `gemm` crate's f32 tile (`MR`) with this CPU's instruction set: four
/// AVX-512 vectors, two AVX2 vectors, or two of four floats.
fn gemm_tile_rows() -> usize {
    match isa() {
        Isa::Avx512 => 64,
        Isa::Avx2 => 16,
        Isa::Baseline => 8,
    }
}

/// One GEMM on the calling thread, by the `gemm` crate or the panel kernels.
///
/// # Safety
/// As [`split_matmul`].
unsafe fn serial_matmul(
    dims: (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Weights,
) {
    match rhs {
        Weights::Strided(rhs) => gemm_serial(dims, dst, dst_rs, accumulate, lhs, rhs),
        Weights::Panels(rhs) => panels::matmul(dims, dst, dst_rs, accumulate, lhs, rhs),
    }
}

/// The most rows of one step's GEMM per call to the `gemm` crate. With more, it packs the
/// weight operand again on every call (beyond 8 of its 6-row tiles on one thread), which
/// cost 8% of an MNIST-shape inference (batch blocks of 50 rows); with up to 48 rows it
/// reads the weights where they lie. The panel kernels take any number.
const STEP_ROWS: usize = 48;

/// [`matmul`] for one step's product of a task's rows with a weight matrix, in calls of
/// at most [`STEP_ROWS`] rows to the `gemm` crate.
///
/// # Safety
/// As [`split_matmul`].
pub(crate) unsafe fn step_matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Weights,
    parallel: bool,
) {
    let step = match rhs {
        Weights::Strided(_) => STEP_ROWS,
        Weights::Panels(_) => m.max(1),
    };
    for r in (0..m).step_by(step) {
        let rows = step.min(m - r);
        // SAFETY: rows r..r + rows of dst and lhs lie inside the caller's extents.
        let dst = unsafe { dst.add(r * dst_rs) };
        let lhs = lhs.skip_rows(r);
        unsafe { split_matmul((rows, n, k), dst, dst_rs, accumulate, lhs, rhs, parallel) };
    }
}

/// `dst = lhs · rhs` on the calling thread, by the `gemm` crate, for a weight gradient
/// (`lhs` = `dGᵀ`, column-major): with AVX-512 in chunks of at most `2 · MR` (128)
/// columns, so that the crate reads `dGᵀ` where it lies instead of copying it
/// ([`columns_spare_a_copy`]). A task's part of the MNIST shape's weight gradients
/// (156 columns) ran 11% faster so, a whole training step 3% (Zen 4, in one process, 20
/// pairs), the two-layer hidden-256 model's step 3%. With AVX2 the chunks would be 32
/// columns, each reading all of `dGᵀ` again; one call copies it once.
///
/// # Safety
/// As [`matmul`].
pub(crate) unsafe fn serial_product(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    lhs: Mat,
    rhs: Mat,
) {
    let chunk = match isa() {
        Isa::Avx512 => 2 * gemm_tile_rows(),
        _ => n.max(1),
    };
    for c in (0..n).step_by(chunk) {
        let dims = (m, chunk.min(n - c), k);
        // SAFETY: as this function's; columns c.. of dst and rhs lie inside them.
        unsafe { gemm_serial(dims, dst.add(c), dst_rs, false, lhs, rhs.skip_cols(c)) }
    }
}

/// One GEMM on the calling thread.
///
/// # Safety
/// As [`matmul`].
unsafe fn gemm_serial(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.ptr,
        lhs.cs as isize,
        lhs.rs as isize,
        rhs.ptr,
        rhs.cs as isize,
        rhs.rs as isize,
        if accumulate { 1.0 } else { 0.0 },
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight gradient's shape, `dW (m × n) = dGᵀ · S` with `dG (k × m)` row-major, whose
    /// columns fall past the `gemm` crate's copy threshold while half of them do not: it
    /// is split by columns, and the product is right.
    #[test]
    fn a_weight_gradient_split_by_columns_is_the_product() {
        let (m, k) = (256, 300);
        let n = 2 * gemm_tile_rows() + 16;
        let d_g: Vec<f32> = (0..k * m)
            .map(|v| ((v * 37) % 101) as f32 / 101.0 - 0.5)
            .collect();
        let s: Vec<f32> = (0..k * n)
            .map(|v| ((v * 53) % 97) as f32 / 97.0 - 0.5)
            .collect();
        let (lhs, rhs) = (Mat::rows(d_g.as_ptr(), m).t(), Mat::rows(s.as_ptr(), n));
        let chunk = n.div_ceil(2).next_multiple_of(16);
        assert!(columns_spare_a_copy(n, chunk, lhs, Weights::Strided(rhs)));
        // A row-major left operand is read where it lies either way: split by rows.
        let rows = Mat::rows(d_g.as_ptr(), k);
        assert!(!columns_spare_a_copy(n, chunk, rows, Weights::Strided(rhs)));
        let mut dst = vec![f32::NAN; m * n];
        // SAFETY: the operands and dst hold m × k, k × n and m × n floats.
        unsafe { matmul((m, n, k), dst.as_mut_ptr(), n, false, lhs, rhs, true) };
        for r in 0..m {
            for c in 0..n {
                let want: f32 = (0..k).map(|kk| d_g[kk * m + r] * s[kk * n + c]).sum();
                let got = dst[r * n + c];
                assert!(
                    (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "({r}, {c}): {got} against {want}"
                );
            }
        }
    }
}
