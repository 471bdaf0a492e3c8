//! Carving typed buffers out of the caller's byte workspace.
//!
//! The same [`Layout`] computes the size (for the query) and the offsets (for the
//! run), so the two can never disagree.

use crate::error::{add, mul, Error, ErrorKind, Result};

/// Every buffer starts on a cache line (and an AVX register) boundary.
pub const ALIGN: usize = 64;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for i16 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for u32 {}
}

/// Plain numeric types for which every bit pattern is a valid value (and
/// all-zero bytes are the value zero).
pub trait Pod: Copy + Default + sealed::Sealed {}
impl Pod for f32 {}
impl Pod for half::f16 {}
impl Pod for i16 {}
impl Pod for i32 {}
impl Pod for i64 {}
impl Pod for u32 {}

fn round_up(n: usize) -> Result<usize> {
    Ok(add(n, ALIGN - 1)? / ALIGN * ALIGN)
}

/// Accumulates buffer sizes, each rounded up to [`ALIGN`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Layout {
    bytes: usize,
}

impl Layout {
    /// Adds a buffer of `n` values of `T`.
    pub fn push<T: Pod>(&mut self, n: usize) -> Result<()> {
        self.bytes = add(self.bytes, round_up(mul(n, core::mem::size_of::<T>())?)?)?;
        Ok(())
    }

    /// Bytes needed, including the slack that lets the caller's buffer start
    /// at any address.
    pub fn bytes(&self) -> Result<usize> {
        add(self.bytes, ALIGN - 1)
    }
}

/// Hands out consecutive aligned buffers of a workspace.
pub struct Carver<'a> {
    rest: &'a mut [u8],
}

impl<'a> Carver<'a> {
    /// Starts carving `ws` at its first aligned byte.
    pub fn new(ws: &'a mut [u8]) -> Result<Self> {
        let skip = ws.as_ptr().align_offset(ALIGN);
        let rest = ws.get_mut(skip..).ok_or(Error::new(
            ErrorKind::WorkspaceTooSmall,
            "workspace too small",
        ))?;
        Ok(Self { rest })
    }

    /// The next buffer of `n` values of `T`, zeroed.
    pub fn take<T: Pod>(&mut self, n: usize) -> Result<&'a mut [T]> {
        let buf = self.take_as_is(n)?;
        buf.fill(T::default());
        Ok(buf)
    }

    /// The next buffer of `n` values of `T`, holding whatever values its
    /// bytes make: for scratch that is written before it is read, carved
    /// anew for every use.
    pub fn take_as_is<T: Pod>(&mut self, n: usize) -> Result<&'a mut [T]> {
        let bytes = mul(n, core::mem::size_of::<T>())?;
        let step = round_up(bytes)?;
        if step > self.rest.len() {
            return Err(Error::new(
                ErrorKind::WorkspaceTooSmall,
                "workspace too small",
            ));
        }
        let rest = core::mem::take(&mut self.rest);
        let (head, tail) = rest.split_at_mut(step);
        self.rest = tail;
        // SAFETY: `T` is sealed to plain numbers (f32, f16, i16, i32, i64,
        // u32), for which every bit pattern is a valid value, and `head`
        // starts on an `ALIGN` boundary, a multiple of `T`'s alignment, so
        // the prefix is empty.
        let (pre, mid, _) = unsafe { head[..bytes].align_to_mut::<T>() };
        if !pre.is_empty() || mid.len() != n {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "workspace alignment",
            ));
        }
        Ok(mid)
    }
}
