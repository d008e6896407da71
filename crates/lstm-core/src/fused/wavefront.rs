//! Inference of stacked one-direction layers in a wavefront: every layer runs its whole
//! recurrence on a thread of its own, and layer `l + 1` runs step `t` as soon as layer
//! `l` has written its `h_t`, instead of after layer `l`'s last step.
//!
//! The row split ([`super::tasks`]) gives each thread a block of at least 8 batch rows,
//! so a smaller batch runs every layer on one thread while the others wait. Here the
//! layers overlap instead: with two threads and two layers both cores work from the
//! second step on. Each layer counts the steps it has written in an atomic; the layer
//! above waits for that count before its step projects the input `x_t W_ihᵀ`
//! ([`Wave`], read by the step loop of [`super::steps`]). The layers' outputs stay
//! whole, since the layer above may read a step any time after it is written.
//!
//! The pair runs at the pace of its slower layer, the second, whose steps multiply
//! `K = 2P` against the first's `I + P`. With two layers the first evens that out: after
//! each step it also projects its new `h_t` onto the first columns of the second's
//! `W_ihᵀ` ([`feed_columns`]), into a `(T, B, cols)` block the second copies from
//! instead of computing those columns. On Zen 5 that took the 2-layer hidden-256 model
//! at batch 8 from 4.10 to 3.46 ms (6 pairs of runs), and hidden 128 at batch 4 and 8 by
//! 1.12× and 1.16×.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Result, Storage, Tensor};

use super::buffers::{parallel_for, take_buffer, threads, DirWeights, Shared};
use super::columns::runs_by_columns;
use super::layout::{StepWeights, WeightLayout};
use super::matmul::Weights;
use super::op::contiguous_f32;
use super::panels::NR;
use super::pass::ForwardPass;
use super::recurrence::{self, state_width, Dims};
use super::SequenceOutput;
use crate::kernels::Rows;

/// Where a layer of a wavefront learns how many steps of its input are written, and
/// counts its own. The default (no counters) is a layer run alone.
#[derive(Clone, Copy, Default)]
pub(crate) struct Wave<'a> {
    /// The steps of the input written so far (the layer below's count); `None`: every
    /// step (the input is data).
    pub input: Option<&'a AtomicUsize>,
    /// This layer's count.
    pub done: Option<&'a AtomicUsize>,
    /// The first gate columns of the layer above's input projection, which this layer's
    /// steps compute from the `h` they have just written ([`feed_columns`]).
    pub feed: Option<Feed>,
    /// The first gate columns of this layer's input projection, computed by the layer
    /// below (its `feed`): the steps copy them instead of projecting them.
    pub fed: Option<Feed>,
}

/// A block of the first `cols` gate columns of a layer's input projection `x_t W_ihᵀ`,
/// for every step: `(T, B, cols)`, step `t`'s rows at `t·B·cols`.
#[derive(Clone, Copy)]
pub(crate) struct Feed {
    pub buf: Shared,
    pub cols: usize,
    /// The layer's `W_ihᵀ` as its steps read it (the feeding layer reads its first `cols`
    /// columns).
    pub w_ih_t: Weights,
}

/// How many of the second layer's `gh` gate columns the first layer's steps project,
/// so that the two threads of a wavefront of two layers have equal work per step: the
/// first multiplies `K = I + P` per step and the second `P + P'`, and the columns the
/// first takes over (a multiple of [`NR`]) move `cols / gh` of the second's `P`-deep
/// input product to it. At batch 8 × hidden 256 × input 64 the first layer's thread
/// waited about 30% of its time without it (`docs/benchmarks.md`); there it takes 384
/// of 1024 columns. 0 where the first layer is the slower.
pub(crate) fn feed_columns(below: Dims, above: Dims, gh: usize) -> usize {
    let (k_below, k_above) = (below.i + below.p, above.i + above.p);
    if k_above <= k_below || above.i == 0 {
        return 0;
    }
    let share = (k_above - k_below) as f64 / (2 * above.i) as f64;
    let cols = (share * gh as f64 / NR as f64).round() as usize * NR;
    cols.min(gh / NR * NR)
}

impl Wave<'_> {
    /// Records that this layer's first `steps` steps are written.
    #[inline(always)]
    pub fn publish(self, steps: usize) {
        if let Some(done) = self.done {
            done.store(steps, Ordering::Release);
        }
    }

    /// Returns once the first `steps` steps of the input are written (spinning: a step
    /// takes microseconds; yielding after a while in case the writer was descheduled).
    #[inline(always)]
    pub fn wait(self, steps: usize) {
        let Some(input) = self.input else { return };
        let mut spins = 0u32;
        while input.load(Ordering::Acquire) < steps {
            spins = spins.saturating_add(1);
            match spins < 1 << 16 {
                true => spin_loop(),
                false => std::thread::yield_now(),
            }
        }
    }
}

/// Marks every step of a layer written when dropped during a panic, so that the layer
/// above does not wait for ever and the pool's call hands the panic on.
struct PublishOnPanic<'a>(&'a AtomicUsize);

impl Drop for PublishOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(usize::MAX, Ordering::Release);
        }
    }
}

/// Whether inference of `layers` one-direction layers over `b` full-length rows of `t`
/// steps, `h` wide (`h` of `p` after a projection), runs in a wavefront: two layers or
/// more, a batch the row split leaves threads idle with (fewer blocks of 8 rows than
/// threads), steps whose weights are laid out (not the matrix-vector steps of one or two
/// rows at hidden 256 and more, which read the weights as they lie: there a layer above
/// the first streams `W_ih` at every step instead of projecting its input in one GEMM,
/// and ran 0.88× the layers one after another), and layers that would not split their
/// steps by columns (which uses every thread already, and ran faster at hidden 512:
/// `docs/benchmarks.md`).
pub(crate) fn applies(layers: usize, (b, t): (usize, usize), (h, p): (usize, usize)) -> bool {
    let threads = threads();
    let dm = Dims::one_direction(b, t, 0, (h, p));
    let kind = StepWeights::forward_kind(t, b, p);
    layers >= 2
        && threads >= 2
        && b.div_ceil(8) < threads
        && kind != WeightLayout::AsIs
        && !runs_by_columns(dm, false, kind)
}

/// Runs `layers` (each `[W_ih, W_hh, b_ih, b_hh(, W_hr)]`, contiguous) of family `R` over
/// `x (B, T, I)` from the initial states `s0[l]` `(1, B, SW)`, for inference. Returns the
/// last layer's sequence `(B, T, P)` (with [`SequenceOutput::All`]) and each layer's
/// final states `(1, B, SW)`.
pub(crate) fn run<R: Rows>(
    rows: R,
    x: &Tensor,
    layers: &[Vec<Tensor>],
    s0: &[Tensor],
    output: SequenceOutput,
) -> Result<(Option<Tensor>, Vec<Tensor>)> {
    let x = x.contiguous()?;
    let s0 = s0
        .iter()
        .map(|s| s.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let (b, t, i) = x.dims3()?;
    let mut dims: Vec<Dims> = Vec::with_capacity(layers.len());
    for (l, params) in layers.iter().enumerate() {
        let (gh, p) = params[1].dims2()?;
        let h = gh / R::GATES;
        let input = if l == 0 { i } else { dims[l - 1].p };
        let dm = Dims::one_direction(b, t, input, (h, p));
        let ok = params[0].dims2()? == (gh, input)
            && s0[l].dims3()? == (1, b, state_width::<R>(h, p))
            && params.iter().all(|p| p.is_contiguous());
        if !ok {
            candle_core::bail!("fused wavefront: bad shapes in layer {l}");
        }
        dims.push(dm);
    }
    // Read locks on the input, the states and every parameter.
    let tensors: Vec<&Tensor> = [&x]
        .into_iter()
        .chain(&s0)
        .chain(layers.iter().flatten())
        .collect();
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let slices = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(cpu) => contiguous_f32(cpu, layout, "wavefront operand"),
            _ => candle_core::bail!("fused wavefront: tensors must be on the CPU"),
        })
        .collect::<Result<Vec<_>>>()?;
    let (xs, rest) = slices.split_at(1);
    let (s0s, mut params) = rest.split_at(layers.len());
    let weights: Vec<[DirWeights; 1]> = layers
        .iter()
        .zip(&dims)
        .map(|(layer, dm)| {
            let (these, next) = params.split_at(layer.len());
            params = next;
            [DirWeights::separate(these, (dm.i, dm.p))]
        })
        .collect();
    let last = layers.len() - 1;
    let mut passes: Vec<ForwardPass> = dims
        .iter()
        .zip(&weights)
        .enumerate()
        .map(|(l, (&dm, w))| {
            let out = if l == last {
                output
            } else {
                SequenceOutput::All
            };
            ForwardPass::new::<R>(dm, xs[0], w, (false, out), (true, l > 0))
        })
        .collect();
    let counters: Vec<AtomicUsize> = (0..layers.len()).map(|_| AtomicUsize::new(0)).collect();
    // Two layers: the first takes over the first columns of the second's input product.
    let fed = match dims[..] {
        [below, above] => feed_columns(below, above, R::GATES * above.h),
        _ => 0,
    };
    let mut feed = take_buffer(t * b * fed);
    {
        let mut input = Shared::read_only(xs[0]);
        let mut ios = Vec::with_capacity(passes.len());
        for (l, pass) in passes.iter_mut().enumerate() {
            let wave = Wave {
                input: l.checked_sub(1).map(|below| &counters[below]),
                done: Some(&counters[l]),
                ..Wave::default()
            };
            let io = pass.io(&weights[l], s0s[l], input, wave);
            input = io.out;
            ios.push(io);
        }
        if fed > 0 {
            let gh = R::GATES * dims[1].h;
            let w_ih = ios[1]
                .w_ih
                .expect("a layer above the first projects its input");
            let f = Feed {
                buf: Shared::new(&mut feed),
                cols: fed,
                w_ih_t: w_ih.forward(weights[1][0].w_ih, 0, (dims[1].i, gh)),
            };
            ios[0].wave.feed = Some(f);
            ios[1].wave.fed = Some(f);
        }
        // The pool's threads take the layers in order, so every layer's input is being
        // written by a thread already (or is written): no layer waits on one not started.
        parallel_for(ios.len(), |l| {
            let _publish = PublishOnPanic(&counters[l]);
            recurrence::forward_alone(rows, dims[l], &ios[l]);
        });
    }
    super::buffers::recycle(feed);
    let dev = x.device();
    let mut states = Vec::with_capacity(passes.len());
    let mut out = None;
    for (l, mut pass) in passes.into_iter().enumerate() {
        let dm = dims[l];
        pass.recycle_weights();
        let fin = pass.final_states::<R>(dm);
        states.push(Tensor::from_vec(
            fin,
            (1, b, state_width::<R>(dm.h, dm.p)),
            dev,
        )?);
        let seq = pass.into_out();
        match l == last && output == SequenceOutput::All {
            true => out = Some(Tensor::from_vec(seq, (b, t, dm.p), dev)?),
            false => super::buffers::recycle(seq),
        }
    }
    Ok((out, states))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::LstmRows;
    use crate::test_util::{max_diff, seeded_randn};
    use crate::SplitMix64;
    use candle_core::Device;

    #[test]
    fn small_batches_of_stacks_run_in_a_wavefront() {
        if threads() < 2 || StepWeights::forward_kind(100, 8, 256) != WeightLayout::Panels {
            return; // one thread, or no panel kernels: nothing to overlap
        }
        assert!(applies(2, (8, 100), (256, 256)));
        assert!(applies(3, (2, 100), (128, 128)));
        // One layer, a batch the row split uses every thread with, matrix-vector steps
        // reading W as it lies, and steps split by columns.
        assert!(!applies(1, (8, 100), (256, 256)));
        assert!(!applies(2, (8 * threads() + 1, 100), (256, 256)));
        assert!(!applies(2, (1, 100), (256, 256)));
        assert!(!applies(2, (8, 100), (512, 512)));
    }

    #[test]
    fn a_layer_that_panics_lets_the_layer_above_go_on() {
        // 'static, so that a waiter that never returns can be left behind.
        let done: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let below = std::thread::spawn(move || {
            let _publish = PublishOnPanic(done);
            let wave = Wave {
                input: None,
                done: Some(done),
                ..Wave::default()
            };
            wave.publish(3);
            panic!("a layer fails at step 3");
        });
        // Waits for step 10, which the failed layer never writes.
        let above = std::thread::spawn(move || {
            let wave = Wave {
                input: Some(done),
                done: None,
                ..Wave::default()
            };
            wave.wait(10);
        });
        assert!(below.join().is_err());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !above.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the layer above still waits"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(done.load(Ordering::Acquire), usize::MAX);
    }

    #[test]
    fn the_first_of_two_layers_takes_over_columns_until_both_multiply_alike() {
        let dims = |i, h| Dims::one_direction(8, 100, i, (h, h));
        // Input 64, hidden 256: K 320 below, 512 above; 3/8 of 1024 columns move.
        assert_eq!(feed_columns(dims(64, 256), dims(256, 256), 1024), 384);
        // Columns in whole panels: 295/600 of 1200 is 590, 12 panels.
        assert_eq!(feed_columns(dims(5, 300), dims(300, 300), 1200), 576);
        // The first layer already the slower (a wide input), or equal: nothing moves.
        assert_eq!(feed_columns(dims(600, 256), dims(256, 256), 1024), 0);
        assert_eq!(feed_columns(dims(256, 256), dims(256, 256), 1024), 0);
    }

    /// The wavefront gives the numbers of the layers run one after the other through
    /// [`super::super::sequence`]: 2 layers (the first projecting part of the second's
    /// input, [`feed_columns`]) and 3 (more than the threads of a 2-core machine), 300
    /// wide, whose steps run on the panel kernels, from initial states.
    #[test]
    fn a_wavefront_matches_the_layers_one_after_another() -> Result<()> {
        for n in [2, 3] {
            wavefront_matches_layers_one_after_another(n)?;
        }
        Ok(())
    }

    fn wavefront_matches_layers_one_after_another(n: usize) -> Result<()> {
        let dev = Device::Cpu;
        let mut rng = SplitMix64::new(7);
        let (b, t, i, h) = (3, 9, 5, 300);
        let mut randn = |shape: &[usize]| {
            let t = seeded_randn(&mut rng, 0.1, (1, 1, shape.iter().product()), &dev)?;
            t.reshape(shape)
        };
        let mut layers = Vec::new();
        let mut s0 = Vec::new();
        for l in 0..n {
            let input = if l == 0 { i } else { h };
            layers.push(vec![
                randn(&[4 * h, input])?,
                randn(&[4 * h, h])?,
                randn(&[4 * h])?,
                randn(&[4 * h])?,
            ]);
            s0.push((randn(&[1, b, 2 * h])? * 5.0)?);
        }
        let x = (randn(&[b, t, i])? * 10.0)?;
        for output in [SequenceOutput::All, SequenceOutput::Final] {
            let (out, states) = run(LstmRows::default(), &x, &layers, &s0, output)?;
            let mut input = x.clone();
            for (l, params) in layers.iter().enumerate() {
                let mode = (false, SequenceOutput::All);
                let one = super::super::sequence(
                    crate::Family::Lstm,
                    &input,
                    std::slice::from_ref(params),
                    &s0[l],
                    mode,
                    None,
                )?;
                let d = max_diff(&one.states, &states[l]);
                assert!(d < 1e-5, "layer {l} {output:?}: states differ by {d}");
                input = one.out.expect("a sequence");
            }
            assert_eq!(out.is_some(), output == SequenceOutput::All);
            if let Some(out) = out {
                assert_eq!(out.dims(), &[b, t, h]);
                let d = max_diff(&out, &input);
                assert!(d < 1e-5, "output differs by {d}");
            }
        }
        Ok(())
    }
}
