//! The gate non-linearities of the fused kernels, written so that LLVM vectorises them.
//!
//! They dominate the element-wise cost of a recurrent step. `libm`'s
//! `expf` is not vectorised, so [`exp`] is a branch-free Cephes-style approximation
//! (relative error below 2e-7 over the whole f32 range) from which [`sigmoid`] and
//! [`tanh`] are built.

use super::lanes::Lanes;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `1.5 · 2²³`: adding it rounds an `f32` of magnitude below 2²² to an integer, which then
/// sits in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x`, accurate to a few ulp, saturating outside `[-87.3, 88.3]`.
///
/// Branch-free and free of float-to-int conversions, so that loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_in_range(x.clamp(-87.3, 88.3))
}

/// [`exp`] for `x` already within `[-87.3, 88.3]` (the gate kernels clamp their
/// pre-activations more tightly first), without the clamp; on one lane or sixteen
/// ([`Lanes`]).
#[inline(always)]
pub(crate) fn exp_in_range<L: Lanes>(x: L) -> L {
    let s = L::splat;
    // n = round(x / ln 2), and its bits, by the magic-number trick.
    let t = x.mul_add(s(LOG2E), s(ROUND_MAGIC));
    let n = t - s(ROUND_MAGIC);
    // r = x − n·ln 2, in two fused steps (ln 2 split in a short high part and the rest).
    let r = n.mul_add(s(-LN2_LO), n.mul_add(s(-LN2_HI), x));
    // e^r = 1 + r + r²·q(r) on |r| ≤ ln 2 / 2, with q of degree 3 fitted for the least
    // largest relative error: at most 1.8e-7 over the f32 range (Cephes' q of degree 5,
    // which this replaces: 0.8e-7), for two multiply-adds fewer per exponential, of
    // which an LSTM step takes five per unit.
    let mut q = s(8.312_525e-3);
    q = q.mul_add(r, s(4.189_011_5e-2));
    q = q.mul_add(r, s(1.666_711_4e-1));
    q = q.mul_add(r, s(4.999_923e-1));
    let poly = (q * r).mul_add(r, r) + s(1.0);
    // 2^n: the low bits of t hold n (two's complement); add the exponent bias and shift.
    poly * t.shifted_bits(127)
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x) = 1 - 2 / (1 + e^{2x})`.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    tanh_of(x)
}

/// [`tanh`] on one lane or sixteen ([`Lanes`]).
#[inline(always)]
pub(crate) fn tanh_of<L: Lanes>(x: L) -> L {
    let s = L::splat;
    s(1.0) - s(2.0) / (s(1.0) + exp_in_range((s(2.0) * x).clamp(-87.3, 88.3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), (-87.3f32).exp().max(exp(-87.3)));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn sigmoid_and_tanh_match_std() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((sigmoid(x) - s).abs() < 2e-7, "sigmoid({x})");
            assert!((tanh(x) - x.tanh()).abs() < 3e-7, "tanh({x})");
            x += 0.0071;
        }
        assert!(sigmoid(-200.0) < 1e-30);
        assert_eq!(sigmoid(200.0), 1.0);
        assert_eq!(tanh(200.0), 1.0);
        assert_eq!(tanh(-200.0), -1.0);
    }
}
