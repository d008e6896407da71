//! The command line: every flag of every command, and how flags become the library's
//! settings ([`lstm_train::MnistConfig`], [`lstm_train::StockConfig`],
//! [`lstm_train::SessionConfig`], [`lstm_train::GradFlowConfig`]). The commands
//! themselves are in [`crate::commands`].

mod gradflow;
mod inspect;
mod mnist;
mod run;
mod saved;
mod stock;

use clap::{Parser, Subcommand};

pub(crate) use gradflow::GradflowArgs;
pub(crate) use inspect::{EvaluateArgs, PredictArgs};
pub(crate) use mnist::{DataSource, MnistArgs, MnistData, MnistModel};
pub(crate) use run::RunArgs;
pub(crate) use stock::{StockArgs, StockData};

/// Train and evaluate the LSTM chapter's models.
#[derive(Parser, Debug)]
#[command(name = "lstm", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Train the row-by-row LSTM classifier on MNIST and evaluate it on the test set.
    Mnist(MnistArgs),
    /// Train the book's stock-price model (Volume from the day's prices) and plot its
    /// predictions.
    Stock(StockArgs),
    /// Evaluate a trained MNIST model (a run directory) on the test set.
    Evaluate(EvaluateArgs),
    /// Classify one handwritten digit image (PNG) with a trained MNIST model.
    Predict(PredictArgs),
    /// Gradient flow through time: ‖∂L/∂h_t‖ of a tanh RNN and an LSTM on the adding
    /// problem, at initialisation and after training.
    Gradflow(GradflowArgs),
}
