//! The adding problem's data, the gradient norms at initialisation and after a short
//! training, the report's files, and the settings' checks.

use candle_core::Device;
use lstm_core::SplitMix64;

use super::*;
use crate::run_dir::RunDir;
use crate::tasks::adding::adding_batch;

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
