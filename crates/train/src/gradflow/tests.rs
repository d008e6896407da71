//! The adding problem's data, the gradient norms at initialisation and after a short
//! training, the report's files, and the settings' checks.

use candle_core::Device;
use lstm_core::SplitMix64;

use super::*;
use crate::run_dir::RunDir;
use crate::tasks::adding::{adding_batch, length_range};

fn quick(seq_len: usize, steps: usize) -> GradFlowConfig {
    GradFlowConfig {
        seq_len,
        hidden: 16,
        steps,
        batch_size: 16,
        eval_size: 64,
        probe_size: 32,
        eval_every: 5,
        ..Default::default()
    }
}

#[test]
fn adding_batches_have_two_markers_and_their_sum_as_target() -> Result<()> {
    let mut rng = SplitMix64::new(3);
    let (x, y) = adding_batch(200, 100, &mut rng, &Device::Cpu)?;
    assert_eq!(x.dims(), &[200, 100, 2]);
    let x = x.to_vec3::<f32>()?;
    let y = y.to_vec1::<f32>()?;
    let mut firsts = [0usize; 10];
    for (seq, target) in x.iter().zip(&y) {
        let marked: Vec<usize> = (0..100).filter(|&t| seq[t][1] == 1.0).collect();
        assert_eq!(marked.len(), 2, "{marked:?}");
        assert!(marked[0] < 10 && marked[1] >= 50, "{marked:?}");
        firsts[marked[0]] += 1;
        assert!((seq[marked[0]][0] + seq[marked[1]][0] - target).abs() < 1e-6);
        assert!(seq.iter().all(|s| (0.0..1.0).contains(&s[0])));
        assert!(seq.iter().all(|s| s[1] == 0.0 || s[1] == 1.0));
    }
    assert!(firsts.iter().all(|&n| n > 5), "{firsts:?}");
    let (short, _) = adding_batch(5, 2, &mut rng, &Device::Cpu)?;
    for seq in short.to_vec3::<f32>()? {
        assert_eq!(seq[0][1] + seq[1][1], 2.0);
    }
    assert!(adding_batch(5, 1, &mut rng, &Device::Cpu).is_err());
    Ok(())
}

/// Lengths that vary: each row's length is in `T/2..=T`, both markers lie within it,
/// the target is the sum of its two marked values, the padding is zeros, and the fixed
/// lengths draw the same batches as before lengths could vary.
#[test]
fn variable_length_batches_mark_steps_within_each_row_and_sum_them() -> Result<()> {
    let mut rng = SplitMix64::new(5);
    let batch = AddingBatch::draw(300, 40, true, &mut rng, &Device::Cpu)?;
    assert_eq!(batch.x.dims(), &[300, 40, 2]);
    let lengths = batch.lengths.clone().expect("lengths");
    assert_eq!(lengths.len(), 300);
    assert!(lengths.iter().all(|l| (20..=40).contains(l)), "{lengths:?}");
    for end in [20, 40] {
        assert!(lengths.contains(&end), "no row of length {end}");
    }
    let x = batch.x.to_vec3::<f32>()?;
    let y = batch.y.to_vec1::<f32>()?;
    let mut short_second = 0;
    for ((seq, target), &len) in x.iter().zip(&y).zip(&lengths) {
        let marked: Vec<usize> = (0..40).filter(|&t| seq[t][1] == 1.0).collect();
        assert_eq!(marked.len(), 2, "{marked:?}");
        assert!(marked[0] < 10, "{marked:?}");
        assert!(
            marked[1] >= len / 2 && marked[1] < len,
            "{marked:?} in a row of {len}"
        );
        short_second += usize::from(marked[1] < 20);
        assert!((seq[marked[0]][0] + seq[marked[1]][0] - target).abs() < 1e-6);
        assert!(seq[..len].iter().all(|s| (0.0..1.0).contains(&s[0])));
        assert!(
            seq[len..].iter().all(|s| s == &[0.0, 0.0]),
            "padding of a row of {len}"
        );
    }
    // The second marker follows each row's own half, not the padded one.
    assert!(short_second > 30, "{short_second}");
    assert_eq!(length_range(100), 50..=100);
    assert_eq!(length_range(3), 2..=3);

    let (a, b) = (&mut SplitMix64::new(9), &mut SplitMix64::new(9));
    let fixed = AddingBatch::draw(20, 30, false, a, &Device::Cpu)?;
    let (x, y) = adding_batch(20, 30, b, &Device::Cpu)?;
    assert_eq!(fixed.lengths, None);
    assert_eq!(fixed.x.to_vec3::<f32>()?, x.to_vec3::<f32>()?);
    assert_eq!(fixed.y.to_vec1::<f32>()?, y.to_vec1::<f32>()?);
    assert_eq!(a.state(), b.state());
    Ok(())
}

/// The taps run the padded probe batch, but each row's loss reads its own last step:
/// the prediction equals the packed path's, and no step past a row's end gets any
/// gradient.
#[test]
fn the_taps_read_each_row_at_its_own_end_as_the_packed_path_does() -> Result<()> {
    let mut rng = SplitMix64::new(11);
    let probe = AddingBatch::draw(24, 16, true, &mut rng, &Device::Cpu)?;
    let lengths = probe.lengths.clone().unwrap();
    for family in [Family::Rnn(lstm_core::Nonlinearity::Tanh), Family::Lstm] {
        let model = AddingModel::new(family, 8, 3, Some(1.0), &Device::Cpu)?;
        let packed = model.predict(&probe.x, Some(&lengths), false)?;
        let (steps, taps) = model.steps_with_taps(&probe.x)?;
        let last = own_last_steps(&steps, &lengths)?;
        let tapped = model.head.forward(&last)?.squeeze(1)?;
        let diff = (&packed - &tapped)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{family:?}: {diff}");
        let grads = (tapped - &probe.y)?.sqr()?.sum_all()?.backward()?;
        for (t, tap) in taps.iter().enumerate() {
            let g = grads.get(tap.as_tensor()).unwrap().to_vec2::<f32>()?;
            for (row, &len) in g.iter().zip(&lengths) {
                let past_end = t >= len;
                assert_eq!(
                    row.iter().all(|&v| v == 0.0),
                    past_end,
                    "{family:?}: step {t} of a row of {len}"
                );
            }
        }
    }
    assert_eq!(reach(&[2, 4, 3], 4), [1, 2, 3, 3]);
    // Rows of lengths 2 and 4: entry 3 is both rows' last step, entry 0 only row 1's
    // first; a step with no gradient adds nothing.
    let per_step = vec![
        Some(vec![1.0, 10.0]),
        Some(vec![3.0, 20.0]),
        None,
        Some(vec![0.0, 40.0]),
    ];
    let aligned = aligned_at_ends(&per_step, &[2, 4]);
    assert_eq!(aligned[0], 10.0);
    assert_eq!(aligned[1], 20.0);
    assert_eq!(aligned[2], 0.5);
    assert_eq!(aligned[3], 21.5);
    assert!(
        aligned_at_ends(&per_step, &[2, 2])[0].is_nan(),
        "no row reaches"
    );
    Ok(())
}

/// A short variable-length run: the LSTM learns (test MSE far under the baseline's
/// 1/6), the curves are aligned at each row's end with the rows that reach each step,
/// and the table, the CSV and the summary say that lengths vary.
#[test]
fn a_short_variable_length_run_learns_and_reports_distances_from_each_end() -> Result<()> {
    let cfg = GradFlowConfig {
        variable_length: true,
        lr: 1e-2,
        ..quick(20, 400)
    };
    let report = run_gradflow(&cfg)?;
    eprintln!(
        "variable lengths, T = 20: LSTM test MSE {:.4} (init {:.4}), RNN {:.4}, baseline {:.4}",
        report.lstm.final_mse, report.lstm.init_mse, report.rnn.final_mse, report.baseline_mse
    );
    assert!(report.lstm.final_mse < 0.03, "{}", report.lstm.final_mse);
    assert!(report.lstm.final_mse < 0.25 * report.baseline_mse);
    assert!(report.lstm.final_mse < report.lstm.init_mse);
    let reach = report.reach.clone().expect("the rows per step");
    assert_eq!(reach.len(), 20);
    assert_eq!(reach[10..], [32; 10], "every row has 10 steps");
    assert!(reach.windows(2).all(|w| w[0] <= w[1]), "{reach:?}");
    assert!(reach[0] > 0 && reach[0] < 32, "{reach:?}");
    for (name, norms) in report.columns() {
        assert_eq!(norms.len(), 20, "{name}");
        assert!(
            norms.iter().all(|v| v.is_finite() && *v > 0.0),
            "{name}: {norms:?}"
        );
    }
    let table = report.table(&table_steps(20));
    assert!(
        table.starts_with("| steps before the row's end | rows | RNN init |"),
        "{table}"
    );
    assert!(table.contains("\n| 19 | "), "{table}");
    assert!(table.contains("\n| 0 | 32 | "), "{table}");
    assert!(table.contains(&format!("| h_(end−19) / h_end | {} / 32 |", reach[0])));
    let csv = report.csv();
    assert!(csv.starts_with("steps_before_end,rows,rnn_init,"), "{csv}");
    assert!(csv.lines().last().unwrap().starts_with("0,32,"), "{csv}");
    assert_eq!(csv.lines().count(), 21);
    assert!(report.svg()?.contains("lengths vary (10–20 steps)"));
    let summary = serde_json::to_value(&report).unwrap();
    assert_eq!(summary["config"]["variable_length"], true);
    assert_eq!(summary["reach"].as_array().unwrap().len(), 20);
    Ok(())
}

/// The adding task's saved settings carry the flag; settings saved before it read back
/// as fixed lengths.
#[test]
fn the_variable_length_setting_is_saved_and_old_settings_read_as_fixed() {
    let cfg = GradFlowConfig {
        variable_length: true,
        ..quick(12, 0)
    };
    let adding = cfg.adding(Family::Lstm, 7);
    let json = serde_json::to_value(&adding).unwrap();
    assert_eq!(json["variable_length"], true);
    let back: AddingConfig = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, adding);
    let mut old = json;
    old.as_object_mut().unwrap().remove("variable_length");
    let old: AddingConfig = serde_json::from_value(old).unwrap();
    assert!(!old.variable_length);
    assert_eq!(
        old,
        AddingConfig {
            variable_length: false,
            ..adding
        }
    );
}

/// At initialisation, on 30 steps, the RNN passes back a far smaller share of the
/// gradient than the LSTM, and every norm is a finite positive number.
#[test]
fn at_init_the_rnn_gradient_vanishes_far_faster_than_the_lstm_one() -> Result<()> {
    let cfg = quick(30, 0);
    let report = run_gradflow(&cfg)?;
    for (name, norms) in report.columns() {
        assert_eq!(norms.len(), 30, "{name}");
        assert!(
            norms.iter().all(|v| v.is_finite() && *v > 0.0),
            "{name}: {norms:?}"
        );
    }
    let rnn = ModelFlow::ratio(&report.rnn.init);
    let lstm = ModelFlow::ratio(&report.lstm.init);
    eprintln!("h_1/h_T at init: RNN {rnn:.3e}, LSTM {lstm:.3e}");
    assert!(rnn < 1e-3, "RNN ratio {rnn:e}");
    assert!(rnn * 100.0 < lstm, "RNN {rnn:e} vs LSTM {lstm:e}");
    // Without training the trained curves are the initial ones.
    for (a, b) in report.rnn.init.iter().zip(&report.rnn.trained) {
        assert!((a - b).abs() <= 1e-6 * a, "{a} vs {b}");
    }
    Ok(())
}

#[test]
fn a_short_run_writes_its_table_csv_and_plots() -> Result<()> {
    let cfg = quick(12, 10);
    let report = run_gradflow(&cfg)?;
    assert_eq!(report.reach, None, "fixed lengths");
    assert_eq!(report.rnn.history.len(), 3);
    assert!(report.lstm.final_mse.is_finite());
    assert_ne!(report.lstm.init, report.lstm.trained);
    let table = report.table(&table_steps(12));
    assert!(table.starts_with("| t | RNN init | RNN trained | LSTM init | LSTM trained |"));
    assert_eq!(table.lines().count(), 2 + 3 + 1, "{table}");
    let dir = std::env::temp_dir().join(format!("lstm-gradflow-{}", std::process::id()));
    let run = RunDir::create(&dir)?;
    let files = report.write(&run)?;
    assert_eq!(files.len(), 5);
    let csv = std::fs::read_to_string(run.file("gradflow.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);
    let svg = std::fs::read_to_string(run.file("gradflow.svg")).unwrap();
    for label in [
        "RNN init",
        "RNN trained",
        "LSTM init",
        "LSTM trained",
        "log scale",
    ] {
        assert!(svg.contains(label), "no {label}");
    }
    assert_eq!(
        svg.matches("stroke-dasharray").count(),
        4,
        "two dashed curves and their legend samples"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn table_steps_are_one_every_tenth_and_the_last() {
    assert_eq!(
        table_steps(100),
        [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    );
    assert_eq!(table_steps(25), [1, 10, 20, 25]);
    assert_eq!(table_steps(1), [1]);
}

#[test]
fn bad_settings_are_rejected() {
    for cfg in [
        GradFlowConfig {
            seq_len: 1,
            ..quick(10, 0)
        },
        GradFlowConfig {
            hidden: 0,
            ..quick(10, 0)
        },
        GradFlowConfig {
            lr: -1.0,
            ..quick(10, 0)
        },
        GradFlowConfig {
            clip: f64::NAN,
            ..quick(10, 0)
        },
        GradFlowConfig {
            forget_bias: Some(f64::INFINITY),
            ..quick(10, 0)
        },
    ] {
        assert!(
            matches!(run_gradflow(&cfg), Err(TrainError::Setting { .. })),
            "{cfg:?}"
        );
    }
}
