//! A [`Stack`] over a [`PackedBatch`]: rows of different lengths, as PyTorch's packed
//! sequences. The fused op runs the rows packed time-major (no work on padding); the
//! reference path runs the padded batch with a mask.

use super::{Lengths, Stack, StackOutput};
use crate::error::{LstmError, Result};
use crate::{fused, Kernel, PackedBatch};
use candle_core::Tensor;

impl Stack {
    /// [`Stack::run`] over rows of different lengths. The states and the outputs
    /// `(B, T, D·H)` are in the caller's row order; outputs past a row's length are zero.
    pub fn run_packed(
        &self,
        batch: &PackedBatch,
        (h0, c0): (Option<&Tensor>, Option<&Tensor>),
        train: bool,
        final_only: bool,
    ) -> Result<StackOutput> {
        let x = batch.padded();
        self.check(x, h0, c0)?;
        crate::memory::keep_freed_memory();
        let dropout = if train { self.config.dropout } else { 0.0 };
        let layout = &batch.layout;
        if !(self.kernel == Kernel::Fused && fused::supports(x)) {
            let lengths = Lengths::Masked(&layout.mask);
            return self.run_layers(
                &self.layers,
                x,
                (h0, c0),
                (dropout, train),
                final_only,
                lengths,
            );
        }
        // The fused op reads the rows sorted longest first, packed time-major.
        let sort = |s: Option<&Tensor>| {
            s.map(|s| s.contiguous()?.index_select(&layout.sorted, 1))
                .transpose()
        };
        let (h0, c0) = (sort(h0)?, sort(c0)?);
        let input = batch.packed_input()?;
        let lengths = Lengths::Packed(&layout.steps);
        let start = (h0.as_ref(), c0.as_ref());
        let run = self.run_layers(
            &self.layers,
            &input,
            start,
            (dropout, train),
            final_only,
            lengths,
        )?;
        let unsort = |s: Tensor| s.contiguous()?.index_select(&layout.unsorted, 1);
        Ok(StackOutput {
            out: run.out.map(|o| batch.unpack(&o)).transpose()?,
            h_n: unsort(run.h_n)?,
            c_n: run.c_n.map(unsort).transpose()?,
        })
    }

    /// [`Stack::run_packed`] with the output sequence: `(out, h_n, c_n)`.
    pub fn forward_packed(
        &self,
        batch: &PackedBatch,
        start: (Option<&Tensor>, Option<&Tensor>),
        train: bool,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let run = self.run_packed(batch, start, train, false)?;
        let out = run
            .out
            .ok_or_else(|| LstmError::Config("no output sequence".into()))?;
        Ok((out, run.h_n, run.c_n))
    }
}
