//! Fused CPU kernels for the LSTM, as candle custom ops with hand-written backward passes.
//!
//! - [`lstm_sequence`]: a whole LSTM direction over a sequence. It computes the input
//!   projection of all steps as one GEMM, then runs the recurrence: per step one GEMM
//!   `h W_hhᵀ` accumulated in place and one pass of the gate kernel. The batch is split
//!   into one block of rows per thread and each block runs its whole recurrence on its own
//!   thread, so the steps need no synchronisation. The backward pass is
//!   back-propagation through time over saved gate activations, in the same blocks; the
//!   weight gradients are then single large GEMMs over all steps.
//!
//! The book's [`LstmCell`](crate::LstmCell) runs each step as this op over one step.
//! The op is registered with `apply_op3`, so candle's autograd flows through it.

use std::sync::Mutex;

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor,
};
use rayon::prelude::*;

use crate::kernels::{cell_backward_row, cell_forward_row};

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        other => candle_core::bail!("fused lstm: {what} must be f32, got {:?}", other.dtype()),
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("fused lstm: {what} must be contiguous"),
    }
}

/// Runs `f` with the contiguous f32 data of a CPU tensor.
fn with_f32<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(contiguous_f32(cpu, layout, what)?),
        _ => candle_core::bail!("fused lstm: {what} must be on the CPU"),
    }
}

/// GEMMs below this many multiply-adds run on one thread.
const PARALLEL_GEMM_MIN: usize = 256 * 1024;

fn parallelism(parallel: bool, madds: usize) -> gemm::Parallelism {
    let n = rayon::current_num_threads();
    if parallel && n > 1 && madds >= PARALLEL_GEMM_MIN {
        gemm::Parallelism::Rayon(n)
    } else {
        gemm::Parallelism::None
    }
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)` on raw strided f32 buffers.
///
/// # Safety
/// Every pointer must address the full strided extent its dimensions and strides imply.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const f32,
    (rhs_rs, rhs_cs): (usize, usize),
    parallel: bool,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        if accumulate { 1.0 } else { 0.0 },
        1.0,
        false,
        false,
        false,
        parallelism(parallel, m * n * k),
    )
}

thread_local! {
    /// Scratch buffers reused across calls, so that large temporaries do not go back to
    /// the OS (and page-fault on every step) between iterations.
    static SCRATCH: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` floats, recycled when possible. Its contents are unspecified (stale
/// values of an earlier call): callers write every element before reading it.
fn take_buffer(len: usize) -> Vec<f32> {
    let recycled = SCRATCH.with(|pool| {
        let mut pool = pool.borrow_mut();
        let pos = pool.iter().position(|v| v.capacity() >= len);
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
fn recycle(v: Vec<f32>) {
    SCRATCH.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < 8 {
            pool.push(v);
        }
    });
}

/// What [`lstm_sequence`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceOutput {
    /// `(B, T, 2H)`: `[h_t | c_t]` for every step.
    All,
    /// `(B, 2H)`: the final `[h | c]` only. The per-step states stay inside the op, so a
    /// model that reads only the last state (a classifier) moves no `(B, T, ·)` gradient
    /// through candle.
    Final,
}

/// Sizes of one sequence op call.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    i: usize,
    h: usize,
    /// Row length of the packed weights: `i + h + 2`.
    k: usize,
}

/// What a forward pass keeps for its backward pass.
struct Saved {
    /// Activated gates `[i|f|g|o]`, `(B, T, 4H)`.
    gates: Vec<f32>,
    /// `tanh(c_t)`, `(B, T, H)`.
    tanh_c: Vec<f32>,
    /// `[h_t | c_t]`, `(B, T, 2H)`, when the op's output is only the final state.
    states: Option<Vec<f32>>,
}

/// One direction of an LSTM layer over a whole sequence.
struct LstmSequenceOp {
    reverse: bool,
    save: bool,
    /// Whether the input needs a gradient (not for a first layer fed with data).
    input_grad: bool,
    output: SequenceOutput,
    saved: Mutex<Option<Saved>>,
}

/// Splits `0..b` into one block of rows per thread (at most), sizes rounded to 8.
fn row_blocks(b: usize) -> Vec<(usize, usize)> {
    let threads = rayon::current_num_threads().max(1);
    let blocks = threads.min(b.div_ceil(8)).max(1);
    let per = b.div_ceil(blocks).next_multiple_of(8).min(b);
    (0..b)
        .step_by(per.max(1))
        .map(|start| (start, (start + per).min(b)))
        .collect()
}

/// Splits `buf` (rows of `row_len`) into the given blocks of rows.
fn split_rows<'a>(
    mut buf: &'a mut [f32],
    blocks: &[(usize, usize)],
    row_len: usize,
) -> Vec<&'a mut [f32]> {
    let mut parts = Vec::with_capacity(blocks.len());
    for &(start, end) in blocks {
        let (head, tail) = buf.split_at_mut((end - start) * row_len);
        parts.push(head);
        buf = tail;
        let _ = start;
    }
    parts
}

impl LstmSequenceOp {
    /// The time index processed at `step`.
    fn time_index(&self, step: usize, seq: usize) -> usize {
        if self.reverse {
            seq - 1 - step
        } else {
            step
        }
    }

    /// The forward recurrence for one block of `bl` batch rows. All slices hold only the
    /// block's rows; `gates` holds the input projection on entry and the activated gates
    /// on exit.
    #[allow(clippy::too_many_arguments)]
    fn forward_block(
        &self,
        d: Dims,
        bl: usize,
        w: &[f32],
        hc0: &[f32],
        out: &mut [f32],
        gates: &mut [f32],
        tanh_c: &mut [f32],
    ) {
        let Dims { t, i, h, k, .. } = d;
        for step in 0..t {
            let ti = self.time_index(step, t);
            let prev = (step > 0).then(|| self.time_index(step - 1, t));
            let (h_ptr, h_rs) = match prev {
                None => (hc0.as_ptr(), 2 * h),
                Some(tp) => (out[tp * 2 * h..].as_ptr(), t * 2 * h),
            };
            // gates[:, ti] += h_prev · W_hhᵀ
            // SAFETY: h_ptr addresses bl rows of h floats with stride h_rs inside hc0/out;
            // W_hh starts at column I of w (4H rows of K) and is read transposed.
            unsafe {
                matmul(
                    (bl, 4 * h, h),
                    gates[ti * 4 * h..].as_mut_ptr(),
                    t * 4 * h,
                    true,
                    h_ptr,
                    (h_rs, 1),
                    w[i..].as_ptr(),
                    (1, k),
                    false,
                );
            }
            for r in 0..bl {
                let out_r = &mut out[r * t * 2 * h..][..t * 2 * h];
                let (c_prev, cur): (&[f32], &mut [f32]) = match prev {
                    None => (
                        &hc0[r * 2 * h + h..][..h],
                        &mut out_r[ti * 2 * h..][..2 * h],
                    ),
                    Some(tp) => {
                        // Split the row so the previous step is read while the current one
                        // is written.
                        let (lo, hi) = out_r.split_at_mut(ti.max(tp) * 2 * h);
                        if tp < ti {
                            (&lo[tp * 2 * h + h..][..h], &mut hi[..2 * h])
                        } else {
                            (&hi[h..2 * h], &mut lo[ti * 2 * h..][..2 * h])
                        }
                    }
                };
                let (h_out, c_out) = cur.split_at_mut(h);
                cell_forward_row(
                    &mut gates[(r * t + ti) * 4 * h..][..4 * h],
                    c_prev,
                    h_out,
                    c_out,
                    &mut tanh_c[(r * t + ti) * h..][..h],
                );
            }
        }
    }

    /// Back-propagation through time for one block of `bl` batch rows. `gates` holds the
    /// saved activations on entry and the gradients of the gate pre-activations on exit;
    /// `h_prev` receives `h_{t-1}` for every step (for the weight gradient); `d_hc0`
    /// receives the gradient of the initial state.
    #[allow(clippy::too_many_arguments)]
    fn backward_block(
        &self,
        d: Dims,
        bl: usize,
        w: &[f32],
        hc0: &[f32],
        states: &[f32],
        grad: GradOut<'_>,
        gates: &mut [f32],
        tanh_c: &[f32],
        h_prev: &mut [f32],
        d_hc0: &mut [f32],
    ) {
        let Dims { t, i, h, k, .. } = d;
        let mut dh_next = vec![0f32; bl * h];
        let mut dc_next = vec![0f32; bl * h];
        let zeros = vec![0f32; h];
        for step in (0..t).rev() {
            let ti = self.time_index(step, t);
            let prev = (step > 0).then(|| self.time_index(step - 1, t));
            for r in 0..bl {
                let (dh_out, dc_out) = match grad {
                    GradOut::All(g) => {
                        let row = &g[(r * t + ti) * 2 * h..][..2 * h];
                        (&row[..h], &row[h..])
                    }
                    GradOut::Final(g) if step == t - 1 => {
                        let row = &g[r * 2 * h..][..2 * h];
                        (&row[..h], &row[h..])
                    }
                    GradOut::Final(_) => (&zeros[..], &zeros[..]),
                };
                let (c_prev, h_src) = match prev {
                    None => (&hc0[r * 2 * h + h..][..h], &hc0[r * 2 * h..][..h]),
                    Some(tp) => {
                        let row = &states[(r * t + tp) * 2 * h..][..2 * h];
                        (&row[h..], &row[..h])
                    }
                };
                h_prev[(r * t + ti) * h..][..h].copy_from_slice(h_src);
                cell_backward_row(
                    dh_out,
                    &dh_next[r * h..][..h],
                    dc_out,
                    &mut gates[(r * t + ti) * 4 * h..][..4 * h],
                    &tanh_c[(r * t + ti) * h..][..h],
                    c_prev,
                    &mut dc_next[r * h..][..h],
                );
            }
            // dh_prev = dG_t · W_hh
            // SAFETY: the rows of step ti have stride T·4H; W_hh starts at column I of w.
            unsafe {
                matmul(
                    (bl, h, 4 * h),
                    dh_next.as_mut_ptr(),
                    h,
                    false,
                    gates[ti * 4 * h..].as_ptr(),
                    (t * 4 * h, 1),
                    w[i..].as_ptr(),
                    (k, 1),
                    false,
                );
            }
        }
        for r in 0..bl {
            d_hc0[r * 2 * h..][..h].copy_from_slice(&dh_next[r * h..][..h]);
            d_hc0[r * 2 * h + h..][..h].copy_from_slice(&dc_next[r * h..][..h]);
        }
    }
}

/// The gradient reaching the op's output.
#[derive(Clone, Copy)]
enum GradOut<'a> {
    /// `(B, T, 2H)`, for [`SequenceOutput::All`].
    All(&'a [f32]),
    /// `(B, 2H)`, for [`SequenceOutput::Final`].
    Final(&'a [f32]),
}

impl GradOut<'_> {
    fn block(self, start: usize, end: usize, t: usize, h: usize) -> Self {
        match self {
            GradOut::All(g) => GradOut::All(&g[start * t * 2 * h..end * t * 2 * h]),
            GradOut::Final(g) => GradOut::Final(&g[start * 2 * h..end * 2 * h]),
        }
    }
}

impl CustomOp3 for LstmSequenceOp {
    fn name(&self) -> &'static str {
        "lstm-sequence"
    }

    /// Inputs: `x (B, T, I)`, the packed weights `(4H, I + H + 2)` =
    /// `[W_ih | W_hh | b_ih | b_hh]`, and `hc0 (B, 2H)` = `[h0 | c0]`.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, t, i) = l1.shape().dims3()?;
        let (g4, k) = l2.shape().dims2()?;
        let h = g4 / 4;
        if g4 != 4 * h || k != i + h + 2 || l3.shape().dims2()? != (b, 2 * h) || t == 0 {
            candle_core::bail!(
                "lstm-sequence: bad shapes x {:?} weights {:?} hc0 {:?}",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let d = Dims { b, t, i, h, k };
        let x = contiguous_f32(s1, l1, "input")?;
        let w = contiguous_f32(s2, l2, "weights")?;
        let hc0 = contiguous_f32(s3, l3, "initial state")?;
        let mut states = match self.output {
            SequenceOutput::All => vec![0f32; b * t * 2 * h],
            SequenceOutput::Final => take_buffer(b * t * 2 * h),
        };
        let mut gates = take_buffer(b * t * 4 * h);
        let mut tanh_c = take_buffer(b * t * h);
        // gates = b_ih + b_hh + x W_ihᵀ for every step at once.
        let bias: Vec<f32> = (0..4 * h)
            .map(|g| w[g * k + i + h] + w[g * k + i + h + 1])
            .collect();
        for row in gates.chunks_exact_mut(4 * h) {
            row.copy_from_slice(&bias);
        }
        // SAFETY: x is (BT, I); w's first I columns are W_ih, read transposed.
        unsafe {
            matmul(
                (b * t, 4 * h, i),
                gates.as_mut_ptr(),
                4 * h,
                true,
                x.as_ptr(),
                (i, 1),
                w.as_ptr(),
                (1, k),
                true,
            );
        }
        let blocks = row_blocks(b);
        let outs = split_rows(&mut states, &blocks, t * 2 * h);
        let gs = split_rows(&mut gates, &blocks, t * 4 * h);
        let tcs = split_rows(&mut tanh_c, &blocks, t * h);
        blocks
            .par_iter()
            .zip(outs)
            .zip(gs)
            .zip(tcs)
            .for_each(|(((&(start, end), out), g), tc)| {
                let hc0 = &hc0[start * 2 * h..end * 2 * h];
                self.forward_block(d, end - start, w, hc0, out, g, tc);
            });
        let last = self.time_index(t - 1, t);
        let (result, shape) = match self.output {
            SequenceOutput::All => (None, Shape::from((b, t, 2 * h))),
            SequenceOutput::Final => {
                let mut fin = vec![0f32; b * 2 * h];
                for r in 0..b {
                    fin[r * 2 * h..][..2 * h]
                        .copy_from_slice(&states[(r * t + last) * 2 * h..][..2 * h]);
                }
                (Some(fin), Shape::from((b, 2 * h)))
            }
        };
        let (result, kept_states) = match result {
            Some(fin) => (fin, Some(states)),
            None => (states, None),
        };
        if self.save {
            *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(Saved {
                gates,
                tanh_c,
                states: kept_states,
            });
        } else {
            recycle(gates);
            recycle(tanh_c);
            if let Some(s) = kept_states {
                recycle(s);
            }
        }
        Ok((CpuStorage::F32(result), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weights: &Tensor,
        hc0: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, t, i) = x.dims3()?;
        let (g4, k) = weights.dims2()?;
        let h = g4 / 4;
        let d = Dims { b, t, i, h, k };
        let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Saved {
            mut gates,
            tanh_c,
            states,
        }) = saved
        else {
            candle_core::bail!(
                "lstm-sequence: no saved activations; run the model with train = true to \
                 differentiate it, and call backward once per forward"
            )
        };
        let grad_res = grad_res.contiguous()?;
        let (x, hc0) = (x.contiguous()?, hc0.contiguous()?);
        let mut dx = vec![0f32; if self.input_grad { b * t * i } else { 0 }];
        let mut dw = vec![0f32; 4 * h * k];
        let mut d_hc0 = vec![0f32; b * 2 * h];
        let mut h_prev = take_buffer(b * t * h);
        with_f32(&x, "input", |x| {
            with_f32(weights, "weights", |w| {
                with_f32(&hc0, "initial state", |hc0| {
                    with_f32(&grad_res, "output gradient", |g| {
                        let mut run = |seq: &[f32]| {
                            let grad = match self.output {
                                SequenceOutput::All => GradOut::All(g),
                                SequenceOutput::Final => GradOut::Final(g),
                            };
                            let blocks = row_blocks(b);
                            let gs = split_rows(&mut gates, &blocks, t * 4 * h);
                            let hps = split_rows(&mut h_prev, &blocks, t * h);
                            let dhs = split_rows(&mut d_hc0, &blocks, 2 * h);
                            blocks.par_iter().zip(gs).zip(hps).zip(dhs).for_each(
                                |(((&(start, end), g), hp), dh)| {
                                    self.backward_block(
                                        d,
                                        end - start,
                                        w,
                                        &hc0[start * 2 * h..end * 2 * h],
                                        &seq[start * t * 2 * h..end * t * 2 * h],
                                        grad.block(start, end, t, h),
                                        g,
                                        &tanh_c[start * t * h..end * t * h],
                                        hp,
                                        dh,
                                    );
                                },
                            );
                        };
                        match &states {
                            Some(seq) => run(seq),
                            None => with_f32(res, "output", |seq| {
                                run(seq);
                                Ok(())
                            })?,
                        }
                        weight_gradients(d, x, w, &gates, &h_prev, &mut dw, &mut dx);
                        Ok(())
                    })
                })
            })
        })?;
        recycle(gates);
        recycle(tanh_c);
        recycle(h_prev);
        if let Some(s) = states {
            recycle(s);
        }
        let dev = res.device();
        let dx = match self.input_grad {
            true => Some(Tensor::from_vec(dx, (b, t, i), dev)?),
            false => None,
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, (4 * h, k), dev)?),
            Some(Tensor::from_vec(d_hc0, (b, 2 * h), dev)?),
        ))
    }
}

/// The gradients of the packed weights and of the input, from the gate gradients `dg`
/// `(BT, 4H)` of every step: each a single GEMM over all steps.
fn weight_gradients(
    d: Dims,
    x: &[f32],
    w: &[f32],
    dg: &[f32],
    h_prev: &[f32],
    dw: &mut [f32],
    dx: &mut [f32],
) {
    let Dims { b, t, i, h, k } = d;
    // SAFETY (all): dg is (BT, 4H), read transposed for the weights; x is (BT, I); h_prev
    // is (BT, H); dw is (4H, K) with W_ih at column 0 and W_hh at column I.
    unsafe {
        // dW_ih = dGᵀ · x
        matmul(
            (4 * h, i, b * t),
            dw.as_mut_ptr(),
            k,
            false,
            dg.as_ptr(),
            (1, 4 * h),
            x.as_ptr(),
            (i, 1),
            true,
        );
        // dW_hh = dGᵀ · h_prev
        matmul(
            (4 * h, h, b * t),
            dw[i..].as_mut_ptr(),
            k,
            false,
            dg.as_ptr(),
            (1, 4 * h),
            h_prev.as_ptr(),
            (h, 1),
            true,
        );
        if !dx.is_empty() {
            // dx = dG · W_ih
            matmul(
                (b * t, i, 4 * h),
                dx.as_mut_ptr(),
                i,
                false,
                dg.as_ptr(),
                (4 * h, 1),
                w.as_ptr(),
                (k, 1),
                true,
            );
        }
    }
    // d b_ih = d b_hh = Σ_rows dG
    let mut db = vec![0f32; 4 * h];
    for row in dg.chunks_exact(4 * h) {
        for (acc, v) in db.iter_mut().zip(row) {
            *acc += v;
        }
    }
    for (g, v) in db.into_iter().enumerate() {
        dw[g * k + i + h] = v;
        dw[g * k + i + h + 1] = v;
    }
}

/// Runs one LSTM direction over a sequence with the fused CPU kernel.
///
/// - `x`: `(B, T, I)`;
/// - `weights`: `(4H, I + H + 2)`, the packed `[W_ih | W_hh | b_ih | b_hh]`
///   (see [`pack_weights`]);
/// - `hc0`: `(B, 2H)`, the initial state `[h0 | c0]`;
/// - `reverse`: run from the last step to the first (the backward direction of a
///   bidirectional layer);
/// - `save_for_backward`: keep the gate activations so that the result can be
///   differentiated (once); inference passes `false`;
/// - `output`: every step's state, or the final one only.
///
/// Returns `(B, T, 2H)` (`[h_t | c_t]` for every step `t`, in input order) or `(B, 2H)`.
pub fn lstm_sequence(
    x: &Tensor,
    weights: &Tensor,
    hc0: &Tensor,
    reverse: bool,
    save_for_backward: bool,
    output: SequenceOutput,
) -> Result<Tensor> {
    let op = LstmSequenceOp {
        reverse,
        save: save_for_backward,
        input_grad: x.track_op(),
        output,
        saved: Mutex::new(None),
    };
    x.contiguous()?
        .apply_op3(&weights.contiguous()?, &hc0.contiguous()?, op)
}

/// Packs one direction's parameters as `[W_ih | W_hh | b_ih | b_hh]`, `(G·H, I + H + 2)`.
/// Differentiable: gradients flow back to each part.
pub fn pack_weights(w_ih: &Tensor, w_hh: &Tensor, b_ih: &Tensor, b_hh: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[w_ih, w_hh, &b_ih.unsqueeze(1)?, &b_hh.unsqueeze(1)?], 1)
}

/// Whether the fused kernels can run on tensors of this dtype and device.
pub fn supports(t: &Tensor) -> bool {
    t.dtype() == DType::F32 && t.device().is_cpu()
}
