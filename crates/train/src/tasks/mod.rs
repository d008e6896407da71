//! The tasks a [`crate::session`] trains: the book's MNIST classifier, its stock-price
//! regressor, and the adding problem of the gradient-flow study.

pub mod adding;
pub mod mnist;
pub mod stock;
