//! The streaming row API: rows go in one at a time and come out once final,
//! with memory that does not depend on the image height. The stream's state
//! lives in the caller's workspace.

use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::slice;

use n3net_core::exec::stream::Stream;
use n3net_core::Network;

use crate::engine::{self, Cut, RowBufs};
use crate::error::{
    guard, Code, Status, N3NET_ERR_BUFFER_TOO_SMALL, N3NET_ERR_INVALID_ARGUMENT,
    N3NET_ERR_NOT_OPEN, N3NET_ERR_NULL_POINTER, N3NET_ERR_TOO_LARGE, N3NET_ERR_WORKSPACE_TOO_SMALL,
    N3NET_OK,
};
use crate::model::{model_ref, N3netModel};
use crate::noise::{N3netNoise, Noise};
use crate::sample::{depth_max, Sample};

/// Stream sample format: `uint8_t`, divided by 255.
pub const N3NET_FORMAT_U8: u32 = 0;
/// Stream sample format: `uint16_t` of the stream's bit depth.
pub const N3NET_FORMAT_U16: u32 = 1;
/// Stream sample format: `float` on the model's `[0, 1]` scale.
pub const N3NET_FORMAT_F32: u32 = 2;

/// An open stream (opaque). It lives inside the workspace given to
/// `n3net_stream_open()`, which must stay untouched until
/// `n3net_stream_close()`.
pub struct N3netStream {
    magic: u64,
    stream: Stream<'static, 'static, 'static>,
    bufs: RowBufs<'static>,
    noise: Noise,
    format: u32,
    max: u32,
}

const STREAM_MAGIC: u64 = u64::from_le_bytes(*b"N3NETSTR");
/// Alignment of the network and the stream state inside the workspace.
const SLOT_ALIGN: usize = 64;
const _: () = assert!(align_of::<Network<'static>>() <= SLOT_ALIGN);
const _: () = assert!(align_of::<N3netStream>() <= SLOT_ALIGN);

const fn slot<T>() -> usize {
    size_of::<T>().div_ceil(SLOT_ALIGN) * SLOT_ALIGN
}

/// Bytes before the row buffers and the core's workspace: alignment slack,
/// the network, the stream state.
const HEAD: usize = SLOT_ALIGN - 1 + slot::<Network<'static>>() + slot::<N3netStream>();

fn stream_bytes(net: &Network<'_>, cut: &Cut) -> Status<usize> {
    engine::workspace_bytes(net, cut)?
        .checked_add(HEAD)
        .ok_or(Code(N3NET_ERR_TOO_LARGE))
}

/// Workspace bytes of a stream over `width × height` images: independent
/// of the height.
///
/// # Safety
/// `model` is NULL or points to an `N3netModel`; `bytes` is NULL or points to
/// a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn n3net_stream_workspace_size(
    model: *const N3netModel,
    width: u32,
    height: u32,
    bytes: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: per the contract.
        let m = unsafe { model_ref(model)? };
        if bytes.is_null() {
            return Err(Code(N3NET_ERR_NULL_POINTER));
        }
        let cut = whole(width, height)?;
        let n = stream_bytes(m.network().as_ref()?, &cut)?;
        // SAFETY: non-null and writable per the contract.
        unsafe { bytes.write_unaligned(n) };
        Ok(N3NET_OK)
    })
}

fn whole(width: u32, height: u32) -> Status<Cut> {
    let (width, height) = engine::dims(width, height)?;
    Ok(Cut {
        height,
        width,
        stripe: 0,
    })
}

/// Opens a stream over a `width × height` image whose rows are pushed in
/// order as samples of `format` (`N3NET_FORMAT_*`; `bit_depth` 1–16 for
/// `N3NET_FORMAT_U16`, 0 otherwise) with noise level `noise` (NULL for a
/// fixed-σ model). The stream, a copy of the model's network description
/// and every buffer live in `workspace` (at least
/// `n3net_stream_workspace_size()` bytes, untouched by the caller until the
/// stream is closed); the model's blob must stay valid until then, the
/// model handle need not. `*stream` is set on success, NULL on error.
///
/// # Safety
/// `model` is NULL or points to an `N3netModel`; `noise` is NULL or readable;
/// `workspace` points to `workspace_len` writable bytes; `stream` is NULL or
/// points to a writable pointer.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn n3net_stream_open(
    model: *const N3netModel,
    width: u32,
    height: u32,
    format: u32,
    bit_depth: u32,
    noise: *const N3netNoise,
    workspace: *mut c_void,
    workspace_len: usize,
    stream: *mut *mut N3netStream,
) -> i32 {
    guard(|| {
        if stream.is_null() {
            return Err(Code(N3NET_ERR_NULL_POINTER));
        }
        // SAFETY: non-null and writable per the contract.
        unsafe { stream.write_unaligned(core::ptr::null_mut()) };
        // SAFETY: per the contract.
        let m = unsafe { model_ref(model)? };
        if workspace.is_null() {
            return Err(Code(N3NET_ERR_NULL_POINTER));
        }
        let cut = whole(width, height)?;
        let max = match (format, bit_depth) {
            (N3NET_FORMAT_U8, 0) => 255,
            (N3NET_FORMAT_U16, d) => depth_max(d)?,
            (N3NET_FORMAT_F32, 0) => 0,
            _ => return Err(Code(N3NET_ERR_INVALID_ARGUMENT)),
        };
        let net = m.network()?;
        // SAFETY: a non-null `noise` is readable per the contract.
        let noise = (!noise.is_null()).then(|| unsafe { noise.read_unaligned() });
        let noise = Noise::new(noise, net.cin())?;
        if workspace_len < stream_bytes(&net, &cut)? {
            return Err(Code(N3NET_ERR_WORKSPACE_TOO_SMALL));
        }
        if workspace_len > isize::MAX as usize {
            return Err(Code(N3NET_ERR_TOO_LARGE));
        }
        let base = workspace.cast::<u8>();
        let skip = base.align_offset(SLOT_ALIGN);
        // SAFETY: `skip < SLOT_ALIGN` and the workspace holds at least HEAD
        // bytes, so both slots lie inside it, aligned for their types.
        let (net_slot, state_slot, rest) = unsafe {
            let net_slot = base.add(skip).cast::<Network<'static>>();
            let state_slot = base
                .add(skip + slot::<Network<'static>>())
                .cast::<N3netStream>();
            let used = skip + slot::<Network<'static>>() + slot::<N3netStream>();
            let rest = slice::from_raw_parts_mut(base.add(used), workspace_len - used);
            (net_slot, state_slot, rest)
        };
        // SAFETY: the slot is aligned, inside the workspace and disjoint
        // from everything else carved from it. The caller keeps the
        // workspace untouched while the stream is open, and the network
        // borrows only the blob, which the caller keeps valid as long; so
        // the 'static lifetimes given to these borrows hold for the life of
        // the stream, and nothing else reads or writes that memory.
        let net: &'static Network<'static> = unsafe {
            net_slot.write(net);
            &*net_slot
        };
        let (core_ws, bufs) = engine::carve(net, &cut, rest)?;
        let s = Stream::new(net, cut.height, cut.width, m.isa, core_ws)?;
        let state = N3netStream {
            magic: STREAM_MAGIC,
            stream: s,
            bufs,
            noise,
            format,
            max,
        };
        // SAFETY: the slot is aligned, inside the workspace, disjoint from
        // the network, the buffers and the core's workspace; `stream` is
        // writable per the contract.
        unsafe {
            state_slot.write(state);
            stream.write_unaligned(state_slot);
        }
        Ok(N3NET_OK)
    })
}

/// The open stream behind `stream`.
///
/// # Safety
/// `stream` is NULL or a pointer `n3net_stream_open()` returned whose
/// workspace is still valid.
unsafe fn stream_ref<'a>(stream: *const N3netStream) -> Status<&'a N3netStream> {
    if stream.is_null() {
        return Err(Code(N3NET_ERR_NULL_POINTER));
    }
    // SAFETY: per the contract the state was written there by
    // n3net_stream_open; a closed one carries no magic.
    unsafe {
        if core::ptr::addr_of!((*stream).magic).read() != STREAM_MAGIC {
            return Err(Code(N3NET_ERR_NOT_OPEN));
        }
        Ok(&*stream)
    }
}

/// [`stream_ref`], mutable.
///
/// # Safety
/// As [`stream_ref`].
unsafe fn stream_mut<'a>(stream: *mut N3netStream) -> Status<&'a mut N3netStream> {
    // SAFETY: per the contract; the workspace is writable.
    unsafe {
        stream_ref(stream)?;
        Ok(&mut *stream)
    }
}

/// Checks a row pointer of `len` samples of `T` against the width.
fn check_row<T>(row: *const c_void, len: usize, width: usize) -> Status<*const T> {
    let p = row.cast::<T>();
    if p.is_null() {
        return Err(Code(N3NET_ERR_NULL_POINTER));
    }
    if !p.is_aligned() {
        return Err(Code(N3NET_ERR_INVALID_ARGUMENT));
    }
    if len < width {
        return Err(Code(N3NET_ERR_BUFFER_TOO_SMALL));
    }
    Ok(p)
}

/// The first `width` samples at `row` (read only: may be flash).
///
/// # Safety
/// `row` is NULL or points to `len` readable samples of `T`.
unsafe fn row_of<'a, T>(row: *const c_void, len: usize, width: usize) -> Status<&'a [T]> {
    let p = check_row::<T>(row, len, width)?;
    // SAFETY: `width ≤ len` samples are there per the contract.
    Ok(unsafe { slice::from_raw_parts(p, width) })
}

/// The first `width` samples at `row`, writable.
///
/// # Safety
/// `row` is NULL or points to `len` writable samples of `T`.
unsafe fn row_mut_of<'a, T>(row: *mut c_void, len: usize, width: usize) -> Status<&'a mut [T]> {
    let p = check_row::<T>(row, len, width)?;
    // SAFETY: `width ≤ len` writable samples are there per the contract.
    Ok(unsafe { slice::from_raw_parts_mut(p.cast_mut(), width) })
}

impl N3netStream {
    fn push<T: Sample>(&mut self, row: &[T]) -> Status {
        T::check(row, self.max)?;
        let max = self.max;
        engine::push(&mut self.stream, &mut self.bufs, self.noise, |_, x| {
            T::load(row, max, x)
        })
    }

    fn pull<T: Sample>(&mut self, row: &mut [T]) -> Status<bool> {
        let max = self.max;
        engine::pull(&mut self.stream, &mut self.bufs, |_, _, y| {
            T::store(y, max, row)
        })
    }
}

/// Pushes the next input row: `width` samples of the stream's format at
/// `row` (`len` samples available). Fails without consuming the row when
/// every row was already pushed or too many output rows wait
/// (`N3NET_ERR_STREAM_STATE`: pull first; pulling every final row after each
/// push always avoids it).
///
/// # Safety
/// `stream` is NULL or an open stream; `row` is NULL or points to `len`
/// samples of the stream's format.
#[no_mangle]
pub unsafe extern "C" fn n3net_stream_push_row(
    stream: *mut N3netStream,
    row: *const c_void,
    len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: per the contract.
        let s = unsafe { stream_mut(stream)? };
        let w = s.stream.width();
        // SAFETY: per the contract; the rows are only read.
        unsafe {
            match s.format {
                N3NET_FORMAT_U8 => s.push::<u8>(row_of(row, len, w)?),
                N3NET_FORMAT_U16 => s.push::<u16>(row_of(row, len, w)?),
                _ => s.push::<f32>(row_of(row, len, w)?),
            }?;
        }
        Ok(N3NET_OK)
    })
}

/// Writes the next final output row (`width` samples of the stream's format)
/// to `row` (`len` samples available). Returns 1 when a row was written, 0
/// when none is final yet (push more rows), or a negative error code.
///
/// # Safety
/// `stream` is NULL or an open stream; `row` is NULL or points to `len`
/// writable samples of the stream's format.
#[no_mangle]
pub unsafe extern "C" fn n3net_stream_pull_row(
    stream: *mut N3netStream,
    row: *mut c_void,
    len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: per the contract.
        let s = unsafe { stream_mut(stream)? };
        let w = s.stream.width();
        // SAFETY: per the contract.
        let got = unsafe {
            match s.format {
                N3NET_FORMAT_U8 => s.pull::<u8>(row_mut_of(row, len, w)?),
                N3NET_FORMAT_U16 => s.pull::<u16>(row_mut_of(row, len, w)?),
                _ => s.pull::<f32>(row_mut_of(row, len, w)?),
            }?
        };
        Ok(i32::from(got))
    })
}

/// Rows of latency: output row `r` is final once input rows up to
/// `min(r + latency, height − 1)` are pushed. 0 for a NULL or closed stream.
///
/// # Safety
/// `stream` is NULL or an open stream.
#[no_mangle]
pub unsafe extern "C" fn n3net_stream_latency_rows(stream: *const N3netStream) -> u32 {
    // SAFETY: per the contract.
    unsafe { stream_ref(stream) }.map_or(0, |s| {
        u32::try_from(s.stream.latency_rows()).unwrap_or(u32::MAX)
    })
}

/// Closes the stream at `*stream` and sets `*stream` to NULL; its workspace
/// may then be reused. NULL and closed streams are ignored.
///
/// # Safety
/// `stream` is NULL or points to NULL or to an open stream's pointer.
#[no_mangle]
pub unsafe extern "C" fn n3net_stream_close(stream: *mut *mut N3netStream) {
    if stream.is_null() {
        return;
    }
    // SAFETY: per the contract.
    unsafe {
        if let Ok(s) = stream_mut(stream.read_unaligned()) {
            s.magic = 0;
        }
        stream.write_unaligned(core::ptr::null_mut());
    }
}
