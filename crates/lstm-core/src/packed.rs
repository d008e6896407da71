//! Batches of sequences of different lengths: a padded `(B, T, F)` tensor with one
//! length per row, as PyTorch's `pack_padded_sequence(..., enforce_sorted=False)`.
//!
//! [`PackedBatch`] sorts the rows by length once and remembers the order; every recurrent
//! model's `forward_packed` takes it and hands results back in the caller's row order.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::error::{LstmError, Result};
use crate::fused::PackedSteps;

/// A padded batch `(B, T, F)` whose row `r` holds `lengths[r]` real steps (the rest is
/// padding, never read).
///
/// Models run it as PyTorch runs a packed sequence: outputs past a row's length are zero,
/// the final states are each row's state at its own last step, the reverse direction
/// starts at each row's own end, and rows come back in the order given.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use candle_nn::VarMap;
/// use lstm_core::{seeded_var_builder, Lstm, LstmConfig, PackedBatch};
///
/// let varmap = VarMap::new();
/// let vb = seeded_var_builder(&varmap, 0, DType::F32, &Device::Cpu);
/// let lstm = Lstm::new(LstmConfig::new(3, 8).with_bidirectional(true), vb)?;
/// let x = Tensor::randn(0f32, 1.0, (3, 5, 3), &Device::Cpu)?;
/// let batch = PackedBatch::new(&x, &[2, 5, 1])?;
/// let (out, state) = lstm.forward_packed(&batch, None, false)?;
/// assert_eq!(out.dims(), &[3, 5, 16]);
/// assert_eq!(state.h.dims(), &[2, 3, 8]);
/// # Ok::<(), lstm_core::LstmError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PackedBatch {
    padded: Tensor,
    lengths: Vec<usize>,
    pub(crate) layout: Arc<PackedLayout>,
}

/// How a [`PackedBatch`]'s rows are sorted and packed.
#[derive(Debug)]
pub(crate) struct PackedLayout {
    /// The sorted rows' steps, as the fused op reads them.
    pub steps: Arc<PackedSteps>,
    /// `(positions,)`: for each packed position, its row `r·T + t` in the padded input
    /// `(B·T, F)`.
    pub pack: Tensor,
    /// `(B·T,)`: for each padded position, its packed position, or `positions` (a zero
    /// row appended to the packed data) past the row's length.
    pub unpack: Tensor,
    /// `(B,)`: the caller's row of each sorted row.
    pub sorted: Tensor,
    /// `(B,)`: the sorted row of each caller's row.
    pub unsorted: Tensor,
    /// `(B, T)`, 1 at the real steps and 0 at the padding.
    pub mask: Tensor,
}

impl PackedBatch {
    /// Checks the lengths against `padded (B, T, F)`: one per row, each in `1..=T`.
    pub fn new(padded: &Tensor, lengths: &[usize]) -> Result<Self> {
        let (b, t, _) = padded.dims3().map_err(|_| LstmError::Shape {
            what: "PackedBatch input",
            expected: vec![0, 0, 0],
            got: padded.dims().to_vec(),
        })?;
        if lengths.len() != b {
            return Err(LstmError::Lengths(format!(
                "{} lengths for a batch of {b} rows",
                lengths.len()
            )));
        }
        if let Some((r, &l)) = lengths.iter().enumerate().find(|(_, &l)| l == 0 || l > t) {
            return Err(LstmError::Lengths(format!(
                "row {r} has length {l}; each length must be in 1..={t} (the padded steps)"
            )));
        }
        let layout = PackedLayout::new(lengths, t, padded.device())?;
        Ok(Self {
            padded: padded.clone(),
            lengths: lengths.to_vec(),
            layout: Arc::new(layout),
        })
    }

    /// The padded input `(B, T, F)`.
    pub fn padded(&self) -> &Tensor {
        &self.padded
    }

    /// Each row's length, in the caller's order.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// The number of real steps in the batch (the sum of the lengths).
    pub fn steps(&self) -> usize {
        self.layout.steps.count()
    }

    /// The input packed time-major, sorted longest first: `(positions, F)`.
    pub(crate) fn packed_input(&self) -> Result<Tensor> {
        let (b, t, f) = self.padded.dims3()?;
        let flat = self.padded.reshape((b * t, f))?;
        Ok(flat.index_select(&self.layout.pack, 0)?)
    }

    /// A packed sequence `(positions, W)` back to padded `(B, T, W)` in the caller's row
    /// order, zeros past each length.
    pub(crate) fn unpack(&self, packed: &Tensor) -> Result<Tensor> {
        let (b, t, _) = self.padded.dims3()?;
        let w = packed.dim(1)?;
        let zero = Tensor::zeros((1, w), packed.dtype(), packed.device())?;
        let with_zero = Tensor::cat(&[packed, &zero], 0)?;
        Ok(with_zero
            .index_select(&self.layout.unpack, 0)?
            .reshape((b, t, w))?)
    }
}

impl PackedLayout {
    fn new(lengths: &[usize], t: usize, device: &Device) -> Result<Self> {
        let b = lengths.len();
        let mut order: Vec<usize> = (0..b).collect();
        // Stable: rows of equal length keep their order, as PyTorch's sort.
        order.sort_by(|&x, &y| lengths[y].cmp(&lengths[x]));
        let sorted_lengths: Vec<usize> = order.iter().map(|&r| lengths[r]).collect();
        let steps = PackedSteps::new(&sorted_lengths);
        let n = steps.count();
        let mut pack = vec![0u32; n];
        let mut unpack = vec![n as u32; b * t];
        for (k, &r) in order.iter().enumerate() {
            for ti in 0..lengths[r] {
                let p = steps.offsets[ti] + k;
                pack[p] = (r * t + ti) as u32;
                unpack[r * t + ti] = p as u32;
            }
        }
        let mut unsorted = vec![0u32; b];
        for (k, &r) in order.iter().enumerate() {
            unsorted[r] = k as u32;
        }
        let mask: Vec<f32> = (0..b * t)
            .map(|p| f32::from(u8::from(p % t < lengths[p / t])))
            .collect();
        let sorted: Vec<u32> = order.iter().map(|&r| r as u32).collect();
        Ok(Self {
            steps: Arc::new(steps),
            pack: Tensor::from_vec(pack, n, device)?,
            unpack: Tensor::from_vec(unpack, b * t, device)?,
            sorted: Tensor::from_vec(sorted, b, device)?,
            unsorted: Tensor::from_vec(unsorted, b, device)?,
            mask: Tensor::from_vec(mask, (b, t), device)?.to_dtype(DType::U8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lengths_are_typed_errors() -> Result<()> {
        let x = Tensor::zeros((3, 4, 2), DType::F32, &Device::Cpu)?;
        for lengths in [&[1, 2][..], &[1, 2, 3, 4], &[0, 2, 3], &[1, 5, 3]] {
            let err = PackedBatch::new(&x, lengths).unwrap_err();
            assert!(matches!(err, LstmError::Lengths(_)), "{lengths:?}: {err}");
        }
        let err = PackedBatch::new(&x, &[1, 5, 3]).unwrap_err().to_string();
        assert!(err.contains("row 1 has length 5"), "{err}");
        let flat = Tensor::zeros((3, 4), DType::F32, &Device::Cpu)?;
        assert!(matches!(
            PackedBatch::new(&flat, &[1, 1, 1]),
            Err(LstmError::Shape { .. })
        ));
        Ok(())
    }

    #[test]
    fn packing_sorts_longest_first_and_unpacking_restores_the_order() -> Result<()> {
        let (b, t) = (3, 4);
        let values: Vec<f32> = (0..b * t).map(|v| v as f32).collect();
        let x = Tensor::from_vec(values, (b, t, 1), &Device::Cpu)?;
        let batch = PackedBatch::new(&x, &[2, 4, 1])?;
        assert_eq!(batch.steps(), 7);
        let packed = batch.packed_input()?;
        // Time-major, longest row first: t=0 rows (1, 0, 2), t=1 rows (1, 0), then row 1.
        let rows: Vec<f32> = packed.flatten_all()?.to_vec1()?;
        assert_eq!(rows, [4.0, 0.0, 8.0, 5.0, 1.0, 6.0, 7.0]);
        let back = batch.unpack(&packed)?.flatten_all()?.to_vec1::<f32>()?;
        let expected = [0., 1., 0., 0., 4., 5., 6., 7., 8., 0., 0., 0.];
        assert_eq!(back, expected);
        Ok(())
    }
}
