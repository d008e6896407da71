//! The fused sequence op as candle custom ops, with hand-written backward passes.
//!
//! [`SequenceOp`] runs one layer, every direction, over the whole sequence: the
//! recurrences ([`super::recurrence`]), whose steps project their own input (or, for
//! batches of one or two rows with `h` 256 wide or more, one GEMM projecting every
//! step's first). Its output is
//! the layer's hidden states `(B, T, D·P)` (packed: `(positions, D·P)`), both
//! directions joined in place, or only the final states. With
//! the sequence as output, [`super::link::FinalStatesOp`] hands out the final states, so
//! candle's graph has no per-step slicing, concatenation or scatter.

use std::sync::Arc;

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor,
};

use super::buffers::{recycle, take_buffer, DirWeights, Shared};
use super::layout::{lay_out, StepWeights};
use super::link::{lock, Link, Saved};
use super::live::live_steps;
use super::pass::ForwardPass;
use super::positions::{PackedSteps, Positions};
use super::recurrence::{self, state_width, Backward, Dims};
use super::weight_grads::{h_prev_len, weight_gradients, WeightGrads};
use super::SequenceOutput;
use crate::kernels::Rows;

/// The contiguous f32 data of a CPU storage, or an error naming `what`.
pub(super) fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        other => candle_core::bail!(
            "fused recurrence: {what} must be f32, got {:?}",
            other.dtype()
        ),
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("fused recurrence: {what} must be contiguous"),
    }
}

/// Runs `f` with the contiguous f32 data of a CPU tensor.
fn with_f32<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(contiguous_f32(cpu, layout, what)?),
        _ => candle_core::bail!("fused recurrence: {what} must be on the CPU"),
    }
}

/// Where a [`SequenceOp`] finds its parameters.
pub(crate) enum WeightSource {
    /// Its second argument ([`DirWeights::packed`]): each direction's
    /// `[W_ih | W_hh | b_ih | b_hh]` (and `W_hrᵀ`), so that autograd reaches every
    /// parameter (training).
    Packed,
    /// `[W_ih, W_hh, b_ih, b_hh(, W_hr)]` of each direction, read where they are
    /// (inference: no copy into a packed operand per call). The second argument is `W_ih`
    /// of the first direction itself, so the result still tracks the parameters and a
    /// backward pass through it fails with a clear message.
    Separate(Vec<Vec<Tensor>>),
}

/// One layer of family `R`, every direction, over a whole sequence.
pub(crate) struct SequenceOp<R: Rows> {
    pub rows: R,
    pub dirs: usize,
    pub source: WeightSource,
    /// Keep what the backward pass needs (training).
    pub train: bool,
    /// Whether the input needs a gradient (not for a first layer fed with data).
    pub input_grad: bool,
    pub output: SequenceOutput,
    pub link: Arc<Link>,
    /// The rows' lengths, when they differ: the input is then `(positions, I)`, packed
    /// time-major ([`PackedSteps`]), and so is the output sequence.
    pub packed: Option<Arc<PackedSteps>>,
}

impl<R: Rows> SequenceOp<R> {
    fn dims(&self, x: &Shape, w: &Shape, s0: &Shape) -> Result<Dims<'_>> {
        let (pos, i) = match &self.packed {
            Some(p) => {
                let (n, i) = x.dims2()?;
                if n != p.count() {
                    candle_core::bail!(
                        "fused recurrence: {n} packed positions, lengths sum to {}",
                        p.count()
                    );
                }
                (Positions::Packed(p), i)
            }
            None => {
                let (b, t, i) = x.dims3()?;
                (Positions::Padded { b, t }, i)
            }
        };
        let sw = s0.dims3()?.2;
        // H and P from the weights (W_hh is (G·H, P)) and the state ([h | c] is P + H).
        let (h, p) = match &self.source {
            WeightSource::Packed => {
                let p = w.dims2()?.1.saturating_sub(i + 2);
                (if R::CELL { sw.saturating_sub(p) } else { sw }, p)
            }
            WeightSource::Separate(ws) => {
                let (gh, p) = ws[0][1].dims2()?;
                (gh / R::GATES, p)
            }
        };
        let (b, t) = (pos.rows(), pos.steps());
        let dm = Dims {
            b,
            t,
            i,
            h,
            p,
            dirs: self.dirs,
            pos,
        };
        let (gh, projected) = (R::GATES * h, p != h);
        let weights_ok = match &self.source {
            WeightSource::Packed => {
                let proj_rows = if projected { self.dirs * h } else { 0 };
                w.dims2()? == (self.dirs * gh + proj_rows, dm.k())
            }
            WeightSource::Separate(ws) => {
                ws.len() == self.dirs
                    && ws.iter().all(|d| {
                        let dims: Vec<Vec<usize>> = d.iter().map(|t| t.dims().to_vec()).collect();
                        let mut want = vec![vec![gh, i], vec![gh, p], vec![gh], vec![gh]];
                        if projected {
                            want.push(vec![p, h]);
                        }
                        dims == want
                    })
            }
        };
        let ok = self.dirs > 0
            && h > 0
            && p > 0
            && (R::CELL || !projected)
            && weights_ok
            && s0.dims3()? == (self.dirs, b, state_width::<R>(h, p))
            && t > 0;
        if !ok {
            candle_core::bail!("fused recurrence: bad shapes x {x:?} weights {w:?} state {s0:?}");
        }
        Ok(dm)
    }
}

impl<R: Rows> CustomOp3 for SequenceOp<R> {
    fn name(&self) -> &'static str {
        "fused-recurrence"
    }

    /// Inputs: `x (B, T, I)` (or `(positions, I)` with lengths), the packed weights
    /// ([`DirWeights::packed`]) and the initial state `(D, B, SW)`.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dm = self.dims(l1.shape(), l2.shape(), l3.shape())?;
        let Dims { i, h, p, dirs, .. } = dm;
        let (x, w) = (
            contiguous_f32(s1, l1, "input")?,
            contiguous_f32(s2, l2, "weights")?,
        );
        let s0 = contiguous_f32(s3, l3, "initial state")?;
        match &self.source {
            WeightSource::Packed => {
                let views = DirWeights::packed(w, dirs, R::GATES, (i, h, p));
                self.forward(dm, x, &views, s0)
            }
            WeightSource::Separate(ws) => {
                // Read locks on every parameter but the first, which candle holds as the
                // op's second argument (`w`).
                let guards: Vec<_> = ws
                    .iter()
                    .flatten()
                    .skip(1)
                    .map(|t| t.storage_and_layout())
                    .collect();
                let mut slices = vec![w];
                for (storage, layout) in &guards {
                    match &**storage {
                        Storage::Cpu(cpu) => slices.push(contiguous_f32(cpu, layout, "weights")?),
                        _ => candle_core::bail!("fused recurrence: weights must be on the CPU"),
                    }
                }
                let views: Vec<DirWeights> = slices
                    .chunks_exact(ws[0].len())
                    .map(|params| DirWeights::separate(params, (i, p)))
                    .collect();
                self.forward(dm, x, &views, s0)
            }
        }
    }

    /// The backward pass (training: the weights are packed).
    fn bwd(
        &self,
        x: &Tensor,
        weights: &Tensor,
        s0: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(Saved {
            mut gates,
            saved,
            proj,
            out,
        }) = lock(&self.link.saved).take()
        else {
            candle_core::bail!(
                "fused recurrence: no saved activations; run the model with train = true to \
                 differentiate it, and call backward once per forward"
            )
        };
        let dm = self.dims(x.shape(), weights.shape(), s0.shape())?;
        let Dims {
            b, i, h, p, dirs, ..
        } = dm;
        let (gh, n, sw) = (R::GATES * h, dm.n(), state_width::<R>(h, p));
        let final_len = dirs * b * sw;
        let (d_out, d_final) = match self.output {
            SequenceOutput::All => {
                let d_final = lock(&self.link.final_grad)
                    .take()
                    .unwrap_or_else(|| vec![0f32; final_len]);
                (Some(grad_res.clone()), d_final)
            }
            SequenceOutput::Final => (None, grad_res.flatten_all()?.to_vec1::<f32>()?),
        };
        let mut d_hid = take_buffer(if R::SPLIT { n * dirs * gh } else { 0 });
        let mut h_prev = take_buffer(h_prev_len(dm));
        let mut d_proj = take_buffer(if p != h { n * dirs * p } else { 0 });
        let mut d_s0 = vec![0f32; dirs * b * sw];
        let mut dw = vec![0f32; weights.elem_count()];
        let mut dx = vec![0f32; if self.input_grad { n * i } else { 0 }];
        with_f32(x, "input", |x| {
            with_f32(weights, "weights", |w| {
                with_f32(s0, "initial state", |s0| {
                    let views = DirWeights::packed(w, dirs, R::GATES, (i, h, p));
                    let mut live = Vec::new();
                    let kind = StepWeights::backward_kind(dm.t, b, p);
                    let w_hh_laid = lay_out(&views, |d| d.w_hh, (p, gh), kind, false);
                    let mut run = |out: &[f32], d_out: Option<&[f32]>| {
                        live = live_steps(dm, d_out, &d_final);
                        let io = Backward {
                            w: &views,
                            w_hh: w_hh_laid.view(),
                            s0,
                            out,
                            saved: &saved,
                            d_out,
                            d_final: &d_final,
                            live: &live,
                            gates: Shared::new(&mut gates),
                            d_hid: Shared::new(&mut d_hid),
                            h_prev: Shared::new(&mut h_prev),
                            d_s0: Shared::new(&mut d_s0),
                            d_proj: Shared::new(&mut d_proj),
                        };
                        recurrence::backward(self.rows, dm, &io);
                        Ok(())
                    };
                    match (&out, &d_out) {
                        (Some(out), _) => run(out, None)?,
                        (None, Some(g)) => with_f32(res, "output", |out| {
                            with_f32(g, "output gradient", |g| run(out, Some(g)))
                        })?,
                        (None, None) => candle_core::bail!("fused recurrence: no output"),
                    }
                    let d_rec = if R::SPLIT { &d_hid } else { &gates };
                    let grads = WeightGrads {
                        d_in: &gates,
                        d_rec,
                        h_prev: &mut h_prev,
                        proj: (&proj, &d_proj),
                    };
                    weight_gradients(dm, R::GATES, (x, w), grads, &live, (&mut dw, &mut dx));
                    w_hh_laid.recycle();
                    Ok(())
                })
            })
        })?;
        recycle(gates);
        recycle(saved);
        recycle(d_hid);
        recycle(h_prev);
        recycle(proj);
        recycle(d_proj);
        if let Some(o) = out {
            recycle(o);
        }
        let dev = res.device();
        let dx = match self.input_grad {
            true => Some(Tensor::from_vec(dx, x.shape(), dev)?),
            false => None,
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, weights.shape(), dev)?),
            Some(Tensor::from_vec(d_s0, s0.shape(), dev)?),
        ))
    }
}

impl<R: Rows> SequenceOp<R> {
    /// The forward pass over each direction's parameters `w`.
    fn forward(
        &self,
        dm: Dims,
        x: &[f32],
        w: &[DirWeights],
        s0: &[f32],
    ) -> Result<(CpuStorage, Shape)> {
        let Dims {
            b, t, h, p, dirs, ..
        } = dm;
        let n = dm.n();
        let mut pass = ForwardPass::new::<R>(dm, x, w, (self.train, self.output), (false, false));
        pass.run(self.rows, dm, w, s0, x);
        pass.recycle_weights();
        let fin = pass.final_states::<R>(dm);
        let ForwardPass {
            out,
            gates,
            saved,
            proj,
            ..
        } = pass;
        let states_shape = Shape::from((dirs, b, state_width::<R>(h, p)));
        let (result, shape, kept_out) = match self.output {
            SequenceOutput::All => {
                *lock(&self.link.final_states) = Some(fin);
                let shape = match dm.pos {
                    Positions::Padded { .. } => Shape::from((b, t, dirs * p)),
                    Positions::Packed(_) => Shape::from((n, dirs * p)),
                };
                (out, shape, None)
            }
            SequenceOutput::Final => (fin, states_shape, Some(out)),
        };
        if self.train {
            *lock(&self.link.saved) = Some(Saved {
                gates,
                saved,
                proj,
                out: kept_out,
            });
        } else {
            recycle(gates);
            recycle(saved);
            recycle(proj);
            if let Some(o) = kept_out {
                recycle(o);
            }
        }
        Ok((CpuStorage::F32(result), shape))
    }
}
