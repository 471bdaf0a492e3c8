//! Tests of [`RowReader`] and [`RowWriter`] against [`read_image`] and
//! [`write_image`].

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

    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
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

/// Files of the directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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
pub(super) fn adam7(w: usize, h: usize, pixel: impl Fn(usize, usize) -> Vec<u8>) -> Vec<u8> {
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

// --- writing ---

/// The formats and depths a writer supports, as (file name, depth).
const TARGETS: [(&str, BitDepth); 5] = [
    ("a8.png", BitDepth::Eight),
    ("a16.png", BitDepth::Sixteen),
    ("a8.pgm", BitDepth::Eight),
    ("a16.pgm", BitDepth::Sixteen),
    ("a.npy", BitDepth::Eight),
];

/// Values that exercise clamping and rounding.
fn test_image() -> Image {
    grey(23, 9, |x, y| {
        ((x * 37 + y * 101) % 300) as f32 / 277.0 - 0.04
    })
}

/// Checks that `ours` holds what `write_image` writes for `img` (kept at
/// `reference`): PGM/NPY byte for byte, PNG as decoded. Since `write_image`
/// is built on [`RowWriter`], `ours` is also checked against an
/// independent encoding: the samples quantised here, the PGM header, and
/// [`write_npy_f32`].
fn assert_same_output(ours: &Path, reference: &Path, img: &Image, depth: BitDepth) {
    let max = match depth {
        BitDepth::Eight => 255.0,
        BitDepth::Sixteen => 65535.0,
    };
    let stored: Vec<u16> = img
        .data
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * max).round() as u16)
        .collect();
    match ours.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let expect: Vec<f32> = stored.iter().map(|&v| f32::from(v) / max).collect();
            assert_eq!(read_image(ours).unwrap().data, expect);
            assert_eq!(read_image(ours).unwrap(), read_image(reference).unwrap());
            return;
        }
        Some("pgm") => {
            let mut expect = format!("P5\n{} {}\n{max}\n", img.width, img.height).into_bytes();
            for v in stored {
                match depth {
                    BitDepth::Eight => expect.push(v as u8),
                    BitDepth::Sixteen => expect.extend(v.to_be_bytes()),
                }
            }
            assert_eq!(std::fs::read(ours).unwrap(), expect);
        }
        _ => {
            let npy = scratch_dir("rows-npy-ref").join("r.npy");
            write_npy_f32(&npy, &[img.height, img.width], &img.data).unwrap();
            assert_eq!(std::fs::read(ours).unwrap(), std::fs::read(npy).unwrap());
        }
    }
    assert_eq!(
        std::fs::read(ours).unwrap(),
        std::fs::read(reference).unwrap()
    );
}

#[test]
fn sequential_writer_matches_write_image() {
    let img = test_image();
    for (name, depth) in TARGETS {
        let dir = scratch_dir("rows-seq");
        let reference = dir.join(format!("ref-{name}"));
        write_image(&reference, &img, depth).unwrap();
        let p = dir.join(name);
        let mut rows =
            RowWriter::create(&p, img.width, img.height, depth, RowOrder::Sequential).unwrap();
        for row in img.data.chunks(img.width) {
            rows.write_row(row).unwrap();
            assert!(!p.exists(), "{name} visible before finish");
        }
        rows.finish().unwrap();
        assert_same_output(&p, &reference, &img, depth);
        assert_eq!(listing(&dir).len(), 2, "{:?}", listing(&dir));
    }
}

/// Every row of a `w × h` image cut into one to four pieces, as
/// `(y, x0, x1)`, in a shuffled order.
fn shuffled_pieces(w: usize, h: usize, rng: &mut Lcg) -> Vec<(usize, usize, usize)> {
    let mut pieces = Vec::new();
    for y in 0..h {
        let mut cuts: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(w)).collect();
        cuts.extend([0, w]);
        cuts.sort_unstable();
        cuts.dedup();
        pieces.extend(cuts.windows(2).map(|c| (y, c[0], c[1])));
    }
    for i in (1..pieces.len()).rev() {
        pieces.swap(i, rng.below(i + 1));
    }
    pieces
}

#[test]
fn any_order_writer_from_two_threads_matches_write_image() {
    let img = test_image();
    let w = img.width;
    let mut rng = Lcg(11);
    for (name, depth) in TARGETS {
        let dir = scratch_dir("rows-any");
        let reference = dir.join(format!("ref-{name}"));
        write_image(&reference, &img, depth).unwrap();
        let p = dir.join(name);
        let rows = RowWriter::create(&p, w, img.height, depth, RowOrder::Any).unwrap();
        let pieces = shuffled_pieces(w, img.height, &mut rng);
        let (first, second) = pieces.split_at(pieces.len() / 2);
        std::thread::scope(|s| {
            for share in [first, second] {
                let rows = &rows;
                let data = &img.data;
                s.spawn(move || {
                    for &(y, x0, x1) in share {
                        rows.write_at(y, x0, &data[y * w + x0..y * w + x1]).unwrap();
                    }
                });
            }
        });
        assert!(!p.exists());
        rows.finish().unwrap();
        assert_same_output(&p, &reference, &img, depth);
        // The scratch and partial files are gone.
        assert_eq!(listing(&dir).len(), 2, "{:?}", listing(&dir));
    }
}

#[test]
fn row_writer_is_sync() {
    fn sync<T: Sync>() {}
    sync::<RowWriter>();
}

#[test]
fn writer_rejects_misuse() {
    let dir = scratch_dir("rows-werr");
    let p = dir.join("m.pgm");
    let access = |r: Result<(), ImageError>| matches!(r, Err(ImageError::RowAccess { .. }));

    let mut seq = RowWriter::create(&p, 4, 2, BitDepth::Eight, RowOrder::Sequential).unwrap();
    assert!(access(seq.write_row(&[0.0; 3])));
    assert!(access(seq.write_row(&[0.0; 5])));
    assert!(access(seq.write_at(0, 0, &[0.0; 4])));
    seq.write_row(&[0.0; 4]).unwrap();
    seq.write_row(&[0.5; 4]).unwrap();
    assert!(access(seq.write_row(&[0.0; 4])), "a row past the end");
    seq.finish().unwrap();
    assert_eq!(read_image(&p).unwrap().data[4..], [128.0 / 255.0; 4]);

    let mut any = RowWriter::create(&p, 4, 2, BitDepth::Eight, RowOrder::Any).unwrap();
    assert!(access(any.write_row(&[0.0; 4])));
    assert!(access(any.write_at(2, 0, &[0.0])), "a row past the end");
    assert!(access(any.write_at(0, 3, &[0.0; 2])), "past the row's end");
    assert!(access(any.write_at(0, usize::MAX, &[0.0; 2])));
    any.write_at(0, 1, &[0.25; 2]).unwrap();
    assert!(access(any.write_at(0, 2, &[0.0; 2])), "overlap");
    assert!(access(any.write_at(0, 0, &[0.0; 4])), "overlap");
    any.write_at(0, 0, &[]).unwrap();
    any.write_at(0, 3, &[1.0]).unwrap();
    any.write_at(0, 0, &[1.0]).unwrap();
    any.write_at(1, 0, &[0.0; 4]).unwrap();
    any.finish().unwrap();
    assert_eq!(
        read_image(&p).unwrap().data[..4],
        [1.0, 64.0 / 255.0, 64.0 / 255.0, 1.0]
    );

    assert!(matches!(
        RowWriter::create(&p, 0, 2, BitDepth::Eight, RowOrder::Any),
        Err(ImageError::BadShape { .. })
    ));
    assert!(matches!(
        RowWriter::create(&p, 1 << 16, 1 << 16, BitDepth::Eight, RowOrder::Any),
        Err(ImageError::TooLarge { .. })
    ));
    assert!(matches!(
        RowWriter::create(&dir.join("x.bmp"), 1, 1, BitDepth::Eight, RowOrder::Any),
        Err(ImageError::UnsupportedFormat { .. })
    ));
    assert!(matches!(
        RowWriter::create(
            &dir.join("missing").join("x.png"),
            1,
            1,
            BitDepth::Eight,
            RowOrder::Any
        ),
        Err(ImageError::Io { .. })
    ));
    assert_eq!(listing(&dir), ["m.pgm"]);
}

#[test]
fn non_finite_samples_are_rejected_for_png_and_pgm_only() {
    let dir = scratch_dir("rows-nonfinite");
    for name in ["n.png", "n.pgm"] {
        let p = dir.join(name);
        let mut seq = RowWriter::create(&p, 3, 2, BitDepth::Eight, RowOrder::Sequential).unwrap();
        seq.write_row(&[0.0; 3]).unwrap();
        assert!(matches!(
            seq.write_row(&[0.0, f32::NAN, 0.0]),
            Err(ImageError::NonFinite { index: 4, .. })
        ));
        let any = RowWriter::create(&p, 3, 2, BitDepth::Eight, RowOrder::Any).unwrap();
        assert!(matches!(
            any.write_at(1, 1, &[0.0, f32::NEG_INFINITY]),
            Err(ImageError::NonFinite { index: 5, .. })
        ));
        // Nothing was recorded: the piece can be written again.
        any.write_at(1, 1, &[0.0, 1.0]).unwrap();
    }
    let p = dir.join("n.npy");
    let any = RowWriter::create(&p, 2, 1, BitDepth::Eight, RowOrder::Any).unwrap();
    any.write_at(0, 0, &[f32::NAN, f32::INFINITY]).unwrap();
    any.finish().unwrap();
    let (_, data) = read_npy_f32(&p).unwrap();
    assert!(data[0].is_nan() && data[1] == f32::INFINITY);
}

#[test]
fn incomplete_or_dropped_writers_leave_no_output() {
    for (name, depth) in TARGETS {
        let dir = scratch_dir("rows-lost");
        let p = dir.join(name);
        // A missing piece: finish fails, nothing is left behind.
        let any = RowWriter::create(&p, 5, 3, depth, RowOrder::Any).unwrap();
        for y in 0..3 {
            any.write_at(y, 0, &[0.5; 2]).unwrap();
            if y != 1 {
                any.write_at(y, 2, &[0.5; 3]).unwrap();
            }
        }
        let e = any.finish().unwrap_err();
        assert!(e.to_string().contains("2..5 of row 1"), "{e}");
        assert_eq!(listing(&dir), Vec::<String>::new(), "{name}");

        // A missing row.
        let mut seq = RowWriter::create(&p, 5, 3, depth, RowOrder::Sequential).unwrap();
        seq.write_row(&[0.5; 5]).unwrap();
        assert!(matches!(seq.finish(), Err(ImageError::RowAccess { .. })));
        assert_eq!(listing(&dir), Vec::<String>::new(), "{name}");

        // Dropped unfinished, in either order, over an existing output.
        std::fs::write(&p, b"old").unwrap();
        let mut seq = RowWriter::create(&p, 5, 3, depth, RowOrder::Sequential).unwrap();
        seq.write_row(&[0.5; 5]).unwrap();
        let any = RowWriter::create(&p, 5, 3, depth, RowOrder::Any).unwrap();
        any.write_at(2, 0, &[0.5; 5]).unwrap();
        assert_eq!(listing(&dir).len(), 3 + usize::from(name.ends_with(".png")));
        drop(seq);
        drop(any);
        assert_eq!(listing(&dir), [name]);
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
    }
}
