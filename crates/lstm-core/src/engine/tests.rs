//! The fused op against the reference loop, for every family, on odd shapes.

use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use candle_nn::VarMap;

use super::*;
use crate::init::seeded_var_builder;
use crate::test_util::{max_diff, seeded_randn};
use crate::PackedBatch;
use crate::SplitMix64;

const FAMILIES: [Family; 4] = [
    Family::Lstm,
    Family::Gru,
    Family::Rnn(Nonlinearity::Tanh),
    Family::Rnn(Nonlinearity::Relu),
];

/// The inputs of one comparison: `x`, and the initial states when the case has them.
struct Inputs {
    x: Var,
    h0: Option<Var>,
    c0: Option<Var>,
}

/// What the loss of a comparison reads.
#[derive(Clone, Copy, Debug)]
enum Reads {
    /// Every output: the final states and every step.
    Everything,
    /// One time step of the output sequence, nothing else (a classifier reading
    /// `out[:, -1]`): the other steps' gradients are exact zeros, which the backward pass
    /// skips where it can.
    Step(usize),
}

/// Runs `stack` (over `lengths` when given), takes a loss that reads what `reads` says,
/// and returns the outputs and the gradients.
fn run(
    stack: &Stack,
    inputs: &Inputs,
    probe: &Tensor,
    (final_only, reads): (bool, Reads),
    lengths: Option<&[usize]>,
) -> Result<(StackOutput, GradStore)> {
    let (h0, c0) = (
        inputs.h0.as_ref().map(|v| v.as_tensor()),
        inputs.c0.as_ref().map(|v| v.as_tensor()),
    );
    let x = inputs.x.as_tensor();
    let out = match lengths {
        Some(l) => stack.run_packed(&PackedBatch::new(x, l)?, (h0, c0), true, final_only)?,
        None => stack.run(x, h0, c0, true, final_only)?,
    };
    if let (Reads::Step(s), Some(o)) = (reads, &out.out) {
        let loss = (o.narrow(1, s, 1)? * probe.narrow(1, s, 1)?)?.sum_all()?;
        let grads = loss.backward()?;
        return Ok((out, grads));
    }
    let mut loss = (out.h_n.sum_all()? * 1.5)?;
    if let Some(c) = &out.c_n {
        loss = (loss + (c.sqr()?.sum_all()? * 0.3)?)?;
    }
    if let Some(o) = &out.out {
        loss = (loss + (o * probe)?.sum_all()?)?;
    }
    let grads = loss.backward()?;
    Ok((out, grads))
}

/// One case of the comparison: `(batch, steps, input, hidden, layers, bidirectional,
/// initial state)`.
type Case = (usize, usize, usize, usize, usize, bool, bool);

/// Builds `case` for `family` and checks the fused op against the reference loop, in
/// training (both output modes, every gradient) and in inference.
fn compare(family: Family, case: Case, lengths: Option<&[usize]>, proj: usize) -> Result<()> {
    compare_reading(family, case, lengths, proj, Reads::Everything)
}

/// As [`compare`], with a loss that reads what `reads` says (one step: the sequence
/// output only, in training only).
fn compare_reading(
    family: Family,
    case: Case,
    lengths: Option<&[usize]>,
    proj: usize,
    reads: Reads,
) -> Result<()> {
    let dev = Device::Cpu;
    let (b, t, i, h, layers, bi, with_state) = case;
    let name = format!("{family:?} b{b} t{t} i{i} h{h} l{layers} bi{bi} s{with_state}");
    let name = format!("{name} proj {proj} lengths {lengths:?} reads {reads:?}");
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 5, DType::F32, &dev);
    let cfg = RecurrentConfig::new(i, h)
        .with_layers(layers)
        .with_bidirectional(bi)
        .with_proj_size(proj);
    let fused = Stack::new(cfg, family, vb)?;
    let reference = fused.clone().with_kernel(Kernel::Reference);
    let slots = layers * cfg.directions();
    // Inputs drawn from a generator seeded by the case: every run checks the same
    // numbers, so a ReLU pre-activation within rounding of zero (where the two
    // summation orders could take opposite sides of the kink) cannot come and go.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
    });
    let rng = std::cell::RefCell::new(SplitMix64::new(seed));
    let randn = |std: f32, shape: (usize, usize, usize)| {
        seeded_randn(&mut rng.borrow_mut(), std, shape, &dev)
    };
    let state = |width| -> Result<Option<Var>> {
        let s = randn(0.5, (slots, b, width))?;
        Ok(with_state.then(|| Var::from_tensor(&s)).transpose()?)
    };
    let inputs = Inputs {
        x: Var::from_tensor(&randn(1.0, (b, t, i))?)?,
        h0: state(cfg.output_size())?,
        c0: if family.has_cell() { state(h)? } else { None },
    };
    let out_width = cfg.directions() * cfg.output_size();
    let probe = randn(1.0, (b, t, out_width))?;
    let params = vm.all_vars();
    let mut vars: Vec<&Var> = params.iter().collect();
    vars.push(&inputs.x);
    vars.extend(inputs.h0.iter().chain(inputs.c0.iter()));
    let modes: &[bool] = match reads {
        Reads::Everything => &[false, true],
        Reads::Step(_) => &[false],
    };
    for &final_only in modes {
        let how = (final_only, reads);
        let (of, gf) = run(&fused, &inputs, &probe, how, lengths)?;
        let (or, gr) = run(&reference, &inputs, &probe, how, lengths)?;
        let what = format!("{name} final_only {final_only}");
        assert_eq!(of.out.is_some(), !final_only, "{what}: output");
        if let (Some(a), Some(r)) = (&of.out, &or.out) {
            assert!(max_diff(a, r) < 1e-5, "{what}: output");
        }
        assert!(max_diff(&of.h_n, &or.h_n) < 1e-5, "{what}: h_n");
        assert_eq!(of.c_n.is_some(), family.has_cell(), "{what}: c_n");
        if let (Some(a), Some(r)) = (&of.c_n, &or.c_n) {
            assert!(max_diff(a, r) < 1e-5, "{what}: c_n");
        }
        for var in &vars {
            let a = gf.get(var.as_tensor()).expect("fused gradient missing");
            let r = gr.get(var.as_tensor()).expect("reference gradient missing");
            let d = max_diff(a, r);
            // Sums over many rows and steps (the biases') round at f32's relative 1e-7.
            let scale = r.abs()?.max_all()?.to_scalar::<f32>()?;
            let tol = 1e-4 + 2e-6 * scale;
            assert!(d < tol, "{what}: gradient {:?} differs by {d}", var.dims());
            let size = a.abs()?.sum_all()?.to_scalar::<f32>()?;
            // ReLU units can be dead for a whole tiny case, and W_hh gets nothing from a
            // single step out of a zero state; otherwise every input learns.
            // A loss on one step leaves some parameters without a gradient.
            let relu = family == Family::Rnn(Nonlinearity::Relu);
            let everything = matches!(reads, Reads::Everything);
            if everything && !relu && (t > 1 || with_state) {
                assert!(size > 0.0, "{what}: zero gradient {:?}", var.dims());
            }
        }
    }
    if !matches!(reads, Reads::Everything) {
        return Ok(());
    }
    // Inference: the same numbers, nothing kept for a backward pass.
    let h0 = inputs.h0.as_ref().map(|v| v.as_tensor());
    let c0 = inputs.c0.as_ref().map(|v| v.as_tensor());
    let x = inputs.x.as_tensor();
    // Both output modes: the final-state one keeps only the last two steps of `h`.
    for final_only in [false, true] {
        let (a, r) = match lengths {
            Some(l) => {
                let batch = PackedBatch::new(x, l)?;
                let a = fused.run_packed(&batch, (h0, c0), false, final_only)?;
                (
                    a,
                    reference.run_packed(&batch, (h0, c0), false, final_only)?,
                )
            }
            None => (
                fused.run(x, h0, c0, false, final_only)?,
                reference.run(x, h0, c0, false, final_only)?,
            ),
        };
        let what = format!("{name}: inference, final only {final_only}");
        assert!(max_diff(&a.h_n, &r.h_n) < 1e-5, "{what}: h_n");
        if let (Some(a), Some(r)) = (&a.c_n, &r.c_n) {
            assert!(max_diff(a, r) < 1e-5, "{what}: c_n");
        }
        assert_eq!(a.out.is_some(), !final_only, "{what}");
        if let (Some(a), Some(r)) = (&a.out, &r.out) {
            assert!(max_diff(a, r) < 1e-5, "{what}: output");
        }
    }
    Ok(())
}

#[test]
fn fused_matches_reference_for_every_family() -> Result<()> {
    // A small batch with a large hidden size is one task whose GEMMs split by columns;
    // 120 rows in one task per direction run each step's GEMMs in calls of 48 rows, and
    // hidden 64 gives every family a W_hhᵀ with padded rows; hidden 261 runs the step
    // GEMMs on the panel kernels, with ragged edge panels forward and backward. Batches
    // of one or two rows run their steps on the panels below hidden 256, and at 300 read
    // W_hh as it lies forward and in panels backward. Hidden 389 and 512 in one direction
    // split inference by gate columns between the threads (389: blocks of 208 and 181
    // units). Stacks of one direction over fewer than 8 rows run inference in a
    // wavefront (3 layers: more than two threads), but not batch 1 at 300, whose steps
    // read W as it lies, nor hidden 389, which splits by columns.
    let cases: [Case; 16] = [
        (120, 3, 5, 64, 1, true, true),
        (5, 4, 3, 261, 2, true, true),
        (1, 1, 1, 1, 1, false, false),
        (3, 4, 5, 200, 1, false, true),
        (3, 7, 5, 9, 2, false, true),
        (2, 4, 3, 13, 2, true, true),
        (5, 1, 6, 33, 1, true, false),
        (1, 9, 4, 7, 1, true, true),
        (70, 6, 8, 130, 1, false, false),
        (19, 5, 3, 17, 2, true, false),
        (1, 5, 4, 300, 1, true, true),
        (5, 4, 3, 389, 1, false, true),
        (33, 3, 7, 512, 2, false, false),
        (4, 6, 3, 20, 3, false, true),
        (1, 5, 2, 300, 2, false, false),
        (6, 4, 5, 389, 2, false, true),
    ];
    for family in FAMILIES {
        for case in cases {
            compare(family, case, None, 0)?;
        }
    }
    Ok(())
}

/// Lengths `1..=t` for `b` rows, unsorted, with both 1 and `t` present.
fn mixed_lengths(b: usize, t: usize) -> Vec<usize> {
    (0..b)
        .map(|r| match r {
            1 => t,
            2 => 1,
            _ => (r * 7 + 3) % t + 1,
        })
        .collect()
}

#[test]
fn fused_matches_reference_on_rows_of_different_lengths() -> Result<()> {
    // Batches of 19 and 70 rows run in several blocks per direction.
    let cases: [Case; 7] = [
        (3, 7, 5, 9, 2, false, true),
        (3, 6, 5, 200, 1, false, true),
        (6, 5, 3, 256, 1, true, true),
        (4, 6, 3, 13, 2, true, true),
        (19, 9, 3, 17, 2, true, false),
        (70, 12, 8, 40, 1, false, true),
        (70, 12, 8, 24, 1, true, false),
    ];
    for family in FAMILIES {
        for case in cases {
            let (b, t) = (case.0, case.1);
            compare(family, case, Some(&mixed_lengths(b, t)), 0)?;
        }
        // Rows that all run every step: the packed path, same as the padded one.
        compare(family, (9, 5, 4, 6, 2, true, true), Some(&[5; 9]), 0)?;
    }
    Ok(())
}

#[test]
fn blocks_shared_between_threads_match_the_reference() -> Result<()> {
    use crate::fused::steal_test_hook::{SHARED, SLOW_BATCH};
    use std::sync::atomic::Ordering;
    // The first block of direction 0 runs slowly, so that a thread done with its own
    // block takes over some of its rows for the remaining steps (one direction: two
    // blocks; two directions: a block each), packed rows too.
    let before = SHARED.load(Ordering::Relaxed);
    let b = SLOW_BATCH;
    for family in FAMILIES {
        compare(family, (b, 12, 5, 40, 1, false, true), None, 0)?;
        compare(family, (b, 10, 3, 24, 1, true, false), None, 0)?;
        compare(
            family,
            (b, 12, 4, 16, 1, false, true),
            Some(&mixed_lengths(b, 12)),
            0,
        )?;
    }
    if crate::fused::threads() >= 2 {
        assert!(
            SHARED.load(Ordering::Relaxed) > before,
            "no block was shared"
        );
    }
    Ok(())
}

#[test]
fn a_loss_on_one_step_gives_the_reference_gradients() -> Result<()> {
    // The backward pass skips the steps whose gradient is zero: the second direction's
    // all but one for the last step, each direction's far side for a middle step. Batch
    // 70 runs the first direction in several blocks while the second runs one step.
    let cases: [Case; 4] = [
        (70, 6, 8, 24, 1, true, false),
        (4, 7, 3, 13, 2, true, true),
        (3, 5, 5, 9, 1, false, true),
        (19, 9, 3, 17, 2, true, false),
    ];
    for family in FAMILIES {
        for case in cases {
            let (b, t) = (case.0, case.1);
            for step in [t - 1, t / 2, 0] {
                compare_reading(family, case, None, 0, Reads::Step(step))?;
                let lengths = mixed_lengths(b, t);
                compare_reading(family, case, Some(&lengths), 0, Reads::Step(step))?;
            }
        }
    }
    let projected = (5, 6, 4, 9, 1, true, true);
    compare_reading(Family::Lstm, projected, None, 3, Reads::Step(5))?;
    compare_reading(
        Family::Lstm,
        projected,
        Some(&[6, 2, 5, 1, 6]),
        3,
        Reads::Step(1),
    )?;
    Ok(())
}

#[test]
fn projected_lstm_fused_matches_reference() -> Result<()> {
    let cases: [(Case, usize); 6] = [
        ((1, 1, 1, 2, 1, false, false), 1),
        ((3, 7, 5, 9, 2, false, true), 4),
        ((19, 5, 3, 17, 2, true, true), 5),
        ((70, 6, 8, 40, 1, false, false), 13),
        ((4, 3, 2, 33, 1, true, true), 32),
        ((2, 5, 3, 17, 3, false, true), 6),
    ];
    for (case, proj) in cases {
        compare(Family::Lstm, case, None, proj)?;
        let (b, t) = (case.0, case.1);
        compare(Family::Lstm, case, Some(&mixed_lengths(b, t)), proj)?;
    }
    Ok(())
}

#[test]
fn projections_are_for_the_lstm_below_the_hidden_size() -> Result<()> {
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu);
    let too_wide = RecurrentConfig::new(3, 8).with_proj_size(8);
    let err = Stack::new(too_wide, Family::Lstm, vb.clone()).unwrap_err();
    assert!(err.to_string().contains("proj_size must be below"), "{err}");
    let gru = RecurrentConfig::new(3, 8).with_proj_size(4);
    let err = Stack::new(gru, Family::Gru, vb).unwrap_err();
    assert!(err.to_string().contains("LSTM only"), "{err}");
    Ok(())
}

#[test]
fn full_lengths_give_the_padded_numbers() -> Result<()> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 3, DType::F32, &dev);
    let cfg = RecurrentConfig::new(4, 10)
        .with_layers(2)
        .with_bidirectional(true);
    let stack = Stack::new(cfg, Family::Lstm, vb)?;
    let rng = &mut SplitMix64::new(21);
    let x = seeded_randn(rng, 1.0, (21, 8, 4), &dev)?;
    // Initial states that are not contiguous (a transposed view).
    let h0 = seeded_randn(rng, 1.0, (21, 4, 10), &dev)?.transpose(0, 1)?;
    let c0 = seeded_randn(rng, 1.0, (21, 4, 10), &dev)?.transpose(0, 1)?;
    let start = (Some(&h0), Some(&c0));
    let padded = stack.run(&x, start.0, start.1, false, false)?;
    let batch = PackedBatch::new(&x, &[8; 21])?;
    let packed = stack.run_packed(&batch, start, false, false)?;
    assert!(max_diff(&padded.out.unwrap(), &packed.out.unwrap()) < 1e-6);
    assert!(max_diff(&padded.h_n, &packed.h_n) < 1e-6);
    assert!(max_diff(&padded.c_n.unwrap(), &packed.c_n.unwrap()) < 1e-6);
    Ok(())
}

#[test]
fn backward_without_a_training_forward_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 1, DType::F32, &dev);
    let stack = Stack::new(RecurrentConfig::new(3, 4), Family::Gru, vb)?;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 3), &dev)?)?;
    let out = stack.run(x.as_tensor(), None, None, false, false)?;
    let Err(err) = out.out.unwrap().sum_all()?.backward() else {
        panic!("backward after an inference forward must fail");
    };
    assert!(err.to_string().contains("train = true"), "{err}");
    Ok(())
}

#[test]
fn the_cpu_gets_a_vectorised_kernel() {
    // The development and CI machines have AVX2 at least.
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        assert_ne!(crate::fused::isa(), crate::fused::Isa::Baseline);
    }
}
