//! The variable-length rows of the scenario table: batch 64, 64 features, hidden 256,
//! LSTM of 1 and 2 layers, one and both directions, training and inference, every row
//! reading each row's final `h` of the last layer (both directions concatenated).
//!
//! - `packed-*`: the rows have [`LENGTHS`] (uniform in `10..=100`, a fixed LCG, the same
//!   in `scripts/bench_torch.py`), run through `Lstm::forward_packed`; PyTorch runs
//!   `pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)`.
//! - `padmean-*`: the same model on a full batch of [`MEAN_LEN`] steps (the mean length,
//!   rounded) through `Lstm::forward`: what the packed rows are measured against.

use candle_core::{IndexOp, Tensor};

use crate::scenarios::{row, Family, Mode, Scenario};

/// Rows per batch.
pub const BATCH: usize = 64;
/// The shortest and longest row.
const MIN_LEN: usize = 10;
const MAX_LEN: usize = 100;
/// The LCG's starting state.
const SEED: u64 = 12;

/// One length per row: Knuth's MMIX LCG from [`SEED`], each length `MIN_LEN + (state >>
/// 33) % (MAX_LEN - MIN_LEN + 1)`.
pub const LENGTHS: [usize; BATCH] = lengths();

const fn lengths() -> [usize; BATCH] {
    let mut out = [0; BATCH];
    let mut state = SEED;
    let mut r = 0;
    while r < BATCH {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out[r] = MIN_LEN + ((state >> 33) % (MAX_LEN - MIN_LEN + 1) as u64) as usize;
        r += 1;
    }
    out
}

/// The real steps of a batch (the sum of [`LENGTHS`]).
pub const STEPS: usize = {
    let mut sum = 0;
    let mut r = 0;
    while r < BATCH {
        sum += LENGTHS[r];
        r += 1;
    }
    sum
};

/// The mean length, rounded half up: the steps of the `padmean-*` rows.
pub const MEAN_LEN: usize = (STEPS + BATCH / 2) / BATCH;

/// The padded steps of the `packed-*` rows: the longest length.
pub const PADDED_LEN: usize = {
    let mut max = 0;
    let mut r = 0;
    while r < BATCH {
        if LENGTHS[r] > max {
            max = LENGTHS[r];
        }
        r += 1;
    }
    max
};

/// A variable-length row: `packed` over [`LENGTHS`], or a full batch of [`MEAN_LEN`].
const fn varlen(
    id: &'static str,
    layers: usize,
    bidirectional: bool,
    train: bool,
    packed: bool,
) -> Scenario {
    let mode = if train {
        Mode::TrainState
    } else {
        Mode::InferState
    };
    Scenario {
        batch: BATCH,
        seq: if packed { PADDED_LEN } else { MEAN_LEN },
        input: 64,
        hidden: 256,
        layers,
        bidirectional,
        packed,
        ..row(id, Family::Lstm, mode)
    }
}

/// The variable-length rows, each `packed-*` followed by its `padmean-*`.
pub const SCENARIOS: [Scenario; 16] = [
    varlen("packed-lstm-train", 1, false, true, true),
    varlen("padmean-lstm-train", 1, false, true, false),
    varlen("packed-lstm-infer", 1, false, false, true),
    varlen("padmean-lstm-infer", 1, false, false, false),
    varlen("packed-bilstm-train", 1, true, true, true),
    varlen("padmean-bilstm-train", 1, true, true, false),
    varlen("packed-bilstm-infer", 1, true, false, true),
    varlen("padmean-bilstm-infer", 1, true, false, false),
    varlen("packed-lstm2-train", 2, false, true, true),
    varlen("padmean-lstm2-train", 2, false, true, false),
    varlen("packed-lstm2-infer", 2, false, false, true),
    varlen("padmean-lstm2-infer", 2, false, false, false),
    varlen("packed-bilstm2-train", 2, true, true, true),
    varlen("padmean-bilstm2-train", 2, true, true, false),
    varlen("packed-bilstm2-infer", 2, true, false, true),
    varlen("padmean-bilstm2-infer", 2, true, false, false),
];

/// The last layer's final `h` of every row, `(B, D·H)` (forward direction first), from
/// `h_n (layers·D, B, H)`; PyTorch's `h_n.view(L, D, B, H)[-1].transpose(0, 1)`.
pub fn last_layer(h_n: &Tensor, directions: usize) -> candle_core::Result<Tensor> {
    let (ld, b, h) = h_n.dims3()?;
    let last = h_n.i(ld - directions..)?;
    last.transpose(0, 1)?.reshape((b, directions * h))
}

/// The lengths as the JSON lines print them: space-separated.
pub fn lengths_field() -> String {
    let s: Vec<String> = LENGTHS.iter().map(usize::to_string).collect();
    s.join(" ")
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn lengths_are_fixed_and_uniform_in_range() {
        assert!(LENGTHS.iter().all(|l| (MIN_LEN..=MAX_LEN).contains(l)));
        // The same values as scripts/bench_torch.py's lcg_lengths().
        assert_eq!(&LENGTHS[..6], &[44, 52, 22, 38, 66, 73]);
        assert_eq!((STEPS, MEAN_LEN, PADDED_LEN), (3704, 58, 100));
        assert_eq!(STEPS, LENGTHS.iter().sum::<usize>());
        assert_eq!(PADDED_LEN, *LENGTHS.iter().max().unwrap());
        let mean = STEPS as f64 / BATCH as f64;
        assert_eq!(MEAN_LEN, mean.round() as usize);
        assert!((40.0..=70.0).contains(&mean), "mean length {mean}");
    }

    #[test]
    fn last_layer_concatenates_both_directions() -> candle_core::Result<()> {
        // h_n of 2 layers × 2 directions, batch 3, hidden 2: value = 100·(l·D+d) + 10·b + j.
        let v: Vec<f32> = (0..4)
            .flat_map(|ld| {
                (0..3).flat_map(move |b| (0..2).map(move |j| (100 * ld + 10 * b + j) as f32))
            })
            .collect();
        let h_n = Tensor::from_vec(v, (4, 3, 2), &Device::Cpu)?;
        let last = last_layer(&h_n, 2)?;
        assert_eq!(last.dims(), &[3, 4]);
        assert_eq!(last.i(1)?.to_vec1::<f32>()?, [210.0, 211.0, 310.0, 311.0]);
        let uni = last_layer(&h_n, 1)?;
        assert_eq!(uni.i(2)?.to_vec1::<f32>()?, [320.0, 321.0]);
        Ok(())
    }
}
