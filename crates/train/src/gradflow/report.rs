//! What a gradient-flow run measured, as tables, CSV, figures and files.

use std::path::PathBuf;

use lstm_core::Family;
use serde::Serialize;

use super::{GradFlowConfig, TOLERANCE};
use crate::choice::ser_choice;
use crate::error::Result;
use crate::plot::{Curve, Figure, Line};
use crate::run_dir::RunDir;
use crate::tasks::adding::length_range;

/// One model's measurements.
#[derive(Clone, Debug, Serialize)]
pub struct ModelFlow {
    /// Which model: the tanh RNN or the LSTM.
    #[serde(serialize_with = "ser_choice")]
    pub model: Family,
    /// `‖∂L/∂h_t‖` at initialisation, `t = 1..=T` (index `t − 1`). When lengths vary,
    /// index `i` is `T − 1 − i` steps before each row's own last step
    /// ([`GradFlowReport::reach`]).
    pub init: Vec<f64>,
    /// `‖∂L/∂h_t‖` after training, indexed as [`ModelFlow::init`].
    pub trained: Vec<f64>,
    /// Test MSE at initialisation.
    pub init_mse: f64,
    /// Test MSE after training.
    pub final_mse: f64,
    /// Fraction of test sequences within [`TOLERANCE`] of the target after training.
    pub final_accuracy: f64,
    /// `(iteration, test MSE)` every [`GradFlowConfig::eval_every`] iterations, and at
    /// the start and the end.
    pub history: Vec<(usize, f64)>,
    /// Seconds spent training.
    pub train_seconds: f64,
}

impl ModelFlow {
    /// `‖∂L/∂h_1‖ / ‖∂L/∂h_T‖` of the `norms` (`init` or `trained`): how much of the
    /// gradient at the last step reaches the first.
    pub fn ratio(norms: &[f64]) -> f64 {
        match (norms.first(), norms.last()) {
            (Some(first), Some(last)) if *last > 0.0 => first / last,
            _ => f64::NAN,
        }
    }
}

/// Both models' measurements.
#[derive(Clone, Debug, Serialize)]
pub struct GradFlowReport {
    /// The settings.
    pub config: GradFlowConfig,
    /// The plain tanh RNN.
    pub rnn: ModelFlow,
    /// The LSTM.
    pub lstm: ModelFlow,
    /// Test MSE of always predicting 1, the mean target (for scale: 1/6).
    pub baseline_mse: f64,
    /// When lengths vary: for each index of the curves, the probe rows long enough to
    /// have a step that far before their own last step (index `i`: rows of length at
    /// least `T − i`; the last index is every row). `None` with fixed lengths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach: Option<Vec<usize>>,
}

/// `T/2..=T` as `50–100 steps` (the lengths of a variable-length run of `seq_len` steps).
pub fn lengths_text(seq_len: usize) -> String {
    let range = length_range(seq_len);
    format!("{}–{} steps", range.start(), range.end())
}

/// The steps of the printed table: 1, then every 10th, and the last (1-based).
pub fn table_steps(seq_len: usize) -> Vec<usize> {
    let mut steps: Vec<usize> = std::iter::once(1)
        .chain((10..=seq_len).step_by(10))
        .collect();
    if steps.last() != Some(&seq_len) {
        steps.push(seq_len);
    }
    steps.dedup();
    steps
}

impl GradFlowReport {
    /// The four curves in column order: RNN init, RNN trained, LSTM init, LSTM trained.
    pub(super) fn columns(&self) -> [(&'static str, &[f64]); 4] {
        [
            ("RNN init", &self.rnn.init),
            ("RNN trained", &self.rnn.trained),
            ("LSTM init", &self.lstm.init),
            ("LSTM trained", &self.lstm.trained),
        ]
    }

    /// A markdown table of `‖∂L/∂h_t‖` at `steps` (1-based), then the ratio
    /// `‖∂L/∂h_1‖ / ‖∂L/∂h_T‖` of each curve.
    ///
    /// When lengths vary, step `t` is shown as `T − t` steps before each row's own last
    /// step, with the probe rows that reach that far (a `rows` column), and the ratio
    /// compares `T − 1` steps before the end with the end.
    pub fn table(&self, steps: &[usize]) -> String {
        let cols = self.columns();
        let t_max = self.config.seq_len;
        let mut out = match self.reach {
            None => String::from("| t |"),
            Some(_) => String::from("| steps before the row's end | rows |"),
        };
        for (name, _) in &cols {
            out.push_str(&format!(" {name} |"));
        }
        let extra = if self.reach.is_some() { "---:|" } else { "" };
        out.push_str(&format!("\n|---:|{extra}---:|---:|---:|---:|\n"));
        for &t in steps.iter().filter(|&&t| t >= 1 && t <= t_max) {
            match &self.reach {
                None => out.push_str(&format!("| {t} |")),
                Some(reach) => out.push_str(&format!("| {} | {} |", t_max - t, reach[t - 1])),
            }
            for (_, norms) in &cols {
                out.push_str(&format!(" {:.3e} |", norms[t - 1]));
            }
            out.push('\n');
        }
        match &self.reach {
            None => out.push_str(&format!("| h_1 / h_{t_max} |")),
            Some(reach) => out.push_str(&format!(
                "| h_(end−{}) / h_end | {} / {} |",
                t_max - 1,
                reach[0],
                reach[t_max - 1]
            )),
        }
        for (_, norms) in &cols {
            out.push_str(&format!(" {:.1e} |", ModelFlow::ratio(norms)));
        }
        out.push('\n');
        out
    }

    /// A markdown table of each model's test metrics.
    pub fn metrics_table(&self) -> String {
        let mut out = format!(
            "| model | test MSE at init | test MSE trained | within ±{TOLERANCE} | train time |\n|---|---:|---:|---:|---:|\n"
        );
        for m in [&self.rnn, &self.lstm] {
            out.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.1}% | {:.1} s |\n",
                m.model.name(),
                m.init_mse,
                m.final_mse,
                100.0 * m.final_accuracy,
                m.train_seconds
            ));
        }
        out.push_str(&format!(
            "| (always predicting 1) | {:.4} | {:.4} | | |\n",
            self.baseline_mse, self.baseline_mse
        ));
        out
    }

    /// `t,rnn_init,rnn_trained,lstm_init,lstm_trained`, one row per step (1-based).
    /// When lengths vary: `steps_before_end,rows,rnn_init,…`, from `T − 1` steps before
    /// each row's own last step down to that step (0).
    pub fn csv(&self) -> String {
        let names = "rnn_init,rnn_trained,lstm_init,lstm_trained\n";
        let t_max = self.config.seq_len;
        let mut out = match self.reach {
            None => format!("t,{names}"),
            Some(_) => format!("steps_before_end,rows,{names}"),
        };
        for t in 0..t_max {
            match &self.reach {
                None => out.push_str(&format!("{}", t + 1)),
                Some(reach) => out.push_str(&format!("{},{}", t_max - 1 - t, reach[t])),
            }
            for (_, norms) in self.columns() {
                out.push_str(&format!(",{:e}", norms[t]));
            }
            out.push('\n');
        }
        out
    }

    /// The gradient-flow figure: the four curves over `t` on a log y axis, the RNN in blue
    /// and the LSTM in orange, dashed at initialisation and solid after training. Steps
    /// whose norm underflowed to 0 are left out of their curve.
    pub fn svg(&self) -> Result<String> {
        let points: Vec<Vec<(f64, f64)>> = self
            .columns()
            .iter()
            .map(|(_, norms)| {
                norms
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 0.0)
                    .map(|(t, v)| ((t + 1) as f64, *v))
                    .collect()
            })
            .collect();
        let (title, x_label) = match self.reach {
            None => (
                format!(
                    "Gradient flow through time: adding problem, T = {}, H = {}",
                    self.config.seq_len, self.config.hidden
                ),
                "Time step t (the loss reads the final state, t = T)".to_string(),
            ),
            Some(_) => (
                format!(
                    "Gradient flow through time: adding problem, lengths vary ({}), H = {}",
                    lengths_text(self.config.seq_len),
                    self.config.hidden
                ),
                format!(
                    "Step, aligned at each row's own last step (t = {}; T − t steps before it)",
                    self.config.seq_len
                ),
            ),
        };
        let mut figure = Figure::new(title, x_label, "Mean ‖∂L/∂h_t‖").with_log_y();
        for (k, ((label, _), pts)) in self.columns().iter().zip(points).enumerate() {
            let line = if k % 2 == 0 {
                Line::Dashed
            } else {
                Line::Solid
            };
            figure
                .curves
                .push(Curve::new(*label, pts, k / 2).with_line(line));
        }
        figure.svg()
    }

    /// The test MSE of both models over the iterations, on a log y axis.
    pub fn loss_svg(&self) -> Result<String> {
        let to_points = |m: &ModelFlow| -> Vec<(f64, f64)> {
            m.history.iter().map(|&(i, v)| (i as f64, v)).collect()
        };
        let (rnn, lstm) = (to_points(&self.rnn), to_points(&self.lstm));
        let baseline: Vec<(f64, f64)> = [0.0, self.config.steps.max(1) as f64]
            .iter()
            .map(|&x| (x, self.baseline_mse))
            .collect();
        let title = match self.reach {
            None => "Adding problem: test MSE during training".to_string(),
            Some(_) => format!(
                "Adding problem, lengths vary ({}): test MSE during training",
                lengths_text(self.config.seq_len)
            ),
        };
        Figure::new(title, "Iteration", "Test MSE")
            .with_log_y()
            .with_curve(Curve::new("RNN", rnn, 0))
            .with_curve(Curve::new("LSTM", lstm, 1))
            .with_curve(
                Curve::new("always predicting 1 (the mean target)", baseline, 2)
                    .with_line(Line::Dashed),
            )
            .svg()
    }

    /// Writes `gradflow.csv`, `gradflow.svg`, `loss.svg`, `table.md` and `summary.json`
    /// into `dir`; returns their paths.
    pub fn write(&self, dir: &RunDir) -> Result<Vec<PathBuf>> {
        let table = format!(
            "{}\n{}",
            self.table(&table_steps(self.config.seq_len)),
            self.metrics_table()
        );
        Ok(vec![
            dir.write_atomic("gradflow.csv", self.csv().as_bytes())?,
            dir.write_atomic("gradflow.svg", self.svg()?.as_bytes())?,
            dir.write_atomic("loss.svg", self.loss_svg()?.as_bytes())?,
            dir.write_atomic("table.md", table.as_bytes())?,
            dir.write_json("summary.json", self)?,
        ])
    }
}
