//! Planar activations stored with a zero border.
//!
//! Every activation tensor of the executor is `channels` planes of
//! `(height + 2·pad) × (width + 2·pad)` values; the border is zero and is never
//! written, so a convolution with zero padding `pad` reads its neighbourhood
//! without bounds checks.

use crate::error::{add, mul, Result};

/// Geometry of one padded plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geom {
    /// Image rows.
    pub height: usize,
    /// Image columns.
    pub width: usize,
    /// Zero border on every side.
    pub pad: usize,
}

impl Geom {
    /// A geometry whose sizes are checked not to overflow for up to `max_channels` planes.
    pub fn new(height: usize, width: usize, pad: usize, max_channels: usize) -> Result<Self> {
        let g = Self { height, width, pad };
        let rows = add(height, mul(2, pad)?)?;
        let cols = add(width, mul(2, pad)?)?;
        mul(mul(rows, cols)?, max_channels.max(1))?;
        Ok(g)
    }

    /// Distance between two rows.
    #[inline]
    pub const fn row_stride(&self) -> usize {
        self.width + 2 * self.pad
    }

    /// Distance between two planes.
    #[inline]
    pub const fn plane(&self) -> usize {
        (self.height + 2 * self.pad) * self.row_stride()
    }

    /// Values in `channels` planes.
    #[inline]
    pub const fn len(&self, channels: usize) -> usize {
        channels * self.plane()
    }

    /// Index of image pixel `(y, x)` inside a plane.
    #[inline]
    pub const fn at(&self, y: usize, x: usize) -> usize {
        (y + self.pad) * self.row_stride() + x + self.pad
    }
}

/// A band of rows of padded planes: the whole image ([`Geom`]) or a window of
/// consecutive rows of it (the streaming executor's row buffers).
///
/// Rows are counted in padded coordinates (image row `y` is padded row
/// `y + pad`); buffer row 0 holds padded row `first`. Columns always carry the
/// full zero border of `pad` values on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// Image columns.
    pub width: usize,
    /// Zero border on the left and right, and zero rows above and below the image.
    pub pad: usize,
    /// Distance between two planes (values).
    pub plane: usize,
    /// Padded row held by buffer row 0.
    pub first: usize,
}

impl Band {
    /// Distance between two rows.
    #[inline]
    pub const fn row_stride(&self) -> usize {
        self.width + 2 * self.pad
    }

    /// Rows the buffer can hold.
    #[inline]
    pub const fn rows(&self) -> usize {
        self.plane / self.row_stride()
    }

    /// Index of image pixel `(y, x)` inside a plane; padded row `y + pad` must
    /// be held (`y + pad >= first`).
    #[inline]
    pub const fn at(&self, y: usize, x: usize) -> usize {
        (y + self.pad - self.first) * self.row_stride() + x + self.pad
    }

    /// Whether padded rows `lo..hi` lie inside the buffer.
    #[inline]
    pub const fn holds(&self, lo: usize, hi: usize) -> bool {
        lo >= self.first && lo <= hi && hi - self.first <= self.rows()
    }
}

impl From<Geom> for Band {
    fn from(g: Geom) -> Self {
        Self {
            width: g.width,
            pad: g.pad,
            plane: g.plane(),
            first: 0,
        }
    }
}
