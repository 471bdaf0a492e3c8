//! Shared pieces of the fuzz targets: the two small committed models, byte
//! buffers at a chosen alignment, the image readers driven from bytes, and
//! the checks every target applies to what the library returns.
//!
//! The models in `models/` are the project's random-weight test fixtures
//! (`tests/fixtures/tiny*`) converted with `n3net convert`: `tiny-f32.n3b`
//! (one input channel, f32) and `tiny-2ch-q16.n3b` (image and σ channels,
//! q16), small enough that a fuzz input runs the whole network in
//! milliseconds.
#![forbid(unsafe_code)]

use std::path::Path;

use n3net_runtime::image_io::{read_image, Image, ImageError, RowReader};

/// Bytes that start on a 16-byte boundary.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static TINY_F32: &Aligned<[u8]> = &Aligned(*include_bytes!("../models/tiny-f32.n3b"));
static TINY_2CH_Q16: &Aligned<[u8]> = &Aligned(*include_bytes!("../models/tiny-2ch-q16.n3b"));

/// The f32 model with one input channel (no σ input).
pub fn tiny_f32() -> &'static [u8] {
    &TINY_F32.0
}

/// The q16 model with an image and a σ channel.
pub fn tiny_2ch_q16() -> &'static [u8] {
    &TINY_2CH_Q16.0
}

/// A copy of some bytes whose first byte lies `offset` bytes past a 16-byte
/// boundary.
pub struct Placed {
    store: Vec<u8>,
    start: usize,
    len: usize,
}

impl Placed {
    /// Copies `bytes` to an address `offset % 16` bytes past a 16-byte boundary.
    pub fn new(bytes: &[u8], offset: usize) -> Self {
        let mut store = vec![0u8; bytes.len() + 32];
        let start = store.as_ptr().align_offset(16) + offset % 16;
        store[start..start + bytes.len()].copy_from_slice(bytes);
        Placed {
            store,
            start,
            len: bytes.len(),
        }
    }

    /// The placed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.store[self.start..self.start + self.len]
    }

    /// The placed bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.store[self.start..self.start + self.len]
    }
}

/// Writes `data` to a scratch file with extension `ext` (one per process,
/// so that parallel fuzzing jobs do not share it), runs `f` on its path and
/// removes it.
pub fn with_file<R>(ext: &str, data: &[u8], f: impl FnOnce(&Path) -> R) -> R {
    let path = std::env::temp_dir().join(format!("n3net-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    let r = f(&path);
    std::fs::remove_file(&path).expect("scratch file");
    r
}

/// Reads `data` as an image file with extension `ext` twice, whole
/// ([`read_image`]) and row by row ([`RowReader`]), and checks that an image
/// that is accepted is consistent, finite, and the same both ways. Returns
/// the image, if it was accepted.
pub fn read_both_ways(ext: &str, data: &[u8]) -> Option<Image> {
    let (whole, rows) = with_file(ext, data, |path| (read_image(path), read_rows(path)));
    match (whole, rows) {
        (Ok(img), rows) => {
            assert!(img.width > 0 && img.height > 0 && img.channels > 0);
            assert_eq!(img.data.len(), img.width * img.height * img.channels);
            assert!(img.data.iter().all(|v| v.is_finite()), "non-finite sample");
            if img.channels == 1 {
                let rows = rows.expect("read_image accepted what RowReader refused");
                assert!(rows == img.data, "RowReader and read_image disagree");
            }
            Some(img)
        }
        (Err(e), Ok(_)) => panic!("RowReader accepted what read_image refused: {e}"),
        (Err(_), Err(_)) => None,
    }
}

fn read_rows(path: &Path) -> Result<Vec<f32>, ImageError> {
    let mut r = RowReader::open(path)?;
    let mut data = Vec::new();
    for _ in 0..r.height() {
        let start = data.len();
        data.resize(start + r.width(), 0.0);
        r.next_row(&mut data[start..])?;
    }
    Ok(data)
}

/// Checks an integer returned by a C ABI call: a success value or one of
/// the documented error codes, never `N3NET_ERR_INTERNAL` (a caught panic).
pub fn check_code(rc: i32) {
    assert!(
        (n3net::N3NET_ERR_STREAM_STATE..=1).contains(&rc),
        "undocumented return code {rc}"
    );
    // A static, non-empty message exists for every code.
    let msg = n3net::n3net_strerror(rc);
    assert!(!msg.is_null());
}
