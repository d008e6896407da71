//! Reading an [`MnistConfig`] back: the settings as saved now, or with the `backbone`
//! word of earlier runs in place of `family` and `book_cell`.

use lstm_core::Kernel;
use lstm_datasets::ValidationSource;
use serde::Deserialize;

use super::{MnistConfig, Selection};
use crate::choice::{de_choice, legacy};

/// An [`MnistConfig`] as a file holds it.
#[derive(Deserialize)]
pub(super) struct SavedMnistConfig {
    hidden: usize,
    layers: usize,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    book_cell: bool,
    #[serde(default)]
    backbone: Option<String>,
    #[serde(deserialize_with = "de_choice")]
    kernel: Kernel,
    batch_size: usize,
    epochs: usize,
    iters: Option<usize>,
    eval_every: usize,
    #[serde(deserialize_with = "de_choice")]
    validate_on: ValidationSource,
    select: Selection,
}

impl TryFrom<SavedMnistConfig> for MnistConfig {
    type Error = String;

    fn try_from(s: SavedMnistConfig) -> Result<Self, String> {
        let (family, book_cell) = legacy::model(
            (s.family.as_deref(), s.book_cell),
            ("backbone", s.backbone.as_deref(), &legacy::BACKBONES),
        )?;
        Ok(MnistConfig {
            hidden: s.hidden,
            layers: s.layers,
            family,
            book_cell,
            kernel: s.kernel,
            batch_size: s.batch_size,
            epochs: s.epochs,
            iters: s.iters,
            eval_every: s.eval_every,
            validate_on: s.validate_on,
            select: s.select,
        })
    }
}
