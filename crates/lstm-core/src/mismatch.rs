//! How a state dict differs from the parameters a model expects: the payload of
//! [`crate::LstmError::StateDict`], apart from the loading code so that the error type
//! and the loader do not import each other.

use std::collections::HashMap;
use std::fmt;

/// A tensor's name and shape, as listed in a [`StateDictMismatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// Parameter name, e.g. `lstm.weight_ih_l0`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// How a state dict differs from the parameters a model expects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDictMismatch {
    /// Parameters of the model that the file lacks (with the expected shape).
    pub missing: Vec<TensorEntry>,
    /// Tensors of the file that the model does not have (with the shape found).
    pub unexpected: Vec<TensorEntry>,
    /// Parameters present in both with different shapes: `(name, expected, found)`.
    pub wrong_shape: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl StateDictMismatch {
    /// Compares the `expected` parameters with the `found` tensors.
    pub fn between(expected: &[TensorEntry], found: &[TensorEntry]) -> Self {
        let found_map: HashMap<&str, &[usize]> = found
            .iter()
            .map(|e| (e.name.as_str(), e.shape.as_slice()))
            .collect();
        let expected_map: HashMap<&str, &[usize]> = expected
            .iter()
            .map(|e| (e.name.as_str(), e.shape.as_slice()))
            .collect();
        let mut mismatch = Self::default();
        for e in expected {
            match found_map.get(e.name.as_str()) {
                None => mismatch.missing.push(e.clone()),
                Some(&shape) if shape != e.shape.as_slice() => {
                    mismatch
                        .wrong_shape
                        .push((e.name.clone(), e.shape.clone(), shape.to_vec()))
                }
                Some(_) => {}
            }
        }
        for f in found {
            if !expected_map.contains_key(f.name.as_str()) {
                mismatch.unexpected.push(f.clone());
            }
        }
        mismatch.missing.sort_by(|a, b| a.name.cmp(&b.name));
        mismatch.unexpected.sort_by(|a, b| a.name.cmp(&b.name));
        mismatch.wrong_shape.sort();
        mismatch
    }

    /// Whether the two sides agree.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.wrong_shape.is_empty()
    }
}

impl fmt::Display for StateDictMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.missing.is_empty() {
            write!(f, "\n  missing from the file (expected by the model):")?;
            for e in &self.missing {
                write!(f, "\n    {} {:?}", e.name, e.shape)?;
            }
        }
        if !self.unexpected.is_empty() {
            write!(f, "\n  unexpected in the file (not in the model):")?;
            for e in &self.unexpected {
                write!(f, "\n    {} {:?}", e.name, e.shape)?;
            }
        }
        if !self.wrong_shape.is_empty() {
            write!(f, "\n  wrong shape:")?;
            for (name, expected, found) in &self.wrong_shape {
                write!(f, "\n    {name}: expected {expected:?}, found {found:?}")?;
            }
        }
        Ok(())
    }
}
