//! Raw-buffer plumbing of the fused op: the threads it runs on, strided views of its
//! buffers and parameters, recycled scratch buffers, and a pointer that tasks share (the
//! GEMM calls are in [`super::matmul`]).
//!
//! The parallel work runs on candle's own CPU thread pool (the one its element-wise ops
//! use) rather than on a second pool: two pools on few cores spin against each other,
//! which cost 30–40% of a training step on 2 cores. When candle's pool has no workers
//! (`CANDLE_NUM_THREADS=1`), rayon's pool is used instead.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

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

    /// The `len` floats from `ptr`, which the caller vouches for (a GEMM's destination).
    pub fn from_raw(ptr: *mut f32, len: usize) -> Self {
        Self(ptr, len)
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
