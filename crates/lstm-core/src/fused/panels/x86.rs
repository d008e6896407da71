//! The panel kernels' x86-64 tiles: AVX-512 (up to 8 rows × 48 columns) and AVX2 + FMA
//! (6 rows × 16 columns, or 4 rows × 24), and the copy of a tile's rows of the left operand
//! in the order they read it.

use std::arch::x86_64::*;

use super::{copy_depths, Tile, LINE, MR_256, MR_512, NR, NV};

/// Calls `$kernel::<R(, V)>` for the tile's rows `R` (and vectors `V`).
macro_rules! by_shape {
    ($kernel:ident, $rows:expr, ($($r:literal),*), $args:tt) => {
        match $rows {
            $($r => by_shape!(@call $kernel, ($r), $args),)*
            _ => unreachable!("tile of {} rows", $rows),
        }
    };
    ($kernel:ident, $rows:expr, $vecs:expr, ($($r:literal),*), $args:tt) => {
        match $vecs {
            1 => by_shape!($kernel, $rows, ($($r),*), @v 1, $args),
            2 => by_shape!($kernel, $rows, ($($r),*), @v 2, $args),
            3 => by_shape!($kernel, $rows, ($($r),*), @v 3, $args),
            _ => unreachable!("tile of {} vectors", $vecs),
        }
    };
    ($kernel:ident, $rows:expr, ($($r:literal),*), @v $v:literal, $args:tt) => {
        match $rows {
            $($r => by_shape!(@call $kernel, ($r, $v), $args),)*
            _ => unreachable!("tile of {} rows", $rows),
        }
    };
    (@call $kernel:ident, ($($c:literal),*), ($($a:expr),*)) => {
        $kernel::<$($c),*>($($a),*)
    };
}

/// Asks for the tile's rows of `dst` before the products, so that adding to them does
/// not wait on memory.
#[inline(always)]
unsafe fn prefetch_rows(rows: usize, lines: usize, t: Tile) {
    if t.accumulate {
        for r in 0..rows {
            for l in 0..lines {
                _mm_prefetch::<_MM_HINT_T0>(t.c.add(r * t.ldc + l * LINE).cast::<i8>());
            }
        }
    }
}

/// An AVX-512 tile of up to [`MR_512`] rows × `16·vecs` columns.
///
/// # Safety
/// As [`super::matmul`], with AVX-512F.
pub(super) unsafe fn tile_512(rows: usize, vecs: usize, t: Tile) {
    debug_assert!(rows <= MR_512 && vecs * NV <= NR);
    prefetch_rows(rows, vecs, t);
    match t.ask_next {
        true => by_shape!(kernel_512_asking, rows, vecs, (3, 4, 5, 6, 7, 8), (t)),
        false => by_shape!(kernel_512, rows, vecs, (1, 2, 3, 4, 5, 6, 7, 8), (t)),
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn kernel_512<const R: usize, const V: usize>(t: Tile) {
    product_512::<R, V, false>(t)
}

/// [`kernel_512`] asking for the tile's third of the next panel as it goes.
#[target_feature(enable = "avx512f")]
unsafe fn kernel_512_asking<const R: usize, const V: usize>(t: Tile) {
    product_512::<R, V, true>(t)
}

#[inline(always)]
unsafe fn product_512<const R: usize, const V: usize, const ASK: bool>(t: Tile) {
    let Tile { k, b, c, ldc, .. } = t;
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for kk in 0..k {
        if ASK {
            let line = t.next.wrapping_add(kk * LINE);
            _mm_prefetch::<_MM_HINT_T1>(line.cast::<i8>());
        }
        let mut bv = [_mm512_setzero_ps(); V];
        for (v, bv) in bv.iter_mut().enumerate() {
            *bv = _mm512_loadu_ps(b.add(kk * NR + v * NV));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*t.lhs(r, kk));
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = _mm512_fmadd_ps(av, bv, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (v, &sum) in acc.iter().enumerate() {
            let p = c.add(r * ldc + v * NV);
            let sum = match t.accumulate {
                true => _mm512_add_ps(_mm512_loadu_ps(p), sum),
                false => sum,
            };
            _mm512_storeu_ps(p, sum);
        }
    }
}

/// An AVX2 tile of up to [`MR_256`] rows × `16·vecs` columns, in strips of 16 columns
/// (two vectors of 8) for tiles of 5 or 6 rows, of 24 (three) for up to 4 rows: at
/// most 12 accumulators, so that with the strip's row of the panel and the broadcast
/// they stay in the 16 registers.
///
/// # Safety
/// As [`super::matmul`], with AVX2 and FMA.
pub(super) unsafe fn tile_256(rows: usize, vecs: usize, t: Tile) {
    debug_assert!(rows <= MR_256 && vecs * NV <= NR);
    prefetch_rows(rows, vecs, t);
    let (all, strip) = (2 * vecs, if rows <= 4 { 3 } else { 2 });
    let mut v = 0;
    while v < all {
        let (b, c) = (t.b.add(8 * v), t.c.add(8 * v));
        let t = Tile { b, c, ..t };
        match (rows, strip.min(all - v)) {
            (5 | 6, 2) => by_shape!(kernel_256, rows, (5, 6), @v 2, (t)),
            (4, 3) => kernel_256_4x3(t),
            (1..=3, 3) => by_shape!(kernel_256, rows, (1, 2, 3), @v 3, (t)),
            (_, 2) => by_shape!(kernel_256, rows, (1, 2, 3, 4), @v 2, (t)),
            _ => by_shape!(kernel_256, rows, (1, 2, 3, 4, 5, 6), @v 1, (t)),
        }
        v += strip;
    }
}

/// A tile of 4 rows × 3 vectors of 8 columns, its loop in assembly: the 12
/// accumulators, the strip's three vectors of the panel and the broadcast take all 16
/// registers, and LLVM's generic scheduler (a build without `target-cpu`) hoisted
/// the broadcasts and spilled an accumulator to the stack in every `kk`, which made
/// the tile slower than the 6 × 16 one instead of as fast.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_256_4x3(t: Tile) {
    let Tile { k, b, c, ldc, .. } = t;
    let mut acc = [[_mm256_setzero_ps(); 3]; 4];
    if k > 0 {
        let [[a00, a01, a02], [a10, a11, a12], [a20, a21, a22], [a30, a31, a32]] = &mut acc;
        let size = std::mem::size_of::<f32>();
        // SAFETY: as the caller's: rows 0..4 of the left operand at depths 0..k, and
        // k rows of the panel's strip.
        std::arch::asm!(
            "2:",
            "vmovups ymm12, ymmword ptr [{b}]",
            "vmovups ymm13, ymmword ptr [{b} + 32]",
            "vmovups ymm14, ymmword ptr [{b} + 64]",
            "vbroadcastss ymm15, dword ptr [{a}]",
            "vfmadd231ps ymm0, ymm15, ymm12",
            "vfmadd231ps ymm1, ymm15, ymm13",
            "vfmadd231ps ymm2, ymm15, ymm14",
            "vbroadcastss ymm15, dword ptr [{a} + {rs}]",
            "vfmadd231ps ymm3, ymm15, ymm12",
            "vfmadd231ps ymm4, ymm15, ymm13",
            "vfmadd231ps ymm5, ymm15, ymm14",
            "vbroadcastss ymm15, dword ptr [{a} + {rs}*2]",
            "vfmadd231ps ymm6, ymm15, ymm12",
            "vfmadd231ps ymm7, ymm15, ymm13",
            "vfmadd231ps ymm8, ymm15, ymm14",
            "vbroadcastss ymm15, dword ptr [{a} + {rs3}]",
            "vfmadd231ps ymm9, ymm15, ymm12",
            "vfmadd231ps ymm10, ymm15, ymm13",
            "vfmadd231ps ymm11, ymm15, ymm14",
            "add {b}, {b_step}",
            "add {a}, {ks}",
            "dec {k}",
            "jnz 2b",
            b = inout(reg) b => _,
            a = inout(reg) t.a => _,
            k = inout(reg) k => _,
            rs = in(reg) t.a_rs * size,
            rs3 = in(reg) 3 * t.a_rs * size,
            ks = in(reg) t.a_ks * size,
            b_step = const NR * 4,
            inout("ymm0") *a00, inout("ymm1") *a01, inout("ymm2") *a02,
            inout("ymm3") *a10, inout("ymm4") *a11, inout("ymm5") *a12,
            inout("ymm6") *a20, inout("ymm7") *a21, inout("ymm8") *a22,
            inout("ymm9") *a30, inout("ymm10") *a31, inout("ymm11") *a32,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack, readonly),
        );
    }
    store_256(&acc, c, ldc, t.accumulate);
}

/// Writes (or adds) a tile's accumulators to its rows of `dst`.
#[inline(always)]
unsafe fn store_256<const R: usize, const V: usize>(
    acc: &[[__m256; V]; R],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    for (r, acc) in acc.iter().enumerate() {
        for (v, &sum) in acc.iter().enumerate() {
            let p = c.add(r * ldc + 8 * v);
            let sum = match accumulate {
                true => _mm256_add_ps(_mm256_loadu_ps(p), sum),
                false => sum,
            };
            _mm256_storeu_ps(p, sum);
        }
    }
}

/// A tile of `R` rows × `V` vectors of 8 columns. A tile of one row (a matrix-vector
/// step, batch 1) runs three sums over alternate depths, so that nine chains of
/// multiply-adds rather than three hide the latency of each.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_256<const R: usize, const V: usize>(t: Tile) {
    match R {
        1 => product_256::<R, V, 3>(t),
        _ => product_256::<R, V, 1>(t),
    }
}

/// [`kernel_256`] with `S` sums, over depths `kk ≡ s (mod S)`, added up at the end.
#[inline(always)]
unsafe fn product_256<const R: usize, const V: usize, const S: usize>(t: Tile) {
    let Tile { k, b, c, ldc, .. } = t;
    let mut acc = [[[_mm256_setzero_ps(); V]; R]; S];
    let step = |acc: &mut [[__m256; V]; R], kk: usize| {
        let mut bv = [_mm256_setzero_ps(); V];
        for (v, bv) in bv.iter_mut().enumerate() {
            *bv = _mm256_loadu_ps(b.add(kk * NR + 8 * v));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm256_set1_ps(*t.lhs(r, kk));
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = _mm256_fmadd_ps(av, bv, *acc);
            }
        }
    };
    let whole = k / S * S;
    for kk in (0..whole).step_by(S) {
        for (s, acc) in acc.iter_mut().enumerate() {
            step(acc, kk + s);
        }
    }
    for kk in whole..k {
        step(&mut acc[0], kk);
    }
    let (sum, rest) = acc.split_at_mut(1);
    let sum = &mut sum[0];
    for part in rest.iter() {
        for (sum, part) in sum.iter_mut().zip(part) {
            for (sum, &part) in sum.iter_mut().zip(part) {
                *sum = _mm256_add_ps(*sum, part);
            }
        }
    }
    store_256(sum, c, ldc, t.accumulate);
}

/// Copies a tile of `h ≤ 8` rows of `src` (row stride `rs`, `k` floats each) into `out`
/// in the order the kernels read them: `out[kk·h + r] = src[r·rs + kk]`, eight depths
/// at a time through an 8 × 8 transpose in registers. Each depth's eight-float store
/// runs `8 − h` floats past its `h`, which the next depth's store (or the caller's next
/// tile) overwrites: `out` must hold [`super::COPY_OVERRUN`] floats more than `k·h`. Depths
/// past the last multiple of 8 go one float at a time ([`copy_depths`]).
///
/// # Safety
/// `src` must address `h` rows of `k` floats `rs` apart, `out` `k·h + COPY_OVERRUN`
/// floats, and the CPU must have AVX.
#[target_feature(enable = "avx")]
pub(super) unsafe fn pack_tile(src: *const f32, rs: usize, h: usize, k: usize, out: *mut f32) {
    debug_assert!((1..=8).contains(&h));
    let row = |r: usize, kk: usize| match r < h {
        true => _mm256_loadu_ps(src.add(r * rs + kk)),
        false => _mm256_setzero_ps(),
    };
    let mut kk = 0;
    while kk + 8 <= k {
        let r: [__m256; 8] = std::array::from_fn(|i| row(i, kk));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let cols = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (j, col) in cols.into_iter().enumerate() {
            _mm256_storeu_ps(out.add((kk + j) * h), col);
        }
        kk += 8;
    }
    copy_depths(src, rs, h, kk..k, out);
}
