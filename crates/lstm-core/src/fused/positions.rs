//! Where the `(row, time)` positions of a sequence lie in the fused op's buffers: every
//! row with all `T` steps (batch-major, as the user's `(B, T, ·)` tensors), or rows of
//! different lengths packed time-major without padding (as PyTorch's `PackedSequence`).

/// The steps of a batch whose rows have different lengths, sorted longest first.
///
/// Positions are time-major: the rows still running at time `t` (those longer than `t`,
/// a prefix of the sorted rows, since lengths only shrink) are positions
/// `offsets[t] .. offsets[t] + batch_sizes[t]`. No position holds padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PackedSteps {
    /// Each (sorted) row's length, non-increasing, each at least 1.
    pub lengths: Vec<usize>,
    /// Rows still running at each time step, `batch_sizes[0] = B`.
    pub batch_sizes: Vec<usize>,
    /// The first position of each time step.
    pub offsets: Vec<usize>,
}

impl PackedSteps {
    /// The steps of rows of these lengths, which must be sorted longest first and each
    /// be at least 1 (checked by the caller, [`crate::PackedBatch`]).
    pub fn new(sorted_lengths: &[usize]) -> Self {
        let t = sorted_lengths.first().copied().unwrap_or(0);
        let batch_sizes: Vec<usize> = (0..t)
            .map(|ti| sorted_lengths.iter().take_while(|&&l| l > ti).count())
            .collect();
        let offsets = batch_sizes
            .iter()
            .scan(0, |acc, &n| {
                let start = *acc;
                *acc += n;
                Some(start)
            })
            .collect();
        Self {
            lengths: sorted_lengths.to_vec(),
            batch_sizes,
            offsets,
        }
    }

    /// The number of positions: the sum of the lengths.
    pub fn count(&self) -> usize {
        self.lengths.iter().sum()
    }
}

/// The layout of one call's positions.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Positions<'a> {
    /// Every row has all `t` steps; position `r·t + time` (batch-major).
    Padded { b: usize, t: usize },
    /// Rows of different lengths, time-major.
    Packed(&'a PackedSteps),
}

impl Positions<'_> {
    /// Rows of the batch.
    pub fn rows(&self) -> usize {
        match self {
            Positions::Padded { b, .. } => *b,
            Positions::Packed(p) => p.lengths.len(),
        }
    }

    /// The longest row's length: the steps the recurrence runs.
    pub fn steps(&self) -> usize {
        match self {
            Positions::Padded { t, .. } => *t,
            Positions::Packed(p) => p.batch_sizes.len(),
        }
    }

    /// The number of positions.
    pub fn count(&self) -> usize {
        match self {
            Positions::Padded { b, t } => b * t,
            Positions::Packed(p) => p.count(),
        }
    }

    /// The position of row `r` at time `t` (which must be inside the row's length).
    #[inline(always)]
    pub fn at(&self, r: usize, t: usize) -> usize {
        match self {
            Positions::Padded { t: steps, .. } => r * steps + t,
            Positions::Packed(p) => p.offsets[t] + r,
        }
    }

    /// How many positions apart rows `r` and `r + 1` are at the same time.
    #[inline(always)]
    pub fn row_stride(&self) -> usize {
        match self {
            Positions::Padded { t, .. } => *t,
            Positions::Packed(_) => 1,
        }
    }

    /// Rows running at time `t`: rows `0..active(t)`.
    #[inline(always)]
    pub fn active(&self, t: usize) -> usize {
        match self {
            Positions::Padded { b, .. } => *b,
            Positions::Packed(p) => p.batch_sizes[t],
        }
    }

    /// The length of row `r`.
    #[inline(always)]
    pub fn len(&self, r: usize) -> usize {
        match self {
            Positions::Padded { t, .. } => *t,
            Positions::Packed(p) => p.lengths[r],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_positions_are_time_major_without_padding() {
        let steps = PackedSteps::new(&[4, 2, 2, 1]);
        assert_eq!(steps.batch_sizes, [4, 3, 1, 1]);
        assert_eq!(steps.offsets, [0, 4, 7, 8]);
        let p = Positions::Packed(&steps);
        assert_eq!((p.rows(), p.steps(), p.count()), (4, 4, 9));
        let mut seen: Vec<usize> = (0..4)
            .flat_map(|r| (0..p.len(r)).map(move |t| (r, t)))
            .map(|(r, t)| p.at(r, t))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..9).collect::<Vec<_>>());
        assert_eq!(p.at(1, 1), 5);
        assert_eq!(p.active(2), 1);
    }

    #[test]
    fn padded_positions_are_batch_major() {
        let p = Positions::Padded { b: 3, t: 5 };
        assert_eq!(
            (p.at(2, 1), p.row_stride(), p.active(4), p.count()),
            (11, 5, 3, 15)
        );
    }
}
