//! The error type of the core.

use core::fmt;

/// What went wrong, without the details; stable to match on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorKind {
    /// A layer or block does not fit the one before or after it, or a
    /// hyper-parameter is out of its supported range.
    InvalidModel,
    /// A weight or bias is NaN or infinite.
    NonFiniteWeight,
    /// The image is too small for the network (fewer than two patches).
    ImageTooSmall,
    /// A size computation overflowed `usize`, or the image is larger than supported.
    TooLarge,
    /// The workspace is smaller than [`crate::Plan::workspace_bytes`].
    WorkspaceTooSmall,
    /// An input or output buffer does not have the length the plan needs.
    BufferSize,
    /// An input value is NaN or infinite.
    NonFiniteInput,
    /// Arguments of a free function disagree (lengths, indices out of range).
    InvalidArgument,
    /// A stream was given more rows than the image height it was created for.
    PastEnd,
    /// A push would leave more final rows waiting than the stream can hold
    /// ([`crate::exec::stream::Stream::max_pending_rows`]): pull rows first.
    StreamFull,
    /// A weight blob does not start with the magic bytes `N3NB`.
    BadMagic,
    /// A weight blob has a format version this build does not read.
    UnsupportedVersion,
    /// A weight blob's precision code is unknown (0 f32, 1 f16 and 2 q16 are
    /// read), or the target cannot view its values in place (big-endian);
    /// or a network's precision does not fit the operation (whole-image
    /// plans run f32 networks only).
    UnsupportedPrecision,
    /// A weight blob's CRC-32 does not match its bytes.
    Checksum,
    /// A weight blob is shorter than its header or its recorded total length.
    Truncated,
    /// A weight blob does not start on the alignment its precision needs.
    Misaligned,
    /// A weight blob's header, tables or sections are inconsistent.
    CorruptBlob,
}

/// An error of the core: a [`ErrorKind`] and a static message naming the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Error {
    kind: ErrorKind,
    what: &'static str,
}

impl Error {
    /// An error of `kind` described by `what`.
    pub const fn new(kind: ErrorKind, what: &'static str) -> Self {
        Self { kind, what }
    }

    /// The kind of the error.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A short description of the problem.
    pub const fn message(&self) -> &'static str {
        self.what
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.what)
    }
}

impl core::error::Error for Error {}

/// Result with the core's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// Checked `a * b` that fails with [`ErrorKind::TooLarge`].
pub(crate) fn mul(a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b)
        .ok_or(Error::new(ErrorKind::TooLarge, "size overflows usize"))
}

/// Checked `a + b` that fails with [`ErrorKind::TooLarge`].
pub(crate) fn add(a: usize, b: usize) -> Result<usize> {
    a.checked_add(b)
        .ok_or(Error::new(ErrorKind::TooLarge, "size overflows usize"))
}
