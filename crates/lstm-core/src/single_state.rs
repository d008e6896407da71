//! The methods the fronts of the families whose state is `h` alone ([`crate::Gru`],
//! [`crate::Rnn`]) share, written once: each forwards to the engine's [`crate::engine::Stack`]
//! with no cell state.

/// Defines `with_kernel`, `config`, `forward`, `forward_final`, `forward_packed`,
/// `forward_final_packed`, `forward_steps` and `forward_steps_with_taps` on `$front` (a
/// struct with a `stack: Stack` field), documented with PyTorch's module name `$torch`.
macro_rules! single_state_front {
    ($front:ident, $torch:literal) => {
        impl $front {
            /// Selects the recurrence kernel (the fused one by default).
            pub fn with_kernel(mut self, kernel: $crate::Kernel) -> Self {
                self.stack = self.stack.with_kernel(kernel);
                self
            }

            /// The configuration this model was built with.
            pub fn config(&self) -> &$crate::engine::RecurrentConfig {
                self.stack.config()
            }

            /// Runs the model.
            ///
            /// - `x`: `(B, T, input_size)`;
            /// - `h0`: optional initial state `(layers·D, B, H)`; zeros when `None`;
            /// - `train`: applies dropout between layers and keeps what the backward pass
            ///   needs.
            ///
            /// Returns the last layer's outputs `(B, T, D·H)` and the final state `h_n`,
            /// `(layers·D, B, H)`, as PyTorch's `(output, h_n)`.
            pub fn forward(
                &self,
                x: &candle_core::Tensor,
                h0: Option<&candle_core::Tensor>,
                train: bool,
            ) -> $crate::error::Result<(candle_core::Tensor, candle_core::Tensor)> {
                let (out, h_n, _) = self.stack.forward(x, (h0, None), train)?;
                Ok((out, h_n))
            }

            #[doc = concat!("Runs the model and returns only the final state `h_n`, `(layers·D, B, H)`: the numbers of [`", stringify!($front), "::forward`], without an output sequence for autograd.")]
            pub fn forward_final(
                &self,
                x: &candle_core::Tensor,
                h0: Option<&candle_core::Tensor>,
                train: bool,
            ) -> $crate::error::Result<candle_core::Tensor> {
                Ok(self.stack.run(x, h0, None, train, true)?.h_n)
            }

            #[doc = concat!("Runs rows of different lengths, as PyTorch's `", $torch, "` on `pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)` followed by `pad_packed_sequence`: returns the outputs `(B, T, D·H)`, zero past each row's length, and each row's final state `h_n` at its own last step (the reverse direction starts at each row's own end), rows in the batch's order.")]
            ///
            #[doc = concat!("`h0` and `train` as [`", stringify!($front), "::forward`]. The fused op does no work on padding.")]
            pub fn forward_packed(
                &self,
                batch: &$crate::PackedBatch,
                h0: Option<&candle_core::Tensor>,
                train: bool,
            ) -> $crate::error::Result<(candle_core::Tensor, candle_core::Tensor)> {
                let (out, h_n, _) = self.stack.forward_packed(batch, (h0, None), train)?;
                Ok((out, h_n))
            }

            #[doc = concat!("[`", stringify!($front), "::forward_packed`]'s final state only, without an output sequence for autograd (as [`", stringify!($front), "::forward_final`]).")]
            pub fn forward_final_packed(
                &self,
                batch: &$crate::PackedBatch,
                h0: Option<&candle_core::Tensor>,
                train: bool,
            ) -> $crate::error::Result<candle_core::Tensor> {
                Ok(self.stack.run_packed(batch, (h0, None), train, true)?.h_n)
            }

            /// The hidden state of every step of the last layer, in time order, each
            /// `(B, H)`: for gradient-flow analysis (how `∂L/∂h_t` shrinks or grows with
            /// the distance to the loss).
            ///
            #[doc = concat!("Arguments as [`", stringify!($front), "::forward`] in inference (no dropout); the model must be unidirectional. Each `h_t` is the tensor the recurrence continues from, not a copy. candle keeps gradients of variables only, so to read `∂L/∂h_t` use [`", stringify!($front), "::forward_steps_with_taps`].")]
            pub fn forward_steps(
                &self,
                x: &candle_core::Tensor,
                h0: Option<&candle_core::Tensor>,
            ) -> $crate::error::Result<Vec<candle_core::Tensor>> {
                self.stack.last_layer_steps(x, (h0, None), None)
            }

            #[doc = concat!("As [`", stringify!($front), "::forward_steps`], plus one zero variable `(B, H)` per step (\"tap\") added to the last layer's state: after `loss.backward()`, the gradient of `taps[t]` is the full `∂L/∂h_t`, through every later step included. The values are unchanged.")]
            pub fn forward_steps_with_taps(
                &self,
                x: &candle_core::Tensor,
                h0: Option<&candle_core::Tensor>,
            ) -> $crate::error::Result<(Vec<candle_core::Tensor>, Vec<candle_core::Var>)> {
                self.stack.steps_with_taps(x, (h0, None))
            }
        }
    };
}
