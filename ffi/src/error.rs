//! Error codes of the C API, their messages, and the boundary that keeps
//! panics inside the library.

use core::ffi::c_char;

use n3net_core::{Error, ErrorKind};

/// Success.
pub const N3NET_OK: i32 = 0;
/// A required pointer argument is NULL.
pub const N3NET_ERR_NULL_POINTER: i32 = -1;
/// An argument is out of its range: a zero width or height, a stride smaller
/// than the width, a bit depth outside 1..=16 or a sample above it, an
/// unknown format or ISA, non-zero reserved bytes, a misaligned buffer, or
/// source and destination buffers that overlap other than exactly (in place).
pub const N3NET_ERR_INVALID_ARGUMENT: i32 = -2;
/// A size computation overflows `size_t`, or the image is larger than supported.
pub const N3NET_ERR_TOO_LARGE: i32 = -3;
/// A source or destination buffer holds fewer than
/// `(height - 1) * stride + width` samples (or a row fewer than `width`).
pub const N3NET_ERR_BUFFER_TOO_SMALL: i32 = -4;
/// The workspace is smaller than its size query says.
pub const N3NET_ERR_WORKSPACE_TOO_SMALL: i32 = -5;
/// The image is smaller than the network's patch grid needs.
pub const N3NET_ERR_IMAGE_TOO_SMALL: i32 = -6;
/// A float input sample is NaN or infinite (refused before anything is
/// written), or float samples far outside `[0, 1]` made values overflow
/// inside the network (the call stops at the first row that is not
/// finite: the rows before it are written, a stream cannot go on).
pub const N3NET_ERR_NON_FINITE_INPUT: i32 = -7;
/// The noise level does not suit the model: missing for a noise-conditioned
/// model, given to a fixed-σ model, of unknown kind, NaN, negative or above
/// the supported maximum.
pub const N3NET_ERR_NOISE_LEVEL: i32 = -8;
/// A Bayer call got an unknown CFA pattern, odd mosaic dimensions, or
/// black and white levels that are not `black < white <= 65535`.
pub const N3NET_ERR_BAD_CFA: i32 = -9;
/// The blob does not start with the magic bytes `N3NB`.
pub const N3NET_ERR_BAD_MAGIC: i32 = -10;
/// The blob's format version is not read by this library.
pub const N3NET_ERR_UNSUPPORTED_VERSION: i32 = -11;
/// The blob's precision code is unknown, or the target cannot read it in place.
pub const N3NET_ERR_UNSUPPORTED_PRECISION: i32 = -12;
/// The blob's CRC-32 does not match its bytes.
pub const N3NET_ERR_CHECKSUM: i32 = -13;
/// The blob is shorter than its header or its recorded length.
pub const N3NET_ERR_TRUNCATED: i32 = -14;
/// The blob does not start on the alignment its precision needs (16 bytes
/// is always enough).
pub const N3NET_ERR_MISALIGNED: i32 = -15;
/// The blob's header, tables or sections are inconsistent.
pub const N3NET_ERR_CORRUPT_BLOB: i32 = -16;
/// The network the blob describes is invalid (shapes, hyper-parameters or
/// non-finite weights).
pub const N3NET_ERR_INVALID_MODEL: i32 = -17;
/// The model or stream handle is not open (never opened, failed to open, or closed).
pub const N3NET_ERR_NOT_OPEN: i32 = -18;
/// The stream cannot take this row: every row was already pushed, or too
/// many final rows wait to be pulled (pull first).
pub const N3NET_ERR_STREAM_STATE: i32 = -19;
/// An internal error (a bug); the call had no effect on the model.
pub const N3NET_ERR_INTERNAL: i32 = -20;

/// An error code on its way out of the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Code(pub(crate) i32);

/// The result of the library's internal functions.
pub(crate) type Status<T = ()> = Result<T, Code>;

impl From<Error> for Code {
    fn from(e: Error) -> Self {
        Code(match e.kind() {
            ErrorKind::InvalidModel | ErrorKind::NonFiniteWeight => N3NET_ERR_INVALID_MODEL,
            ErrorKind::ImageTooSmall => N3NET_ERR_IMAGE_TOO_SMALL,
            ErrorKind::TooLarge => N3NET_ERR_TOO_LARGE,
            ErrorKind::WorkspaceTooSmall => N3NET_ERR_WORKSPACE_TOO_SMALL,
            ErrorKind::NonFiniteInput => N3NET_ERR_NON_FINITE_INPUT,
            ErrorKind::InvalidArgument => N3NET_ERR_INVALID_ARGUMENT,
            ErrorKind::PastEnd | ErrorKind::StreamFull => N3NET_ERR_STREAM_STATE,
            ErrorKind::BadMagic => N3NET_ERR_BAD_MAGIC,
            ErrorKind::UnsupportedVersion => N3NET_ERR_UNSUPPORTED_VERSION,
            ErrorKind::UnsupportedPrecision => N3NET_ERR_UNSUPPORTED_PRECISION,
            ErrorKind::Checksum => N3NET_ERR_CHECKSUM,
            ErrorKind::Truncated => N3NET_ERR_TRUNCATED,
            ErrorKind::Misaligned => N3NET_ERR_MISALIGNED,
            ErrorKind::CorruptBlob => N3NET_ERR_CORRUPT_BLOB,
            // BufferSize: the library sizes every buffer it hands the core.
            _ => N3NET_ERR_INTERNAL,
        })
    }
}

/// For a result borrowed where it was returned (`Result::as_ref`).
impl From<&Error> for Code {
    fn from(e: &Error) -> Self {
        Self::from(*e)
    }
}

/// Runs the body of an exported function and turns its result into a code.
/// Hosted builds catch a panic (none is expected) so that it never unwinds
/// into C.
pub(crate) fn guard(body: impl FnOnce() -> Status<i32>) -> i32 {
    #[cfg(feature = "std")]
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or(Err(Code(N3NET_ERR_INTERNAL)));
    #[cfg(not(feature = "std"))]
    let result = body();
    result.unwrap_or_else(|Code(c)| c)
}

/// The static message of every code, NUL-terminated.
const MESSAGES: [(i32, &core::ffi::CStr); 21] = [
    (N3NET_OK, c"success"),
    (N3NET_ERR_NULL_POINTER, c"a required pointer is NULL"),
    (N3NET_ERR_INVALID_ARGUMENT, c"invalid argument (dimension, stride, bit depth, format, sample value, reserved bytes, alignment or overlapping buffers)"),
    (N3NET_ERR_TOO_LARGE, c"image or buffer size overflows or is larger than supported"),
    (N3NET_ERR_BUFFER_TOO_SMALL, c"source or destination buffer too small for the geometry"),
    (N3NET_ERR_WORKSPACE_TOO_SMALL, c"workspace smaller than its size query"),
    (N3NET_ERR_IMAGE_TOO_SMALL, c"image smaller than the network's patch grid"),
    (N3NET_ERR_NON_FINITE_INPUT, c"input sample is NaN or infinite, or values overflowed inside the network"),
    (N3NET_ERR_NOISE_LEVEL, c"noise level missing, unexpected or out of range for this model"),
    (N3NET_ERR_BAD_CFA, c"unknown CFA pattern, odd mosaic size, or black level not below white level"),
    (N3NET_ERR_BAD_MAGIC, c"not an n3net weight blob (bad magic)"),
    (N3NET_ERR_UNSUPPORTED_VERSION, c"weight blob format version not supported"),
    (N3NET_ERR_UNSUPPORTED_PRECISION, c"weight blob precision not supported"),
    (N3NET_ERR_CHECKSUM, c"weight blob checksum mismatch (corrupt blob)"),
    (N3NET_ERR_TRUNCATED, c"weight blob truncated"),
    (N3NET_ERR_MISALIGNED, c"weight blob misaligned"),
    (N3NET_ERR_CORRUPT_BLOB, c"weight blob header or tables inconsistent"),
    (N3NET_ERR_INVALID_MODEL, c"the blob describes an invalid network"),
    (N3NET_ERR_NOT_OPEN, c"model or stream handle is not open"),
    (N3NET_ERR_STREAM_STATE, c"stream cannot take the row (past the last row, or pull rows first)"),
    (N3NET_ERR_INTERNAL, c"internal error"),
];

/// A static, NUL-terminated description of `code` ("unknown error code" for
/// codes this library never returns). Never NULL; the string must not be freed.
#[no_mangle]
pub extern "C" fn n3net_strerror(code: i32) -> *const c_char {
    MESSAGES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(c"unknown error code", |(_, m)| m)
        .as_ptr()
}
