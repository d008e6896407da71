//! Preparing stock data: the splits, scalers and windows, kept or dropped short
//! histories, and the options and values it rejects.

use super::*;
use crate::stock::test_support::{sbux, valid_csv};
use crate::test_support::TempDir;

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn to_rows(t: &Tensor) -> Vec<Vec<Vec<f32>>> {
    t.to_vec3::<f32>().expect("3-d f32 tensor")
}

#[test]
fn prepare_default_splits_200_53_and_scales_on_train() {
    let f = sbux();
    let d = prepare_stock(&f, &StockOptions::default()).unwrap();
    assert_eq!(d.train_x.dims(), &[200, 1, 5]);
    assert_eq!(d.train_y.dims(), &[200, 1]);
    assert_eq!(d.test_x.dims(), &[53, 1, 5]);
    assert_eq!(d.test_y.dims(), &[53, 1]);
    assert_eq!((d.train_len(), d.test_len()), (200, 53));
    assert_eq!(d.sample_dates.len(), 253);
    assert_eq!(d.train_dates().last().unwrap(), &d.dates[199]);
    assert_eq!(d.test_dates()[0], d.dates[200]);
    assert_eq!(d.target_raw[0], 4_921_900.0);

    for j in 0..5 {
        let col: Vec<f64> = d.features_scaled[..200].iter().map(|r| r[j]).collect();
        let (mean, std) = mean_std(&col);
        assert!(mean.abs() < 1e-9, "feature {j}: mean {mean}");
        assert!((std - 1.0).abs() < 1e-9, "feature {j}: std {std}");
    }
    let train_target = &d.target_scaled[..200];
    assert!(train_target.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(
        train_target.iter().copied().fold(f64::INFINITY, f64::min),
        0.0
    );
    assert_eq!(train_target.iter().copied().fold(0.0, f64::max), 1.0);
    // The scaler saw only the training rows.
    let train_volume = &d.target_raw[..200];
    assert_eq!(
        d.target_scaler.max[0],
        train_volume.iter().copied().fold(0.0, f64::max)
    );

    // Tensors hold the scaled values, row for row.
    let x = to_rows(&d.train_x);
    let y = d.train_y.to_vec2::<f32>().unwrap();
    assert_eq!(
        x[7][0],
        d.features_scaled[7]
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>()
    );
    assert_eq!(y[7][0], d.target_scaled[7] as f32);
    let tx = to_rows(&d.test_x);
    let ty = d.test_y.to_vec2::<f32>().unwrap();
    assert_eq!(tx[0][0][4], d.features_scaled[200][4] as f32);
    assert_eq!(ty[52][0], d.target_scaled[252] as f32);
    // Inverse transform of the scaled target gives back the raw volume.
    let back = d
        .target_scaler
        .inverse_transform_column(&d.target_scaled)
        .unwrap();
    for (a, b) in back.iter().zip(&d.target_raw) {
        assert!((a - b).abs() <= 1e-9 * b, "{a} vs {b}");
    }
}

#[test]
fn prepare_fit_on_all_reproduces_the_book() {
    let f = sbux();
    let d = prepare_stock(&f, &StockOptions::book()).unwrap();
    assert_eq!(d.train_x.dims(), &[200, 1, 5]);
    assert_eq!(d.test_x.dims(), &[53, 1, 5]);
    assert_eq!(d.target_scaled.len(), 253);
    assert!(d.target_scaled.iter().all(|v| (0.0..=1.0).contains(v)));
    let lo = d
        .target_scaled
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = d
        .target_scaled
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!((lo, hi), (0.0, 1.0));
    for j in 0..5 {
        let col: Vec<f64> = d.features_scaled.iter().map(|r| r[j]).collect();
        let (mean, std) = mean_std(&col);
        assert!(
            mean.abs() < 1e-9 && (std - 1.0).abs() < 1e-9,
            "{j}: {mean} {std}"
        );
    }
    // Fitting on all rows scales differently from fitting on the train rows.
    let t = prepare_stock(&f, &StockOptions::default()).unwrap();
    assert_ne!(d.feature_scaler, t.feature_scaler);
}

#[test]
fn window_five_stacks_previous_rows() {
    let f = sbux();
    let opts = StockOptions {
        window: 5,
        short_history: ShortHistory::Drop,
        ..StockOptions::default()
    };
    let d = prepare_stock(&f, &opts).unwrap();
    assert_eq!(d.train_x.dims(), &[196, 5, 5]);
    assert_eq!(d.train_y.dims(), &[196, 1]);
    assert_eq!(d.test_x.dims(), &[53, 5, 5]);
    assert_eq!(d.sample_dates.len(), 249);
    assert_eq!(d.sample_dates[0], d.dates[4]);
    let x = to_rows(&d.train_x);
    let y = d.train_y.to_vec2::<f32>().unwrap();
    for (s, window) in x.iter().enumerate() {
        let r = s + 4;
        for (k, step) in window.iter().enumerate() {
            let want: Vec<f32> = d.features_scaled[r - 4 + k]
                .iter()
                .map(|&v| v as f32)
                .collect();
            assert_eq!(step, &want, "sample {s}, step {k}");
        }
        assert_eq!(y[s][0], d.target_scaled[r] as f32);
    }
    // The first test sample predicts row 200 and reaches back into the train period.
    let tx = to_rows(&d.test_x);
    assert_eq!(tx[0][0][0], d.features_scaled[196][0] as f32);
    assert_eq!(tx[0][4][0], d.features_scaled[200][0] as f32);
    assert_eq!(d.test_dates()[0], d.dates[200]);
    assert_eq!(d.train_lengths, None);
}

/// Kept short histories: one sample per day, the first ones shorter than the window
/// (their days first, then zeros), and the same full windows as dropping them after.
#[test]
fn kept_short_histories_give_every_row_a_sample() {
    let f = sbux();
    let d = prepare_stock(
        &f,
        &StockOptions {
            window: 5,
            ..StockOptions::default()
        },
    )
    .unwrap();
    assert_eq!(d.short_history, ShortHistory::Keep);
    assert_eq!(d.first_row(), 0);
    assert_eq!((d.train_len(), d.test_len()), (200, 53));
    assert_eq!(d.train_x.dims(), &[200, 5, 5]);
    assert_eq!(d.test_x.dims(), &[53, 5, 5]);
    assert_eq!(d.sample_dates, d.dates, "one sample per day");
    let lengths = d.train_lengths.clone().expect("lengths of the short rows");
    assert_eq!(lengths.len(), 200);
    assert_eq!(lengths[..6], [1, 2, 3, 4, 5, 5]);
    assert!(lengths[4..].iter().all(|&l| l == 5));
    let x = to_rows(&d.train_x);
    let y = d.train_y.to_vec2::<f32>().unwrap();
    for (r, (window, len)) in x.iter().zip(&lengths).enumerate() {
        let start = (r + 1).saturating_sub(5);
        for (k, step) in window.iter().enumerate() {
            let want: Vec<f32> = if k < *len {
                d.features_scaled[start + k]
                    .iter()
                    .map(|&v| v as f32)
                    .collect()
            } else {
                vec![0.0; 5]
            };
            assert_eq!(step, &want, "row {r}, step {k}");
        }
        assert_eq!(y[r][0], d.target_scaled[r] as f32, "row {r}");
    }
    // From row 4 on, the samples are those of dropping the short rows.
    let dropped = prepare_stock(
        &f,
        &StockOptions {
            window: 5,
            short_history: ShortHistory::Drop,
            ..StockOptions::default()
        },
    )
    .unwrap();
    assert_eq!(x[4..], to_rows(&dropped.train_x)[..]);
    assert_eq!(to_rows(&d.test_x), to_rows(&dropped.test_x));
    // At window 1 keeping changes nothing: no lengths, the same tensors.
    let one = prepare_stock(&f, &StockOptions::default()).unwrap();
    let one_drop = StockOptions {
        short_history: ShortHistory::Drop,
        ..StockOptions::default()
    };
    let one_dropped = prepare_stock(&f, &one_drop).unwrap();
    assert_eq!(one.train_lengths, None);
    assert_eq!(to_rows(&one.train_x), to_rows(&one_dropped.train_x));
    assert_eq!(one.sample_dates, one_dropped.sample_dates);
}

#[test]
fn yfinance_layout_without_adj_close() {
    let dir = TempDir::new("yf");
    let path = dir.write(
        "yf.csv",
        "Date,Close,High,Low,Open,Volume\n\
         2024-01-02,10.5,11,10,10.25,100\n\
         2024-01-03,11.5,12,11,11.25,200\n\
         2024-01-04,12.5,13,12,12.25,300\n\
         2024-01-05,13.5,14,13,13.25,400\n",
    );
    let f = StockFrame::read_csv(&path).unwrap();
    assert_eq!(
        f.columns(),
        ["Date", "Close", "High", "Low", "Open", "Volume"]
    );
    // The default features include Adj Close, which this layout lacks.
    let err = prepare_stock(
        &f,
        &StockOptions {
            train_rows: 3,
            ..StockOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, DatasetError::MissingColumn { column, .. } if column == "Adj Close"),
        "{err:?}"
    );
    let opts = StockOptions {
        features: ["Open", "High", "Low", "Close"].map(String::from).to_vec(),
        train_rows: 3,
        ..StockOptions::default()
    };
    let d = prepare_stock(&f, &opts).unwrap();
    assert_eq!(d.train_x.dims(), &[3, 1, 4]);
    assert_eq!(d.test_x.dims(), &[1, 1, 4]);
    // Features follow the requested order, not the file's: Open first.
    assert_eq!(d.feature_scaler.mean, vec![11.25, 12.0, 11.0, 11.5]);
    assert_eq!(d.target_scaled, vec![0.0, 0.5, 1.0, 1.5]);
    assert_eq!(
        d.dates,
        ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    );
}

#[test]
fn overflowing_columns_are_unscalable() {
    let dir = TempDir::new("overflow");
    // Every cell is finite, but the two 1e308 opens sum to +inf.
    let path = dir.write(
        "huge.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n\
         2020-01-01,1e308,2,1,1.5,1.5,100\n\
         2020-01-02,1e308,2,1,1.5,1.5,200\n\
         2020-01-03,1,2,1,1.5,1.5,0\n\
         2020-01-04,1,2,1,1.5,1.5,5\n",
    );
    let f = StockFrame::read_csv(&path).unwrap();
    for fit_scalers_on in [FitOn::TrainOnly, FitOn::All] {
        let opts = StockOptions {
            train_rows: 2,
            fit_scalers_on,
            ..StockOptions::default()
        };
        let err = prepare_stock(&f, &opts).unwrap_err();
        match &err {
            DatasetError::Unscalable {
                path: p,
                row,
                column,
                value,
                scaled,
            } => {
                assert_eq!(p, &path);
                assert_eq!((*row, column.as_str(), *value), (1, "Open", 1e308));
                assert!(!scaled.is_finite(), "{scaled}");
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("data row 1 (line 2), column \"Open\": 1e308 is too large to scale"),
            "{msg}"
        );
    }
    // Without the overflowing column the same file prepares fine.
    let opts = StockOptions {
        features: vec!["High".into(), "Low".into()],
        train_rows: 2,
        ..StockOptions::default()
    };
    let d = prepare_stock(&f, &opts).unwrap();
    assert!(d.features_scaled.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn invalid_splits_name_the_file_and_counts() {
    let dir = TempDir::new("split");
    let path = dir.write("ten.csv", &valid_csv(10));
    let f = StockFrame::read_csv(&path).unwrap();
    let shown = path.display().to_string();
    let split_err = |opts: StockOptions| {
        let err = prepare_stock(&f, &opts).unwrap_err();
        assert!(matches!(err, DatasetError::InvalidSplit { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&shown), "{msg}");
        msg
    };
    // The default 200 training rows do not fit in 10 rows.
    let msg = split_err(StockOptions::default());
    assert!(
        msg.contains("train_rows = 200") && msg.contains("10 data rows"),
        "{msg}"
    );
    let msg = split_err(StockOptions {
        train_rows: 10,
        ..StockOptions::default()
    });
    assert!(msg.contains("train_rows = 10"), "{msg}");
    let msg = split_err(StockOptions {
        train_rows: 0,
        ..StockOptions::default()
    });
    assert!(msg.contains("train_rows = 0"), "{msg}");
    let msg = split_err(StockOptions {
        train_rows: 6,
        window: 7,
        ..StockOptions::default()
    });
    assert!(
        msg.contains("window = 7") && msg.contains("train_rows = 6"),
        "{msg}"
    );
    let msg = split_err(StockOptions {
        train_rows: 6,
        window: 0,
        ..StockOptions::default()
    });
    assert!(msg.contains("window = 0"), "{msg}");
    let msg = split_err(StockOptions {
        train_rows: 6,
        features: vec![],
        ..StockOptions::default()
    });
    assert!(msg.contains("no feature"), "{msg}");

    // Window equal to train_rows leaves exactly one full training sample; keeping
    // the short histories adds the five before it.
    let full = StockOptions {
        train_rows: 6,
        window: 6,
        short_history: ShortHistory::Drop,
        ..StockOptions::default()
    };
    let d = prepare_stock(&f, &full).unwrap();
    assert_eq!(d.train_x.dims(), &[1, 6, 5]);
    assert_eq!(d.test_x.dims(), &[4, 6, 5]);
    let kept = StockOptions {
        short_history: ShortHistory::Keep,
        ..full
    };
    let d = prepare_stock(&f, &kept).unwrap();
    assert_eq!(d.train_x.dims(), &[6, 6, 5]);
    assert_eq!(d.train_lengths, Some(vec![1, 2, 3, 4, 5, 6]));
    for short_history in [ShortHistory::Keep, ShortHistory::Drop] {
        let msg = split_err(StockOptions {
            train_rows: 6,
            window: 7,
            short_history,
            ..StockOptions::default()
        });
        assert!(msg.contains("window = 7"), "{short_history:?}: {msg}");
    }

    let err = prepare_stock(
        &f,
        &StockOptions {
            train_rows: 6,
            target: "Turnover".into(),
            ..StockOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, DatasetError::MissingColumn { column, available, .. }
            if column == "Turnover" && available.len() == 7),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&shown), "{err}");
}
