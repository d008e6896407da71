//! Reading a [`StockConfig`] back: the settings as saved now, or with the `kind` word of
//! earlier runs in place of `family` and `bidirectional`.

use lstm_core::Family;
use serde::Deserialize;

use super::{StockConfig, TargetUnit};
use crate::choice::{legacy, Choice};

/// A [`StockConfig`] as a file holds it.
#[derive(Deserialize)]
pub(super) struct SavedStockConfig {
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    bidirectional: bool,
    #[serde(default)]
    kind: Option<String>,
    hidden: usize,
    layers: usize,
    epochs: usize,
    log_every: usize,
    target: String,
    #[serde(default)]
    unit: Option<TargetUnit>,
}

impl TryFrom<SavedStockConfig> for StockConfig {
    type Error = String;

    fn try_from(s: SavedStockConfig) -> Result<Self, String> {
        let (family, bidirectional) = match (&s.family, &s.kind) {
            (Some(word), _) => (Family::from_word(word)?, s.bidirectional),
            (None, Some(kind)) => legacy::kind(kind)?,
            (None, None) => return Err("missing field `family`".into()),
        };
        Ok(StockConfig {
            family,
            bidirectional,
            hidden: s.hidden,
            layers: s.layers,
            epochs: s.epochs,
            log_every: s.log_every,
            unit: s.unit.unwrap_or_else(|| TargetUnit::of(&s.target)),
            target: s.target,
        })
    }
}
