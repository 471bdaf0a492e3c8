//! Row-at-a-time reading: [`RowReader`] and one row source per format.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::npy::{self, Dtype};
use super::{
    decode_err, dims_string, element_count, first_non_finite, format_of, io_err, read_exact_or,
    row_access, too_large, unsupported, Format, ImageError,
};

/// Reads a one-channel image a row at a time: PNG, binary PGM (`P5`) or
/// `.npy` (`<f4`/`<f8`, shape `(H, W)` or `(1, H, W)`).
///
/// Samples are converted exactly as [`read_image`](super::read_image) does
/// (8-bit values divided by 255, 16-bit by 65535, PGM by its `maxval`, colour
/// converted to luma, palettes expanded, alpha dropped). Only one row is held
/// in memory, except for interlaced PNG: Adam7 spreads every row over the
/// whole file, so the decoded frame is buffered as raw bytes.
///
/// The header is read and checked by [`RowReader::open`]; for PGM and `.npy`
/// files that are regular files, the file length is checked against the
/// header there too.
pub struct RowReader {
    path: PathBuf,
    width: usize,
    height: usize,
    /// Channel planes in the file, read one after the other: 1, except for a
    /// `(C, H, W)` `.npy` array read by `read_image`.
    planes: usize,
    rows_read: usize,
    /// A row failed to decode; the source is in an unknown state.
    failed: bool,
    source: Source,
}

impl RowReader {
    /// Opens `path` and reads its header; the format is chosen by the
    /// (case-insensitive) extension: `.png`, `.pgm` or `.npy`.
    ///
    /// # Errors
    ///
    /// The errors of [`read_image`](super::read_image) that a header can
    /// cause, and [`ImageError::UnsupportedFormat`] for an `.npy` array with
    /// more than one channel plane.
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let reader = Self::open_planes(path)?;
        if reader.planes != 1 {
            return Err(unsupported(
                path,
                format!(
                    "rows are read from one channel, the array has {}",
                    reader.planes
                ),
            ));
        }
        Ok(reader)
    }

    /// Like [`RowReader::open`], but accepts a `(C, H, W)` `.npy` array of
    /// any `C`, whose `C × H` rows are then read plane after plane.
    pub(super) fn open_planes(path: &Path) -> Result<Self, ImageError> {
        let (source, dims) = match format_of(path)? {
            Format::Png => PngRows::open(path).map(|(s, d)| (Source::Png(s), d))?,
            Format::Pgm => PgmRows::open(path).map(|(s, d)| (Source::Pgm(s), d))?,
            Format::Npy => NpyRows::open(path).map(|(s, d)| (Source::Npy(s), d))?,
        };
        Ok(RowReader {
            path: path.to_path_buf(),
            width: dims.width,
            height: dims.height,
            planes: dims.planes,
            rows_read: 0,
            failed: false,
            source,
        })
    }

    /// Image width: the number of samples in a row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Image height: the number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of channel planes (see [`RowReader::open_planes`]).
    pub(super) fn planes(&self) -> usize {
        self.planes
    }

    /// Number of rows decoded so far.
    pub fn rows_read(&self) -> usize {
        self.rows_read
    }

    /// Decodes the next row into `out`, which must hold exactly
    /// [`width`](Self::width) values.
    ///
    /// After the last row the end of the file is checked as
    /// [`read_image`](super::read_image) checks it: a PNG is read through its
    /// end chunk, an `.npy` file must end with the data.
    ///
    /// # Errors
    ///
    /// [`ImageError::RowAccess`] when `out` has the wrong length, when every
    /// row has been read, or when an earlier row failed to decode;
    /// [`ImageError::Decode`] / [`ImageError::Png`] for truncated or malformed
    /// data; [`ImageError::NonFinite`] for NaN/∞ in `.npy`;
    /// [`ImageError::Io`] when reading fails.
    pub fn next_row(&mut self, out: &mut [f32]) -> Result<(), ImageError> {
        if self.failed {
            return Err(row_access(&self.path, "an earlier row failed to decode"));
        }
        let rows = self.planes * self.height;
        if self.rows_read == rows {
            return Err(row_access(
                &self.path,
                format!("all {rows} rows have been read"),
            ));
        }
        if out.len() != self.width {
            return Err(row_access(
                &self.path,
                format!(
                    "a row has {} samples, the buffer holds {}",
                    self.width,
                    out.len()
                ),
            ));
        }
        let result = self.decode_row(out);
        self.failed = result.is_err();
        result?;
        self.rows_read += 1;
        Ok(())
    }

    /// Decodes row `rows_read` into `out`, then checks the end of the file
    /// after the last row.
    fn decode_row(&mut self, out: &mut [f32]) -> Result<(), ImageError> {
        let row = self.rows_read;
        let path = &self.path;
        match &mut self.source {
            Source::Png(s) => s.next_row(path, row, self.height, out)?,
            Source::Pgm(s) => s.next_row(path, row, out)?,
            Source::Npy(s) => s.next_row(path, row, out)?,
        }
        if row + 1 < self.planes * self.height {
            return Ok(());
        }
        match &mut self.source {
            Source::Png(s) => s.finish(path),
            Source::Pgm(_) => Ok(()),
            Source::Npy(s) => s.finish(path),
        }
    }
}

/// Where rows come from.
enum Source {
    Png(PngRows),
    Pgm(PgmRows),
    Npy(NpyRows),
}

/// Dimensions a header describes.
struct Dims {
    width: usize,
    height: usize,
    planes: usize,
}

/// The length of `file` when it is a regular file (a pipe or device has no
/// length to check against a header).
fn regular_file_len(file: &File, path: &Path) -> Result<Option<u64>, ImageError> {
    let meta = file.metadata().map_err(io_err(path))?;
    Ok(meta.is_file().then_some(meta.len()))
}

// ---------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------

/// PNG rows, decoded by the `png` crate with palettes, low bit depths and
/// transparency expanded.
struct PngRows {
    /// Boxed: the decoder's state is large.
    reader: Box<png::Reader<BufReader<File>>>,
    /// Samples a pixel: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    samples: usize,
    /// Samples are 16-bit (big-endian) rather than 8-bit.
    sixteen: bool,
    /// Bytes of one decoded row.
    row_bytes: usize,
    /// The decoded frame of an interlaced image.
    frame: Option<Frame>,
}

/// A whole decoded (deinterlaced) PNG frame, as raw bytes.
struct Frame {
    bytes: Vec<u8>,
    /// Bytes from the start of one row to the next.
    stride: usize,
}

fn png_err(path: &Path) -> impl FnOnce(png::DecodingError) -> ImageError + '_ {
    move |source| ImageError::Png {
        path: path.to_path_buf(),
        source,
    }
}

impl PngRows {
    fn open(path: &Path) -> Result<(Self, Dims), ImageError> {
        let file = File::open(path).map_err(io_err(path))?;
        let file_len = regular_file_len(&file, path)?;
        let mut decoder = png::Decoder::new(BufReader::new(file));
        // EXPAND: palette -> RGB(A), low-bit grey -> 8 bit, tRNS -> alpha.
        decoder.set_transformations(png::Transformations::EXPAND);
        let (width, height, interlaced) = {
            let info = decoder.read_header_info().map_err(png_err(path))?;
            (info.width as usize, info.height as usize, info.interlaced)
        };
        let n = element_count(&[height, width]).ok_or_else(|| too_large(path, &[height, width]))?;
        if n == 0 {
            return Err(decode_err(path, "PNG has a zero dimension"));
        }
        let mut reader = Box::new(decoder.read_info().map_err(png_err(path))?);
        let (samples, sixteen) = output_layout(path, reader.output_color_type())?;
        let bytes_per_sample = if sixteen { 2 } else { 1 };
        let row_bytes = width
            .checked_mul(samples * bytes_per_sample)
            .ok_or_else(|| too_large(path, &[height, width]))?;
        let frame = if interlaced {
            Some(read_frame(path, &mut reader, &[height, width], file_len)?)
        } else {
            None
        };
        let rows = PngRows {
            reader,
            samples,
            sixteen,
            row_bytes,
            frame,
        };
        let dims = Dims {
            width,
            height,
            planes: 1,
        };
        Ok((rows, dims))
    }

    /// Decodes row `y` (of `height`) into `out`.
    fn next_row(
        &mut self,
        path: &Path,
        y: usize,
        height: usize,
        out: &mut [f32],
    ) -> Result<(), ImageError> {
        let row = match &self.frame {
            Some(frame) => {
                let start = y * frame.stride;
                frame.bytes.get(start..start + self.row_bytes)
            }
            None => self
                .reader
                .next_row()
                .map_err(png_err(path))?
                .ok_or_else(|| decode_err(path, format!("PNG ended after {y} of {height} rows")))?
                .data()
                .get(..self.row_bytes),
        };
        let row = row.ok_or_else(|| decode_err(path, "PNG row shorter than expected"))?;
        convert_png_row(row, self.samples, self.sixteen, out);
        Ok(())
    }

    /// Reads through to IEND so that a file truncated after the pixel data
    /// (missing checksum or end chunk) is reported rather than accepted.
    fn finish(&mut self, path: &Path) -> Result<(), ImageError> {
        self.reader.finish().map_err(png_err(path))
    }
}

/// Samples a pixel and whether they are 16-bit, for the decoder's output
/// colour type after expansion.
fn output_layout(
    path: &Path,
    (color, depth): (png::ColorType, png::BitDepth),
) -> Result<(usize, bool), ImageError> {
    let samples = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(unsupported(path, "palette image was not expanded"));
        }
    };
    let sixteen = match depth {
        png::BitDepth::Eight => false,
        png::BitDepth::Sixteen => true,
        other => {
            return Err(unsupported(
                path,
                format!("unexpected output bit depth {other:?} after expansion"),
            ));
        }
    };
    Ok((samples, sixteen))
}

/// Deflate expands its input at most 1032-fold.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Decodes the whole frame of an interlaced image, reserving its buffer
/// fallibly. A regular file of `file_len` bytes holds at most
/// [`MAX_DEFLATE_RATIO`] times as many bytes of image data: a frame larger
/// than that is refused before its buffer is reserved, so that a forged
/// header cannot claim gigabytes.
fn read_frame(
    path: &Path,
    reader: &mut png::Reader<BufReader<File>>,
    dims: &[usize],
    file_len: Option<u64>,
) -> Result<Frame, ImageError> {
    let total = reader
        .output_buffer_size()
        .ok_or_else(|| too_large(path, dims))?;
    if let Some(len) = file_len {
        if total as u64 > len.saturating_mul(MAX_DEFLATE_RATIO) {
            return Err(decode_err(
                path,
                format!("a {len}-byte PNG cannot hold the {total}-byte image its header claims"),
            ));
        }
    }
    let mut bytes: Vec<u8> = Vec::new();
    bytes
        .try_reserve_exact(total)
        .map_err(|_| too_large(path, dims))?;
    bytes.resize(total, 0);
    let info = reader.next_frame(&mut bytes).map_err(png_err(path))?;
    Ok(Frame {
        bytes,
        stride: info.line_size,
    })
}

/// Writes the grey value of each pixel of one decoded PNG row to `out`.
fn convert_png_row(row: &[u8], samples: usize, sixteen: bool, out: &mut [f32]) {
    if sixteen {
        let raw = |px: &[u8], i: usize| u16::from_be_bytes([px[2 * i], px[2 * i + 1]]);
        let s = |px: &[u8], i: usize| -> f64 { f64::from(raw(px, i)) / 65535.0 };
        for (v, px) in out.iter_mut().zip(row.chunks_exact(2 * samples)) {
            *v = match samples {
                1 | 2 => f32::from(raw(px, 0)) / 65535.0,
                _ => luma(s(px, 0), s(px, 1), s(px, 2)),
            };
        }
    } else {
        let s = |px: &[u8], i: usize| -> f64 { f64::from(px[i]) / 255.0 };
        for (v, px) in out.iter_mut().zip(row.chunks_exact(samples)) {
            *v = match samples {
                1 | 2 => f32::from(px[0]) / 255.0,
                _ => luma(s(px, 0), s(px, 1), s(px, 2)),
            };
        }
    }
}

/// Luma of one RGB pixel (samples already on a `[0, 1]` scale), computed in
/// `f64`.
fn luma(r: f64, g: f64, b: f64) -> f32 {
    (0.2989 * r + 0.5870 * g + 0.1140 * b) as f32
}

// ---------------------------------------------------------------------------
// PGM (binary P5)
// ---------------------------------------------------------------------------

/// PGM rows, read from the raster after the header.
struct PgmRows {
    file: BufReader<File>,
    maxval: u16,
    /// Samples take two bytes (big-endian): `maxval` > 255.
    wide: bool,
    /// One raw row.
    raw: Vec<u8>,
}

impl PgmRows {
    fn open(path: &Path) -> Result<(Self, Dims), ImageError> {
        let file = File::open(path).map_err(io_err(path))?;
        let file_len = regular_file_len(&file, path)?;
        let mut file = BufReader::new(file);
        let mut header = PgmHeader {
            r: &mut file,
            path,
            pos: 0,
        };
        let (w, h, maxval) = header.read()?;
        let raster_start = header.pos;
        let maxval = u16::try_from(maxval)
            .ok()
            .filter(|&m| m > 0)
            .ok_or_else(|| decode_err(path, format!("maxval {maxval} outside 1..=65535")))?;
        let (width, height) = match (usize::try_from(w), usize::try_from(h)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                return Err(ImageError::TooLarge {
                    path: path.to_path_buf(),
                    reason: format!("PGM dimensions {w}×{h}"),
                })
            }
        };
        if width == 0 || height == 0 {
            return Err(decode_err(path, "PGM has a zero dimension"));
        }
        let n = element_count(&[height, width]).ok_or_else(|| too_large(path, &[height, width]))?;
        let wide = maxval > 255;
        let bytes_per_sample = if wide { 2 } else { 1 };
        if let Some(len) = file_len {
            let raster = len.saturating_sub(raster_start);
            // n ≤ 2^31: no overflow.
            let need = (n * bytes_per_sample) as u64;
            if raster < need {
                return Err(decode_err(
                    path,
                    format!(
                        "truncated raster: {raster} bytes, expected {need} \
                         ({width}×{height}, maxval {maxval})"
                    ),
                ));
            }
        }
        let rows = PgmRows {
            file,
            maxval,
            wide,
            raw: vec![0; width * bytes_per_sample],
        };
        let dims = Dims {
            width,
            height,
            planes: 1,
        };
        Ok((rows, dims))
    }

    /// Reads row `y` into `out`, checking every sample against `maxval`.
    fn next_row(&mut self, path: &Path, y: usize, out: &mut [f32]) -> Result<(), ImageError> {
        read_exact_or(&mut self.file, &mut self.raw, path, || {
            format!("truncated raster: the file ends in row {y}")
        })?;
        let max = f32::from(self.maxval);
        let width = out.len();
        for (x, v) in out.iter_mut().enumerate() {
            let sample = if self.wide {
                u16::from_be_bytes([self.raw[2 * x], self.raw[2 * x + 1]])
            } else {
                u16::from(self.raw[x])
            };
            if sample > self.maxval {
                return Err(decode_err(
                    path,
                    format!(
                        "sample {sample} at index {} exceeds maxval {}",
                        y * width + x,
                        self.maxval
                    ),
                ));
            }
            *v = f32::from(sample) / max;
        }
        Ok(())
    }
}

/// Reader of a PGM header, counting the bytes it consumes.
struct PgmHeader<'a, R> {
    r: &'a mut R,
    path: &'a Path,
    pos: u64,
}

impl<R: BufRead> PgmHeader<'_, R> {
    /// Reads the magic number, width, height and `maxval`, and the single
    /// whitespace byte that separates the header from the raster.
    fn read(&mut self) -> Result<(u64, u64, u64), ImageError> {
        let mut magic = [0u8; 2];
        read_exact_or(self.r, &mut magic, self.path, || {
            "not a binary PGM (missing 'P5' magic)".into()
        })?;
        self.pos += 2;
        match &magic {
            b"P5" => {}
            b"P2" => {
                return Err(unsupported(
                    self.path,
                    "ASCII PGM (P2); only binary P5 is supported",
                ))
            }
            _ => {
                return Err(decode_err(
                    self.path,
                    "not a binary PGM (missing 'P5' magic)",
                ))
            }
        }
        // The magic must be followed by whitespace (or a comment).
        match self.peek()? {
            Some(b) if b.is_ascii_whitespace() || b == b'#' => {}
            _ => return Err(decode_err(self.path, "missing whitespace after 'P5'")),
        }
        let width = self.number("width")?;
        let height = self.number("height")?;
        let maxval = self.number("maxval")?;
        // Exactly one whitespace byte separates maxval from the raster.
        match self.peek()? {
            Some(b) if b.is_ascii_whitespace() => self.bump(),
            Some(_) => return Err(decode_err(self.path, "missing whitespace after maxval")),
            None => return Err(decode_err(self.path, "file ends after the header")),
        }
        Ok((width, height, maxval))
    }

    fn peek(&mut self) -> Result<Option<u8>, ImageError> {
        let buf = self.r.fill_buf().map_err(io_err(self.path))?;
        Ok(buf.first().copied())
    }

    fn bump(&mut self) {
        self.r.consume(1);
        self.pos += 1;
    }

    /// Skips whitespace and `#` comments (to end of line).
    fn skip_space(&mut self) -> Result<(), ImageError> {
        while let Some(b) = self.peek()? {
            if b == b'#' {
                while let Some(c) = self.peek()? {
                    self.bump();
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                }
            } else if b.is_ascii_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Reads an unsigned decimal number preceded by whitespace/comments.
    fn number(&mut self, what: &str) -> Result<u64, ImageError> {
        self.skip_space()?;
        let start = self.pos;
        let mut v: u64 = 0;
        while let Some(b) = self.peek()? {
            if !b.is_ascii_digit() {
                break;
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| decode_err(self.path, format!("{what} is too large")))?;
            self.bump();
        }
        if self.pos == start {
            return Err(decode_err(
                self.path,
                format!("expected {what} in PGM header"),
            ));
        }
        Ok(v)
    }
}

// ---------------------------------------------------------------------------
// NPY
// ---------------------------------------------------------------------------

/// `.npy` rows of an `(H, W)` or `(C, H, W)` array.
struct NpyRows {
    file: BufReader<File>,
    dtype: Dtype,
    /// One raw row.
    raw: Vec<u8>,
}

impl NpyRows {
    fn open(path: &Path) -> Result<(Self, Dims), ImageError> {
        let file = File::open(path).map_err(io_err(path))?;
        let file_len = regular_file_len(&file, path)?;
        let mut file = BufReader::new(file);
        let header = npy::read_header(path, &mut file)?;
        if let Some(len) = file_len {
            header.check_data_len(path, len.saturating_sub(header.data_start))?;
        }
        let dims = image_dims(path, &header.shape)?;
        let rows = NpyRows {
            file,
            dtype: header.dtype,
            raw: vec![0; dims.width * header.dtype.size()],
        };
        Ok((rows, dims))
    }

    /// Reads row `row` (counted over all planes) into `out`.
    fn next_row(&mut self, path: &Path, row: usize, out: &mut [f32]) -> Result<(), ImageError> {
        read_exact_or(&mut self.file, &mut self.raw, path, || {
            format!("truncated data section: the file ends in row {row}")
        })?;
        self.dtype.decode(&self.raw, out);
        match first_non_finite(out) {
            Some((x, value)) => Err(ImageError::NonFinite {
                path: path.to_path_buf(),
                index: row * out.len() + x,
                value,
            }),
            None => Ok(()),
        }
    }

    /// Checks that the file ends with the data.
    fn finish(&mut self, path: &Path) -> Result<(), ImageError> {
        let rest = self.file.fill_buf().map_err(io_err(path))?;
        if rest.is_empty() {
            Ok(())
        } else {
            Err(decode_err(
                path,
                "data section is longer than the shape needs",
            ))
        }
    }
}

/// Width, height and planes of an `.npy` image of shape `(H, W)` or
/// `(C, H, W)`.
fn image_dims(path: &Path, shape: &[usize]) -> Result<Dims, ImageError> {
    let (planes, height, width) = match *shape {
        [h, w] => (1, h, w),
        [c, h, w] => (c, h, w),
        _ => {
            return Err(unsupported(
                path,
                format!(
                    "an image needs shape (H, W) or (C, H, W), got {}",
                    dims_string(shape)
                ),
            ))
        }
    };
    if planes == 0 || height == 0 || width == 0 {
        return Err(decode_err(
            path,
            format!("image shape {} has a zero dimension", dims_string(shape)),
        ));
    }
    Ok(Dims {
        width,
        height,
        planes,
    })
}
