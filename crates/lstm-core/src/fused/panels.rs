//! The step GEMMs' own micro-kernels, on a weight operand packed once per call into
//! panels of [`NR`] columns.
//!
//! A step multiplies a block of batch rows by the same weights (`W_hhᵀ` forward, `W_hh`
//! backward) at every step. Packed once into panels of 48 columns (`k` rows of 48 floats,
//! contiguous), a panel row is three vector loads; a tile of up to 8 rows × 48 columns
//! keeps its 24 accumulators in AVX-512 registers (with AVX2, tiles of 6 rows × 16
//! columns, over each third of a panel). The kernels broadcast the left operand from
//! where it lies, or, when its rows lie a multiple of 4 KiB apart ([`reads_in_place`]),
//! from a copy in the order they read it ([`pack_lhs`]); the tile's rows of the
//! destination are prefetched before the products, since a step's gates (the input
//! projections the products are added to) were written long before. While the row tiles
//! of a panel run (three or more), they also ask for the next panel into L2, a line per
//! `kk` spread over the tiles: at hidden 512 a thread's panels (2 MiB or more) do not
//! stay in an Intel core's 2 MiB L2 from one step to the next, and each panel came from
//! L3 in a burst while its first row tile waited on it.
//!
//! Alone on one core of the AVX-512 machine of `docs/benchmarks.md`, with the destination
//! rows a sequence apart as in a step, the kernel runs the MNIST step (48 × 512 × 128) at
//! 112 GFLOP/s and the hidden-256 step (48 × 1024 × 256) at 108, against 97 and 89 for
//! the `gemm` crate on the same operands. Inside the recurrence at hidden 128 both run at
//! the same rate (and the backward copy of the left operand serves only three panels),
//! so the steps use the panels from `h` 256 wide on
//! ([`super::layout::StepWeights::forward_kind`]).
//!
//! Only for x86-64 with AVX2 + FMA or AVX-512 ([`super::isa`]); elsewhere the steps call
//! the `gemm` crate.

use super::buffers::{parallel_for, Mat, Shared};
use super::recurrence::Isa;

/// Columns per panel.
pub(crate) const NR: usize = 48;

/// Columns per vector group: the tile widths are multiples of it.
const NV: usize = 16;

/// The most rows of one AVX-512 tile (three registers of 16 columns per row).
const MR_512: usize = 8;

/// The most rows of one AVX2 tile (two registers of 8 columns per row, a third of a panel).
const MR_256: usize = 6;

/// A `k × n` operand packed by [`pack`]: panel `j` holds columns `48j..48j + 48` as `k`
/// rows of 48 floats (zeros past `n`), and the instruction set of the kernels that read
/// it (AVX2 or AVX-512, chosen where it is packed).
#[derive(Clone, Copy)]
pub(crate) struct Panels {
    pub ptr: *const f32,
    pub k: usize,
    pub isa: Isa,
}

// SAFETY: only read, while the buffer it points into is alive (one op call).
unsafe impl Send for Panels {}
unsafe impl Sync for Panels {}

impl Panels {
    /// The operand from column `c` on (`c` a multiple of [`NR`]).
    pub fn skip_cols(self, c: usize) -> Self {
        debug_assert_eq!(c % NR, 0);
        Self {
            ptr: self.ptr.wrapping_add(c / NR * self.k * NR),
            ..self
        }
    }
}

/// Floats of a `k × n` operand packed in panels.
pub(crate) fn packed_len(k: usize, n: usize) -> usize {
    n.div_ceil(NR) * k * NR
}

/// Packs `src (k × n)` into `dst` (at least [`packed_len`] floats), one panel per
/// parallel task.
pub(crate) fn pack(src: Mat, (k, n): (usize, usize), dst: &mut [f32]) {
    let panels = n.div_ceil(NR);
    assert!(dst.len() >= panels * k * NR, "panel buffer too short");
    let out = Shared::new(dst);
    parallel_for(panels, |j| {
        // SAFETY: panel j's floats belong to this task alone.
        let panel = unsafe { out.slice(j * k * NR, k * NR) };
        let width = NR.min(n - j * NR);
        let col0 = src.skip_cols(j * NR).ptr;
        if src.cs == 1 {
            // Rows of the source are contiguous: copy a panel row at a time.
            for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
                // SAFETY: row kk, columns 48j..48j + width of the source.
                let s = unsafe { std::slice::from_raw_parts(col0.add(kk * src.rs), width) };
                row[..width].copy_from_slice(s);
                row[width..].fill(0.0);
            }
        } else {
            // Columns of the source are contiguous (a transposed matrix): read down them.
            for c in 0..NR {
                for kk in 0..k {
                    panel[kk * NR + c] = match c < width {
                        // SAFETY: element (kk, 48j + c) of the source.
                        true => unsafe { *col0.add(c * src.cs + kk * src.rs) },
                        false => 0.0,
                    };
                }
            }
        }
    });
}

/// `dst (m × n, row stride ldc) = [dst +] lhs (m × k, unit column stride) · rhs`, on the
/// calling thread, with the kernels of the panels' instruction set.
///
/// # Safety
/// `lhs` and `dst` must address their full extents, `rhs` a packed `k × n` operand, the
/// CPU must have its instruction set, and `dst` must not overlap the operands.
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    ldc: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Panels,
) {
    debug_assert_eq!(lhs.cs, 1);
    if m == 0 || n == 0 {
        return;
    }
    let (mr, tile): (usize, TileFn) = match rhs.isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (MR_512, x86::tile_512),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (MR_256, x86::tile_256),
        _ => unreachable!("panel kernels need AVX2 or AVX-512"),
    };
    let in_place = reads_in_place(lhs);
    let panels = n.div_ceil(NR);
    // With at least three row tiles, the first three ask for a third of the next panel
    // each, one line per `kk`. Fewer rows ask for nothing: with one or two tiles, two or
    // three prefetches per `kk` made the steps of batches of 1 and 8 rows 3–10% slower.
    let ask = m.div_ceil(mr) >= LINES_PER_ROW;
    // The tiles over the packed `a`, or over `lhs` where it lies (`a` empty).
    let tiles = |a: &[f32]| {
        for j in 0..panels {
            let panel = rhs.ptr.add(j * rhs.k * NR);
            let width = NR.min(n - j * NR);
            let vecs = width.div_ceil(NV);
            let next = panel.wrapping_add(rhs.k * NR);
            for (t, (r0, h)) in row_tiles(m, mr).enumerate() {
                let (a, a_rs, a_ks) = match in_place {
                    true => (lhs.ptr.add(r0 * lhs.rs), lhs.rs, 1),
                    false => (a[r0 * k..].as_ptr(), 1, h),
                };
                let c = dst.add(r0 * ldc + j * NR);
                let operands = Tile {
                    k,
                    a,
                    a_rs,
                    a_ks,
                    b: panel,
                    c,
                    ldc,
                    accumulate,
                    next: next.wrapping_add(t * rhs.k * LINE),
                    ask_next: ask && j + 1 < panels && t < LINES_PER_ROW,
                };
                if width == vecs * NV {
                    tile(h, vecs, operands);
                } else {
                    // A ragged edge: the tile into a scratch block, then its valid columns.
                    let mut block = [0f32; MR_512 * NR];
                    let scratch = Tile {
                        c: block.as_mut_ptr(),
                        ldc: NR,
                        accumulate: false,
                        ..operands
                    };
                    tile(h, vecs, scratch);
                    for r in 0..h {
                        let out = std::slice::from_raw_parts_mut(c.add(r * ldc), width);
                        for (o, &v) in out.iter_mut().zip(&block[r * NR..]) {
                            *o = if accumulate { *o + v } else { v };
                        }
                    }
                }
            }
        }
    };
    match in_place {
        true => tiles(&[]),
        false => PACKED_LHS.with(|buf| tiles(pack_lhs(lhs, (m, k), mr, &mut buf.borrow_mut()))),
    }
}

/// Whether the kernels read the rows of `lhs` where they lie rather than packed
/// ([`pack_lhs`]): unless its rows lie a multiple of 4 KiB apart, where a tile's rows
/// all fall into the same L1 cache sets. Inference keeps the step's `h` in contiguous
/// rows, read in place; a training step's rows lie a sequence apart.
fn reads_in_place(lhs: Mat) -> bool {
    !(lhs.rs * std::mem::size_of::<f32>()).is_multiple_of(4096)
}

/// The tiles of `m` rows, at most `mr` each, as `(first row, rows)`: as few as possible,
/// their sizes at most one apart (50 rows by 8: one of 8 and six of 7, rather than six of
/// 8 and one of 2).
fn row_tiles(m: usize, mr: usize) -> impl Iterator<Item = (usize, usize)> {
    let tiles = m.div_ceil(mr);
    let (base, extra) = (m / tiles, m % tiles);
    (0..tiles).map(move |t| (t * base + t.min(extra), base + usize::from(t < extra)))
}

thread_local! {
    /// The left operand of the calling thread's last product, packed ([`pack_lhs`]).
    static PACKED_LHS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Copies `lhs (m × k)` into `buf` by [`row_tiles`]: a tile of `h` rows as `k` groups of
/// its `h` values, `buf[r0·k + kk·h + r]`. The kernels then broadcast from one stream
/// instead of `h` rows, which for a block of batch rows lie a whole sequence apart
/// (`T·P` floats: a multiple of 4 KiB at hidden 256 and 100 steps, so that every row fell
/// into the same L1 cache set).
///
/// # Safety
/// `lhs` must address `m × k` floats with a unit column stride.
unsafe fn pack_lhs(lhs: Mat, (m, k): (usize, usize), mr: usize, buf: &mut Vec<f32>) -> &[f32] {
    if buf.len() < m * k {
        buf.resize(m * k, 0.0);
    }
    for (r0, h) in row_tiles(m, mr) {
        let tile = &mut buf[r0 * k..][..h * k];
        let src = lhs.ptr.add(r0 * lhs.rs);
        for (kk, group) in tile.chunks_exact_mut(h).enumerate() {
            for (r, v) in group.iter_mut().enumerate() {
                *v = *src.add(r * lhs.rs + kk);
            }
        }
    }
    &buf[..m * k]
}

/// The operands of one tile's product.
#[derive(Clone, Copy)]
struct Tile {
    /// The products' depth.
    k: usize,
    /// The tile's rows of the left operand, where they lie or packed ([`pack_lhs`]), and
    /// the floats between its rows and between its columns.
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    /// The panel (or, with AVX2, its third) the tile's columns start in.
    b: *const f32,
    /// The tile's first element of `dst`, and the row stride of `dst`.
    c: *mut f32,
    ldc: usize,
    /// Add the products to `dst` rather than overwrite it.
    accumulate: bool,
    /// Where this tile's third of the next panel starts, and whether the tile asks for
    /// it, a cache line per `kk` (not for the last panel, nor with fewer than three row
    /// tiles): while its row tiles multiply a panel, they ask for the next one into L2
    /// (`_MM_HINT_T1`), each line once.
    next: *const f32,
    ask_next: bool,
}

impl Tile {
    /// The address of the left operand's element `(r, kk)`.
    ///
    /// # Safety
    /// The element must lie inside the operand.
    #[inline(always)]
    unsafe fn lhs(&self, r: usize, kk: usize) -> *const f32 {
        self.a.add(kk * self.a_ks + r * self.a_rs)
    }
}

/// Floats per cache line.
const LINE: usize = 16;

/// Cache lines per row of a panel.
const LINES_PER_ROW: usize = NR / LINE;

/// One tile of the given rows and vectors of [`NV`] columns.
type TileFn = unsafe fn(usize, usize, Tile);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Tile, LINE, MR_256, MR_512, NR, NV};

    /// Calls `$kernel::<R(, V)>` for the tile's rows `R` (and vectors `V`).
    macro_rules! by_shape {
        ($kernel:ident, $rows:expr, ($($r:literal),*), $args:tt) => {
            match $rows {
                $($r => by_shape!(@call $kernel, ($r), $args),)*
                _ => unreachable!("tile of {} rows", $rows),
            }
        };
        ($kernel:ident, $rows:expr, $vecs:expr, ($($r:literal),*), $args:tt) => {
            match $vecs {
                1 => by_shape!($kernel, $rows, ($($r),*), @v 1, $args),
                2 => by_shape!($kernel, $rows, ($($r),*), @v 2, $args),
                3 => by_shape!($kernel, $rows, ($($r),*), @v 3, $args),
                _ => unreachable!("tile of {} vectors", $vecs),
            }
        };
        ($kernel:ident, $rows:expr, ($($r:literal),*), @v $v:literal, $args:tt) => {
            match $rows {
                $($r => by_shape!(@call $kernel, ($r, $v), $args),)*
                _ => unreachable!("tile of {} rows", $rows),
            }
        };
        (@call $kernel:ident, ($($c:literal),*), ($($a:expr),*)) => {
            $kernel::<$($c),*>($($a),*)
        };
    }

    /// Asks for the tile's rows of `dst` before the products, so that adding to them does
    /// not wait on memory.
    #[inline(always)]
    unsafe fn prefetch_rows(rows: usize, lines: usize, t: Tile) {
        if t.accumulate {
            for r in 0..rows {
                for l in 0..lines {
                    _mm_prefetch::<_MM_HINT_T0>(t.c.add(r * t.ldc + l * LINE).cast::<i8>());
                }
            }
        }
    }

    /// An AVX-512 tile of up to [`MR_512`] rows × `16·vecs` columns.
    ///
    /// # Safety
    /// As [`super::matmul`], with AVX-512F.
    pub(super) unsafe fn tile_512(rows: usize, vecs: usize, t: Tile) {
        debug_assert!(rows <= MR_512 && vecs * NV <= NR);
        prefetch_rows(rows, vecs, t);
        match t.ask_next {
            true => by_shape!(kernel_512_asking, rows, vecs, (3, 4, 5, 6, 7, 8), (t)),
            false => by_shape!(kernel_512, rows, vecs, (1, 2, 3, 4, 5, 6, 7, 8), (t)),
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel_512<const R: usize, const V: usize>(t: Tile) {
        product_512::<R, V, false>(t)
    }

    /// [`kernel_512`] asking for the tile's third of the next panel as it goes.
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel_512_asking<const R: usize, const V: usize>(t: Tile) {
        product_512::<R, V, true>(t)
    }

    #[inline(always)]
    unsafe fn product_512<const R: usize, const V: usize, const ASK: bool>(t: Tile) {
        let Tile { k, b, c, ldc, .. } = t;
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for kk in 0..k {
            if ASK {
                let line = t.next.wrapping_add(kk * LINE);
                _mm_prefetch::<_MM_HINT_T1>(line.cast::<i8>());
            }
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, bv) in bv.iter_mut().enumerate() {
                *bv = _mm512_loadu_ps(b.add(kk * NR + v * NV));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*t.lhs(r, kk));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(av, bv, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, &sum) in acc.iter().enumerate() {
                let p = c.add(r * ldc + v * NV);
                let sum = match t.accumulate {
                    true => _mm512_add_ps(_mm512_loadu_ps(p), sum),
                    false => sum,
                };
                _mm512_storeu_ps(p, sum);
            }
        }
    }

    /// An AVX2 tile of up to [`MR_256`] rows × `16·vecs` columns, 16 at a time.
    ///
    /// # Safety
    /// As [`super::matmul`], with AVX2 and FMA.
    pub(super) unsafe fn tile_256(rows: usize, vecs: usize, t: Tile) {
        debug_assert!(rows <= MR_256 && vecs * NV <= NR);
        prefetch_rows(rows, vecs, t);
        for v in 0..vecs {
            let (b, c) = (t.b.add(v * NV), t.c.add(v * NV));
            by_shape!(kernel_256, rows, (1, 2, 3, 4, 5, 6), (Tile { b, c, ..t }))
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel_256<const R: usize>(t: Tile) {
        let Tile { k, b, c, ldc, .. } = t;
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(b.add(kk * NR));
            let b1 = _mm256_loadu_ps(b.add(kk * NR + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*t.lhs(r, kk));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (h, &sum) in acc.iter().enumerate() {
                let p = c.add(r * ldc + 8 * h);
                let sum = match t.accumulate {
                    true => _mm256_add_ps(_mm256_loadu_ps(p), sum),
                    false => sum,
                };
                _mm256_storeu_ps(p, sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ISAs this CPU can run the panel kernels with.
    fn isas() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
            }
            if is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 23) as f32 * 0.125 - 1.375)
            .collect()
    }

    /// Every row count of a tile and its remainders, edge panels, both source layouts,
    /// strided rows, with and without accumulating, against a plain triple loop.
    #[test]
    fn panel_matmul_matches_the_triple_loop() {
        for isa in isas() {
            for (m, n, k) in [
                (1, 48, 1),
                (5, 7, 3),
                (13, 64, 17),
                (50, 96, 128),
                (25, 33, 40),
                (9, 512, 20),
                // Three or more row tiles over several panels: tiles that ask for the
                // next panel, with a ragged last one.
                (17, 100, 5),
                (24, 150, 9),
            ] {
                // Rows of the left operand read in place, or 4 KiB apart and packed.
                for (transposed, lda) in [(false, k + 3), (true, k + 3), (false, 1024)] {
                    for accumulate in [false, true] {
                        let ldc = n + 5;
                        let a = values(m * lda, 1);
                        let b = values(k * n, 2);
                        let src = match transposed {
                            // b as the transpose of an (n × k) matrix.
                            true => Mat::rows(b.as_ptr(), k).t(),
                            false => Mat::rows(b.as_ptr(), n),
                        };
                        let at = |kk: usize, col: usize| match transposed {
                            true => b[col * k + kk],
                            false => b[kk * n + col],
                        };
                        let mut packed = vec![f32::NAN; packed_len(k, n)];
                        pack(src, (k, n), &mut packed);
                        let mut c = values(m * ldc, 3);
                        let mut want = c.clone();
                        for r in 0..m {
                            for col in 0..n {
                                let dot: f32 = (0..k).map(|kk| a[r * lda + kk] * at(kk, col)).sum();
                                let w = &mut want[r * ldc + col];
                                *w = if accumulate { *w + dot } else { dot };
                            }
                        }
                        let rhs = Panels {
                            ptr: packed.as_ptr(),
                            k,
                            isa,
                        };
                        // SAFETY: the extents above; the CPU has `isa`.
                        unsafe {
                            let lhs = Mat::rows(a.as_ptr(), lda);
                            matmul((m, n, k), c.as_mut_ptr(), ldc, accumulate, lhs, rhs)
                        };
                        for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
                            let tol = 1e-4 * (1.0 + w.abs());
                            assert!(
                                (got - w).abs() <= tol,
                                "{isa:?} {m}×{n}×{k} t={transposed} acc={accumulate} at {i}: {got} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rows_a_multiple_of_4_kib_apart_are_packed() {
        let a = [0f32; 1];
        assert!(reads_in_place(Mat::rows(a.as_ptr(), 256)));
        assert!(reads_in_place(Mat::rows(a.as_ptr(), 28 * 128)));
        assert!(!reads_in_place(Mat::rows(a.as_ptr(), 1024)));
        assert!(!reads_in_place(Mat::rows(a.as_ptr(), 100 * 256)));
    }

    #[test]
    fn row_tiles_cover_the_rows_in_near_equal_tiles() {
        for m in 1..40 {
            for mr in [6, 8] {
                let tiles: Vec<_> = row_tiles(m, mr).collect();
                assert_eq!(tiles.len(), m.div_ceil(mr));
                let mut next = 0;
                for &(r0, h) in &tiles {
                    assert_eq!(r0, next);
                    assert!(h >= 1 && h <= mr && h + 1 >= tiles[0].1);
                    next += h;
                }
                assert_eq!(next, m);
            }
        }
        assert_eq!(
            row_tiles(50, 8).map(|t| t.1).collect::<Vec<_>>(),
            [8, 7, 7, 7, 7, 7, 7]
        );
    }

    #[test]
    fn panels_hold_the_columns_and_zeros_past_the_edge() {
        let (k, n) = (3, 60);
        let b = values(k * n, 4);
        let mut packed = vec![f32::NAN; packed_len(k, n)];
        pack(Mat::rows(b.as_ptr(), n), (k, n), &mut packed);
        assert_eq!(packed.len(), 2 * k * NR);
        assert_eq!(packed[NR + 5], b[n + 5]);
        assert_eq!(packed[(k + 2) * NR + 11], b[2 * n + 59]);
        assert_eq!(packed[(k + 2) * NR + 12], 0.0);
        let p = Panels {
            ptr: packed.as_ptr(),
            k,
            isa: Isa::Baseline,
        };
        assert_eq!(p.skip_cols(NR).ptr, packed[k * NR..].as_ptr());
    }
}
