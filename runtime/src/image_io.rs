//! Image and array I/O: PNG, binary PGM (P5) and NumPy `.npy`.
//!
//! Images are held as [`Image`]: planar `C×H×W` `f32` samples on a `[0, 1]`
//! scale (8-bit samples are divided by 255, 16-bit samples by 65535, PGM
//! samples by the file's `maxval`).
//!
//! Reading ([`read_image`]) picks the format from the file extension
//! (case-insensitive):
//!
//! * `.png`: 1/2/4/8/16-bit grey, grey+alpha (alpha dropped), RGB/RGBA (8- or
//!   16-bit, converted to luma `0.2989 R + 0.5870 G + 0.1140 B`), palette
//!   (expanded, then converted to luma). Always returns one channel.
//! * `.pgm`: binary `P5`, `maxval` ≤ 255 (one byte a sample) or ≤ 65535 (two
//!   bytes a sample, big-endian). One channel.
//! * `.npy`: little-endian `float32` (`<f4`) or `float64` (`<f8`, converted to
//!   `f32`), C order, shape `(H, W)` (one channel) or `(C, H, W)`; format
//!   versions 1.0, 2.0 (and 3.0, which only differs in the header encoding).
//!
//! Writing ([`write_image`]) supports 1-channel PNG/PGM at 8 or 16 bits
//! ([`BitDepth`]) and `.npy` (`float32`, exact) with any channel count.
//!
//! [`RowReader`] and [`RowWriter`] do the same for one-channel images a row
//! (or a piece of a row) at a time, without holding the whole image: they
//! are what [`read_image`] and [`write_image`] are built on, so samples are
//! converted and quantised the same way by both.
//!
//! [`read_npy_f32`] / [`write_npy_f32`] read and write arbitrary-rank `float32`
//! arrays, e.g. to compare with reference outputs saved from PyTorch/NumPy.
//!
//! No function here panics on malformed input: every problem is reported as
//! an [`ImageError`]. The total number of samples of an image or array is
//! capped at [`MAX_ELEMENTS`] (2³¹).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

mod npy;
mod read;
mod write;

pub use read::RowReader;
pub use write::{RowOrder, RowWriter};

/// Largest number of samples (`width × height × channels`, or the product of
/// an `.npy` shape) accepted when reading or writing: 2³¹.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// An image held as planar `f32` samples.
///
/// Layout is `C×H×W` (channel-major, then row-major): sample `(c, y, x)` is at
/// `data[(c * height + y) * width + x]`. Values are on a `[0, 1]` scale for
/// images read from integer formats; nothing enforces that range (denoised or
/// noisy images may leave it).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Number of channels (1 for the grey images this project uses).
    pub channels: usize,
    /// Samples, planar `C×H×W`, `width * height * channels` of them.
    pub data: Vec<f32>,
}

impl Image {
    /// Builds an image, checking that `data.len() == width * height * channels`,
    /// that no dimension is zero, and that the element count is at most
    /// [`MAX_ELEMENTS`].
    ///
    /// # Errors
    ///
    /// [`ImageError::BadShape`] when any of these checks fails.
    pub fn new(
        width: usize,
        height: usize,
        channels: usize,
        data: Vec<f32>,
    ) -> Result<Image, ImageError> {
        let img = Image {
            width,
            height,
            channels,
            data,
        };
        img.validate()?;
        Ok(img)
    }

    /// Number of pixels of one channel plane (`width * height`), or `None` on
    /// overflow.
    pub fn plane_len(&self) -> Option<usize> {
        self.width.checked_mul(self.height)
    }

    /// The samples of channel `c` (a `height × width` row-major plane), or
    /// `None` when `c` is out of range or the image is inconsistent.
    pub fn plane(&self, c: usize) -> Option<&[f32]> {
        let n = self.plane_len()?;
        if c >= self.channels {
            return None;
        }
        let start = c.checked_mul(n)?;
        self.data.get(start..start.checked_add(n)?)
    }

    /// Checks that the dimensions are non-zero, that their product does not
    /// overflow and is at most [`MAX_ELEMENTS`], and that it equals
    /// `data.len()`.
    ///
    /// # Errors
    ///
    /// [`ImageError::BadShape`] describing the first failed check.
    pub fn validate(&self) -> Result<(), ImageError> {
        if self.width == 0 || self.height == 0 || self.channels == 0 {
            return Err(ImageError::BadShape {
                reason: format!(
                    "image has a zero dimension (width {}, height {}, channels {})",
                    self.width, self.height, self.channels
                ),
            });
        }
        let n = element_count(&[self.channels, self.height, self.width]).ok_or_else(|| {
            ImageError::BadShape {
                reason: format!(
                    "{}×{}×{} (C×H×W) exceeds the limit of {} samples",
                    self.channels, self.height, self.width, MAX_ELEMENTS
                ),
            }
        })?;
        if n != self.data.len() {
            return Err(ImageError::BadShape {
                reason: format!(
                    "{}×{}×{} (C×H×W) needs {} samples but data holds {}",
                    self.channels,
                    self.height,
                    self.width,
                    n,
                    self.data.len()
                ),
            });
        }
        Ok(())
    }
}

/// Sample depth of integer output formats (PNG, PGM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    /// 8 bits a sample: stored value `round(clamp(v, 0, 1) * 255)`.
    Eight,
    /// 16 bits a sample: stored value `round(clamp(v, 0, 1) * 65535)`.
    Sixteen,
}

/// Errors of image and array I/O.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be opened, read, created or written.
    #[error("{}: I/O error: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension, variant or content type is not supported
    /// (unknown extension, ASCII PGM, NumPy dtype other than `<f4`/`<f8`,
    /// Fortran order, wrong rank, multi-channel PNG/PGM output, ...).
    #[error("{}: unsupported format: {reason}", path.display())]
    UnsupportedFormat {
        /// The file concerned.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// The file is malformed or truncated (bad magic, bad header, too few
    /// bytes, sample above `maxval`, ...).
    #[error("{}: cannot decode: {reason}", path.display())]
    Decode {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The PNG decoder reported an error (malformed or truncated PNG).
    #[error("{}: cannot decode PNG: {source}", path.display())]
    Png {
        /// The file concerned.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: png::DecodingError,
    },
    /// The PNG encoder reported an error.
    #[error("{}: cannot encode PNG: {source}", path.display())]
    PngEncode {
        /// The file concerned.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },
    /// An in-memory image or array is inconsistent: zero dimension, or a
    /// data length that does not match its dimensions/shape.
    #[error("bad shape: {reason}")]
    BadShape {
        /// What is inconsistent.
        reason: String,
    },
    /// The image or array described by a file (or passed for writing) has
    /// more than [`MAX_ELEMENTS`] samples, or its size overflows.
    #[error("{}: too large: {reason}", path.display())]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// The offending dimensions.
        reason: String,
    },
    /// A sample is NaN or infinite where a finite value is required (reading
    /// an image from `.npy`, writing PNG/PGM).
    #[error("{}: non-finite sample {value} at index {index}", path.display())]
    NonFinite {
        /// The file concerned.
        path: PathBuf,
        /// Flat index of the first offending sample.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A [`RowReader`] or [`RowWriter`] was asked for something its image
    /// does not have or its contract does not allow: a buffer or row of the
    /// wrong length, a row past the last, a piece outside the image or
    /// overlapping one already written, the method of the other
    /// [`RowOrder`], samples never written when finishing, or any use after
    /// a failed read or write.
    #[error("{}: {reason}", path.display())]
    RowAccess {
        /// The file concerned.
        path: PathBuf,
        /// What was asked.
        reason: String,
    },
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Product of `dims`, or `None` on overflow or when it exceeds [`MAX_ELEMENTS`].
fn element_count(dims: &[usize]) -> Option<usize> {
    let mut n: usize = 1;
    for &d in dims {
        n = n.checked_mul(d)?;
    }
    (n <= MAX_ELEMENTS).then_some(n)
}

fn dims_string(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn decode_err(path: &Path, reason: impl Into<String>) -> ImageError {
    ImageError::Decode {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn row_access(path: &Path, reason: impl Into<String>) -> ImageError {
    ImageError::RowAccess {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Fills `buf` from `r`. A file that ends first is an [`ImageError::Decode`]
/// (`reason`), any other failure an [`ImageError::Io`].
fn read_exact_or(
    r: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    reason: impl FnOnce() -> String,
) -> Result<(), ImageError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            decode_err(path, reason())
        } else {
            io_err(path)(e)
        }
    })
}

fn unsupported(path: &Path, reason: impl Into<String>) -> ImageError {
    ImageError::UnsupportedFormat {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn too_large(path: &Path, dims: &[usize]) -> ImageError {
    ImageError::TooLarge {
        path: path.to_path_buf(),
        reason: format!(
            "shape {} exceeds the limit of {} samples",
            dims_string(dims),
            MAX_ELEMENTS
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Pgm,
    Npy,
}

fn format_of(path: &Path) -> Result<Format, ImageError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => Ok(Format::Png),
        Some("pgm") => Ok(Format::Pgm),
        Some("npy") => Ok(Format::Npy),
        Some(other) => Err(unsupported(
            path,
            format!("unknown extension '.{other}' (expected .png, .pgm or .npy)"),
        )),
        None => Err(unsupported(
            path,
            "no file extension (expected .png, .pgm or .npy)",
        )),
    }
}

fn first_non_finite(data: &[f32]) -> Option<(usize, f32)> {
    data.iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
        .map(|(i, &v)| (i, v))
}

/// Appends the little-endian bytes of `values` to `out`.
fn extend_f32_le(values: &[f32], out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------

/// Reads an image; the format is chosen by the (case-insensitive) extension:
/// `.png`, `.pgm` or `.npy` (see the module documentation for what each
/// accepts).
///
/// PNG and PGM images always come back with one channel. An `.npy` image must
/// have shape `(H, W)` or `(C, H, W)` with non-zero dimensions and only finite
/// values.
///
/// # Errors
///
/// [`ImageError::Io`] when the file cannot be read,
/// [`ImageError::UnsupportedFormat`] for unknown extensions or unsupported
/// variants, [`ImageError::Decode`] / [`ImageError::Png`] for malformed or
/// truncated files, [`ImageError::TooLarge`] when the image has more than
/// [`MAX_ELEMENTS`] samples, [`ImageError::NonFinite`] for NaN/∞ in `.npy`.
pub fn read_image(path: &Path) -> Result<Image, ImageError> {
    let mut rows = RowReader::open_planes(path)?;
    let (width, height, channels) = (rows.width(), rows.height(), rows.planes());
    // Grown row by row, so that a forged header cannot force a huge
    // allocation before the data is seen.
    let mut data = Vec::new();
    for _ in 0..channels * height {
        let start = data.len();
        data.resize(start + width, 0.0);
        rows.next_row(&mut data[start..])?;
    }
    Ok(Image {
        width,
        height,
        channels,
        data,
    })
}

/// Writes an image; the format is chosen by the (case-insensitive) extension.
///
/// * `.png` / `.pgm`: one channel only; samples are clamped to `[0, 1]` and
///   rounded to nearest at the given `bit_depth` (`round(v * 255)` or
///   `round(v * 65535)`); 16-bit samples are stored big-endian (PGM `maxval`
///   255 or 65535).
/// * `.npy`: `float32` little-endian, written exactly (`bit_depth` is
///   ignored), shape `(H, W)` for one channel, `(C, H, W)` otherwise.
///   Non-finite values are written as they are.
///
/// One-channel images are written with a [`RowWriter`]: the file is made
/// under a temporary name next to `path` and renamed when complete, so that
/// `path` is left as it was when an error occurs.
///
/// # Errors
///
/// [`ImageError::BadShape`] when the image is inconsistent (see
/// [`Image::validate`]), [`ImageError::UnsupportedFormat`] for unknown
/// extensions or multi-channel PNG/PGM, [`ImageError::NonFinite`] for NaN/∞
/// samples in PNG/PGM output, [`ImageError::TooLarge`] for PNG dimensions
/// above `u32::MAX`, [`ImageError::Io`] / [`ImageError::PngEncode`] when
/// writing fails.
pub fn write_image(path: &Path, img: &Image, bit_depth: BitDepth) -> Result<(), ImageError> {
    let format = format_of(path)?;
    img.validate()?;
    if img.channels != 1 {
        return match format {
            Format::Npy => write_npy_f32(path, &[img.channels, img.height, img.width], &img.data),
            Format::Png | Format::Pgm => Err(unsupported(
                path,
                format!(
                    "PNG/PGM output supports 1 channel only, the image has {}",
                    img.channels
                ),
            )),
        };
    }
    let mut rows = RowWriter::create(path, img.width, img.height, bit_depth, RowOrder::Sequential)?;
    for row in img.data.chunks_exact(img.width) {
        rows.write_row(row)?;
    }
    rows.finish()
}

/// Reads a NumPy `.npy` array of dtype `<f4` (or `<f8`, converted to `f32`)
/// in C order, of any rank (a 0-d array has shape `[]` and one element).
///
/// Returns the shape and the flat C-order data. Values are returned as
/// stored (NaN/∞ included). Accepts format versions 1.0, 2.0 and 3.0.
///
/// # Errors
///
/// [`ImageError::Io`] when the file cannot be read, [`ImageError::Decode`]
/// for a bad magic string, malformed header or wrong data length,
/// [`ImageError::UnsupportedFormat`] for another dtype or Fortran order,
/// [`ImageError::TooLarge`] for more than [`MAX_ELEMENTS`] elements.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), ImageError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    npy::decode(path, &bytes)
}

/// Writes a `float32` little-endian C-order NumPy `.npy` file (format
/// version 1.0, or 2.0 when the header does not fit 1.0) with the given
/// `shape`. Values are written exactly, NaN/∞ included.
///
/// # Errors
///
/// [`ImageError::BadShape`] when the product of `shape` differs from
/// `data.len()`, [`ImageError::TooLarge`] when it overflows or exceeds
/// [`MAX_ELEMENTS`], [`ImageError::Io`] when writing fails.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), ImageError> {
    let n = element_count(shape).ok_or_else(|| too_large(path, shape))?;
    if n != data.len() {
        return Err(ImageError::BadShape {
            reason: format!(
                "shape {} needs {} elements but data holds {}",
                dims_string(shape),
                n,
                data.len()
            ),
        });
    }
    let header = npy::encode_header(shape);
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::new(file);
    w.write_all(&header).map_err(io_err(path))?;
    let mut buf = Vec::new();
    for chunk in data.chunks(8192) {
        buf.clear();
        extend_f32_le(chunk, &mut buf);
        w.write_all(&buf).map_err(io_err(path))?;
    }
    w.flush().map_err(io_err(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, empty scratch directory for one test.
    pub(super) fn scratch_dir(name: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "n3net-image-io-{}-{}-{}",
            std::process::id(),
            name,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub(super) fn grey(width: usize, height: usize, f: impl Fn(usize, usize) -> f32) -> Image {
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                data.push(f(x, y));
            }
        }
        Image::new(width, height, 1, data).unwrap()
    }

    // --- minimal PNG writer for hand-made files (stored deflate blocks) ---

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn zlib_stored(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x78, 0x01];
        let mut chunks = data.chunks(65535).peekable();
        if data.is_empty() {
            out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
        }
        while let Some(c) = chunks.next() {
            out.push(u8::from(chunks.peek().is_none()));
            let len = c.len() as u16;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(c);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        out.extend_from_slice(&((b << 16) | a).to_be_bytes());
        out
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }

    pub(super) fn raw_png(
        w: u32,
        h: u32,
        depth: u8,
        color: u8,
        interlace: u8,
        scanlines: &[u8],
    ) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[depth, color, 0, 0, interlace]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &zlib_stored(scanlines));
        chunk(&mut out, b"IEND", &[]);
        out
    }

    pub(super) fn encode_png(
        path: &Path,
        w: u32,
        h: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        palette: Option<&[u8]>,
        data: &[u8],
    ) {
        let file = File::create(path).unwrap();
        let mut enc = png::Encoder::new(BufWriter::new(file), w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        if let Some(p) = palette {
            enc.set_palette(p.to_vec());
        }
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(data).unwrap();
        wr.finish().unwrap();
    }

    // --- round trips ---

    #[test]
    fn png_8bit_round_trip_exact() {
        let dir = scratch_dir("png8");
        let img = grey(37, 21, |x, y| ((x * 7 + y * 13) % 256) as f32 / 255.0);
        let p = dir.join("a.png");
        write_image(&p, &img, BitDepth::Eight).unwrap();
        let back = read_image(&p).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn png_16bit_round_trip_exact() {
        let dir = scratch_dir("png16");
        let img = grey(19, 33, |x, y| {
            ((x * 3001 + y * 977) % 65536) as f32 / 65535.0
        });
        let p = dir.join("a.PNG");
        write_image(&p, &img, BitDepth::Sixteen).unwrap();
        let back = read_image(&p).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn pgm_round_trips_exact() {
        let dir = scratch_dir("pgm");
        let img8 = grey(31, 9, |x, y| ((x * 11 + y * 5) % 256) as f32 / 255.0);
        let p = dir.join("a.pgm");
        write_image(&p, &img8, BitDepth::Eight).unwrap();
        assert!(std::fs::read(&p).unwrap().starts_with(b"P5\n31 9\n255\n"));
        assert_eq!(read_image(&p).unwrap(), img8);

        let img16 = grey(8, 17, |x, y| ((x * 4099 + y * 31) % 65536) as f32 / 65535.0);
        write_image(&p, &img16, BitDepth::Sixteen).unwrap();
        assert_eq!(read_image(&p).unwrap(), img16);
    }

    #[test]
    fn quantisation_clamps_and_rounds() {
        let dir = scratch_dir("quant");
        let img = Image::new(6, 1, 1, vec![-0.3, 0.0, 0.5, 0.2 / 255.0, 0.6 / 255.0, 1.7]).unwrap();
        let p = dir.join("q.pgm");
        write_image(&p, &img, BitDepth::Eight).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[bytes.len() - 6..], &[0, 0, 128, 0, 1, 255]);
        let back = read_image(&dir.join("q.pgm")).unwrap();
        assert_eq!(
            back.data,
            vec![0.0, 0.0, 128.0 / 255.0, 0.0, 1.0 / 255.0, 1.0]
        );
    }

    #[test]
    fn npy_round_trip_exact() {
        let dir = scratch_dir("npy");
        let vals: Vec<f32> = (0..2 * 5 * 7)
            .map(|i| (i as f32 - 20.0) * 0.123_456_7 + f32::MIN_POSITIVE * 0.5)
            .collect();
        let img = Image::new(7, 5, 2, vals.clone()).unwrap();
        let p = dir.join("x.npy");
        write_image(&p, &img, BitDepth::Eight).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes[10 + hlen - 1], b'\n');
        assert_eq!(read_image(&p).unwrap(), img);
        let (shape, data) = read_npy_f32(&p).unwrap();
        assert_eq!(shape, vec![2, 5, 7]);
        assert_eq!(data, vals);

        // One channel -> (H, W).
        let one = Image::new(7, 10, 1, vals).unwrap();
        write_image(&p, &one, BitDepth::Sixteen).unwrap();
        assert_eq!(read_npy_f32(&p).unwrap().0, vec![10, 7]);
        assert_eq!(read_image(&p).unwrap(), one);
    }

    #[test]
    fn npy_any_rank_and_specials() {
        let dir = scratch_dir("npyrank");
        let p = dir.join("r.npy");
        for shape in [vec![], vec![5], vec![2, 3], vec![1, 2, 3, 2], vec![0, 4]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * -1.5).collect();
            write_npy_f32(&p, &shape, &data).unwrap();
            assert_eq!(read_npy_f32(&p).unwrap(), (shape.clone(), data));
        }
        // NaN/inf survive read_npy_f32 but are rejected as an image.
        write_npy_f32(&p, &[1, 3], &[0.0, f32::NAN, f32::INFINITY]).unwrap();
        let (_, d) = read_npy_f32(&p).unwrap();
        assert!(d[1].is_nan() && d[2] == f32::INFINITY);
        assert!(matches!(
            read_image(&p),
            Err(ImageError::NonFinite { index: 1, .. })
        ));
        // Rank 1 and 4 and zero-size arrays are not images.
        write_npy_f32(&p, &[4], &[0.0; 4]).unwrap();
        assert!(matches!(
            read_image(&p),
            Err(ImageError::UnsupportedFormat { .. })
        ));
        write_npy_f32(&p, &[0, 4], &[]).unwrap();
        assert!(matches!(read_image(&p), Err(ImageError::Decode { .. })));
        // Shape/data mismatch.
        assert!(matches!(
            write_npy_f32(&p, &[2, 2], &[0.0; 3]),
            Err(ImageError::BadShape { .. })
        ));
        assert!(matches!(
            write_npy_f32(&p, &[usize::MAX, 2], &[]),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn npy_writer_switches_to_v2_for_long_headers() {
        let dir = scratch_dir("npylong");
        let p = dir.join("l.npy");
        let shape = vec![1usize; 25_000];
        write_npy_f32(&p, &shape, &[0.75]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x02\x00");
        let hlen = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert_eq!((12 + hlen) % 64, 0);
        assert_eq!(read_npy_f32(&p).unwrap(), (shape, vec![0.75]));
    }

    pub(super) fn npy_bytes(version: u8, header: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY".to_vec();
        out.push(version);
        out.push(0);
        if version == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn npy_v2_f64_and_header_variants() {
        let dir = scratch_dir("npyv2");
        let p = dir.join("v.npy");
        let vals = [0.25f64, -1.0e-3, 3.0, 1.0 / 3.0, 0.0, 1.0];
        let payload: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        // Version 2.0, '<f8', odd spacing, key order and quotes, no trailing comma.
        let header = "{\"shape\":(2,3) ,'fortran_order' : False, 'descr':'<f8'}   \n";
        std::fs::write(&p, npy_bytes(2, header, &payload)).unwrap();
        let (shape, data) = read_npy_f32(&p).unwrap();
        assert_eq!(shape, vec![2, 3]);
        let expect: Vec<f32> = vals.iter().map(|&v| v as f32).collect();
        assert_eq!(data, expect);
        let img = read_image(&p).unwrap();
        assert_eq!((img.channels, img.height, img.width), (1, 2, 3));

        // Version 1.0 with a 1-tuple shape and Python 2 long.
        let payload: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n";
        std::fs::write(&p, npy_bytes(1, header, &payload)).unwrap();
        assert_eq!(read_npy_f32(&p).unwrap(), (vec![2], vec![1.0, 2.0]));
    }

    #[test]
    fn npy_rejections() {
        let dir = scratch_dir("npybad");
        let p = dir.join("b.npy");
        let f4 = |n: usize| vec![0u8; 4 * n];
        let unsupported_cases = [
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
            "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }",
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }",
            "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }",
        ];
        for h in unsupported_cases {
            std::fs::write(&p, npy_bytes(1, h, &f4(4))).unwrap();
            let e = read_npy_f32(&p).unwrap_err();
            assert!(
                matches!(e, ImageError::UnsupportedFormat { .. }),
                "{h}: {e}"
            );
        }
        let malformed = [
            "",
            "{",
            "{}",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} junk",
            "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 2)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 2)}",
        ];
        for h in malformed {
            std::fs::write(&p, npy_bytes(1, h, &f4(4))).unwrap();
            let e = read_npy_f32(&p).unwrap_err();
            assert!(matches!(e, ImageError::Decode { .. }), "{h}: {e}");
        }
        let good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
        // Too little / too much data.
        std::fs::write(&p, npy_bytes(1, good, &f4(3))).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(ImageError::Decode { .. })));
        std::fs::write(&p, npy_bytes(1, good, &f4(5))).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(ImageError::Decode { .. })));
        // Huge shape in a tiny file.
        let huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }\n";
        std::fs::write(&p, npy_bytes(1, huge, &f4(4))).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(ImageError::TooLarge { .. })));
        let big = "{'descr': '<f4', 'fortran_order': False, 'shape': (40000, 40000), }\n";
        std::fs::write(&p, npy_bytes(1, big, &f4(4))).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(ImageError::Decode { .. })));
        // Unknown version, bad magic, header length beyond the file.
        let mut v = npy_bytes(1, good, &f4(4));
        v[6] = 9;
        std::fs::write(&p, &v).unwrap();
        assert!(matches!(
            read_npy_f32(&p),
            Err(ImageError::UnsupportedFormat { .. })
        ));
        let mut v = npy_bytes(1, good, &f4(4));
        v[1] = b'X';
        std::fs::write(&p, &v).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(ImageError::Decode { .. })));
        let mut v = npy_bytes(2, good, &f4(4));
        v[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&p, &v).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(ImageError::Decode { .. })));
        // Non-ASCII header in v1.
        std::fs::write(&p, npy_bytes(1, "{'descr': '<f4é'}", &[])).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(ImageError::Decode { .. })));
    }

    // --- PNG colour handling ---

    #[test]
    fn rgb_png_is_converted_to_luma() {
        let dir = scratch_dir("rgb");
        let p = dir.join("rgb.png");
        let px: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [12, 200, 77]];
        let data: Vec<u8> = px.iter().flatten().copied().collect();
        encode_png(
            &p,
            2,
            2,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            None,
            &data,
        );
        let img = read_image(&p).unwrap();
        assert_eq!((img.width, img.height, img.channels), (2, 2, 1));
        for (v, c) in img.data.iter().zip(&px) {
            let [r, g, b] = c.map(|x| f64::from(x) / 255.0);
            let expect = (0.2989 * r + 0.5870 * g + 0.1140 * b) as f32;
            assert_eq!(*v, expect);
        }
        assert!((img.data[0] - 0.2989).abs() < 1e-6);
        assert!((img.data[1] - 0.5870).abs() < 1e-6);
        assert!((img.data[2] - 0.1140).abs() < 1e-6);

        // RGBA 16-bit: alpha ignored, big-endian samples.
        let p = dir.join("rgba16.png");
        let px16: [[u16; 4]; 2] = [[65535, 32768, 0, 0], [1000, 2000, 3000, 65535]];
        let data: Vec<u8> = px16
            .iter()
            .flatten()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        encode_png(
            &p,
            2,
            1,
            png::ColorType::Rgba,
            png::BitDepth::Sixteen,
            None,
            &data,
        );
        let img = read_image(&p).unwrap();
        for (v, c) in img.data.iter().zip(&px16) {
            let (r, g, b) = (
                f64::from(c[0]) / 65535.0,
                f64::from(c[1]) / 65535.0,
                f64::from(c[2]) / 65535.0,
            );
            assert_eq!(*v, (0.2989 * r + 0.5870 * g + 0.1140 * b) as f32);
        }
    }

    #[test]
    fn grey_alpha_palette_and_low_bit_png() {
        let dir = scratch_dir("ga");
        // Grey + alpha: alpha dropped.
        let p = dir.join("ga.png");
        encode_png(
            &p,
            3,
            1,
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Eight,
            None,
            &[10, 0, 20, 128, 255, 255],
        );
        assert_eq!(
            read_image(&p).unwrap().data,
            vec![10.0 / 255.0, 20.0 / 255.0, 1.0]
        );
        // 16-bit grey + alpha.
        let p = dir.join("ga16.png");
        encode_png(
            &p,
            1,
            1,
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Sixteen,
            None,
            &[0x12, 0x34, 0, 0],
        );
        assert_eq!(
            read_image(&p).unwrap().data,
            vec![f32::from(0x1234u16) / 65535.0]
        );
        // Palette: expanded then luma.
        let p = dir.join("pal.png");
        let palette = [0u8, 0, 0, 255, 255, 255, 100, 150, 200];
        encode_png(
            &p,
            3,
            1,
            png::ColorType::Indexed,
            png::BitDepth::Eight,
            Some(&palette),
            &[2, 1, 0],
        );
        let img = read_image(&p).unwrap();
        let l = |r: f64, g: f64, b: f64| {
            (0.2989 * r / 255.0 + 0.5870 * g / 255.0 + 0.1140 * b / 255.0) as f32
        };
        assert_eq!(
            img.data,
            vec![l(100.0, 150.0, 200.0), l(255.0, 255.0, 255.0), 0.0]
        );
        // 1-bit grey: expanded to 0/255.
        let p = dir.join("bw.png");
        encode_png(
            &p,
            10,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::One,
            None,
            &[0b1010_0000, 0b0100_0000],
        );
        let img = read_image(&p).unwrap();
        assert_eq!(
            img.data,
            vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
        );
        // 4-bit grey: v * 17 / 255 = v / 15.
        let p = dir.join("g4.png");
        encode_png(
            &p,
            2,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::Four,
            None,
            &[0x3F],
        );
        assert_eq!(read_image(&p).unwrap().data, vec![51.0 / 255.0, 1.0]);
    }

    #[test]
    fn interlaced_png_is_deinterlaced() {
        let dir = scratch_dir("adam7");
        let (w, h) = (13usize, 10usize);
        let value = |x: usize, y: usize| ((x * 19 + y * 7) % 256) as u8;
        let raw = super::row_tests::adam7(w, h, |x, y| vec![value(x, y)]);
        let p = dir.join("i.png");
        std::fs::write(&p, raw_png(w as u32, h as u32, 8, 0, 1, &raw)).unwrap();
        let img = read_image(&p).unwrap();
        let expect = grey(w, h, |x, y| f32::from(value(x, y)) / 255.0);
        assert_eq!(img, expect);
    }

    #[test]
    fn hand_made_png_matches_encoder() {
        // Sanity check of the test helper itself.
        let dir = scratch_dir("raw");
        let p = dir.join("r.png");
        let mut raw = Vec::new();
        for y in 0..3u8 {
            raw.push(0);
            raw.extend([y, y + 10, y + 20, y + 30]);
        }
        std::fs::write(&p, raw_png(4, 3, 8, 0, 0, &raw)).unwrap();
        let img = read_image(&p).unwrap();
        assert_eq!(img.data[5], 11.0 / 255.0);
    }

    // --- bad input: errors, never panics ---

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let dir = scratch_dir("garbage");
        let img = grey(40, 30, |x, y| ((x * y) % 256) as f32 / 255.0);
        for (name, depth) in [
            ("t.png", BitDepth::Eight),
            ("t16.png", BitDepth::Sixteen),
            ("t.pgm", BitDepth::Eight),
            ("t16.pgm", BitDepth::Sixteen),
            ("t.npy", BitDepth::Eight),
        ] {
            let full = dir.join(name);
            write_image(&full, &img, depth).unwrap();
            let bytes = std::fs::read(&full).unwrap();
            let cut = dir.join(format!("cut_{name}"));
            let step = (bytes.len() / 97).max(1);
            for len in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
                std::fs::write(&cut, &bytes[..len]).unwrap();
                assert!(
                    read_image(&cut).is_err(),
                    "{name} truncated to {len} bytes was accepted"
                );
            }
            // Corrupted bytes anywhere: must not panic (may or may not error).
            let mut state = 12345u64;
            for _ in 0..200 {
                let mut b = bytes.clone();
                for _ in 0..4 {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let i = (state >> 33) as usize % b.len();
                    b[i] = (state >> 16) as u8;
                }
                std::fs::write(&cut, &b).unwrap();
                let _ = read_image(&cut);
            }
        }
        // Pure garbage and empty files.
        for ext in ["png", "pgm", "npy"] {
            let p = dir.join(format!("g.{ext}"));
            std::fs::write(&p, b"this is not an image at all\n\x00\xff").unwrap();
            assert!(read_image(&p).is_err());
            std::fs::write(&p, b"").unwrap();
            assert!(read_image(&p).is_err());
        }
    }

    #[test]
    fn pgm_header_variants_and_errors() {
        let dir = scratch_dir("pgmhdr");
        let p = dir.join("h.pgm");
        // Comments and odd whitespace; maxval 1000 -> 16-bit samples.
        let mut f = b"P5 # comment\n# another\n2\t1\r\n1000 ".to_vec();
        f.extend_from_slice(&500u16.to_be_bytes());
        f.extend_from_slice(&1000u16.to_be_bytes());
        std::fs::write(&p, &f).unwrap();
        assert_eq!(read_image(&p).unwrap().data, vec![0.5, 1.0]);
        // maxval 15 (8-bit samples), trailing data ignored.
        std::fs::write(&p, b"P5\n2 1\n15\n\x05\x0fEXTRA").unwrap();
        assert_eq!(read_image(&p).unwrap().data, vec![5.0 / 15.0, 1.0]);
        // Sample above maxval.
        std::fs::write(&p, b"P5\n2 1\n15\n\x05\x10").unwrap();
        assert!(matches!(read_image(&p), Err(ImageError::Decode { .. })));
        // ASCII variant unsupported.
        std::fs::write(&p, b"P2\n2 1\n255\n1 2\n").unwrap();
        assert!(matches!(
            read_image(&p),
            Err(ImageError::UnsupportedFormat { .. })
        ));
        for bad in [
            &b"P5\n2 1\n0\n\x00\x00"[..],
            b"P5\n2 1\n65536\n\x00\x00\x00\x00",
            b"P5\n0 1\n255\n",
            b"P5\n2\n",
            b"P5\n2 1 255",
            b"P52 1 255\n\x00\x00",
            b"P5\n2 x\n255\n\x00\x00",
            b"P5\n99999999999999999999999999 1\n255\n\x00",
            b"P5\n40000 40000\n255\n\x00",
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = read_image(&p).unwrap_err();
            assert!(
                matches!(e, ImageError::Decode { .. } | ImageError::TooLarge { .. }),
                "{e}"
            );
        }
        std::fs::write(&p, b"P5\n100000 100000\n255\n\x00").unwrap();
        assert!(matches!(read_image(&p), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn png_forged_huge_dimensions() {
        let dir = scratch_dir("huge");
        let p = dir.join("h.png");
        // 65536 × 65536 = 2^32 pixels > 2^31.
        std::fs::write(&p, raw_png(65536, 65536, 8, 0, 0, &[0, 1, 2])).unwrap();
        assert!(matches!(read_image(&p), Err(ImageError::TooLarge { .. })));
        // 40000 × 40000 is within the cap but the data is missing: error, and
        // no full-size allocation is made for a non-interlaced image.
        std::fs::write(&p, raw_png(40000, 40000, 16, 6, 0, &[0, 1, 2])).unwrap();
        assert!(read_image(&p).is_err());
    }

    #[test]
    fn write_errors() {
        let dir = scratch_dir("werr");
        let rgb = Image::new(2, 2, 3, vec![0.5; 12]).unwrap();
        for name in ["a.png", "a.pgm"] {
            assert!(matches!(
                write_image(&dir.join(name), &rgb, BitDepth::Eight),
                Err(ImageError::UnsupportedFormat { .. })
            ));
        }
        write_image(&dir.join("a.npy"), &rgb, BitDepth::Eight).unwrap();
        assert_eq!(read_npy_f32(&dir.join("a.npy")).unwrap().0, vec![3, 2, 2]);

        let nan = Image::new(2, 1, 1, vec![0.5, f32::NAN]).unwrap();
        assert!(matches!(
            write_image(&dir.join("n.png"), &nan, BitDepth::Eight),
            Err(ImageError::NonFinite { index: 1, .. })
        ));
        let bad = Image {
            width: 3,
            height: 3,
            channels: 1,
            data: vec![0.0; 8],
        };
        assert!(matches!(
            write_image(&dir.join("b.png"), &bad, BitDepth::Eight),
            Err(ImageError::BadShape { .. })
        ));
        assert!(matches!(
            Image::new(0, 3, 1, vec![]),
            Err(ImageError::BadShape { .. })
        ));
        let ok = Image::new(1, 1, 1, vec![0.0]).unwrap();
        assert!(matches!(
            write_image(&dir.join("x.bmp"), &ok, BitDepth::Eight),
            Err(ImageError::UnsupportedFormat { .. })
        ));
        assert!(matches!(
            write_image(&dir.join("noext"), &ok, BitDepth::Eight),
            Err(ImageError::UnsupportedFormat { .. })
        ));
        assert!(matches!(
            write_image(&dir.join("missing-dir").join("x.png"), &ok, BitDepth::Eight),
            Err(ImageError::Io { .. })
        ));
        assert!(matches!(
            read_image(&dir.join("missing.png")),
            Err(ImageError::Io { .. })
        ));
        assert!(matches!(
            read_image(&dir.join("missing.npy")),
            Err(ImageError::Io { .. })
        ));
        assert!(matches!(
            read_image(&dir.join("x.jpg")),
            Err(ImageError::UnsupportedFormat { .. })
        ));
        // Error messages name the file.
        let e = read_image(&dir.join("missing.pgm")).unwrap_err();
        assert!(e.to_string().contains("missing.pgm"), "{e}");
    }

    #[test]
    fn image_accessors() {
        let img = Image::new(2, 2, 2, (0..8).map(|v| v as f32).collect()).unwrap();
        assert_eq!(img.plane(1), Some(&[4.0, 5.0, 6.0, 7.0][..]));
        assert_eq!(img.plane(2), None);
        assert_eq!(img.plane_len(), Some(4));
    }
}

#[cfg(test)]
mod row_tests;
