//! Reading a [`StockConfig`] back: the settings as saved now, or with the `kind` word of
//! earlier runs in place of `family` and `bidirectional`.

use serde::Deserialize;

use super::{StockConfig, TargetUnit};
use crate::choice::legacy;

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
        let (family, bidirectional) = legacy::model(
            (s.family.as_deref(), s.bidirectional),
            ("kind", s.kind.as_deref(), &legacy::KINDS),
        )?;
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
