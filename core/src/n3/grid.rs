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
