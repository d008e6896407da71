//! The step GEMMs' own micro-kernels, on a weight operand packed once per call into
//! panels of [`NR`] columns.
//!
//! A step multiplies a block of batch rows by the same weights (`W_hhᵀ` forward, `W_hh`
//! backward) at every step. Packed once into panels of 48 columns (`k` rows of 48 floats,
//! contiguous), a panel row is three vector loads; a tile of up to 8 rows × 48 columns
//! keeps its 24 accumulators in AVX-512 registers (with AVX2, tiles of 6 rows × 16
//! columns over each third of a panel, or of 4 rows × 24 over each half: [`RowTiles`]).
//! The kernels broadcast the left operand from where it lies, or, when its rows lie a
//! multiple of 4 KiB apart ([`reads_in_place`]), from a copy in the order they read it
//! ([`pack_lhs`]); the tile's rows of the destination are prefetched before the
//! products, since a step's gates (the input projections the products are added to)
//! were written long before. While the row tiles
//! of a panel run (three or more), they also ask for the next panel into L2, a line per
//! `kk` spread over the tiles: at hidden 512 a thread's panels (2 MiB or more) do not
//! stay in an Intel core's 2 MiB L2 from one step to the next, and each panel came from
//! L3 in a burst while its first row tile waited on it.
//!
//! Alone on one core of the AVX-512 machine of `docs/benchmarks.md`, with the destination
//! rows a sequence apart as in a step, the kernel runs the MNIST step (48 × 512 × 128) at
//! 112 GFLOP/s and the hidden-256 step (48 × 1024 × 256) at 108, against 97 and 89 for
//! the `gemm` crate on the same operands. Inside the recurrence at hidden 128 both ran at
//! the same rate there (and the backward copy of the left operand serves only three
//! panels), so with AVX-512 the steps use the panels from `h` 256 wide on; with AVX2 on a
//! Zen 3 the panels were 4–9% faster at hidden 128, and are used from 128 on
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
    let tile: TileFn = match rhs.isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::tile_512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::tile_256,
        _ => unreachable!("panel kernels need AVX2 or AVX-512"),
    };
    let row_tiles = RowTiles::new(m, rhs.isa);
    let in_place = reads_in_place(lhs);
    let panels = n.div_ceil(NR);
    // With at least three row tiles, the first three ask for a third of the next panel
    // each, one line per `kk`. Fewer rows ask for nothing: with one or two tiles, two or
    // three prefetches per `kk` made the steps of batches of 1 and 8 rows 3–10% slower.
    let ask = row_tiles.count() >= LINES_PER_ROW;
    // The tiles over the packed `a`, or over `lhs` where it lies (`a` empty).
    let tiles = |a: &[f32]| {
        for j in 0..panels {
            let panel = rhs.ptr.add(j * rhs.k * NR);
            let width = NR.min(n - j * NR);
            let vecs = width.div_ceil(NV);
            let next = panel.wrapping_add(rhs.k * NR);
            for (t, (r0, h)) in row_tiles.iter().enumerate() {
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
        false => {
            PACKED_LHS.with(|buf| tiles(pack_lhs(lhs, (m, k), row_tiles, &mut buf.borrow_mut())))
        }
    }
}

/// Whether the kernels read the rows of `lhs` where they lie rather than packed
/// ([`pack_lhs`]): unless its rows lie a multiple of 4 KiB apart, where a tile's rows
/// all fall into the same L1 cache sets. Inference keeps the step's `h` in contiguous
/// rows, read in place; a training step's rows lie a sequence apart.
fn reads_in_place(lhs: Mat) -> bool {
    !(lhs.rs * std::mem::size_of::<f32>()).is_multiple_of(4096)
}

/// How a product's `m` rows are cut into row tiles: runs of equal tiles, `(count, rows)`,
/// one after the other.
#[derive(Clone, Copy, Debug)]
struct RowTiles([(usize, usize); 3]);

impl RowTiles {
    /// The tiles of the instruction set's kernels.
    /// - AVX-512: as few as possible of at most [`MR_512`] rows, their sizes at most one
    ///   apart (50 rows: one of 8 and six of 7, rather than six of 8 and one of 2).
    /// - AVX2: tiles of 6 rows (over strips of 16 columns) and of 4 (over strips of 24),
    ///   both 12 accumulators of the 16 registers, with one tile of 5 (or 3) rows for an
    ///   odd count. Near-equal tiles of at most 6 cut the 32 rows of a thread's half of
    ///   batch 64 into 6, 6, 5, 5, 5, 5, whose 10-accumulator tiles ran the hidden-256
    ///   step at 80 GFLOP/s against 86 for six tiles of 6 on one Zen 3 core.
    fn new(m: usize, isa: Isa) -> Self {
        if isa != Isa::Avx2 {
            let tiles = m.div_ceil(MR_512);
            let (base, extra) = (m / tiles.max(1), m % tiles.max(1));
            return Self([(extra, base + 1), (tiles - extra, base), (0, 0)]);
        }
        let (odd, even) = match m {
            0..=MR_256 => return Self([(1, m), (0, 0), (0, 0)]),
            7 => return Self([(1, 4), (1, 3), (0, 0)]),
            _ if m % 2 == 1 => (1, m - 5),
            _ => (0, m),
        };
        // Sixes, and the rest in fours: `even` is 4 or more, and 8 or more where it leaves
        // 2 over sixes (only 7 rows would leave 2 alone).
        let (sixes, fours) = match even % MR_256 {
            0 => (even / MR_256, 0),
            4 => (even / MR_256, 1),
            _ => ((even - 8) / MR_256, 2),
        };
        Self([(sixes, MR_256), (fours, 4), (odd, 5)])
    }

    /// The number of tiles.
    fn count(self) -> usize {
        self.0.iter().map(|&(n, _)| n).sum()
    }

    /// The tiles as `(first row, rows)`.
    fn iter(self) -> impl Iterator<Item = (usize, usize)> {
        self.0
            .into_iter()
            .flat_map(|(n, h)| std::iter::repeat_n(h, n))
            .scan(0, |r0, h| {
                let first = *r0;
                *r0 += h;
                Some((first, h))
            })
    }
}

thread_local! {
    /// The left operand of the calling thread's last product, packed ([`pack_lhs`]).
    static PACKED_LHS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Copies `lhs (m × k)` into `buf` by [`RowTiles`]: a tile of `h` rows as `k` groups of
/// its `h` values, `buf[r0·k + kk·h + r]`. The kernels then broadcast from one stream
/// instead of `h` rows, which for a block of batch rows lie a whole sequence apart
/// (`T·P` floats: a multiple of 4 KiB at hidden 256 and 100 steps, so that every row fell
/// into the same L1 cache set). On x86-64 eight depths at a time through a transpose in
/// registers ([`x86::pack_tile`]; a thread's 32 × 320 block of the 2-layer hidden-256
/// step in 1.3 µs against 5.1–5.7 element by element, whose loads and stores a multiple
/// of 4 KiB apart wait on each other).
///
/// # Safety
/// `lhs` must address `m × k` floats with a unit column stride; on x86-64 the CPU must
/// have AVX (the panel kernels' instruction sets do).
unsafe fn pack_lhs(
    lhs: Mat,
    (m, k): (usize, usize),
    tiles: RowTiles,
    buf: &mut Vec<f32>,
) -> &[f32] {
    if buf.len() < m * k + COPY_OVERRUN {
        buf.resize(m * k + COPY_OVERRUN, 0.0);
    }
    for (r0, h) in tiles.iter() {
        let (src, out) = (lhs.ptr.add(r0 * lhs.rs), buf[r0 * k..].as_mut_ptr());
        #[cfg(target_arch = "x86_64")]
        x86::pack_tile(src, lhs.rs, h, k, out);
        #[cfg(not(target_arch = "x86_64"))]
        copy_depths(src, lhs.rs, h, 0..k, out);
    }
    &buf[..m * k]
}

/// Floats past a tile's end that its copy may write ([`x86::pack_tile`]: a depth's
/// eight-float store runs `8 − h` past its `h` values).
const COPY_OVERRUN: usize = 8;

/// Copies the depths `depths` of a tile of `h` rows of `src` (row stride `rs`) into
/// `out` in the kernels' order, `out[kk·h + r] = src[r·rs + kk]`, one float at a time.
///
/// # Safety
/// `src` must address `h` rows `rs` apart that hold the depths, `out` their `kk·h + r`.
unsafe fn copy_depths(
    src: *const f32,
    rs: usize,
    h: usize,
    depths: std::ops::Range<usize>,
    out: *mut f32,
) {
    for kk in depths {
        for r in 0..h {
            *out.add(kk * h + r) = *src.add(r * rs + kk);
        }
    }
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
mod x86;

#[cfg(test)]
mod tests;
