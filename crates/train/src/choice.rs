//! Settings of other crates' enums in `config.json` and checkpoints, written as the
//! command line spells them (`"layer"`, `"fused"`, `"held-out"`, …) and read back from
//! them; the spellings of format 1 (`"heldout"`) are still read.

use lstm_core::{Family, Kernel, Nonlinearity};
use lstm_datasets::ValidationSource;

/// An enum whose every value is listed, so it can be named in JSON.
pub(crate) trait Choice: Copy + std::fmt::Debug + 'static {
    /// Every value.
    const ALL: &'static [Self];

    /// The kebab-case name written to JSON (`HeldOut` → `held-out`).
    fn word(self) -> String {
        let mut word = String::new();
        for (i, c) in format!("{self:?}").chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                word.push('-');
            }
            word.extend(c.to_lowercase());
        }
        word
    }

    /// The name format 1 wrote: lowercase, no dashes.
    fn old_word(self) -> String {
        format!("{self:?}").to_lowercase()
    }

    /// The value named `word` (or its format-1 name), or an error listing the names.
    fn from_word(word: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.word() == word || v.old_word() == word)
            .ok_or_else(|| {
                let accepted: Vec<String> = Self::ALL.iter().map(|v| v.word()).collect();
                format!(
                    "unknown value {word:?}, expected one of {}",
                    accepted.join(", ")
                )
            })
    }
}

impl Choice for Kernel {
    const ALL: &'static [Self] = &[Kernel::Fused, Kernel::Reference];
}
impl Choice for ValidationSource {
    const ALL: &'static [Self] = &[ValidationSource::HeldOut, ValidationSource::Test];
}
impl Choice for Family {
    const ALL: &'static [Self] = &[
        Family::Lstm,
        Family::Gru,
        Family::Rnn(Nonlinearity::Tanh),
        Family::Rnn(Nonlinearity::Relu),
    ];

    /// `lstm`, `gru`, `rnn`, `relu-rnn`.
    fn word(self) -> String {
        self.name().to_lowercase().replace(' ', "-")
    }

    fn old_word(self) -> String {
        self.word()
    }
}

/// The model choices of format 1 and of `config.json` files before the one session:
/// `backbone` (MNIST) and `kind` (stock) named the family and a variant in one word.
pub(crate) mod legacy {
    use lstm_core::Family;

    use super::Choice;

    /// An earlier one-word model: the word, its family, its variant flag.
    pub(crate) type OldModel = (&'static str, Family, bool);

    /// MNIST's `backbone` words: family, book cell.
    pub(crate) const BACKBONES: [OldModel; 3] = [
        ("cell", Family::Lstm, true),
        ("layer", Family::Lstm, false),
        ("gru", Family::Gru, false),
    ];

    /// Stock's `kind` words: family, bidirectional.
    pub(crate) const KINDS: [OldModel; 3] = [
        ("lstm", Family::Lstm, false),
        ("gru", Family::Gru, false),
        ("bilstm", Family::Lstm, true),
    ];

    /// The family and variant flag of saved settings: the `family` word and the flag as
    /// saved now, or else the earlier one-word model (`field`, one of `words`).
    pub(crate) fn model(
        (family, flag): (Option<&str>, bool),
        (field, old, words): (&str, Option<&str>, &[OldModel]),
    ) -> Result<(Family, bool), String> {
        match (family, old) {
            (Some(word), _) => Ok((Family::from_word(word)?, flag)),
            (None, Some(word)) => words
                .iter()
                .find(|(w, ..)| *w == word)
                .map(|&(_, family, flag)| (family, flag))
                .ok_or_else(|| {
                    let names: Vec<&str> = words.iter().map(|(w, ..)| *w).collect();
                    format!(
                        "unknown {field} {word:?}, expected one of {}",
                        names.join(", ")
                    )
                }),
            (None, None) => Err("missing field `family`".into()),
        }
    }
}

/// Serialises a [`Choice`] as its word.
pub(crate) fn ser_choice<T: Choice, S: serde::Serializer>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&v.word())
}

/// Reads a [`Choice`] from its word, listing the accepted ones otherwise.
pub(crate) fn de_choice<'de, T: Choice, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<T, D::Error> {
    let word: String = serde::Deserialize::deserialize(d)?;
    T::from_word(&word).map_err(serde::de::Error::custom)
}

/// `f64` that may be infinite or NaN (a validation loss of a diverging model): JSON has no
/// such numbers, so they are written as the strings `"inf"`, `"-inf"`, `"NaN"`.
pub(crate) mod lenient_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a number, or a string for a non-finite value.
    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(&v.to_string())
        }
    }

    /// Reads a number or one of the strings above.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => t
                .parse::<f64>()
                .map_err(|_| serde::de::Error::custom(format!("not a number: {t:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_round_trip_through_json() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct W(#[serde(with = "lenient_f64")] f64);
        for v in [1.5, f64::INFINITY, f64::NEG_INFINITY] {
            let json = serde_json::to_string(&W(v)).unwrap();
            assert_eq!(serde_json::from_str::<W>(&json).unwrap().0, v, "{json}");
        }
        let json = serde_json::to_string(&W(f64::NAN)).unwrap();
        assert_eq!(json, "\"NaN\"");
        assert!(serde_json::from_str::<W>(&json).unwrap().0.is_nan());
    }

    #[test]
    fn every_word_reads_back_and_unknown_ones_are_listed() {
        for &k in <Family as Choice>::ALL {
            let json = serde_json::Value::String(k.word());
            let back: Family = de_choice(json).unwrap();
            assert_eq!(back, k);
        }
        assert_eq!(Family::Rnn(Nonlinearity::Relu).word(), "relu-rnn");
        assert_eq!(ValidationSource::HeldOut.word(), "held-out");
        let old: ValidationSource = de_choice(serde_json::json!("heldout")).unwrap();
        assert_eq!(old, ValidationSource::HeldOut);
        let err = de_choice::<Kernel, _>(serde_json::json!("cuda")).unwrap_err();
        assert!(
            err.to_string().contains("expected one of fused, reference"),
            "{err}"
        );
    }
}
