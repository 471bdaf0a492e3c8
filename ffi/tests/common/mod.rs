//! Models, images and call wrappers shared by the ABI tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use n3net::*;
use n3net_runtime::denoise::NoiseLevel;
use n3net_runtime::Model;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Blob bytes in 16-byte aligned storage (as firmware would place them).
pub struct Blob {
    words: Vec<u128>,
    len: usize,
}

impl Blob {
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        // SAFETY: u128 storage viewed as bytes, within its length.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 16)
        };
        dst[..bytes.len()].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: as in `new`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `new`.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// The default model (noise-conditioned) as f32 blob bytes.
pub fn default_f32() -> (Model, Blob) {
    let m = n3net_runtime::default_model().unwrap();
    let b = Blob::new(&n3net_runtime::blob::write_blob(&m).unwrap());
    (m, b)
}

/// The committed q16 blob of the default model.
pub fn default_q16() -> (Model, Blob) {
    let bytes = std::fs::read(root().join("models/n3net-gray-blind-q16.n3b")).unwrap();
    let m = n3net_runtime::blob::load_blob(&bytes, "q16").unwrap();
    (m, Blob::new(&bytes))
}

/// The tiny fixed-σ fixture (one input channel).
pub fn tiny() -> (Model, Blob) {
    let m = n3net_runtime::load_model(&root().join("tests/fixtures/tiny/model.onnx")).unwrap();
    let b = Blob::new(&n3net_runtime::blob::write_blob(&m).unwrap());
    (m, b)
}

pub struct Open {
    pub model: Box<N3netModel>,
}

impl Open {
    pub fn new(blob: &Blob, settings: Option<N3netSettings>) -> Self {
        // SAFETY: an array of integers; all zeroes is a closed handle.
        let mut model: Box<N3netModel> = Box::new(unsafe { std::mem::zeroed() });
        let s = settings
            .as_ref()
            .map_or(std::ptr::null(), |s| s as *const _);
        // SAFETY: the blob holds `blob.len` bytes; settings and model are valid.
        let rc = unsafe { n3net_model_open(blob.bytes().as_ptr(), blob.len, s, &mut *model) };
        assert_eq!(rc, N3NET_OK, "open: {}", strerror(rc));
        Self { model }
    }

    pub fn ptr(&self) -> *const N3netModel {
        &*self.model
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        // SAFETY: the model was opened by `new` and is closed once.
        unsafe { n3net_model_close(&mut *self.model) };
    }
}

pub fn strerror(code: i32) -> String {
    // SAFETY: `n3net_strerror` returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(n3net_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

/// A deterministic noisy-looking 8-bit test image.
pub fn image_u8(w: usize, h: usize) -> Vec<u8> {
    let mut state = 0x1234_5678u32;
    (0..w * h)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let (x, y) = (i % w, i / w);
            let base = 128.0 + 60.0 * ((x as f32) * 0.21).sin() + 40.0 * ((y as f32) * 0.13).cos();
            let noise = ((state >> 24) as f32 - 128.0) * 0.25;
            (base + noise).clamp(0.0, 255.0) as u8
        })
        .collect()
}

pub fn sigma(s: f32) -> N3netNoise {
    N3netNoise {
        kind: N3NET_NOISE_SIGMA,
        sigma: s,
        a: 0.0,
        b: 0.0,
    }
}

pub fn profile(a: f32, b: f32) -> N3netNoise {
    N3netNoise {
        kind: N3NET_NOISE_PROFILE,
        sigma: 0.0,
        a,
        b,
    }
}

pub fn level(n: Option<N3netNoise>) -> NoiseLevel {
    match n {
        None => NoiseLevel::Unknown,
        Some(n) if n.kind == N3NET_NOISE_SIGMA => NoiseLevel::Sigma(n.sigma),
        Some(n) => NoiseLevel::Profile { a: n.a, b: n.b },
    }
}

pub fn plane_ws(m: *const N3netModel, w: usize, h: usize) -> Vec<u8> {
    let mut n = 0usize;
    // SAFETY: `m` is an open model and `n` is writable.
    let rc = unsafe { n3net_workspace_size(m, w as u32, h as u32, &mut n) };
    assert_eq!(rc, N3NET_OK);
    vec![0u8; n]
}

pub fn geometry(w: usize, h: usize, src_stride: usize, dst_stride: usize) -> N3netGeometry {
    N3netGeometry {
        width: w as u32,
        height: h as u32,
        src_stride,
        dst_stride,
    }
}

/// A whole-plane call of the C API (`n3net_denoise_u8` or `_f32`).
pub type PlaneCall<T> = unsafe extern "C" fn(
    *const N3netModel,
    *const N3netGeometry,
    *const T,
    usize,
    *mut T,
    usize,
    *const N3netNoise,
    *mut std::ffi::c_void,
    usize,
) -> i32;

/// `call` on a packed image, with a workspace of the queried size.
pub fn denoise_with<T: Copy + Default>(
    call: PlaneCall<T>,
    m: *const N3netModel,
    img: &[T],
    w: usize,
    h: usize,
    noise: Option<N3netNoise>,
) -> Result<Vec<T>, i32> {
    let mut out = vec![T::default(); w * h];
    let mut ws = plane_ws(m, w, h);
    let g = geometry(w, h, w, w);
    let np = noise.as_ref().map_or(std::ptr::null(), |n| n as *const _);
    // SAFETY: open model; each pointer is valid for the length passed.
    let rc = unsafe {
        call(
            m,
            &g,
            img.as_ptr(),
            img.len(),
            out.as_mut_ptr(),
            out.len(),
            np,
            ws.as_mut_ptr().cast(),
            ws.len(),
        )
    };
    if rc == N3NET_OK {
        Ok(out)
    } else {
        Err(rc)
    }
}

/// `n3net_denoise_u8` on a packed image.
pub fn denoise_u8(
    m: *const N3netModel,
    img: &[u8],
    w: usize,
    h: usize,
    noise: Option<N3netNoise>,
) -> Result<Vec<u8>, i32> {
    denoise_with(n3net_denoise_u8, m, img, w, h, noise)
}

/// `n3net_denoise_f32` on a packed image.
pub fn denoise_f32(
    m: *const N3netModel,
    img: &[f32],
    w: usize,
    h: usize,
    noise: Option<N3netNoise>,
) -> Result<Vec<f32>, i32> {
    denoise_with(n3net_denoise_f32, m, img, w, h, noise)
}

/// The runtime's reference: its f32 denoiser on `img/255`, quantised like the image writer.
pub fn reference_u8(
    model: &Model,
    img: &[u8],
    w: usize,
    h: usize,
    noise: Option<N3netNoise>,
) -> Vec<u8> {
    let x: Vec<f32> = img.iter().map(|&v| f32::from(v) / 255.0).collect();
    let y = n3net_runtime::denoise::denoise_plane(model, &x, h, w, level(noise)).unwrap();
    y.iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}
