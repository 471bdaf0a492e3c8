//! Settings, the model handle and what it tells about the model.

use core::ffi::c_char;
use core::mem::{align_of, size_of};
use core::ptr;

use n3net_core::{Isa, ModelBlob, Network, Precision};

use crate::error::{
    guard, Code, Status, N3NET_ERR_INVALID_ARGUMENT, N3NET_ERR_INVALID_MODEL, N3NET_ERR_NOT_OPEN,
    N3NET_ERR_NULL_POINTER, N3NET_ERR_TOO_LARGE, N3NET_OK,
};

/// Settings value: the fastest kernels this CPU supports (picked at run time).
pub const N3NET_ISA_AUTO: u32 = 0;
/// Settings value: the plain reference kernels only.
pub const N3NET_ISA_GENERIC: u32 = 1;

/// Options fixed when a model is opened. Fill with
/// `n3net_default_settings()`, then change fields; the reserved bytes must
/// stay zero (later versions give them a meaning).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct N3netSettings {
    /// `N3NET_ISA_AUTO` or `N3NET_ISA_GENERIC`.
    pub isa: u32,
    /// Whole-plane and Bayer calls: output columns per stripe, so that the
    /// workspace depends on this width and not on the image width; 0 runs
    /// the whole width at once. Stripes recompute their halo: narrower
    /// stripes cost more time.
    pub stripe_columns: u32,
    /// Must be zero.
    pub reserved: [u8; 56],
}

impl Default for N3netSettings {
    fn default() -> Self {
        Self {
            isa: N3NET_ISA_AUTO,
            stripe_columns: 0,
            reserved: [0; 56],
        }
    }
}

/// Writes the default settings (automatic ISA, whole-width planes) to
/// `settings`; does nothing when it is NULL.
///
/// # Safety
/// `settings` is NULL or points to writable memory for one `N3netSettings`.
#[no_mangle]
pub unsafe extern "C" fn n3net_default_settings(settings: *mut N3netSettings) {
    if !settings.is_null() {
        // SAFETY: non-null and writable per the contract; write needs no
        // initialised value.
        unsafe { settings.write_unaligned(N3netSettings::default()) };
    }
}

/// 64-bit words of an `N3netModel`.
pub const N3NET_MODEL_WORDS: usize = 64;

/// An open model: caller-allocated storage (declare one, e.g. on the stack
/// or in a static), filled by `n3net_model_open()` and cleared by
/// `n3net_model_close()`. Its contents are private.
#[repr(C)]
pub struct N3netModel {
    opaque: [u64; N3NET_MODEL_WORDS],
}

/// What an open `N3netModel` holds.
#[repr(C)]
pub(crate) struct ModelState {
    magic: u64,
    pub(crate) blob: ModelBlob<'static>,
    pub(crate) isa: Isa,
    pub(crate) stripe_columns: usize,
}

const MODEL_MAGIC: u64 = u64::from_le_bytes(*b"N3NETMDL");

const _: () = assert!(size_of::<ModelState>() <= size_of::<N3netModel>());
const _: () = assert!(align_of::<ModelState>() <= align_of::<N3netModel>());

impl ModelState {
    /// The network of the blob (validated when the model was opened).
    pub(crate) fn network(&self) -> Status<Network<'static>> {
        Ok(self.blob.network()?)
    }
}

/// The open model behind `model`.
///
/// # Safety
/// `model` is NULL or points to an `N3netModel` (opened or not).
pub(crate) unsafe fn model_ref<'a>(model: *const N3netModel) -> Status<&'a ModelState> {
    if model.is_null() {
        return Err(Code(N3NET_ERR_NULL_POINTER));
    }
    if !model.is_aligned() {
        return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
    }
    let state = model.cast::<ModelState>();
    // SAFETY: the handle is readable for size_of::<N3netModel>() bytes, which
    // covers the magic field; only an open handle carries the magic, and
    // then the whole state was written by n3net_model_open.
    unsafe {
        if ptr::addr_of!((*state).magic).read() != MODEL_MAGIC {
            return Err(Code(N3NET_ERR_NOT_OPEN));
        }
        Ok(&*state)
    }
}

/// Reads settings (NULL: the defaults) and checks them.
///
/// # Safety
/// `settings` is NULL or points to one readable `N3netSettings`.
pub(crate) unsafe fn read_settings(settings: *const N3netSettings) -> Status<N3netSettings> {
    let s = if settings.is_null() {
        N3netSettings::default()
    } else {
        // SAFETY: non-null and readable per the contract.
        unsafe { settings.read_unaligned() }
    };
    if s.isa > N3NET_ISA_GENERIC || s.reserved.iter().any(|&b| b != 0) {
        return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
    }
    Ok(s)
}

/// Opens the weight blob `blob[0..len]` (f32, f16 or q16 `.n3b`) into
/// `model`: checks the magic, version, lengths, alignment, CRC-32 and the
/// network once, and keeps a view of the bytes (zero-copy: the blob must
/// stay readable and unchanged until the model, and every stream opened from
/// it, is closed; 16-byte alignment of `blob` is always enough).
/// `settings` may be NULL (the defaults). On any error `model` is left
/// closed.
///
/// # Safety
/// `blob` points to `len` readable bytes; `model` points to writable
/// storage for one `N3netModel`.
#[no_mangle]
pub unsafe extern "C" fn n3net_model_open(
    blob: *const u8,
    len: usize,
    settings: *const N3netSettings,
    model: *mut N3netModel,
) -> i32 {
    guard(|| {
        if blob.is_null() || model.is_null() {
            return Err(Code(N3NET_ERR_NULL_POINTER));
        }
        if !model.is_aligned() {
            return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
        }
        // SAFETY: `model` is non-null, aligned and writable per the contract.
        unsafe {
            model.write(N3netModel {
                opaque: [0; N3NET_MODEL_WORDS],
            })
        };
        // SAFETY: per the contract.
        let s = unsafe { read_settings(settings)? };
        if len > isize::MAX as usize {
            return Err(Code(N3NET_ERR_TOO_LARGE));
        }
        // SAFETY: `blob` points to `len` readable bytes that the caller keeps
        // unchanged while the model is open (the documented contract, which
        // is what makes the view 'static for the library).
        let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(blob, len) };
        let parsed = ModelBlob::parse(bytes)?;
        let net = parsed.network()?;
        // Grey in, grey out; a second input channel is the σ map.
        if net.cout() != 1 || !(1..=2).contains(&net.cin()) {
            return Err(Code(N3NET_ERR_INVALID_MODEL));
        }
        let state = ModelState {
            magic: MODEL_MAGIC,
            blob: parsed,
            isa: match s.isa {
                N3NET_ISA_GENERIC => Isa::Generic,
                _ => Isa::detect(),
            },
            stripe_columns: s.stripe_columns as usize,
        };
        // SAFETY: the storage is aligned and large enough (checked at
        // compile time above) and writable per the contract.
        unsafe { model.cast::<ModelState>().write(state) };
        Ok(N3NET_OK)
    })
}

/// Closes `model`: clears the handle so that later calls with it fail with
/// `N3NET_ERR_NOT_OPEN`. NULL is ignored. The blob may be released once
/// every stream opened from the model is closed too.
///
/// # Safety
/// `model` is NULL or points to writable storage for one `N3netModel`.
#[no_mangle]
pub unsafe extern "C" fn n3net_model_close(model: *mut N3netModel) {
    if !model.is_null() && model.is_aligned() {
        // SAFETY: non-null, aligned and writable per the contract.
        unsafe {
            model.write(N3netModel {
                opaque: [0; N3NET_MODEL_WORDS],
            })
        };
    }
}

/// `N3netModelInfo.precision`: 32-bit float weights and activations.
pub const N3NET_PRECISION_F32: u32 = 0;
/// `N3netModelInfo.precision`: 16-bit float storage, f32 arithmetic.
pub const N3NET_PRECISION_F16: u32 = 1;
/// `N3netModelInfo.precision`: int16 weights and activations (fixed point;
/// the same output bits on every target).
pub const N3NET_PRECISION_Q16: u32 = 2;

/// What `n3net_model_info()` reports.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct N3netModelInfo {
    /// 1: a fixed-σ model (calls take no noise level); 2: a noise-conditioned
    /// model (calls need `N3NET_NOISE_SIGMA` or `N3NET_NOISE_PROFILE`).
    pub in_channels: u32,
    /// `N3NET_PRECISION_*`.
    pub precision: u32,
    /// The σ (0–255 scale) a fixed-σ model was trained for; −1 otherwise.
    pub sigma: f32,
    /// Zero.
    pub reserved0: u32,
    /// Multiply-adds per output pixel.
    pub macs_per_pixel: u64,
    /// Weights and biases.
    pub parameters: u64,
    /// Bytes of the blob.
    pub blob_bytes: u64,
}

/// Describes an open model.
///
/// # Safety
/// `model` is NULL or points to an `N3netModel`; `info` is NULL or points to
/// writable memory for one `N3netModelInfo`.
#[no_mangle]
pub unsafe extern "C" fn n3net_model_info(
    model: *const N3netModel,
    info: *mut N3netModelInfo,
) -> i32 {
    guard(|| {
        // SAFETY: per the contract.
        let m = unsafe { model_ref(model)? };
        if info.is_null() {
            return Err(Code(N3NET_ERR_NULL_POINTER));
        }
        let net = m.network()?;
        let out = N3netModelInfo {
            in_channels: net.cin() as u32,
            precision: match net.precision() {
                Precision::F32 => N3NET_PRECISION_F32,
                Precision::F16 => N3NET_PRECISION_F16,
                Precision::Q16 => N3NET_PRECISION_Q16,
            },
            sigma: m.blob.meta().sigma.unwrap_or(-1.0),
            reserved0: 0,
            macs_per_pixel: net.macs_per_pixel(),
            parameters: net.parameters() as u64,
            blob_bytes: m.blob.len() as u64,
        };
        // SAFETY: non-null and writable per the contract.
        unsafe { info.write_unaligned(out) };
        Ok(N3NET_OK)
    })
}

/// The library version, e.g. `"0.1.0"`: a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn n3net_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
