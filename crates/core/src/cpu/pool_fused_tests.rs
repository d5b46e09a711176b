//! The AVX-512 pooling rows against the portable code.

use super::*;

/// The AVX-512 rows against the portable ones, bit for bit: NaN, ±0, ties, negative
/// planes, row lengths around the 16-window blocks, strided planes.
#[test]
fn avx512_rows_match_the_portable_code() {
    #[cfg(target_arch = "x86_64")]
    {
        if !avx512() {
            eprintln!("no AVX-512 here: only the portable rows run");
            return;
        }
        let mut s = 0x2545f491u32;
        for (h, w) in [
            (2, 2),
            (5, 9),
            (7, 33),
            (4, 32),
            (6, 34),
            (3, 65),
            (28, 28),
            (3, 17),
            (4, 16),
        ] {
            let c = 3;
            let g = Pool2x2 {
                planes: 2 * c,
                c,
                h,
                w,
            };
            let x: Vec<f32> = (0..g.planes * h * w)
                .map(|k| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    match s % 17 {
                        0 => f32::NAN,
                        1 => -0.0,
                        2 | 3 => 0.0,
                        4 | 5 => 0.75,
                        _ if k < h * w => -((s % 100) as f32) - 1.0,
                        _ => (s % 1000) as f32 / 250.0 - 2.0,
                    }
                })
                .collect();
            let bias = [0.0, -0.0, 0.25];
            let n = g.planes * (h / 2) * (w / 2);
            let (mut v0, mut i0) = (vec![9f32; n], vec![9i64; n]);
            let (mut v1, mut i1) = (vec![7f32; n], vec![7i64; n]);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            fwd_planes(&x, &bias, g, 0, &mut v0, &mut i0);
            // SAFETY: AVX-512 was detected above.
            unsafe { fwd_planes_avx512(&x, &bias, g, 0, &mut v1, &mut i1) };
            assert_eq!(bits(&v0), bits(&v1), "{h}x{w}");
            assert_eq!(i0, i1, "{h}x{w}");
            // Backward (every element written, no zero fill) and the planes' sums.
            let gy: Vec<f32> = (v0.iter().enumerate())
                .map(|(k, &p)| match k % 7 {
                    0 => -0.0,
                    3 => f32::NAN,
                    _ => p * 0.5 - 1.0 + k as f32 * 0.01,
                })
                .collect();
            for c0 in [0.0, 0.5] {
                let len = g.planes * h * w;
                let (mut d0, mut d1) = (vec![5f32; len], vec![6f32; len]);
                let (mut s0, mut s1) = (vec![0f64; g.planes], vec![1f64; g.planes]);
                assert!(!bwd_planes(&gy, &v0, &i0, c0, g, 0, &mut d0, &mut s0));
                // SAFETY: AVX-512 was detected above.
                assert!(!unsafe { bwd_planes_avx512(&gy, &v0, &i0, c0, g, 0, &mut d1, &mut s1) });
                assert_eq!(bits(&d0), bits(&d1), "{h}x{w} backward");
                let sb = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(sb(&s0), sb(&s1), "{h}x{w} sums");
                // An index in another window is refused by both.
                let mut bad = i0.clone();
                bad[0] = i0[0] ^ 2;
                if w >= 4 {
                    assert!(bwd_planes(&gy, &v0, &bad, c0, g, 0, &mut d0, &mut s0));
                    // SAFETY: as above.
                    assert!(unsafe {
                        bwd_planes_avx512(&gy, &v0, &bad, c0, g, 0, &mut d1, &mut s1)
                    });
                }
            }
            // The same planes held with a wider row stride and a plane gap.
            let (rs, ps) = (w + 3, (w + 3) * h + 5);
            let mut wide = vec![f32::NAN; ps * g.planes];
            for k in 0..g.planes {
                for y in 0..h {
                    wide[k * ps + y * rs..][..w].copy_from_slice(&x[(k * h + y) * w..][..w]);
                }
            }
            let ol = (h / 2) * (w / 2);
            for (k, b) in [(0, 0.0), (4, -0.0f32)] {
                let (mut v2, mut i2) = (vec![0f32; ol], vec![0i64; ol]);
                let src = &wide[k * ps..][..ps];
                bias_relu_max_pool_2x2_strided(src, (ps, rs), &[b], (h, w), &mut v2, &mut i2)
                    .unwrap();
                assert_eq!(bits(&v2), bits(&v0[k * ol..][..ol]), "{h}x{w} plane {k}");
                assert_eq!(i2, &i0[k * ol..][..ol]);
            }
        }
    }
}
