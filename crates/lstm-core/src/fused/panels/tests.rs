//! The panel kernels against a plain triple loop.

use super::*;

/// The ISAs this CPU can run the panel kernels with.
fn isas() -> Vec<Isa> {
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            v.push(Isa::Avx2);
        }
        if is_x86_feature_detected!("avx512f") {
            v.push(Isa::Avx512);
        }
    }
    v
}

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 23) as f32 * 0.125 - 1.375)
        .collect()
}

/// Every row count of a tile and its remainders, edge panels, both source layouts,
/// strided rows, with and without accumulating, against a plain triple loop.
#[test]
fn panel_matmul_matches_the_triple_loop() {
    for isa in isas() {
        for (m, n, k) in [
            (1, 48, 1),
            (5, 7, 3),
            (13, 64, 17),
            (50, 96, 128),
            (25, 33, 40),
            (9, 512, 20),
            // Three or more row tiles over several panels: tiles that ask for the
            // next panel, with a ragged last one.
            (17, 100, 5),
            (24, 150, 9),
            // AVX2 tiles of 6, 4 and 5 rows, in strips of 16 and 24 columns.
            (32, 1024, 7),
            (15, 47, 11),
            (7, 20, 3),
            // One row (three sums over alternate depths), depths not a multiple of 3.
            (1, 100, 29),
            (1, 60, 2),
        ] {
            // Rows of the left operand read in place, or 4 KiB apart and packed.
            for (transposed, lda) in [(false, k + 3), (true, k + 3), (false, 1024)] {
                for accumulate in [false, true] {
                    let ldc = n + 5;
                    let a = values(m * lda, 1);
                    let b = values(k * n, 2);
                    let src = match transposed {
                        // b as the transpose of an (n × k) matrix.
                        true => Mat::rows(b.as_ptr(), k).t(),
                        false => Mat::rows(b.as_ptr(), n),
                    };
                    let at = |kk: usize, col: usize| match transposed {
                        true => b[col * k + kk],
                        false => b[kk * n + col],
                    };
                    let mut packed = vec![f32::NAN; packed_len(k, n)];
                    pack(src, (k, n), &mut packed);
                    let mut c = values(m * ldc, 3);
                    let mut want = c.clone();
                    for r in 0..m {
                        for col in 0..n {
                            let dot: f32 = (0..k).map(|kk| a[r * lda + kk] * at(kk, col)).sum();
                            let w = &mut want[r * ldc + col];
                            *w = if accumulate { *w + dot } else { dot };
                        }
                    }
                    let rhs = Panels {
                        ptr: packed.as_ptr(),
                        k,
                        isa,
                    };
                    // SAFETY: the extents above; the CPU has `isa`.
                    unsafe {
                        let lhs = Mat::rows(a.as_ptr(), lda);
                        matmul((m, n, k), c.as_mut_ptr(), ldc, accumulate, lhs, rhs)
                    };
                    for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
                        let tol = 1e-4 * (1.0 + w.abs());
                        assert!(
                            (got - w).abs() <= tol,
                            "{isa:?} {m}×{n}×{k} t={transposed} acc={accumulate} at {i}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn rows_a_multiple_of_4_kib_apart_are_packed() {
    let a = [0f32; 1];
    assert!(reads_in_place(Mat::rows(a.as_ptr(), 256)));
    assert!(reads_in_place(Mat::rows(a.as_ptr(), 28 * 128)));
    assert!(!reads_in_place(Mat::rows(a.as_ptr(), 1024)));
    assert!(!reads_in_place(Mat::rows(a.as_ptr(), 100 * 256)));
}

#[test]
fn row_tiles_cover_the_rows() {
    for m in 1..80 {
        for isa in [Isa::Avx512, Isa::Avx2] {
            let tiles = RowTiles::new(m, isa);
            let all: Vec<_> = tiles.iter().collect();
            assert_eq!(all.len(), tiles.count());
            let mut next = 0;
            for &(r0, h) in &all {
                assert_eq!(r0, next, "{isa:?} {m}: {all:?}");
                next += h;
            }
            assert_eq!(next, m, "{isa:?} {m}: {all:?}");
            let sizes = all.iter().map(|t| t.1);
            match isa {
                // As few as possible, at most one apart.
                Isa::Avx512 => {
                    assert_eq!(all.len(), m.div_ceil(MR_512));
                    assert!(sizes.clone().max().unwrap() - sizes.min().unwrap() <= 1);
                }
                // Sixes and fours, one odd tile at most; below 7 rows one tile.
                _ => {
                    assert!(sizes.clone().all(|h| (1..=MR_256).contains(&h)));
                    let odd = sizes.clone().filter(|&h| h != 6 && h != 4).count();
                    assert!(odd <= 1 || m == 7, "{m}: {all:?}");
                    if m >= 8 && m % 2 == 0 {
                        assert!(sizes.clone().all(|h| h == 6 || h == 4), "{m}: {all:?}");
                        assert!(sizes.filter(|&h| h == 4).count() <= 2);
                    }
                }
            }
        }
    }
    let sizes = |m, isa| {
        RowTiles::new(m, isa)
            .iter()
            .map(|t| t.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(50, Isa::Avx512), [8, 7, 7, 7, 7, 7, 7]);
    assert_eq!(sizes(32, Isa::Avx2), [6, 6, 6, 6, 4, 4]);
    assert_eq!(sizes(50, Isa::Avx2), [6, 6, 6, 6, 6, 6, 6, 4, 4]);
    assert_eq!(sizes(9, Isa::Avx2), [4, 5]);
    assert_eq!(sizes(7, Isa::Avx2), [4, 3]);
}

#[test]
fn panels_hold_the_columns_and_zeros_past_the_edge() {
    let (k, n) = (3, 60);
    let b = values(k * n, 4);
    let mut packed = vec![f32::NAN; packed_len(k, n)];
    pack(Mat::rows(b.as_ptr(), n), (k, n), &mut packed);
    assert_eq!(packed.len(), 2 * k * NR);
    assert_eq!(packed[NR + 5], b[n + 5]);
    assert_eq!(packed[(k + 2) * NR + 11], b[2 * n + 59]);
    assert_eq!(packed[(k + 2) * NR + 12], 0.0);
    let p = Panels {
        ptr: packed.as_ptr(),
        k,
        isa: Isa::Baseline,
    };
    assert_eq!(p.skip_cols(NR).ptr, packed[k * NR..].as_ptr());
}

/// The left operand's copy in the kernels' order, for every tile height of both
/// instruction sets, depths around the eight-wide transpose, rows a multiple of 4 KiB
/// apart and not: each tile's values where the kernels read them, and nothing written
/// past the slack the copy asks for.
#[test]
fn the_left_operand_is_copied_in_the_order_the_kernels_read_it() {
    // The copy needs AVX only: the tiles of both instruction sets (up to 8 rows) wherever
    // the panel kernels run at all.
    let tile_sets = match isas().is_empty() {
        true => vec![],
        false => vec![Isa::Avx2, Isa::Avx512],
    };
    for isa in tile_sets {
        for m in [1, 2, 5, 6, 7, 8, 13, 16, 32, 50] {
            for k in [1, 7, 8, 9, 16, 17, 320] {
                for rs in [k + 3, 1024] {
                    let tiles = RowTiles::new(m, isa);
                    let a = values(m * rs, 4);
                    let mut buf = vec![f32::NAN; m * k + 64];
                    // SAFETY: `a` holds m rows of rs ≥ k floats.
                    let got =
                        unsafe { pack_lhs(Mat::rows(a.as_ptr(), rs), (m, k), tiles, &mut buf) };
                    for (r0, h) in tiles.iter() {
                        for kk in 0..k {
                            for r in 0..h {
                                assert_eq!(
                                    got[r0 * k + kk * h + r],
                                    a[(r0 + r) * rs + kk],
                                    "{isa:?} m {m} k {k} rs {rs}: tile at {r0} ({h} rows), depth {kk}, row {r}"
                                );
                            }
                        }
                    }
                    assert!(
                        buf[m * k + COPY_OVERRUN..].iter().all(|v| v.is_nan()),
                        "{isa:?} m {m} k {k}: wrote past the slack"
                    );
                }
            }
        }
    }
}
