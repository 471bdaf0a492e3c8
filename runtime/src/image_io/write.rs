//! Row-at-a-time writing: [`RowWriter`].

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::{
    element_count, extend_f32_le, first_non_finite, format_of, io_err, npy, row_access, too_large,
    unsupported, BitDepth, Format, ImageError,
};

/// The order in which a [`RowWriter`] receives its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    /// Whole rows, top to bottom, with [`RowWriter::write_row`]. PNG rows go
    /// straight into the encoder: nothing is buffered beyond a row.
    Sequential,
    /// Pieces of rows in any order, possibly from several threads at once,
    /// with [`RowWriter::write_at`]. PGM and `.npy` samples are written in
    /// place at their offsets in the output file. PNG samples go to a raw
    /// scratch file next to the output, which [`RowWriter::finish`] encodes
    /// row by row into the PNG and then removes.
    Any,
}

/// Writes a one-channel image whose samples arrive in pieces: PNG or PGM
/// (8 or 16 bits, quantised as [`write_image`](super::write_image) does:
/// clamped to `[0, 1]`, then rounded) or `.npy` (`float32`, exact).
///
/// The file is written under a hidden temporary name next to the output
/// (`.NAME.PID-N.part`) and renamed to the output path only by a successful
/// [`finish`](Self::finish): after an error, or when the writer is dropped
/// unfinished, the output path is left as it was and the temporary files
/// are removed.
///
/// A write that fails on the file system leaves the writer failed: further
/// writes and `finish` report an error. Errors found before anything is
/// written (a wrong length, a piece out of range or overlapping, a
/// non-finite sample) write nothing and leave the writer usable.
///
/// `RowWriter` is `Sync`: with [`RowOrder::Any`], threads may call
/// [`write_at`](Self::write_at) on a shared reference at the same time.
pub struct RowWriter {
    /// The output path, which `finish` moves the completed file to.
    path: PathBuf,
    width: usize,
    height: usize,
    encoding: Encoding,
    mode: Mode,
    /// A write to a file failed: the output cannot be completed.
    failed: AtomicBool,
    /// The output being written, under its temporary name.
    part: TempFile,
}

/// The state of a writer of either [`RowOrder`].
enum Mode {
    Sequential {
        rows_written: usize,
        sink: RowSink,
    },
    Any {
        /// What has been written of each row.
        rows: Vec<Mutex<Coverage>>,
        /// Where samples are written: the output itself (PGM, `.npy`) or the
        /// scratch file of `png`.
        raster: Raster,
        png: Option<ScratchPng>,
    },
}

/// Where [`RowOrder::Sequential`] rows go.
enum RowSink {
    /// PGM or `.npy`: the output's raster.
    Raster(Raster),
    /// PNG: the encoder.
    Png(PngStream),
}

/// A PNG written in any order: the samples collect in a raw scratch file,
/// which `finish` feeds to the encoder.
struct ScratchPng {
    png: PngStream,
    scratch: TempFile,
}

impl RowWriter {
    /// Starts writing a `width × height` image to `path`; the format is
    /// chosen by the (case-insensitive) extension: `.png`, `.pgm` or `.npy`
    /// (`depth` is ignored for `.npy`).
    ///
    /// # Errors
    ///
    /// [`ImageError::UnsupportedFormat`] for an unknown extension,
    /// [`ImageError::BadShape`] for a zero dimension,
    /// [`ImageError::TooLarge`] for more than
    /// [`MAX_ELEMENTS`](super::MAX_ELEMENTS) samples or PNG dimensions above
    /// `u32::MAX`, [`ImageError::Io`] / [`ImageError::PngEncode`] when the
    /// file cannot be created or its header written.
    pub fn create(
        path: &Path,
        width: usize,
        height: usize,
        depth: BitDepth,
        order: RowOrder,
    ) -> Result<Self, ImageError> {
        let format = format_of(path)?;
        check_dims(path, width, height)?;
        let encoding = match format {
            Format::Npy => Encoding::F32,
            Format::Png | Format::Pgm => Encoding::Quantised(depth),
        };
        let (part, file) = TempFile::create(path, "part")?;
        let mode = match format {
            Format::Png => png_mode(path, file, width, height, depth, order)?,
            Format::Pgm => {
                let header = pgm_header(width, height, depth);
                raster_mode(path, file, &header, encoding, width, height, order)?
            }
            Format::Npy => {
                let header = npy::encode_header(&[height, width]);
                raster_mode(path, file, &header, encoding, width, height, order)?
            }
        };
        Ok(RowWriter {
            path: path.to_path_buf(),
            width,
            height,
            encoding,
            mode,
            failed: AtomicBool::new(false),
            part,
        })
    }

    /// Writes the next row ([`RowOrder::Sequential`] only); `values` must
    /// hold exactly `width` samples.
    ///
    /// # Errors
    ///
    /// [`ImageError::RowAccess`] for a writer of [`RowOrder::Any`], a wrong
    /// length, a row past the last, or an earlier failed write;
    /// [`ImageError::NonFinite`] for NaN/∞ in PNG/PGM output;
    /// [`ImageError::Io`] when writing fails.
    pub fn write_row(&mut self, values: &[f32]) -> Result<(), ImageError> {
        let Mode::Sequential { rows_written, sink } = &mut self.mode else {
            return Err(row_access(
                &self.path,
                "write_row needs RowOrder::Sequential (use write_at)",
            ));
        };
        check_not_failed(&self.failed, &self.path)?;
        let y = *rows_written;
        if y == self.height {
            return Err(row_access(
                &self.path,
                format!("all {} rows have been written", self.height),
            ));
        }
        if values.len() != self.width {
            return Err(row_access(
                &self.path,
                format!("a row has {} samples, got {}", self.width, values.len()),
            ));
        }
        let bytes = self.encoding.encode(&self.path, y * self.width, values)?;
        let written = match sink {
            RowSink::Raster(raster) => raster.write_at(y, 0, &bytes),
            RowSink::Png(png) => png.write_row(&bytes),
        };
        record(&self.failed, &self.path, written)?;
        *rows_written += 1;
        Ok(())
    }

    /// Writes `values` at columns `x0..x0 + values.len()` of row `y`
    /// ([`RowOrder::Any`] only). Pieces may arrive in any order and from
    /// several threads; each sample must be written exactly once.
    ///
    /// # Errors
    ///
    /// [`ImageError::RowAccess`] for a writer of [`RowOrder::Sequential`], a
    /// piece outside the image or overlapping one already written, or an
    /// earlier failed write; [`ImageError::NonFinite`] for NaN/∞ in PNG/PGM
    /// output; [`ImageError::Io`] when writing fails.
    pub fn write_at(&self, y: usize, x0: usize, values: &[f32]) -> Result<(), ImageError> {
        let Mode::Any { rows, raster, .. } = &self.mode else {
            return Err(row_access(
                &self.path,
                "write_at needs RowOrder::Any (use write_row)",
            ));
        };
        check_not_failed(&self.failed, &self.path)?;
        let row = rows.get(y).ok_or_else(|| {
            row_access(
                &self.path,
                format!("row {y} is outside the image (height {})", self.height),
            )
        })?;
        let end = x0
            .checked_add(values.len())
            .filter(|&end| end <= self.width)
            .ok_or_else(|| {
                row_access(
                    &self.path,
                    format!(
                        "{} samples from column {x0} do not fit in a row of {}",
                        values.len(),
                        self.width
                    ),
                )
            })?;
        if values.is_empty() {
            return Ok(());
        }
        let bytes = self
            .encoding
            .encode(&self.path, y * self.width + x0, values)?;
        if !row
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(x0, end)
        {
            return Err(row_access(
                &self.path,
                format!("samples {x0}..{end} of row {y} overlap samples already written"),
            ));
        }
        record(&self.failed, &self.path, raster.write_at(y, x0, &bytes))
    }

    /// Checks that every sample was written, completes the file (a PNG
    /// written in any order is encoded here from its scratch file, which is
    /// then removed) and moves it to the output path.
    ///
    /// # Errors
    ///
    /// [`ImageError::RowAccess`] when a sample was never written or an
    /// earlier write failed; [`ImageError::Io`] / [`ImageError::PngEncode`]
    /// when completing or renaming the file fails. The output path is not
    /// touched then.
    pub fn finish(self) -> Result<(), ImageError> {
        let RowWriter {
            path,
            width,
            height,
            mode,
            failed,
            part,
            ..
        } = self;
        check_not_failed(&failed, &path)?;
        match mode {
            Mode::Sequential { rows_written, sink } => {
                if rows_written < height {
                    return Err(row_access(
                        &path,
                        format!("only {rows_written} of {height} rows were written"),
                    ));
                }
                if let RowSink::Png(png) = sink {
                    png.finish(&path)?;
                }
            }
            Mode::Any { rows, raster, png } => {
                check_covered(&path, rows, width)?;
                if let Some(ScratchPng { png, scratch }) = png {
                    encode_scratch(&path, &raster, png, height)?;
                    // Removes the scratch file.
                    drop(scratch);
                }
            }
        }
        part.persist(&path).map_err(io_err(&path))
    }
}

/// Rejects a zero dimension and more than [`MAX_ELEMENTS`](super::MAX_ELEMENTS)
/// samples.
fn check_dims(path: &Path, width: usize, height: usize) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::BadShape {
            reason: format!("image has a zero dimension (width {width}, height {height})"),
        });
    }
    if element_count(&[height, width]).is_none() {
        return Err(too_large(path, &[height, width]));
    }
    Ok(())
}

fn pgm_header(width: usize, height: usize, depth: BitDepth) -> Vec<u8> {
    let maxval = match depth {
        BitDepth::Eight => 255,
        BitDepth::Sixteen => 65535,
    };
    format!("P5\n{width} {height}\n{maxval}\n").into_bytes()
}

/// A PGM or `.npy` writer: `header`, then samples in place in `file`.
fn raster_mode(
    path: &Path,
    file: File,
    header: &[u8],
    encoding: Encoding,
    width: usize,
    height: usize,
    order: RowOrder,
) -> Result<Mode, ImageError> {
    file.write_all_at(header, 0).map_err(io_err(path))?;
    let raster = Raster {
        file,
        data_start: header.len() as u64,
        sample_bytes: encoding.sample_bytes(),
        width,
    };
    Ok(match order {
        RowOrder::Sequential => Mode::Sequential {
            rows_written: 0,
            sink: RowSink::Raster(raster),
        },
        RowOrder::Any => Mode::Any {
            rows: uncovered_rows(height),
            raster,
            png: None,
        },
    })
}

/// A PNG writer: the encoder writes `file`; in any order, samples first go
/// to a scratch file.
fn png_mode(
    path: &Path,
    file: File,
    width: usize,
    height: usize,
    depth: BitDepth,
    order: RowOrder,
) -> Result<Mode, ImageError> {
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(ImageError::TooLarge {
                path: path.to_path_buf(),
                reason: format!("PNG dimensions {width}×{height} exceed u32"),
            })
        }
    };
    let png = PngStream::create(path, file, w, h, depth)?;
    Ok(match order {
        RowOrder::Sequential => Mode::Sequential {
            rows_written: 0,
            sink: RowSink::Png(png),
        },
        RowOrder::Any => {
            let (scratch, scratch_file) = TempFile::create(path, "raw")?;
            Mode::Any {
                rows: uncovered_rows(height),
                raster: Raster {
                    file: scratch_file,
                    data_start: 0,
                    sample_bytes: Encoding::Quantised(depth).sample_bytes(),
                    width,
                },
                png: Some(ScratchPng { png, scratch }),
            }
        }
    })
}

fn uncovered_rows(height: usize) -> Vec<Mutex<Coverage>> {
    (0..height).map(|_| Mutex::default()).collect()
}

fn check_not_failed(failed: &AtomicBool, path: &Path) -> Result<(), ImageError> {
    if failed.load(Ordering::Acquire) {
        return Err(row_access(path, "an earlier write failed"));
    }
    Ok(())
}

/// Passes on the result of a write to a file, marking the writer failed
/// when it is an error.
fn record(failed: &AtomicBool, path: &Path, result: io::Result<()>) -> Result<(), ImageError> {
    result.map_err(|e| {
        failed.store(true, Ordering::Release);
        io_err(path)(e)
    })
}

/// The first row with samples never written, as an error.
fn check_covered(path: &Path, rows: Vec<Mutex<Coverage>>, width: usize) -> Result<(), ImageError> {
    for (y, row) in rows.into_iter().enumerate() {
        let row = row.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some((start, end)) = row.first_gap(width) {
            return Err(row_access(
                path,
                format!("samples {start}..{end} of row {y} were never written"),
            ));
        }
    }
    Ok(())
}

/// Feeds the rows of a PNG's scratch raster to its encoder.
fn encode_scratch(
    path: &Path,
    raster: &Raster,
    mut png: PngStream,
    height: usize,
) -> Result<(), ImageError> {
    let mut row = vec![0u8; raster.width * raster.sample_bytes];
    for y in 0..height {
        raster.read_row(y, &mut row).map_err(io_err(path))?;
        png.write_row(&row).map_err(io_err(path))?;
    }
    png.finish(path)
}

// ---------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------

/// How samples are stored.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    /// Quantised integers (PNG, PGM), 16-bit ones big-endian.
    Quantised(BitDepth),
    /// Little-endian `float32` (`.npy`).
    F32,
}

impl Encoding {
    fn sample_bytes(self) -> usize {
        match self {
            Encoding::Quantised(BitDepth::Eight) => 1,
            Encoding::Quantised(BitDepth::Sixteen) => 2,
            Encoding::F32 => 4,
        }
    }

    /// The stored bytes of `values`, whose first sample has flat index
    /// `first` in the image (for error reports).
    fn encode(self, path: &Path, first: usize, values: &[f32]) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::with_capacity(values.len() * self.sample_bytes());
        let depth = match self {
            Encoding::F32 => {
                extend_f32_le(values, &mut out);
                return Ok(out);
            }
            Encoding::Quantised(depth) => depth,
        };
        if let Some((i, value)) = first_non_finite(values) {
            return Err(ImageError::NonFinite {
                path: path.to_path_buf(),
                index: first + i,
                value,
            });
        }
        match depth {
            BitDepth::Eight => out.extend(values.iter().map(|&v| quantize(v, 255.0) as u8)),
            BitDepth::Sixteen => {
                for &v in values {
                    out.extend_from_slice(&(quantize(v, 65535.0) as u16).to_be_bytes());
                }
            }
        }
        Ok(out)
    }
}

/// Quantises `v` (clamped to `[0, 1]`) to `0..=max`, rounding to nearest
/// (halves away from zero). `v` must be finite.
fn quantize(v: f32, max: f32) -> f32 {
    (v.clamp(0.0, 1.0) * max).round()
}

/// The columns of one row written so far.
#[derive(Debug, Default)]
struct Coverage {
    /// Sorted, disjoint, non-adjacent half-open column ranges.
    spans: Vec<(usize, usize)>,
}

impl Coverage {
    /// Records columns `start..end` (`start < end`); returns `false`, and
    /// records nothing, when they overlap columns already recorded.
    fn add(&mut self, start: usize, end: usize) -> bool {
        // The first span ending after `start`; all before it end at or
        // before `start`.
        let i = self.spans.partition_point(|&(_, e)| e <= start);
        let next = self.spans.get(i).copied();
        if next.is_some_and(|(s, _)| s < end) {
            return false;
        }
        let joins_prev = i > 0 && self.spans[i - 1].1 == start;
        let joins_next = next.is_some_and(|(s, _)| s == end);
        match (joins_prev, joins_next) {
            (true, true) => {
                self.spans[i - 1].1 = self.spans[i].1;
                self.spans.remove(i);
            }
            (true, false) => self.spans[i - 1].1 = end,
            (false, true) => self.spans[i].0 = start,
            (false, false) => self.spans.insert(i, (start, end)),
        }
        true
    }

    /// The first range of columns of a row of `width` not yet recorded.
    fn first_gap(&self, width: usize) -> Option<(usize, usize)> {
        let mut covered = 0;
        for &(s, e) in &self.spans {
            if s > covered {
                return Some((covered, s));
            }
            covered = e;
        }
        (covered < width).then_some((covered, width))
    }
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// Fixed-size samples after a header, written and read at their offsets.
struct Raster {
    file: File,
    data_start: u64,
    sample_bytes: usize,
    width: usize,
}

impl Raster {
    fn offset(&self, y: usize, x: usize) -> u64 {
        self.data_start + (y as u64 * self.width as u64 + x as u64) * self.sample_bytes as u64
    }

    fn write_at(&self, y: usize, x: usize, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.offset(y, x))
    }

    fn read_row(&self, y: usize, row: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(row, self.offset(y, 0))
    }
}

/// A hidden file next to an output, removed when dropped unless persisted.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates `.NAME.PID-N.SUFFIX` beside `output` (`NAME` is the output's
    /// file name, `N` counts the files this process has made), open for
    /// reading and writing.
    fn create(output: &Path, suffix: &str) -> Result<(TempFile, File), ImageError> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = output
            .file_name()
            .ok_or_else(|| unsupported(output, "the output path has no file name"))?;
        let mut hidden = std::ffi::OsString::from(".");
        hidden.push(name);
        hidden.push(format!(
            ".{}-{}.{suffix}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let path = output.with_file_name(hidden);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(output))?;
        let temp = TempFile {
            path,
            persisted: false,
        };
        Ok((temp, file))
    }

    /// Renames the file to `to`, replacing what is there.
    fn persist(mut self, to: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: the file may already be gone.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A PNG encoder fed one row of stored bytes at a time.
struct PngStream {
    /// Boxed: the encoder's state is large.
    stream: Box<png::StreamWriter<'static, BufWriter<CheckedFile>>>,
    /// The first error writing the file, including those of writes the
    /// encoder makes from its destructors, which it cannot report.
    error: Arc<OnceLock<io::Error>>,
}

impl PngStream {
    /// Writes the header of a grey `width × height` PNG to `file`.
    fn create(
        path: &Path,
        file: File,
        width: u32,
        height: u32,
        depth: BitDepth,
    ) -> Result<Self, ImageError> {
        let error = Arc::new(OnceLock::new());
        let out = BufWriter::new(CheckedFile {
            file,
            error: Arc::clone(&error),
        });
        let mut encoder = png::Encoder::new(out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(match depth {
            BitDepth::Eight => png::BitDepth::Eight,
            BitDepth::Sixteen => png::BitDepth::Sixteen,
        });
        let stream = encoder
            .write_header()
            .and_then(png::Writer::into_stream_writer)
            .map_err(png_encode_err(path))?;
        Ok(PngStream {
            stream: Box::new(stream),
            error,
        })
    }

    fn write_row(&mut self, row: &[u8]) -> io::Result<()> {
        self.stream.write_all(row)
    }

    /// Ends the image data and writes the end chunk.
    fn finish(self, path: &Path) -> Result<(), ImageError> {
        self.stream.finish().map_err(png_encode_err(path))?;
        match self.error.get() {
            Some(e) => Err(io_err(path)(io::Error::new(e.kind(), e.to_string()))),
            None => Ok(()),
        }
    }
}

fn png_encode_err(path: &Path) -> impl FnOnce(png::EncodingError) -> ImageError + '_ {
    move |source| ImageError::PngEncode {
        path: path.to_path_buf(),
        source,
    }
}

/// The file under a PNG encoder, keeping a copy of the first write error.
struct CheckedFile {
    file: File,
    error: Arc<OnceLock<io::Error>>,
}

impl CheckedFile {
    fn keep<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if e.kind() != io::ErrorKind::Interrupted {
                // Only the first error is kept.
                let _ = self.error.set(io::Error::new(e.kind(), e.to_string()));
            }
        }
        result
    }
}

impl Write for CheckedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.file.write(buf);
        self.keep(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.file.flush();
        self.keep(result)
    }
}

#[cfg(test)]
mod tests {
    use super::Coverage;

    #[test]
    fn coverage_merges_spans_and_finds_gaps() {
        let mut c = Coverage::default();
        assert_eq!(c.first_gap(10), Some((0, 10)));
        assert!(c.add(4, 6));
        assert!(c.add(6, 7), "joins the span before");
        assert!(c.add(8, 10));
        assert_eq!(c.spans, [(4, 7), (8, 10)]);
        for (start, end) in [(5, 6), (3, 5), (6, 8), (0, 10), (9, 10), (4, 7)] {
            assert!(!c.add(start, end), "{start}..{end} overlaps");
        }
        assert_eq!(c.spans, [(4, 7), (8, 10)]);
        assert_eq!(c.first_gap(10), Some((0, 4)));
        assert!(c.add(7, 8), "joins both neighbours");
        assert_eq!(c.spans, [(4, 10)]);
        assert!(c.add(0, 2));
        assert!(c.add(3, 4), "joins the span after");
        assert_eq!(c.spans, [(0, 2), (3, 10)]);
        assert_eq!(c.first_gap(10), Some((2, 3)));
        assert_eq!(c.first_gap(12), Some((2, 3)));
        assert!(c.add(2, 3));
        assert_eq!(c.spans, [(0, 10)]);
        assert_eq!(c.first_gap(10), None);
        assert_eq!(c.first_gap(12), Some((10, 12)));
    }
}
