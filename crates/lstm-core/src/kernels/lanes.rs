//! What the gate arithmetic runs on: one `f32` (the row kernels, which LLVM vectorises
//! over a row's units) or, on x86-64, sixteen in an AVX-512 register ([`F32x16`], the
//! fused step's tiles, `fused/gate_tiles`). The exponential, the non-linearities and the
//! LSTM cell are written once over [`Lanes`], so both compute the same numbers with the
//! same operations in the same order.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// A value of one or more `f32` lanes with the operations the gate kernels use.
pub(crate) trait Lanes:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// `self · a + b`, rounded once.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Each lane limited to `[lo, hi]` (a NaN stays NaN).
    fn clamp(self, lo: f32, hi: f32) -> Self;
    /// Each lane's bits as an integer, plus `add`, shifted left by 23, as bits of an
    /// `f32` (wrapping): from a number rounded by the magic-number trick, `2^n`.
    fn shifted_bits(self, add: i32) -> Self;
}

impl Lanes for f32 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }

    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }

    #[inline(always)]
    fn clamp(self, lo: f32, hi: f32) -> Self {
        f32::clamp(self, lo, hi)
    }

    #[inline(always)]
    fn shifted_bits(self, add: i32) -> Self {
        f32::from_bits(self.to_bits().wrapping_add(add as u32) << 23)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::F32x16;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::{Add, Div, Mul, Neg, Sub};

    use super::Lanes;

    /// Sixteen `f32` in an AVX-512 register. Only for code compiled with AVX-512F
    /// (`#[target_feature(enable = "avx512f")]`, into which these inline), on a CPU that
    /// has it.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x16(pub __m512);

    macro_rules! binary {
        ($trait:ident, $method:ident, $intrinsic:ident) => {
            impl $trait for F32x16 {
                type Output = Self;
                #[inline(always)]
                fn $method(self, rhs: Self) -> Self {
                    // SAFETY: as the type's: only used where the CPU has AVX-512F.
                    Self(unsafe { $intrinsic(self.0, rhs.0) })
                }
            }
        };
    }
    binary!(Add, add, _mm512_add_ps);
    binary!(Sub, sub, _mm512_sub_ps);
    binary!(Mul, mul, _mm512_mul_ps);
    binary!(Div, div, _mm512_div_ps);

    impl Neg for F32x16 {
        type Output = Self;
        #[inline(always)]
        fn neg(self) -> Self {
            // SAFETY: as the type's. Flipping the sign bit, as `-x` does for an f32.
            Self(unsafe {
                _mm512_castsi512_ps(_mm512_xor_si512(
                    _mm512_castps_si512(self.0),
                    _mm512_set1_epi32(i32::MIN),
                ))
            })
        }
    }

    impl Lanes for F32x16 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: as the type's.
            Self(unsafe { _mm512_set1_ps(v) })
        }

        #[inline(always)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: as the type's.
            Self(unsafe { _mm512_fmadd_ps(self.0, a.0, b.0) })
        }

        #[inline(always)]
        fn clamp(self, lo: f32, hi: f32) -> Self {
            // SAFETY: as the type's. `max`/`min` return their second operand when either
            // is NaN: `x` second, a NaN lane stays NaN, as with `f32::clamp`.
            Self(unsafe {
                _mm512_min_ps(
                    _mm512_set1_ps(hi),
                    _mm512_max_ps(_mm512_set1_ps(lo), self.0),
                )
            })
        }

        #[inline(always)]
        fn shifted_bits(self, add: i32) -> Self {
            // SAFETY: as the type's.
            Self(unsafe {
                let bits = _mm512_add_epi32(_mm512_castps_si512(self.0), _mm512_set1_epi32(add));
                _mm512_castsi512_ps(_mm512_slli_epi32::<23>(bits))
            })
        }
    }
}
