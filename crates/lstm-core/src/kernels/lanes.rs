//! What the gate arithmetic runs on: one `f32` (the row kernels, which LLVM vectorises
//! over a row's units) or, on x86-64, a register of sixteen (AVX-512, [`F32x16`]) or eight
//! (AVX2, [`F32x8`]): the fused step's tiles, `fused/gate_tiles`. The exponential, the non-linearities and the
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
    /// The number of `f32` lanes.
    const LANES: usize;
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// The lanes at `p`.
    ///
    /// # Safety
    /// `p` must address [`Lanes::LANES`] floats.
    unsafe fn load(p: *const f32) -> Self;
    /// Writes the lanes to `p`.
    ///
    /// # Safety
    /// `p` must address [`Lanes::LANES`] writable floats.
    unsafe fn store(self, p: *mut f32);
    /// `self · a + b`, rounded once.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Each lane limited to `[lo, hi]` (a NaN stays NaN).
    fn clamp(self, lo: f32, hi: f32) -> Self;
    /// Each lane's bits as an integer, plus `add`, shifted left by 23, as bits of an
    /// `f32` (wrapping): from a number rounded by the magic-number trick, `2^n`.
    fn shifted_bits(self, add: i32) -> Self;
}

impl Lanes for f32 {
    const LANES: usize = 1;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        *p
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        *p = self;
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
pub(crate) use x86::{F32x16, F32x8};

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

    /// Eight `f32` in an AVX register. Only for code compiled with AVX2 and FMA, on a CPU
    /// that has them.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x8(pub __m256);

    /// The operators and [`Lanes`] of one register type, from its intrinsics.
    macro_rules! lanes {
        ($ty:ident, $reg:ident, $n:literal, $int:ident, {
            $add:ident, $sub:ident, $mul:ident, $div:ident, $set1:ident, $loadu:ident,
            $storeu:ident, $fmadd:ident, $min:ident, $max:ident, $as_int:ident, $as_float:ident,
            $xor:ident, $set1_epi32:ident, $add_epi32:ident, $slli_epi32:ident
        }) => {
            lanes!(@binary $ty, Add, add, $add);
            lanes!(@binary $ty, Sub, sub, $sub);
            lanes!(@binary $ty, Mul, mul, $mul);
            lanes!(@binary $ty, Div, div, $div);

            impl Neg for $ty {
                type Output = Self;
                #[inline(always)]
                fn neg(self) -> Self {
                    // SAFETY: as the type's. Flipping the sign bit, as `-x` does for an f32.
                    Self(unsafe { $as_float($xor($as_int(self.0), $set1_epi32(i32::MIN))) })
                }
            }

            impl Lanes for $ty {
                const LANES: usize = $n;

                #[inline(always)]
                fn splat(v: f32) -> Self {
                    // SAFETY: as the type's.
                    Self(unsafe { $set1(v) })
                }

                #[inline(always)]
                unsafe fn load(p: *const f32) -> Self {
                    Self($loadu(p))
                }

                #[inline(always)]
                unsafe fn store(self, p: *mut f32) {
                    $storeu(p, self.0)
                }

                #[inline(always)]
                fn mul_add(self, a: Self, b: Self) -> Self {
                    // SAFETY: as the type's.
                    Self(unsafe { $fmadd(self.0, a.0, b.0) })
                }

                #[inline(always)]
                fn clamp(self, lo: f32, hi: f32) -> Self {
                    // SAFETY: as the type's. `max`/`min` return their second operand when
                    // either is NaN: `x` second, a NaN lane stays NaN, as with `f32::clamp`.
                    Self(unsafe { $min($set1(hi), $max($set1(lo), self.0)) })
                }

                #[inline(always)]
                fn shifted_bits(self, add: i32) -> Self {
                    // SAFETY: as the type's.
                    Self(unsafe {
                        let bits: $int = $add_epi32($as_int(self.0), $set1_epi32(add));
                        $as_float($slli_epi32::<23>(bits))
                    })
                }
            }
        };
        (@binary $ty:ident, $trait:ident, $method:ident, $intrinsic:ident) => {
            impl $trait for $ty {
                type Output = Self;
                #[inline(always)]
                fn $method(self, rhs: Self) -> Self {
                    // SAFETY: as the type's: only used where the CPU has its instructions.
                    Self(unsafe { $intrinsic(self.0, rhs.0) })
                }
            }
        };
    }

    lanes!(F32x16, __m512, 16, __m512i, {
        _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps, _mm512_set1_ps,
        _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_min_ps, _mm512_max_ps,
        _mm512_castps_si512, _mm512_castsi512_ps, _mm512_xor_si512, _mm512_set1_epi32,
        _mm512_add_epi32, _mm512_slli_epi32
    });

    lanes!(F32x8, __m256, 8, __m256i, {
        _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_set1_ps,
        _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_min_ps, _mm256_max_ps,
        _mm256_castps_si256, _mm256_castsi256_ps, _mm256_xor_si256, _mm256_set1_epi32,
        _mm256_add_epi32, _mm256_slli_epi32
    });
}
