//! Whole-plane calls (8-bit, 16-bit and float grey planes) and raw Bayer
//! mosaics, over strided buffers the caller owns.

use core::ffi::c_void;
use core::mem::size_of;
use core::ops::Range;
use core::slice;

use crate::engine::{self, dims, Cut, Rows};
use crate::error::{
    guard, Code, Status, N3NET_ERR_BAD_CFA, N3NET_ERR_BUFFER_TOO_SMALL, N3NET_ERR_INVALID_ARGUMENT,
    N3NET_ERR_NULL_POINTER, N3NET_ERR_TOO_LARGE, N3NET_ERR_WORKSPACE_TOO_SMALL, N3NET_OK,
};
use crate::model::{model_ref, ModelState, N3netModel};
use crate::noise::{N3netNoise, Noise};
use crate::sample::{depth_max, round_clamped, Sample};

/// Size and row strides of a whole-plane or Bayer call. Strides count
/// samples (elements of the buffer's type), not bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct N3netGeometry {
    /// Pixels per row (> 0).
    pub width: u32,
    /// Rows (> 0).
    pub height: u32,
    /// Samples from the start of one source row to the next (≥ width).
    pub src_stride: usize,
    /// Samples from the start of one destination row to the next (≥ width).
    pub dst_stride: usize,
}

/// Reads a pointer argument that must not be NULL.
///
/// # Safety
/// `p` is NULL or points to a readable `T`.
unsafe fn read_arg<T: Copy>(p: *const T) -> Status<T> {
    if p.is_null() {
        return Err(Code(N3NET_ERR_NULL_POINTER));
    }
    // SAFETY: non-null and readable per the contract.
    Ok(unsafe { p.read_unaligned() })
}

/// Writes the result of a size query.
///
/// # Safety
/// `bytes` is NULL or points to a writable `size_t`.
unsafe fn write_size(bytes: *mut usize, f: impl FnOnce() -> Status<usize>) -> i32 {
    guard(|| {
        if bytes.is_null() {
            return Err(Code(N3NET_ERR_NULL_POINTER));
        }
        let n = f()?;
        // SAFETY: non-null and writable per the contract.
        unsafe { bytes.write_unaligned(n) };
        Ok(N3NET_OK)
    })
}

/// Workspace bytes of the whole-plane calls (`n3net_denoise_u8`, `_u16`,
/// `_f32`) on `width × height` images with this model and its settings.
/// Depends on the width (or the stripe width), never on the height.
///
/// # Safety
/// `model` is NULL or points to an `N3netModel`; `bytes` is NULL or points to
/// a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn n3net_workspace_size(
    model: *const N3netModel,
    width: u32,
    height: u32,
    bytes: *mut usize,
) -> i32 {
    // SAFETY: per the contract.
    unsafe {
        write_size(bytes, || {
            let m = model_ref(model)?;
            let (w, h) = dims(width, height)?;
            plane_bytes(m, h, w)
        })
    }
}

fn plane_bytes(m: &ModelState, height: usize, width: usize) -> Status<usize> {
    let cut = Cut {
        height,
        width,
        stripe: m.stripe_columns,
    };
    engine::workspace_bytes(m.network().as_ref()?, &cut)
}

/// A checked strided buffer of `height` rows of `width` samples.
#[derive(Clone, Copy)]
struct Buffer<T> {
    ptr: *mut T,
    stride: usize,
    /// Bytes from the first sample to one past the last.
    span: usize,
}

impl<T> Buffer<T> {
    /// Checks the pointer, stride and length (no memory is accessed).
    fn new(ptr: *const T, len: usize, stride: usize, width: usize, height: usize) -> Status<Self> {
        if ptr.is_null() {
            return Err(Code(N3NET_ERR_NULL_POINTER));
        }
        if stride < width || !ptr.is_aligned() {
            return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
        }
        let need = (height - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(width))
            .filter(|n| {
                n.checked_mul(size_of::<T>())
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .ok_or(Code(N3NET_ERR_TOO_LARGE))?;
        if len < need {
            return Err(Code(N3NET_ERR_BUFFER_TOO_SMALL));
        }
        Ok(Self {
            ptr: ptr.cast_mut(),
            stride,
            span: need * size_of::<T>(),
        })
    }

    fn bytes(&self) -> Range<usize> {
        self.ptr as usize..self.ptr as usize + self.span
    }

    /// Samples `cols` of row `y`.
    ///
    /// # Safety
    /// `y` and `cols` lie inside the checked geometry, the memory is
    /// readable, and no mutable slice of it is alive.
    unsafe fn row<'a>(&self, y: usize, cols: Range<usize>) -> &'a [T] {
        // SAFETY: inside the `span` checked in `new`, per the contract.
        unsafe { slice::from_raw_parts(self.ptr.add(y * self.stride + cols.start), cols.len()) }
    }

    /// # Safety
    /// As [`Buffer::row`], and the memory is writable with no other slice of
    /// it alive.
    unsafe fn row_mut<'a>(&self, y: usize, cols: Range<usize>) -> &'a mut [T] {
        // SAFETY: as `row`.
        unsafe { slice::from_raw_parts_mut(self.ptr.add(y * self.stride + cols.start), cols.len()) }
    }
}

/// Source and destination of one call: either disjoint, or the same memory
/// with the same stride and no stripes (in place: every row is read before
/// it is written, and never read again).
fn check_overlap<T>(src: &Buffer<T>, dst: &Buffer<T>, whole_width: bool) -> Status {
    let (a, b) = (src.bytes(), dst.bytes());
    let disjoint = a.end <= b.start || b.end <= a.start;
    let in_place = src.ptr == dst.ptr && src.stride == dst.stride && whole_width;
    if disjoint || in_place {
        Ok(())
    } else {
        Err(Code(N3NET_ERR_INVALID_ARGUMENT))
    }
}

/// A grey plane as a row source and sink.
struct PlaneRows<T> {
    src: Buffer<T>,
    dst: Buffer<T>,
    max: u32,
}

impl<T: Sample> Rows for PlaneRows<T> {
    fn read(&mut self, y: usize, cols: Range<usize>, out: &mut [f32]) {
        // SAFETY: the engine asks for rows and columns inside the image, and
        // holds no slice of the caller's buffers between calls.
        T::load(unsafe { self.src.row(y, cols) }, self.max, out);
    }

    fn write(&mut self, y: usize, cols: Range<usize>, row: &[f32]) {
        // SAFETY: as `read`.
        T::store(row, self.max, unsafe { self.dst.row_mut(y, cols) });
    }
}

/// The workspace as a byte slice, after checking it against `need`.
///
/// # Safety
/// `ws` points to `len` writable bytes that nothing else uses during the call.
unsafe fn workspace_slice<'a>(ws: *mut c_void, len: usize, need: usize) -> Status<&'a mut [u8]> {
    if ws.is_null() {
        return Err(Code(N3NET_ERR_NULL_POINTER));
    }
    if len < need {
        return Err(Code(N3NET_ERR_WORKSPACE_TOO_SMALL));
    }
    if len > isize::MAX as usize {
        return Err(Code(N3NET_ERR_TOO_LARGE));
    }
    // SAFETY: per the contract.
    Ok(unsafe { slice::from_raw_parts_mut(ws.cast::<u8>(), len) })
}

/// The body of the three whole-plane calls.
///
/// # Safety
/// The C contract of `n3net_denoise_u8`.
#[allow(clippy::too_many_arguments)]
unsafe fn denoise_plane<T: Sample>(
    model: *const N3netModel,
    geometry: *const N3netGeometry,
    max: Status<u32>,
    src: *const T,
    src_len: usize,
    dst: *mut T,
    dst_len: usize,
    noise: *const N3netNoise,
    ws: *mut c_void,
    ws_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: per the contract.
        let m = unsafe { model_ref(model)? };
        // SAFETY: per the contract.
        let g = unsafe { read_arg(geometry)? };
        let (w, h) = dims(g.width, g.height)?;
        let max = max?;
        let src = Buffer::new(src, src_len, g.src_stride, w, h)?;
        let dst = Buffer::new(dst, dst_len, g.dst_stride, w, h)?;
        let cut = Cut {
            height: h,
            width: w,
            stripe: m.stripe_columns,
        };
        check_overlap(&src, &dst, cut.whole())?;
        let built = m.network();
        let net = built.as_ref()?;
        // SAFETY: per the contract, a non-null `noise` is readable.
        let noise = (!noise.is_null()).then(|| unsafe { noise.read_unaligned() });
        let noise = Noise::new(noise, net.cin())?;
        // SAFETY: per the contract.
        let ws = unsafe { workspace_slice(ws, ws_len, engine::workspace_bytes(net, &cut)?)? };
        for y in 0..h {
            // SAFETY: inside the checked geometry; no slice is alive.
            T::check(unsafe { src.row(y, 0..w) }, max)?;
        }
        engine::run(
            net,
            m.isa,
            &cut,
            noise,
            ws,
            &mut PlaneRows { src, dst, max },
        )?;
        Ok(N3NET_OK)
    })
}

/// Denoises an 8-bit grey plane: samples are divided by 255 on the way in;
/// output samples are `round(clamp(y, 0, 1) · 255)`. `src_len` and `dst_len`
/// count the samples available (at least `(height − 1) · stride + width`).
/// `src == dst` with equal strides denoises in place (not with stripes);
/// other overlaps are refused. `noise` may be NULL for a fixed-σ model.
/// Nothing is written to `dst` unless every check passes.
///
/// # Safety
/// Every non-NULL pointer points to memory of the stated length: `src` and
/// `dst` `*_len` samples, `workspace` `workspace_len` writable bytes used by
/// nothing else during the call.
#[no_mangle]
pub unsafe extern "C" fn n3net_denoise_u8(
    model: *const N3netModel,
    geometry: *const N3netGeometry,
    src: *const u8,
    src_len: usize,
    dst: *mut u8,
    dst_len: usize,
    noise: *const N3netNoise,
    workspace: *mut c_void,
    workspace_len: usize,
) -> i32 {
    // SAFETY: the same contract.
    unsafe {
        denoise_plane(
            model,
            geometry,
            Ok(255),
            src,
            src_len,
            dst,
            dst_len,
            noise,
            workspace,
            workspace_len,
        )
    }
}

/// Denoises a 16-bit grey plane of `bit_depth` bits (1–16): samples are
/// divided by `2^bit_depth − 1` (a larger sample is `N3NET_ERR_INVALID_ARGUMENT`);
/// output samples are `round(clamp(y, 0, 1) · (2^bit_depth − 1))`. Otherwise
/// as `n3net_denoise_u8`.
///
/// # Safety
/// As `n3net_denoise_u8`; `src` and `dst` are aligned for `uint16_t`.
#[no_mangle]
pub unsafe extern "C" fn n3net_denoise_u16(
    model: *const N3netModel,
    geometry: *const N3netGeometry,
    bit_depth: u32,
    src: *const u16,
    src_len: usize,
    dst: *mut u16,
    dst_len: usize,
    noise: *const N3netNoise,
    workspace: *mut c_void,
    workspace_len: usize,
) -> i32 {
    // SAFETY: the same contract.
    unsafe {
        denoise_plane(
            model,
            geometry,
            depth_max(bit_depth),
            src,
            src_len,
            dst,
            dst_len,
            noise,
            workspace,
            workspace_len,
        )
    }
}

/// Denoises a float plane on the model's `[0, 1]` scale, written unclamped
/// (NaN or infinite samples: `N3NET_ERR_NON_FINITE_INPUT`). Otherwise as
/// `n3net_denoise_u8`.
///
/// # Safety
/// As `n3net_denoise_u8`; `src` and `dst` are aligned for `float`.
#[no_mangle]
pub unsafe extern "C" fn n3net_denoise_f32(
    model: *const N3netModel,
    geometry: *const N3netGeometry,
    src: *const f32,
    src_len: usize,
    dst: *mut f32,
    dst_len: usize,
    noise: *const N3netNoise,
    workspace: *mut c_void,
    workspace_len: usize,
) -> i32 {
    // SAFETY: the same contract.
    unsafe {
        denoise_plane(
            model,
            geometry,
            Ok(0),
            src,
            src_len,
            dst,
            dst_len,
            noise,
            workspace,
            workspace_len,
        )
    }
}

/// `N3netBayer.cfa`: red at (0, 0), blue at (1, 1).
pub const N3NET_CFA_RGGB: u32 = 0;
/// `N3netBayer.cfa`: blue at (0, 0), red at (1, 1).
pub const N3NET_CFA_BGGR: u32 = 1;
/// `N3netBayer.cfa`: red at (0, 1), blue at (1, 0).
pub const N3NET_CFA_GRBG: u32 = 2;
/// `N3netBayer.cfa`: blue at (0, 1), red at (1, 0).
pub const N3NET_CFA_GBRG: u32 = 3;

/// Index of `N3netBayer.noise` for red.
pub const N3NET_BAYER_R: u32 = 0;
/// Index of `N3netBayer.noise` for green on red rows.
pub const N3NET_BAYER_GR: u32 = 1;
/// Index of `N3netBayer.noise` for green on blue rows.
pub const N3NET_BAYER_GB: u32 = 2;
/// Index of `N3netBayer.noise` for blue.
pub const N3NET_BAYER_B: u32 = 3;

/// For each CFA pattern, the colour channel (`N3NET_BAYER_*`) at the mosaic
/// positions (0, 0), (0, 1), (1, 0), (1, 1).
const CHANNEL_AT: [[u32; 4]; 4] = [
    [N3NET_BAYER_R, N3NET_BAYER_GR, N3NET_BAYER_GB, N3NET_BAYER_B],
    [N3NET_BAYER_B, N3NET_BAYER_GB, N3NET_BAYER_GR, N3NET_BAYER_R],
    [N3NET_BAYER_GR, N3NET_BAYER_R, N3NET_BAYER_B, N3NET_BAYER_GB],
    [N3NET_BAYER_GB, N3NET_BAYER_B, N3NET_BAYER_R, N3NET_BAYER_GR],
];

/// A raw Bayer mosaic's description.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct N3netBayer {
    /// `N3NET_CFA_*`.
    pub cfa: u32,
    /// Sample value of black (`< white_level`).
    pub black_level: u32,
    /// Sample value of full scale (`<= 65535`).
    pub white_level: u32,
    /// Must be zero.
    pub reserved0: u32,
    /// Noise per colour channel, indexed by `N3NET_BAYER_R`, `_GR`, `_GB`,
    /// `_B`, on the normalised scale `(v − black) / (white − black)`.
    pub noise: [N3netNoise; 4],
}

/// One colour plane of a mosaic as a row source and sink.
struct BayerRows {
    src: Buffer<u16>,
    dst: Buffer<u16>,
    /// Position of the plane in each 2×2 cell.
    dy: usize,
    dx: usize,
    /// Full mosaic width.
    width: usize,
    black: f32,
    range: f32,
    white: f32,
}

impl Rows for BayerRows {
    fn read(&mut self, y: usize, cols: Range<usize>, out: &mut [f32]) {
        // SAFETY: the plane's rows and columns map inside the checked mosaic;
        // no slice is alive between calls.
        let row = unsafe { self.src.row(2 * y + self.dy, 0..self.width) };
        for (o, x) in out.iter_mut().zip(cols) {
            *o = (f32::from(row[2 * x + self.dx]) - self.black) / self.range;
        }
    }

    fn write(&mut self, y: usize, cols: Range<usize>, values: &[f32]) {
        // SAFETY: as `read`.
        let row = unsafe { self.dst.row_mut(2 * y + self.dy, 0..self.width) };
        for (&v, x) in values.iter().zip(cols) {
            row[2 * x + self.dx] = round_clamped(v * self.range + self.black, self.white) as u16;
        }
    }
}

fn bayer_dims(width: u32, height: u32) -> Status<(usize, usize)> {
    let (w, h) = dims(width, height)?;
    if w % 2 != 0 || h % 2 != 0 {
        return Err(Code(N3NET_ERR_BAD_CFA));
    }
    Ok((w, h))
}

/// Workspace bytes of `n3net_denoise_bayer` on a `width × height` mosaic
/// (each colour plane is `width/2 × height/2`).
///
/// # Safety
/// As `n3net_workspace_size`.
#[no_mangle]
pub unsafe extern "C" fn n3net_bayer_workspace_size(
    model: *const N3netModel,
    width: u32,
    height: u32,
    bytes: *mut usize,
) -> i32 {
    // SAFETY: per the contract.
    unsafe {
        write_size(bytes, || {
            let m = model_ref(model)?;
            let (w, h) = bayer_dims(width, height)?;
            plane_bytes(m, h / 2, w / 2)
        })
    }
}

/// Denoises a raw Bayer mosaic of `uint16_t` samples: splits it into its four
/// colour planes, normalises each to `(v − black) / (white − black)`,
/// denoises it with the model and the noise of its colour, and writes it
/// back interleaved as `round(clamp(black + y·(white − black), 0, white))`.
/// Width and height are the mosaic's and must be even; strides and lengths
/// count samples. In place (`src == dst`, equal strides, no stripes) is
/// allowed. Nothing is written to `dst` unless every check passes.
///
/// # Safety
/// As `n3net_denoise_u16`; `bayer` points to one readable `N3netBayer`.
#[no_mangle]
pub unsafe extern "C" fn n3net_denoise_bayer(
    model: *const N3netModel,
    geometry: *const N3netGeometry,
    bayer: *const N3netBayer,
    src: *const u16,
    src_len: usize,
    dst: *mut u16,
    dst_len: usize,
    workspace: *mut c_void,
    workspace_len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: per the contract.
        let m = unsafe { model_ref(model)? };
        // SAFETY: per the contract.
        let g = unsafe { read_arg(geometry)? };
        // SAFETY: per the contract.
        let b = unsafe { read_arg(bayer)? };
        let (w, h) = bayer_dims(g.width, g.height)?;
        if b.cfa as usize >= CHANNEL_AT.len()
            || b.black_level >= b.white_level
            || b.white_level > u32::from(u16::MAX)
        {
            return Err(Code(N3NET_ERR_BAD_CFA));
        }
        if b.reserved0 != 0 {
            return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
        }
        let cut = Cut {
            height: h / 2,
            width: w / 2,
            stripe: m.stripe_columns,
        };
        let src = Buffer::new(src, src_len, g.src_stride, w, h)?;
        let dst = Buffer::new(dst, dst_len, g.dst_stride, w, h)?;
        check_overlap(&src, &dst, cut.whole())?;
        let built = m.network();
        let net = built.as_ref()?;
        let mut noises = [Noise::None; 4];
        for (n, c) in noises.iter_mut().zip(b.noise) {
            *n = Noise::new(Some(c), net.cin())?;
        }
        // SAFETY: per the contract.
        let ws = unsafe {
            workspace_slice(
                workspace,
                workspace_len,
                engine::workspace_bytes(net, &cut)?,
            )?
        };
        for pos in 0..4 {
            let mut rows = BayerRows {
                src,
                dst,
                dy: pos / 2,
                dx: pos % 2,
                width: w,
                black: b.black_level as f32,
                range: (b.white_level - b.black_level) as f32,
                white: b.white_level as f32,
            };
            let noise = noises[CHANNEL_AT[b.cfa as usize][pos] as usize];
            engine::run(net, m.isa, &cut, noise, ws, &mut rows)?;
        }
        Ok(N3NET_OK)
    })
}
