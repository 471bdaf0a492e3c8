//! The patch grid along one image axis, its padding, the search window and the
//! fold coverage.
//!
//! All of it is computed from the whole image size, so the result never depends
//! on how the image is cut into pieces for execution.

use crate::error::{Error, ErrorKind, Result};

/// The patch grid along one axis (rows or columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    /// Image pixels along the axis.
    pub len: usize,
    /// Patch side.
    pub patch: usize,
    /// Patch stride.
    pub stride: usize,
    /// Zero padding before the first pixel.
    pub before: usize,
    /// Zero padding after the last pixel.
    pub after: usize,
    /// Number of patches.
    pub count: usize,
}

impl Axis {
    /// The grid for an axis of `len` pixels: `pv = (-(len - patch)) mod stride`,
    /// `before = pv / 2`, `after = pv - before`, `count = (len + pv - patch) / stride + 1`.
    pub fn new(len: usize, patch: usize, stride: usize) -> Result<Self> {
        if stride == 0 || patch < stride {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "patch grid: need 0 < stride <= patch",
            ));
        }
        if len < patch {
            return Err(Error::new(
                ErrorKind::ImageTooSmall,
                "image side smaller than one patch",
            ));
        }
        let pv = (stride - (len - patch) % stride) % stride;
        let before = pv / 2;
        Ok(Self {
            len,
            patch,
            stride,
            before,
            after: pv - before,
            count: (len + pv - patch) / stride + 1,
        })
    }

    /// First patch and number of patches of the search window of patch `i`.
    ///
    /// The side is `min(window, count)`; the window is centred on `i` and
    /// shifted (not cropped) to stay inside the grid.
    pub fn window(&self, i: usize, window: usize) -> (usize, usize) {
        let side = window.min(self.count);
        let start = i.saturating_sub((window - 1) / 2).min(self.count - side);
        (start, side)
    }

    /// Image coordinate of pixel `offset` of patch `i`, or `None` where it lies
    /// in the grid padding.
    #[inline]
    pub fn pixel(&self, i: usize, offset: usize) -> Option<usize> {
        (i * self.stride + offset)
            .checked_sub(self.before)
            .filter(|&v| v < self.len)
    }

    /// Number of patches covering padded coordinate `r` (for the fold average).
    pub fn coverage(&self, r: usize) -> usize {
        let lo = (r + 1).saturating_sub(self.patch).div_ceil(self.stride);
        let hi = (r / self.stride).min(self.count - 1);
        if hi >= lo {
            hi - lo + 1
        } else {
            0
        }
    }
}

/// The columns an executor holds of an image: image columns `x0 .. x0 + width`
/// (a column stripe plus its halo, or the whole image) and the patch columns
/// `j0 .. j0 + n` of the whole-image grid that overlap them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// First image column held.
    pub x0: usize,
    /// Image columns held.
    pub width: usize,
    /// First patch column held.
    pub j0: usize,
    /// Patch columns held.
    pub n: usize,
}

impl Columns {
    /// Every column of the image.
    pub fn whole(cols: &Axis) -> Self {
        Self {
            x0: 0,
            width: cols.len,
            j0: 0,
            n: cols.count,
        }
    }

    /// Image columns `x0 .. x0 + width` (inside the image) and the patches
    /// of `cols` overlapping them.
    pub fn window(cols: &Axis, x0: usize, width: usize) -> Self {
        // Patch j covers padded columns j·s .. j·s + p, image column x is
        // padded column x + before.
        let lo = x0 + cols.before;
        let j0 = (lo + 1).saturating_sub(cols.patch).div_ceil(cols.stride);
        let j1 = ((lo + width - 1) / cols.stride).min(cols.count - 1);
        Self {
            x0,
            width,
            j0,
            n: j1 + 1 - j0,
        }
    }

    /// Most patch columns a window `width` columns wide can overlap, for a
    /// grid of patch side `patch` and stride `stride` on any image.
    pub fn max_patches(width: usize, patch: usize, stride: usize) -> usize {
        (width + patch) / stride + 1
    }

    /// Column of pixel `offset` of patch column `j` in the held columns, or
    /// `None` where it lies in the grid padding or outside the held columns.
    #[inline]
    pub fn pixel(&self, cols: &Axis, j: usize, offset: usize) -> Option<usize> {
        cols.pixel(j, offset)?
            .checked_sub(self.x0)
            .filter(|&x| x < self.width)
    }

    /// Whether patch columns `start .. start + n` are all held.
    #[inline]
    pub fn holds(&self, start: usize, n: usize) -> bool {
        start >= self.j0 && start + n <= self.j0 + self.n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_count_follow_the_spec() {
        // 64 px, patch 10, stride 5: (64 - 10) mod 5 = 4 → pv = 1.
        let a = Axis::new(64, 10, 5).unwrap();
        assert_eq!((a.before, a.after, a.count), (0, 1, 12));
        // 481 px: (481 - 10) mod 5 = 1 → pv = 4 → 2 + 2.
        let a = Axis::new(481, 10, 5).unwrap();
        assert_eq!((a.before, a.after, a.count), (2, 2, 96));
        // Exact fit needs no padding.
        let a = Axis::new(20, 10, 5).unwrap();
        assert_eq!((a.before, a.after, a.count), (0, 0, 3));
        assert_eq!(
            Axis::new(9, 10, 5).unwrap_err().kind(),
            ErrorKind::ImageTooSmall
        );
        assert_eq!(Axis::new(10, 10, 5).unwrap().count, 1);
    }

    #[test]
    fn window_shifts_at_the_borders() {
        let a = Axis::new(481, 10, 5).unwrap(); // 96 patches
        assert_eq!(a.window(0, 15), (0, 15));
        assert_eq!(a.window(7, 15), (0, 15));
        assert_eq!(a.window(8, 15), (1, 15));
        assert_eq!(a.window(50, 15), (43, 15));
        assert_eq!(a.window(88, 15), (81, 15));
        assert_eq!(a.window(95, 15), (81, 15));
        for i in 0..a.count {
            let (s, n) = a.window(i, 15);
            assert!(s <= i && i < s + n && s + n <= a.count);
        }
    }

    #[test]
    fn column_windows_hold_every_overlapping_patch() {
        for (len, p, st) in [(481, 10, 5), (97, 6, 3), (64, 10, 5), (33, 7, 7)] {
            let a = Axis::new(len, p, st).unwrap();
            assert_eq!(Columns::window(&a, 0, len), Columns::whole(&a));
            for x0 in 0..len {
                for w in 1..=(len - x0).min(40) {
                    let c = Columns::window(&a, x0, w);
                    assert!(c.n <= Columns::max_patches(w, p, st));
                    for j in 0..a.count {
                        let overlaps = (0..p)
                            .any(|d| matches!(a.pixel(j, d), Some(x) if x >= x0 && x < x0 + w));
                        assert_eq!(c.holds(j, 1), overlaps, "len {len} x0 {x0} w {w} j {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn small_grids_use_the_whole_axis() {
        let a = Axis::new(64, 10, 5).unwrap(); // 12 patches < 15
        for i in 0..a.count {
            assert_eq!(a.window(i, 15), (0, 12));
        }
    }

    #[test]
    fn coverage_counts_the_patches_over_each_pixel() {
        for (len, p, s) in [
            (64, 10, 5),
            (481, 10, 5),
            (97, 6, 3),
            (33, 7, 7),
            (40, 6, 4),
        ] {
            let a = Axis::new(len, p, s).unwrap();
            let padded = len + a.before + a.after;
            let mut brute = [0usize; 600];
            for i in 0..a.count {
                for c in &mut brute[i * s..i * s + p] {
                    *c += 1;
                }
            }
            for (r, &b) in brute.iter().enumerate().take(padded) {
                assert_eq!(a.coverage(r), b, "len {len} r {r}");
            }
            assert!((0..padded).all(|r| a.coverage(r) >= 1));
        }
        // Patch 10, stride 5: interior pixels are covered twice per axis.
        let a = Axis::new(64, 10, 5).unwrap();
        assert_eq!(a.coverage(0), 1);
        assert_eq!(a.coverage(7), 2);
        assert_eq!(a.coverage(64), 1);
    }
}
