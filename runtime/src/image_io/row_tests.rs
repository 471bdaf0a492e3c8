//! Tests of [`RowReader`] against [`read_image`].

use super::tests::{encode_png, grey, npy_bytes, raw_png, scratch_dir};
use super::*;

/// A deterministic stream of pseudo-random numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// All rows of `path` read with a [`RowReader`], checking `rows_read` and
/// the error after the last row on the way.
fn read_rows(path: &Path) -> Result<Image, ImageError> {
    let mut rows = RowReader::open(path)?;
    let (w, h) = (rows.width(), rows.height());
    let mut data = Vec::new();
    let mut row = vec![0.0; w];
    for y in 0..h {
        assert_eq!(rows.rows_read(), y);
        rows.next_row(&mut row)?;
        data.extend_from_slice(&row);
    }
    assert_eq!(rows.rows_read(), h);
    assert!(matches!(
        rows.next_row(&mut row),
        Err(ImageError::RowAccess { .. })
    ));
    Image::new(w, h, 1, data)
}

fn assert_rows_match_read_image(path: &Path) {
    let whole = read_image(path).unwrap();
    let rows = read_rows(path).unwrap();
    assert_eq!(rows, whole, "{}", path.display());
}

// --- reading ---

#[test]
fn row_reader_matches_read_image_for_every_png_kind() {
    use png::{BitDepth as B, ColorType as C};
    let dir = scratch_dir("rows-png");
    let (w, h) = (13u32, 7u32);
    let mut rng = Lcg(7);
    let kinds = [
        (C::Grayscale, B::One, 1),
        (C::Grayscale, B::Two, 1),
        (C::Grayscale, B::Four, 1),
        (C::Grayscale, B::Eight, 1),
        (C::Grayscale, B::Sixteen, 1),
        (C::GrayscaleAlpha, B::Eight, 2),
        (C::GrayscaleAlpha, B::Sixteen, 2),
        (C::Rgb, B::Eight, 3),
        (C::Rgb, B::Sixteen, 3),
        (C::Rgba, B::Eight, 4),
        (C::Rgba, B::Sixteen, 4),
        (C::Indexed, B::Four, 1),
        (C::Indexed, B::Eight, 1),
    ];
    for (i, (color, depth, samples)) in kinds.into_iter().enumerate() {
        let bits = samples * depth as usize;
        let row_bytes = (w as usize * bits).div_ceil(8);
        let data = rng.bytes(row_bytes * h as usize);
        let palette = (color == C::Indexed).then(|| rng.bytes(3 << depth as usize));
        let p = dir.join(format!("k{i}.png"));
        encode_png(&p, w, h, color, depth, palette.as_deref(), &data);
        assert_rows_match_read_image(&p);
    }
}

/// Adam7 scanlines (filter type none) of a `w × h` image whose pixel at
/// `(x, y)` is `pixel(x, y)`.
fn adam7(w: usize, h: usize, pixel: impl Fn(usize, usize) -> Vec<u8>) -> Vec<u8> {
    let passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in passes {
        if x0 >= w || y0 >= h {
            continue;
        }
        for y in (y0..h).step_by(dy) {
            raw.push(0);
            for x in (x0..w).step_by(dx) {
                raw.extend(pixel(x, y));
            }
        }
    }
    raw
}

#[test]
fn row_reader_matches_read_image_for_interlaced_png() {
    let dir = scratch_dir("rows-adam7");
    let (w, h) = (13usize, 10usize);
    let v = |x: usize, y: usize, k: usize| ((x * 19 + y * 7 + k * 50) % 256) as u8;
    // (bit depth, colour type, bytes a pixel): grey 8, grey 16, RGB 8.
    for (i, (depth, color, bytes)) in [(8, 0, 1), (16, 0, 2), (8, 2, 3)].into_iter().enumerate() {
        let pixel = |x, y| (0..bytes).map(|k| v(x, y, k)).collect();
        let p = dir.join(format!("i{i}.png"));
        let png = raw_png(w as u32, h as u32, depth, color, 1, &adam7(w, h, pixel));
        std::fs::write(&p, png).unwrap();
        assert_rows_match_read_image(&p);
    }
}

#[test]
fn row_reader_matches_read_image_for_pgm_and_npy() {
    let dir = scratch_dir("rows-pgm-npy");
    let (w, h) = (11usize, 6usize);
    let mut rng = Lcg(3);
    for maxval in [255u32, 200, 65535, 1000] {
        let p = dir.join(format!("m{maxval}.pgm"));
        let mut bytes = format!("P5\n{w} {h}\n{maxval}\n").into_bytes();
        for _ in 0..w * h {
            let v = rng.next() as u32 % (maxval + 1);
            if maxval < 256 {
                bytes.push(v as u8);
            } else {
                bytes.extend_from_slice(&(v as u16).to_be_bytes());
            }
        }
        std::fs::write(&p, bytes).unwrap();
        assert_rows_match_read_image(&p);
    }
    let values: Vec<f64> = (0..w * h).map(|i| i as f64 * 0.37 - 5.0).collect();
    let f4: Vec<u8> = values
        .iter()
        .flat_map(|&v| (v as f32).to_le_bytes())
        .collect();
    let f8: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    for (name, descr, shape, payload) in [
        ("hw.npy", "<f4", format!("({h}, {w})"), &f4),
        ("chw.npy", "<f4", format!("(1, {h}, {w})"), &f4),
        ("f8.npy", "<f8", format!("({h}, {w})"), &f8),
    ] {
        let p = dir.join(name);
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        std::fs::write(&p, npy_bytes(1, &header, payload)).unwrap();
        assert_rows_match_read_image(&p);
    }
}

#[test]
fn row_reader_rejects_wrong_buffers_and_several_planes() {
    let dir = scratch_dir("rows-misuse");
    let p = dir.join("a.pgm");
    let img = grey(5, 3, |x, y| (x + y) as f32 / 10.0);
    write_image(&p, &img, BitDepth::Eight).unwrap();
    let mut rows = RowReader::open(&p).unwrap();
    for len in [0, 4, 6] {
        assert!(matches!(
            rows.next_row(&mut vec![0.0; len]),
            Err(ImageError::RowAccess { .. })
        ));
    }
    assert_eq!(rows.rows_read(), 0);
    let mut row = [0.0; 5];
    rows.next_row(&mut row).unwrap();
    assert_eq!(&row[..], &read_image(&p).unwrap().data[..5]);

    // Three planes: read_image takes them, RowReader wants one.
    let p = dir.join("c.npy");
    let rgb = Image::new(4, 2, 3, (0..24).map(|v| v as f32).collect()).unwrap();
    write_image(&p, &rgb, BitDepth::Eight).unwrap();
    assert_eq!(read_image(&p).unwrap(), rgb);
    assert!(matches!(
        RowReader::open(&p),
        Err(ImageError::UnsupportedFormat { .. })
    ));
}

/// Reads every row of `path`; `Err` at the first failure (opening
/// included).
fn read_all_rows(path: &Path) -> Result<(), ImageError> {
    let mut rows = RowReader::open(path)?;
    let mut row = vec![0.0; rows.width()];
    for _ in 0..rows.height() {
        rows.next_row(&mut row)?;
    }
    Ok(())
}

#[test]
fn truncated_files_fail_at_a_row_or_the_end() {
    let dir = scratch_dir("rows-cut");
    let img = grey(40, 30, |x, y| ((x * y) % 256) as f32 / 255.0);
    for name in ["t.png", "t.pgm", "t.npy"] {
        let full = dir.join(name);
        write_image(&full, &img, BitDepth::Sixteen).unwrap();
        let bytes = std::fs::read(&full).unwrap();
        let cut = dir.join(format!("cut_{name}"));
        for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            assert!(
                read_all_rows(&cut).is_err(),
                "{name} truncated to {len} bytes was accepted"
            );
        }
    }
    // A PNG cut inside its pixel data opens, then fails at a row.
    let p = dir.join("t.png");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let mut rows = RowReader::open(&p).unwrap();
    let mut row = vec![0.0; 40];
    let failed_at = (0..30).find(|_| rows.next_row(&mut row).is_err());
    assert!(matches!(failed_at, Some(y) if y < 30), "{failed_at:?}");
    assert!(matches!(
        rows.next_row(&mut row),
        Err(ImageError::RowAccess { .. })
    ));
}

/// Files larger than the reader's buffer, changed after opening.
#[test]
fn files_shortened_after_opening_fail_at_a_row() {
    let dir = scratch_dir("rows-shrink");
    let w = 3000;
    let img = grey(w, 6, |x, y| ((x + y) % 20) as f32 / 20.0);
    for name in ["s.pgm", "s.npy"] {
        let p = dir.join(name);
        write_image(&p, &img, BitDepth::Eight).unwrap();
        let len = std::fs::metadata(&p).unwrap().len();
        let mut rows = RowReader::open(&p).unwrap();
        // Keep half of the last row.
        let sample = if name.ends_with("npy") { 4 } else { 1 };
        let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        file.set_len(len - 4 * sample).unwrap();
        let mut row = vec![0.0; w];
        for _ in 0..5 {
            rows.next_row(&mut row).unwrap();
        }
        assert!(matches!(
            rows.next_row(&mut row),
            Err(ImageError::Decode { .. })
        ));
    }
    // An `.npy` file that grows a byte is caught after the last row.
    let p = dir.join("s.npy");
    write_image(&p, &img, BitDepth::Eight).unwrap();
    let mut rows = RowReader::open(&p).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(&[0])
        .unwrap();
    let mut row = vec![0.0; w];
    for _ in 0..5 {
        rows.next_row(&mut row).unwrap();
    }
    assert!(matches!(
        rows.next_row(&mut row),
        Err(ImageError::Decode { .. })
    ));
}

#[test]
fn non_finite_npy_sample_fails_its_row() {
    let dir = scratch_dir("rows-nan");
    let p = dir.join("n.npy");
    let mut data = vec![0.5f32; 12];
    data[7] = f32::INFINITY;
    write_npy_f32(&p, &[3, 4], &data).unwrap();
    let mut rows = RowReader::open(&p).unwrap();
    let mut row = [0.0; 4];
    rows.next_row(&mut row).unwrap();
    assert!(matches!(
        rows.next_row(&mut row),
        Err(ImageError::NonFinite { index: 7, .. })
    ));
    assert!(matches!(
        rows.next_row(&mut row),
        Err(ImageError::RowAccess { .. })
    ));
}
