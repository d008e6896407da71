//! A [`Stack`]'s inference through the fused wavefront ([`fused::stack_inference`]):
//! every layer at once, each a step behind the one below, when the batch is too small
//! for the row split to keep every thread busy.

use candle_core::Tensor;

use super::{DirectionWeights, Stack, StackOutput};
use crate::error::Result;
use crate::fused::{self, SequenceOutput};
use crate::Kernel;

impl Stack {
    /// Whether inference of `layers` over `x (B, T, I)` (full-length rows) runs in a
    /// wavefront: the fused kernel on f32 CPU tensors, one direction, contiguous
    /// parameters, and a batch the row split leaves threads idle with.
    pub(super) fn runs_in_a_wavefront(&self, layers: &[Vec<DirectionWeights>], x: &Tensor) -> bool {
        self.kernel == Kernel::Fused
            && fused::supports(x)
            && !self.config.bidirectional
            && x.dims3().is_ok_and(|(b, t, _)| {
                let hp = (self.config.hidden_size, self.config.output_size());
                fused::wavefront::applies(layers.len(), (b, t), hp)
            })
            && layers
                .iter()
                .flatten()
                .flat_map(|w| w.params())
                .all(|p| p.is_contiguous())
    }

    /// Inference of `layers` in a wavefront from the initial states `(layers, B, ·)`
    /// (zeros where `None`); with `final_only` no output sequence.
    pub(super) fn wavefront(
        &self,
        layers: &[Vec<DirectionWeights>],
        x: &Tensor,
        (h0, c0): (Option<&Tensor>, Option<&Tensor>),
        final_only: bool,
    ) -> Result<StackOutput> {
        let b = x.dim(0)?;
        let mut params = Vec::with_capacity(layers.len());
        let mut s0 = Vec::with_capacity(layers.len());
        for (layer, weights) in layers.iter().enumerate() {
            let slot = |s: Option<&Tensor>| s.map(|s| s.narrow(0, layer, 1)).transpose();
            s0.push(self.initial_state(x, (b, 1), (slot(h0)?, slot(c0)?))?);
            params.push(weights[0].params());
        }
        let output = SequenceOutput::when_final(final_only);
        let (out, states) = fused::stack_inference(self.family, x, &params, &s0, output)?;
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        for state in &states {
            let (h, c) = self.split_state(state)?;
            hs.push(h);
            cs.extend(c);
        }
        StackOutput::stacked(out, &hs, &cs)
    }
}
