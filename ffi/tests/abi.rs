//! The C ABI gives the runtime's results: the same bytes as the runtime's
//! f32 denoiser for 8-bit, 16-bit and float planes, with strides, in place,
//! in stripes, through the stream API and for Bayer mosaics.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use n3net::*;

const W: usize = 70;
const H: usize = 52;

#[test]
fn u8_plane_is_the_runtimes_output() {
    for (model, blob) in [default_f32(), default_q16()] {
        let m = Open::new(&blob, None);
        let img = image_u8(W, H);
        for noise in [sigma(25.0), profile(0.01, 0.0004)] {
            let got = denoise_u8(m.ptr(), &img, W, H, Some(noise)).unwrap();
            assert_eq!(got, reference_u8(&model, &img, W, H, Some(noise)));
        }
    }
    let (model, blob) = tiny();
    let m = Open::new(&blob, None);
    let img = image_u8(49, 39);
    let got = denoise_u8(m.ptr(), &img, 49, 39, None).unwrap();
    assert_eq!(got, reference_u8(&model, &img, 49, 39, None));
}

#[test]
fn f32_plane_is_the_runtimes_output_bit_for_bit() {
    let (model, blob) = default_f32();
    let m = Open::new(&blob, None);
    let x: Vec<f32> = image_u8(W, H)
        .iter()
        .map(|&v| f32::from(v) / 255.0 - 0.1)
        .collect();
    let got = denoise_f32(m.ptr(), &x, W, H, Some(sigma(30.0))).unwrap();
    let want =
        n3net_runtime::denoise::denoise_plane(&model, &x, H, W, level(Some(sigma(30.0)))).unwrap();
    assert_eq!(got, want);
}

#[test]
fn strides_in_place_stripes_and_generic_kernels_give_the_same_bytes() {
    let (_, blob) = default_q16();
    let m = Open::new(&blob, None);
    let img = image_u8(W, H);
    let noise = sigma(20.0);
    let want = denoise_u8(m.ptr(), &img, W, H, Some(noise)).unwrap();

    // Strided source and destination, padding untouched.
    let (ss, ds) = (W + 5, W + 11);
    let mut src = vec![7u8; ss * H];
    for y in 0..H {
        src[y * ss..y * ss + W].copy_from_slice(&img[y * W..][..W]);
    }
    let mut dst = vec![0xAAu8; ds * H];
    let mut ws = plane_ws(m.ptr(), W, H);
    let g = geometry(W, H, ss, ds);
    // SAFETY: open model; each pointer is valid for the length passed.
    let rc = unsafe {
        n3net_denoise_u8(
            m.ptr(),
            &g,
            src.as_ptr(),
            src.len(),
            dst.as_mut_ptr(),
            dst.len(),
            &noise,
            ws.as_mut_ptr().cast(),
            ws.len(),
        )
    };
    assert_eq!(rc, N3NET_OK);
    for y in 0..H {
        assert_eq!(&dst[y * ds..][..W], &want[y * W..][..W]);
        assert!(dst[y * ds + W..(y * ds + ds).min(dst.len())]
            .iter()
            .all(|&v| v == 0xAA));
    }

    // In place, with a stride.
    let g = geometry(W, H, ss, ss);
    // SAFETY: open model; each pointer is valid for the length passed.
    let rc = unsafe {
        n3net_denoise_u8(
            m.ptr(),
            &g,
            src.as_ptr(),
            src.len(),
            src.as_mut_ptr(),
            src.len(),
            &noise,
            ws.as_mut_ptr().cast(),
            ws.len(),
        )
    };
    assert_eq!(rc, N3NET_OK);
    for y in 0..H {
        assert_eq!(&src[y * ss..][..W], &want[y * W..][..W]);
    }

    // Stripes of 24 columns (and a workspace that fits them), and the generic kernels.
    for settings in [
        N3netSettings {
            stripe_columns: 24,
            ..Default::default()
        },
        N3netSettings {
            isa: N3NET_ISA_GENERIC,
            ..Default::default()
        },
    ] {
        let m2 = Open::new(&blob, Some(settings));
        assert_eq!(denoise_u8(m2.ptr(), &img, W, H, Some(noise)).unwrap(), want);
    }
    let striped = Open::new(
        &blob,
        Some(N3netSettings {
            stripe_columns: 24,
            ..Default::default()
        }),
    );
    let (mut a, mut b) = (0, 0);
    // SAFETY: open model; each pointer is valid for the length passed.
    unsafe {
        n3net_workspace_size(striped.ptr(), 4000, 10, &mut a);
        n3net_workspace_size(striped.ptr(), 8000, 10, &mut b);
    }
    assert_eq!(a, b, "a striped workspace does not grow with the width");
}

#[test]
fn u16_planes_of_any_bit_depth() {
    let (model, blob) = default_q16();
    let m = Open::new(&blob, None);
    let img = image_u8(W, H);
    for depth in [10u32, 12, 16] {
        let max = (1u32 << depth) - 1;
        let src: Vec<u16> = img
            .iter()
            .map(|&v| (u32::from(v) * max / 255) as u16)
            .collect();
        let mut dst = vec![0u16; W * H];
        let mut ws = plane_ws(m.ptr(), W, H);
        let g = geometry(W, H, W, W);
        let noise = sigma(25.0);
        // SAFETY: open model; each pointer is valid for the length passed.
        let rc = unsafe {
            n3net_denoise_u16(
                m.ptr(),
                &g,
                depth,
                src.as_ptr(),
                src.len(),
                dst.as_mut_ptr(),
                dst.len(),
                &noise,
                ws.as_mut_ptr().cast(),
                ws.len(),
            )
        };
        assert_eq!(rc, N3NET_OK);
        let x: Vec<f32> = src.iter().map(|&v| f32::from(v) / max as f32).collect();
        let y =
            n3net_runtime::denoise::denoise_plane(&model, &x, H, W, level(Some(noise))).unwrap();
        let want: Vec<u16> = y
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * max as f32).round() as u16)
            .collect();
        assert_eq!(dst, want, "{depth} bits");
    }
}

#[test]
fn stream_rows_give_the_plane_output() {
    let (_, blob) = default_q16();
    let m = Open::new(&blob, None);
    let img = image_u8(W, H);
    let noise = sigma(25.0);
    let want = denoise_u8(m.ptr(), &img, W, H, Some(noise)).unwrap();
    let mut n = 0;
    assert_eq!(
        // SAFETY: open model; each pointer is valid for the length passed.
        unsafe { n3net_stream_workspace_size(m.ptr(), W as u32, H as u32, &mut n) },
        N3NET_OK
    );
    let mut n_tall = 0;
    // SAFETY: open model; each pointer is valid for the length passed.
    unsafe { n3net_stream_workspace_size(m.ptr(), W as u32, 100_000, &mut n_tall) };
    assert_eq!(
        n, n_tall,
        "the stream workspace does not grow with the height"
    );
    // An odd offset: the stream aligns its state itself.
    let mut ws = vec![0u8; n + 1];
    let mut s: *mut N3netStream = std::ptr::null_mut();
    // SAFETY: open model; each pointer is valid for the length passed.
    let rc = unsafe {
        n3net_stream_open(
            m.ptr(),
            W as u32,
            H as u32,
            N3NET_FORMAT_U8,
            0,
            &noise,
            ws[1..].as_mut_ptr().cast(),
            n,
            &mut s,
        )
    };
    assert_eq!(rc, N3NET_OK, "{}", strerror(rc));
    // SAFETY: open model; each pointer is valid for the length passed.
    assert!(unsafe { n3net_stream_latency_rows(s) } > 0);
    let mut out = Vec::new();
    let mut row = vec![0u8; W];
    for y in 0..H {
        assert_eq!(
            // SAFETY: open model; each pointer is valid for the length passed.
            unsafe { n3net_stream_push_row(s, img[y * W..].as_ptr().cast(), W) },
            N3NET_OK
        );
        // SAFETY: open model; each pointer is valid for the length passed.
        while unsafe { n3net_stream_pull_row(s, row.as_mut_ptr().cast(), W) } == 1 {
            out.extend_from_slice(&row);
        }
    }
    assert_eq!(out, want);
    assert_eq!(
        // SAFETY: open model; each pointer is valid for the length passed.
        unsafe { n3net_stream_push_row(s, img.as_ptr().cast(), W) },
        N3NET_ERR_STREAM_STATE
    );
    assert_eq!(
        // SAFETY: open model; each pointer is valid for the length passed.
        unsafe { n3net_stream_pull_row(s, row.as_mut_ptr().cast(), W) },
        0
    );
    // SAFETY: open model; each pointer is valid for the length passed.
    unsafe { n3net_stream_close(&mut s) };
    assert!(s.is_null());
}

/// Splits a mosaic position's plane out of a 16-bit mosaic, normalised.
fn plane_of(
    mosaic: &[u16],
    w: usize,
    h: usize,
    dy: usize,
    dx: usize,
    black: f32,
    range: f32,
) -> Vec<f32> {
    let mut p = Vec::new();
    for y in 0..h / 2 {
        for x in 0..w / 2 {
            p.push((f32::from(mosaic[(2 * y + dy) * w + 2 * x + dx]) - black) / range);
        }
    }
    p
}

#[test]
fn bayer_denoises_each_colour_plane_with_its_noise() {
    let (model, blob) = default_q16();
    let m = Open::new(&blob, None);
    let (w, h) = (2 * W, 2 * H);
    let (black, white) = (64u32, 1023u32);
    let mosaic: Vec<u16> = image_u8(w, h)
        .iter()
        .map(|&v| (black + u32::from(v) * 3) as u16)
        .collect();
    let noises = [
        profile(0.004, 0.0001),
        sigma(10.0),
        sigma(12.0),
        profile(0.008, 0.0002),
    ];
    let range = (white - black) as f32;
    for (cfa, channel_at) in [
        (N3NET_CFA_RGGB, [0, 1, 2, 3]),
        (N3NET_CFA_BGGR, [3, 2, 1, 0]),
        (N3NET_CFA_GRBG, [1, 0, 3, 2]),
        (N3NET_CFA_GBRG, [2, 3, 0, 1]),
    ] {
        let bayer = N3netBayer {
            cfa,
            black_level: black,
            white_level: white,
            reserved0: 0,
            noise: noises,
        };
        let mut n = 0;
        assert_eq!(
            // SAFETY: open model; each pointer is valid for the length passed.
            unsafe { n3net_bayer_workspace_size(m.ptr(), w as u32, h as u32, &mut n) },
            N3NET_OK
        );
        let mut ws = vec![0u8; n];
        let mut out = vec![0u16; w * h];
        let g = geometry(w, h, w, w);
        // SAFETY: open model; each pointer is valid for the length passed.
        let rc = unsafe {
            n3net_denoise_bayer(
                m.ptr(),
                &g,
                &bayer,
                mosaic.as_ptr(),
                mosaic.len(),
                out.as_mut_ptr(),
                out.len(),
                ws.as_mut_ptr().cast(),
                ws.len(),
            )
        };
        assert_eq!(rc, N3NET_OK, "{}", strerror(rc));
        for pos in 0..4 {
            let (dy, dx) = (pos / 2, pos % 2);
            let x = plane_of(&mosaic, w, h, dy, dx, black as f32, range);
            let noise = noises[channel_at[pos]];
            let y = n3net_runtime::denoise::denoise_plane(&model, &x, H, W, level(Some(noise)))
                .unwrap();
            for (i, v) in y.iter().enumerate() {
                let want = (v * range + black as f32).clamp(0.0, white as f32).round() as u16;
                assert_eq!(
                    out[(2 * (i / W) + dy) * w + 2 * (i % W) + dx],
                    want,
                    "cfa {cfa} pos {pos} px {i}"
                );
            }
        }
    }
}

#[test]
fn float_samples_that_overflow_inside_the_network_are_an_error_never_written() {
    // Found by the `capi` fuzz target: finite float samples far outside
    // [0, 1] overflow inside the network. Nothing that is not finite may
    // reach the caller: the plane call and the stream stop with
    // N3NET_ERR_NON_FINITE_INPUT.
    let (_, blob) = tiny();
    let m = Open::new(&blob, None);
    let (w, h) = (24, 20);
    let img: Vec<f32> = (0..w * h)
        .map(|i| if i % 2 == 0 { 3e38 } else { -3e38 })
        .collect();
    assert_eq!(
        denoise_f32(m.ptr(), &img, w, h, None),
        Err(N3NET_ERR_NON_FINITE_INPUT)
    );
    let mut n = 0;
    // SAFETY: open model; `n` is writable.
    let rc = unsafe { n3net_stream_workspace_size(m.ptr(), w as u32, h as u32, &mut n) };
    assert_eq!(rc, N3NET_OK);
    let mut ws = vec![0u8; n];
    let mut s: *mut N3netStream = std::ptr::null_mut();
    // SAFETY: open model; the workspace holds `n` bytes; `s` is writable.
    let rc = unsafe {
        n3net_stream_open(
            m.ptr(),
            w as u32,
            h as u32,
            N3NET_FORMAT_F32,
            0,
            std::ptr::null(),
            ws.as_mut_ptr().cast(),
            ws.len(),
            &mut s,
        )
    };
    assert_eq!(rc, N3NET_OK);
    let mut row = vec![0f32; w];
    let mut codes = Vec::new();
    for y in 0..h {
        // SAFETY: the stream is open; the rows hold `w` floats.
        unsafe {
            codes.push(n3net_stream_push_row(s, img[y * w..].as_ptr().cast(), w));
            loop {
                let rc = n3net_stream_pull_row(s, row.as_mut_ptr().cast(), w);
                if rc != 1 {
                    codes.push(rc);
                    break;
                }
                assert!(row.iter().all(|v| v.is_finite()));
            }
        }
    }
    assert!(codes.iter().all(|&c| c <= 0));
    assert!(codes.contains(&N3NET_ERR_NON_FINITE_INPUT));
    // SAFETY: the stream is open and closed once.
    unsafe { n3net_stream_close(&mut s) };
    assert!(s.is_null());
}
