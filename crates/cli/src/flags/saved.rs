//! Enum flags saved in checkpoints under their command-line names: what a run stores
//! for `--resume` reads back with the spelling the user typed, and a name that is not
//! one of the flag's values is an error listing them, never a silent default.

use clap::ValueEnum;

/// Writes a [`ValueEnum`] as its command-line name.
pub(crate) fn serialize<T: ValueEnum, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    let value = v
        .to_possible_value()
        .ok_or_else(|| serde::ser::Error::custom("a value without a name"))?;
    s.serialize_str(value.get_name())
}

/// Reads a [`ValueEnum`] from its command-line name.
pub(crate) fn deserialize<'de, T: ValueEnum, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<T, D::Error> {
    let name: String = serde::Deserialize::deserialize(d)?;
    T::from_str(&name, false).map_err(|_| {
        let accepted: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        serde::de::Error::custom(format!(
            "unknown value {name:?}, expected one of {}",
            accepted.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use lstm_datasets::FitOn;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Saved {
        #[serde(with = "super")]
        fit: FitOn,
    }

    #[test]
    fn enums_are_saved_as_their_flag_values_and_typos_are_errors() {
        let json = serde_json::to_string(&Saved {
            fit: FitOn::TrainOnly,
        })
        .unwrap();
        assert_eq!(json, r#"{"fit":"train"}"#);
        let back: Saved = serde_json::from_str(r#"{"fit":"all"}"#).unwrap();
        assert_eq!(back.fit, FitOn::All);
        let err = serde_json::from_str::<Saved>(r#"{"fit":"al"}"#).unwrap_err();
        assert!(
            err.to_string().contains("expected one of train, all"),
            "{err}"
        );
    }
}
