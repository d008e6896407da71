//! Column scalers with scikit-learn's semantics, over row-major `f64` data.
//!
//! Data is a slice of rows, each row holding one value per feature (column),
//! i.e. the shape `(rows, cols)` of a scikit-learn `X`. The `*_column`
//! conveniences handle a single feature given as a plain slice (a target).
//!
//! - [`StandardScaler`]: `(x - mean) / scale` with the population standard
//!   deviation (`ddof = 0`); a (numerically) constant column gets scale 1.
//! - [`MinMaxScaler`]: `(x - min) / (max - min)` into `[0, 1]`; a constant
//!   column gets range 1. Computed as a division (not scikit-learn's
//!   `x * scale + min_`) so the fitted minimum maps to exactly 0 and the
//!   maximum to exactly 1.
//!
//! Unlike scikit-learn, which skips NaN while fitting, fitting rejects
//! non-finite values: the readers in this crate never produce them.
//!
//! The fields are public so a caller can save a fitted scaler and rebuild it.

use crate::error::DatasetError;

/// Standardises each column to zero mean and unit (population) variance,
/// like scikit-learn's `StandardScaler()`.
#[derive(Clone, Debug, PartialEq)]
pub struct StandardScaler {
    /// Mean of each column.
    pub mean: Vec<f64>,
    /// Population standard deviation of each column, 1 for a constant column.
    pub scale: Vec<f64>,
}

/// Maps each column onto `[0, 1]`, like scikit-learn's `MinMaxScaler()`.
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxScaler {
    /// Minimum of each column.
    pub min: Vec<f64>,
    /// Maximum of each column.
    pub max: Vec<f64>,
}

fn scaler_error(message: String) -> DatasetError {
    DatasetError::Scaler { message }
}

/// Checks that `rows` is a non-empty, rectangular, finite `(rows, cols)`
/// matrix with at least one column, and returns `cols`.
fn check_fit_data(rows: &[Vec<f64>]) -> Result<usize, DatasetError> {
    let first = rows
        .first()
        .ok_or_else(|| scaler_error("cannot fit on zero rows".into()))?;
    let cols = first.len();
    if cols == 0 {
        return Err(scaler_error("cannot fit on rows with zero columns".into()));
    }
    for (i, row) in rows.iter().enumerate() {
        if row.len() != cols {
            return Err(scaler_error(format!(
                "row {i} has {} values, but row 0 has {cols}",
                row.len()
            )));
        }
        if let Some((j, v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(scaler_error(format!(
                "cannot fit on non-finite value {v} at row {i}, column {j}"
            )));
        }
    }
    Ok(cols)
}

/// Checks that every row has `cols` values.
fn check_width(rows: &[Vec<f64>], cols: usize) -> Result<(), DatasetError> {
    match rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
        Some((i, row)) => Err(scaler_error(format!(
            "row {i} has {} values, but the scaler was fitted on {cols} columns",
            row.len()
        ))),
        None => Ok(()),
    }
}

/// Checks that a scaler has exactly one column, for the `*_column` methods.
fn check_single(cols: usize) -> Result<(), DatasetError> {
    if cols == 1 {
        Ok(())
    } else {
        Err(scaler_error(format!(
            "single-column transform on a scaler fitted on {cols} columns"
        )))
    }
}

/// Applies `f(value, column)` to every cell.
fn map_cells(rows: &[Vec<f64>], f: impl Fn(f64, usize) -> f64) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|row| row.iter().enumerate().map(|(j, &v)| f(v, j)).collect())
        .collect()
}

/// Wraps each value into a one-column row.
fn as_rows(values: &[f64]) -> Vec<Vec<f64>> {
    values.iter().map(|&v| vec![v]).collect()
}

impl StandardScaler {
    /// Fits mean and population standard deviation of each column of `rows`.
    ///
    /// Mirrors scikit-learn: the variance is `sum((x - mean)^2) / n` with the
    /// rounding correction `- (sum(x - mean))^2 / n^2`, and a column whose
    /// variance is within rounding noise of zero
    /// (`var <= n*eps*var + (n*mean*eps)^2`) gets scale 1 instead of its
    /// (near-zero) standard deviation.
    ///
    /// Zero rows, zero columns, rows of different lengths and non-finite
    /// values are rejected with [`DatasetError::Scaler`].
    pub fn fit(rows: &[Vec<f64>]) -> Result<Self, DatasetError> {
        let cols = check_fit_data(rows)?;
        let n = rows.len() as f64;
        let eps = f64::EPSILON;
        let mut mean = Vec::with_capacity(cols);
        let mut scale = Vec::with_capacity(cols);
        for j in 0..cols {
            let m = rows.iter().map(|r| r[j]).sum::<f64>() / n;
            let (sum_sq, correction) = rows.iter().fold((0.0, 0.0), |(sq, c), r| {
                let d = r[j] - m;
                (sq + d * d, c + d)
            });
            let var = ((sum_sq - correction * correction / n) / n).max(0.0);
            let constant = var <= n * eps * var + (n * m * eps).powi(2);
            mean.push(m);
            scale.push(if constant { 1.0 } else { var.sqrt() });
        }
        Ok(Self { mean, scale })
    }

    /// Fits a one-column scaler on `values`.
    pub fn fit_column(values: &[f64]) -> Result<Self, DatasetError> {
        Self::fit(&as_rows(values))
    }

    /// Number of columns the scaler was fitted on.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// `(x - mean) / scale`, column by column.
    ///
    /// Rows whose length differs from [`Self::n_features`] are rejected.
    pub fn transform(&self, rows: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, DatasetError> {
        check_width(rows, self.n_features())?;
        Ok(map_cells(rows, |v, j| (v - self.mean[j]) / self.scale[j]))
    }

    /// `x * scale + mean`, undoing [`Self::transform`].
    pub fn inverse_transform(&self, rows: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, DatasetError> {
        check_width(rows, self.n_features())?;
        Ok(map_cells(rows, |v, j| v * self.scale[j] + self.mean[j]))
    }

    /// [`Self::transform`] for a one-column scaler and a plain slice.
    pub fn transform_column(&self, values: &[f64]) -> Result<Vec<f64>, DatasetError> {
        check_single(self.n_features())?;
        Ok(values
            .iter()
            .map(|&v| (v - self.mean[0]) / self.scale[0])
            .collect())
    }

    /// [`Self::inverse_transform`] for a one-column scaler and a plain slice.
    pub fn inverse_transform_column(&self, values: &[f64]) -> Result<Vec<f64>, DatasetError> {
        check_single(self.n_features())?;
        Ok(values
            .iter()
            .map(|&v| v * self.scale[0] + self.mean[0])
            .collect())
    }
}

impl MinMaxScaler {
    /// Fits the minimum and maximum of each column of `rows`.
    ///
    /// Zero rows, zero columns, rows of different lengths and non-finite
    /// values are rejected with [`DatasetError::Scaler`].
    pub fn fit(rows: &[Vec<f64>]) -> Result<Self, DatasetError> {
        let cols = check_fit_data(rows)?;
        let mut min = vec![f64::INFINITY; cols];
        let mut max = vec![f64::NEG_INFINITY; cols];
        for row in rows {
            for (j, &v) in row.iter().enumerate() {
                min[j] = min[j].min(v);
                max[j] = max[j].max(v);
            }
        }
        Ok(Self { min, max })
    }

    /// Fits a one-column scaler on `values`.
    pub fn fit_column(values: &[f64]) -> Result<Self, DatasetError> {
        Self::fit(&as_rows(values))
    }

    /// Number of columns the scaler was fitted on.
    pub fn n_features(&self) -> usize {
        self.min.len()
    }

    /// `max - min` of column `j`, or 1 where that is below `10 * eps`
    /// (scikit-learn's `_handle_zeros_in_scale`).
    fn range(&self, j: usize) -> f64 {
        let r = self.max[j] - self.min[j];
        if r < 10.0 * f64::EPSILON {
            1.0
        } else {
            r
        }
    }

    /// `(x - min) / (max - min)`, column by column.
    ///
    /// Rows whose length differs from [`Self::n_features`] are rejected.
    /// Values outside the fitted range map outside `[0, 1]` (no clipping).
    pub fn transform(&self, rows: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, DatasetError> {
        check_width(rows, self.n_features())?;
        Ok(map_cells(rows, |v, j| (v - self.min[j]) / self.range(j)))
    }

    /// `x * (max - min) + min`, undoing [`Self::transform`].
    pub fn inverse_transform(&self, rows: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, DatasetError> {
        check_width(rows, self.n_features())?;
        Ok(map_cells(rows, |v, j| v * self.range(j) + self.min[j]))
    }

    /// [`Self::transform`] for a one-column scaler and a plain slice.
    pub fn transform_column(&self, values: &[f64]) -> Result<Vec<f64>, DatasetError> {
        check_single(self.n_features())?;
        let r = self.range(0);
        Ok(values.iter().map(|&v| (v - self.min[0]) / r).collect())
    }

    /// [`Self::inverse_transform`] for a one-column scaler and a plain slice.
    pub fn inverse_transform_column(&self, values: &[f64]) -> Result<Vec<f64>, DatasetError> {
        check_single(self.n_features())?;
        let r = self.range(0);
        Ok(values.iter().map(|&v| v * r + self.min[0]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn sample() -> Vec<Vec<f64>> {
        vec![
            vec![86.26, 4_921_900.0, -3.5],
            vec![88.0, 10_282_100.0, 0.25],
            vec![88.02, 6_714_100.0, 7.0],
            vec![89.14, 6_705_600.0, 1.0e-3],
            vec![70.5, 31_000.0, 2.0],
        ]
    }

    #[test]
    fn standard_known_values() {
        let s = StandardScaler::fit_column(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.mean, vec![2.0]);
        assert!(close(s.scale[0], (2.0f64 / 3.0).sqrt(), 1e-15), "{s:?}");
        let t = s.transform_column(&[1.0, 2.0, 3.0]).unwrap();
        let k = (1.5f64).sqrt();
        assert!(
            close(t[0], -k, 1e-12) && t[1] == 0.0 && close(t[2], k, 1e-12),
            "{t:?}"
        );

        // Two columns at once: the second is the first times ten plus one.
        let s = StandardScaler::fit(&[vec![1.0, 11.0], vec![2.0, 21.0], vec![3.0, 31.0]]).unwrap();
        assert_eq!(s.n_features(), 2);
        assert!(close(s.mean[1], 21.0, 1e-12));
        assert!(close(s.scale[1], 10.0 * (2.0f64 / 3.0).sqrt(), 1e-12));
    }

    #[test]
    fn standard_transform_has_zero_mean_unit_population_std() {
        let rows = sample();
        let s = StandardScaler::fit(&rows).unwrap();
        let t = s.transform(&rows).unwrap();
        let n = t.len() as f64;
        for j in 0..3 {
            let mean = t.iter().map(|r| r[j]).sum::<f64>() / n;
            let var = t.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n;
            assert!(close(mean, 0.0, 1e-12), "column {j}: mean {mean}");
            assert!(close(var, 1.0, 1e-12), "column {j}: var {var}");
        }
    }

    #[test]
    fn round_trips() {
        let rows = sample();
        let s = StandardScaler::fit(&rows).unwrap();
        let m = MinMaxScaler::fit(&rows).unwrap();
        let back_s = s.inverse_transform(&s.transform(&rows).unwrap()).unwrap();
        let back_m = m.inverse_transform(&m.transform(&rows).unwrap()).unwrap();
        for (i, row) in rows.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let tol = 1e-9 * v.abs().max(1.0);
                assert!(close(back_s[i][j], v, tol), "standard [{i}][{j}]");
                assert!(close(back_m[i][j], v, tol), "minmax [{i}][{j}]");
            }
        }
        let col: Vec<f64> = rows.iter().map(|r| r[1]).collect();
        let m1 = MinMaxScaler::fit_column(&col).unwrap();
        let back = m1
            .inverse_transform_column(&m1.transform_column(&col).unwrap())
            .unwrap();
        for (a, b) in back.iter().zip(&col) {
            assert!(close(*a, *b, 1e-9 * b.abs()), "{a} vs {b}");
        }
        let s1 = StandardScaler::fit_column(&col).unwrap();
        let back = s1
            .inverse_transform_column(&s1.transform_column(&col).unwrap())
            .unwrap();
        for (a, b) in back.iter().zip(&col) {
            assert!(close(*a, *b, 1e-9 * b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn minmax_known_values_and_exact_ends() {
        let m = MinMaxScaler::fit_column(&[2.0, 4.0, 10.0]).unwrap();
        assert_eq!((m.min.clone(), m.max.clone()), (vec![2.0], vec![10.0]));
        assert_eq!(
            m.transform_column(&[2.0, 4.0, 10.0, 14.0]).unwrap(),
            vec![0.0, 0.25, 1.0, 1.5]
        );
        let rows = sample();
        let m = MinMaxScaler::fit(&rows).unwrap();
        let t = m.transform(&rows).unwrap();
        for j in 0..3 {
            let col: Vec<f64> = t.iter().map(|r| r[j]).collect();
            let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((lo, hi), (0.0, 1.0), "column {j}: {col:?}");
        }
    }

    #[test]
    fn constant_columns_do_not_divide_by_zero() {
        let rows = vec![vec![5.0, 0.1], vec![5.0, 0.1], vec![5.0, 0.1]];
        let s = StandardScaler::fit(&rows).unwrap();
        assert_eq!(s.scale, vec![1.0, 1.0]);
        assert_eq!(s.mean[0], 5.0);
        let t = s.transform(&rows).unwrap();
        assert!(
            t.iter().flatten().all(|v| v.is_finite() && v.abs() < 1e-12),
            "{t:?}"
        );
        let m = MinMaxScaler::fit(&rows).unwrap();
        let t = m.transform(&rows).unwrap();
        assert!(t.iter().flatten().all(|&v| v == 0.0), "{t:?}");
        assert_eq!(m.inverse_transform(&t).unwrap(), rows);
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let msg = |e: DatasetError| {
            assert!(matches!(e, DatasetError::Scaler { .. }), "{e:?}");
            e.to_string()
        };
        assert!(msg(StandardScaler::fit(&[]).unwrap_err()).contains("zero rows"));
        assert!(msg(MinMaxScaler::fit_column(&[]).unwrap_err()).contains("zero rows"));
        assert!(msg(MinMaxScaler::fit(&[vec![]]).unwrap_err()).contains("zero columns"));
        let ragged = [vec![1.0, 2.0], vec![3.0]];
        assert!(msg(StandardScaler::fit(&ragged).unwrap_err()).contains("row 1 has 1 values"));
        let nan = [vec![1.0], vec![f64::NAN]];
        assert!(msg(StandardScaler::fit(&nan).unwrap_err()).contains("non-finite"));

        let s = StandardScaler::fit(&[vec![1.0, 2.0], vec![3.0, 5.0]]).unwrap();
        assert!(msg(s.transform(&[vec![1.0]]).unwrap_err()).contains("fitted on 2 columns"));
        assert!(msg(s.transform_column(&[1.0]).unwrap_err()).contains("2 columns"));
        let m = MinMaxScaler::fit(&[vec![1.0, 2.0], vec![3.0, 5.0]]).unwrap();
        assert!(msg(m.inverse_transform(&[vec![1.0; 3]]).unwrap_err()).contains("3 values"));
        assert!(msg(m.inverse_transform_column(&[1.0]).unwrap_err()).contains("2 columns"));
    }
}
