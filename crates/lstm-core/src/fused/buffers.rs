//! Raw-buffer plumbing of the fused op: the threads it runs on, the GEMM call, recycled
//! scratch buffers, and a pointer that tasks share.
//!
//! The parallel work runs on candle's own CPU thread pool (the one its element-wise ops
//! use) rather than on a second pool: two pools on few cores spin against each other,
//! which cost 30–40% of a training step on 2 cores. When candle's pool has no workers
//! (`CANDLE_NUM_THREADS=1`), rayon's pool is used instead.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::panels::{self, Panels};

/// GEMMs below this many multiply-adds run on one thread.
pub(crate) const PARALLEL_GEMM_MIN: usize = 256 * 1024;

/// The number of threads the fused op's parallel work runs on.
pub(crate) fn threads() -> usize {
    let workers = candle_core::utils::barrier_pool().n_workers();
    if workers > 0 {
        workers + 1
    } else {
        rayon::current_num_threads().max(1)
    }
}

/// Runs `f(0..n)` on the pool's threads, each index once.
pub(crate) fn parallel_for(n: usize, f: impl Fn(usize) + Sync) {
    if n <= 1 {
        (0..n).for_each(f);
        return;
    }
    let pool = candle_core::utils::barrier_pool();
    if pool.n_workers() > 0 {
        let next = AtomicUsize::new(0);
        pool.execute(|_| loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            f(i);
        });
    } else {
        (0..n).into_par_iter().for_each(&f);
    }
}

/// A strided matrix operand: base pointer, row stride, column stride (in floats).
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

// SAFETY: a `Mat` is only read, and only while the buffer it points into is alive (the
// GEMM calls below), so sharing it between the pool's threads is sound.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}

impl Mat {
    /// A row-major operand with row stride `rs`.
    pub fn rows(ptr: *const f32, rs: usize) -> Self {
        Self { ptr, rs, cs: 1 }
    }

    /// The operand from row `r` on.
    pub fn skip_rows(self, r: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(r * self.rs),
            ..self
        }
    }

    /// The operand from column `c` on.
    pub fn skip_cols(self, c: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(c * self.cs),
            ..self
        }
    }

    /// The transpose of a row-major operand with row stride `rs`.
    pub fn transposed(ptr: *const f32, rs: usize) -> Self {
        Self { ptr, rs: 1, cs: rs }
    }
}

/// A vector with a stride between its elements.
#[derive(Clone, Copy)]
pub(crate) struct Strided {
    pub ptr: *const f32,
    pub stride: usize,
}

impl Strided {
    /// Element `n`.
    ///
    /// # Safety
    /// `n` must lie inside the vector this addresses.
    #[inline(always)]
    pub unsafe fn get(self, n: usize) -> f32 {
        *self.ptr.add(n * self.stride)
    }
}

/// Where one direction's parameters are: `W_ih (G·H, I)` and `W_hh (G·H, P)` row-major
/// with their row strides, the two bias vectors, and for a projected LSTM `W_hrᵀ (H, P)`.
#[derive(Clone, Copy)]
pub(crate) struct DirWeights {
    pub w_ih: Mat,
    pub w_hh: Mat,
    pub b_ih: Strided,
    pub b_hh: Strided,
    /// The transposed projection, `h = m W_hrᵀ`.
    pub w_hr_t: Option<Mat>,
}

// SAFETY: only read, while the buffers they point into are alive (one op call).
unsafe impl Send for DirWeights {}
unsafe impl Sync for DirWeights {}

impl Mat {
    /// The transpose of this operand (no copy).
    pub fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

impl DirWeights {
    /// The directions of packed weights: `D·G·H` rows of `K = I + P + 2` floats, each
    /// direction's `[W_ih | W_hh | b_ih | b_hh]`, then with a projection (`P < H`) `D·H`
    /// rows holding each direction's `W_hrᵀ` in their first `P` columns.
    pub fn packed(
        w: &[f32],
        dirs: usize,
        gates: usize,
        (i, h, p): (usize, usize, usize),
    ) -> Vec<Self> {
        let k = i + p + 2;
        let gh = gates * h;
        (0..dirs)
            .map(|d| {
                let base = w[d * gh * k..].as_ptr();
                let at = |col: usize| base.wrapping_add(col);
                let w_hr_t = (p != h).then(|| Mat::rows(w[(dirs * gh + d * h) * k..].as_ptr(), k));
                Self {
                    w_ih: Mat::rows(base, k),
                    w_hh: Mat::rows(at(i), k),
                    b_ih: Strided {
                        ptr: at(i + p),
                        stride: k,
                    },
                    b_hh: Strided {
                        ptr: at(i + p + 1),
                        stride: k,
                    },
                    w_hr_t,
                }
            })
            .collect()
    }

    /// One direction from its contiguous parameters `[W_ih, W_hh, b_ih, b_hh(, W_hr)]`.
    pub fn separate(params: &[&[f32]], (i, p): (usize, usize)) -> Self {
        Self {
            w_ih: Mat::rows(params[0].as_ptr(), i),
            w_hh: Mat::rows(params[1].as_ptr(), p),
            b_ih: Strided {
                ptr: params[2].as_ptr(),
                stride: 1,
            },
            b_hh: Strided {
                ptr: params[3].as_ptr(),
                stride: 1,
            },
            // W_hr (P, H) row-major, read transposed.
            w_hr_t: params
                .get(4)
                .map(|w_hr| Mat::rows(w_hr.as_ptr(), w_hr.len() / p).t()),
        }
    }
}

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
/// cost is reading `rhs`: each thread then reads its own columns of it).
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
    let split = match threads > 1 {
        true if m >= 16 => Some((true, m, m.div_ceil(threads).next_multiple_of(8))),
        true if n >= 4 * align => Some((false, n, n.div_ceil(threads).next_multiple_of(align))),
        _ => None,
    };
    let Some((by_rows, len, chunk)) = split else {
        serial_matmul((m, n, k), dst, dst_rs, accumulate, lhs, rhs);
        return;
    };
    let shared = Shared(dst, (m - 1) * dst_rs + n);
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

thread_local! {
    /// Scratch buffers reused across calls, so that large temporaries do not go back to
    /// the OS (and page-fault on every step) between iterations.
    static SCRATCH: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` floats, recycled when possible. Its contents are unspecified (stale
/// values of an earlier call): callers write every element before reading it.
pub(crate) fn take_buffer(len: usize) -> Vec<f32> {
    if len == 0 {
        return Vec::new();
    }
    let recycled = SCRATCH.with(|pool| {
        let mut pool = pool.borrow_mut();
        // One whose written length already covers `len` (none of it to zero), then the
        // smallest that fits, so that a small request does not take a large buffer that
        // a later large one then has to allocate (and zero) again.
        let pos = (0..pool.len())
            .filter(|&p| pool[p].capacity() >= len)
            .min_by_key(|&p| (pool[p].len() < len, pool[p].capacity()));
        pos.map(|p| pool.swap_remove(p))
    });
    let mut v = recycled.unwrap_or_default();
    if v.len() >= len {
        v.truncate(len);
    } else {
        v.resize(len, 0.0);
    }
    v
}

/// Returns a buffer for later reuse.
pub(crate) fn recycle(v: Vec<f32>) {
    if v.capacity() == 0 {
        return;
    }
    SCRATCH.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < 12 {
            pool.push(v);
        }
    });
}

/// A buffer that several tasks write at once, each to its own disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct Shared(*mut f32, usize);

// SAFETY: tasks only touch disjoint elements (see `Shared::slice`), so sending the pointer
// to other threads is sound.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    pub fn new(buf: &mut [f32]) -> Self {
        Self(buf.as_mut_ptr(), buf.len())
    }

    /// A buffer that is only read through this handle (its pointers are never written).
    pub fn read_only(buf: &[f32]) -> Self {
        Self(buf.as_ptr().cast_mut(), buf.len())
    }

    /// The pointer to element `offset`.
    pub fn at(self, offset: usize) -> *mut f32 {
        assert!(
            offset <= self.1,
            "offset {offset} past a buffer of {}",
            self.1
        );
        // SAFETY: within the buffer (checked).
        unsafe { self.0.add(offset) }
    }

    /// `len` elements from `offset`.
    ///
    /// # Safety
    /// No other live slice may overlap these elements.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, offset: usize, len: usize) -> &mut [f32] {
        assert!(
            offset + len <= self.1,
            "{offset}+{len} past a buffer of {}",
            self.1
        );
        std::slice::from_raw_parts_mut(self.0.add(offset), len)
    }
}
