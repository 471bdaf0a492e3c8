//! The C ABI with random settings, geometry, strides, buffer and workspace
//! lengths (exact, short, or long), noise levels, bit depths, Bayer
//! parameters, misaligned and in-place buffers, and random sequences of
//! stream pushes and pulls. Every call must return a documented code; a
//! refused call leaves the destination untouched; a successful one writes
//! only the pixels of the image (never the row padding) and, in float,
//! only finite values. AddressSanitizer checks every access against the
//! lengths passed.
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use n3net::*;
use n3net_fuzz::{check_code, tiny_2ch_q16, tiny_f32, Placed};

/// Largest buffer (in samples) and workspace (in bytes) a case allocates,
/// and the largest image a stream is run to its end on: bounds that keep a
/// case within a fraction of a second under the sanitizer.
const MAX_SAMPLES: usize = 1 << 13;
const MAX_WORKSPACE: usize = 64 << 20;
const MAX_STREAMED: usize = 1 << 12;
const MAX_STEPS: usize = 64;

/// An image dimension: usually small, sometimes anything.
fn dim(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0..=15)? {
        0 => u.arbitrary()?,
        1 => 0,
        _ => u.int_in_range(1..=40)?,
    })
}

/// A row stride for rows `width` samples long: usually enough, sometimes
/// short, sometimes anything.
fn stride(u: &mut Unstructured<'_>, width: u32) -> Result<usize> {
    let w = width as usize;
    Ok(match u.int_in_range(0..=7)? {
        0 => u.arbitrary()?,
        1 => w.saturating_sub(u.int_in_range(1..=2)?),
        _ => w + u.int_in_range(0..=5)?,
    })
}

/// A buffer length for `rows` rows of `width` samples `stride` apart:
/// usually exact or a little long, sometimes a little short, small when
/// the exact length is out of reach.
fn length(u: &mut Unstructured<'_>, rows: u32, width: u32, stride: usize) -> Result<usize> {
    let need = (rows as usize)
        .checked_sub(1)
        .and_then(|r| r.checked_mul(stride))
        .and_then(|n| n.checked_add(width as usize))
        .filter(|&n| n <= MAX_SAMPLES);
    Ok(match need {
        Some(n) => match u.int_in_range(0..=9)? {
            0 => n.saturating_sub(u.int_in_range(1..=3)?),
            1 => n + u.int_in_range(1..=3)?,
            _ => n,
        },
        None => u.int_in_range(0..=1024)?,
    })
}

fn noise(u: &mut Unstructured<'_>) -> Result<N3netNoise> {
    let level = |u: &mut Unstructured<'_>| -> Result<f32> {
        Ok(match u.int_in_range(0..=3)? {
            0 => f32::from_bits(u.arbitrary()?),
            _ => f32::from(u.int_in_range(0u8..=80)?),
        })
    };
    Ok(N3netNoise {
        kind: u.int_in_range(0..=3)?,
        sigma: level(u)?,
        a: level(u)? / 1000.0,
        b: level(u)? / 1000.0,
    })
}

/// A sample buffer of `len` values of `T`, `offset` bytes past an aligned
/// address (0 for aligned), filled from the fuzz input.
struct Buf {
    bytes: Placed,
    len: usize,
    size: usize,
}

impl Buf {
    fn new(u: &mut Unstructured<'_>, len: usize, size: usize, offset: usize) -> Result<Self> {
        let mut raw = vec![0u8; len * size];
        u.fill_buffer(&mut raw)?;
        Ok(Buf {
            bytes: Placed::new(&raw, offset),
            len,
            size,
        })
    }

    fn ptr<T>(&mut self) -> *mut T {
        self.bytes.bytes_mut().as_mut_ptr().cast()
    }
}

/// Which samples of a destination `rows × width`, `stride` apart, in a
/// buffer of `len` samples a successful call may write.
fn written(i: usize, width: usize, stride: usize, rows: usize) -> bool {
    i / stride < rows && i % stride < width
}

struct Model(Box<N3netModel>);

impl Model {
    fn open(u: &mut Unstructured<'_>) -> Result<Option<Model>> {
        let blob = if u.arbitrary()? {
            tiny_2ch_q16()
        } else {
            tiny_f32()
        };
        let mut s = N3netSettings {
            isa: u.int_in_range(0..=2)?,
            stripe_columns: match u.int_in_range(0..=3)? {
                0 => u.int_in_range(1..=48)?,
                1 => u.arbitrary()?,
                _ => 0,
            },
            ..N3netSettings::default()
        };
        if u.ratio(1, 32)? {
            s.reserved[u.int_in_range(0..=55)?] = 1;
        }
        // SAFETY: all-zero bytes are a valid (closed) model.
        let mut m = Box::new(unsafe { MaybeUninit::<N3netModel>::zeroed().assume_init() });
        // SAFETY: the blob, the settings and the model are valid for the call.
        let rc = unsafe { n3net_model_open(blob.as_ptr(), blob.len(), &s, &mut *m) };
        check_code(rc);
        Ok((rc == N3NET_OK).then_some(Model(m)))
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the model was opened and is closed once.
        unsafe { n3net_model_close(&mut *self.0) };
    }
}

/// A workspace for a call whose size query gave `query`: usually exactly
/// that, sometimes a byte or two short, small when the query failed or is
/// out of reach; at a random alignment.
fn workspace(u: &mut Unstructured<'_>, rc: i32, query: usize) -> Result<Placed> {
    let len = if rc == N3NET_OK && query <= MAX_WORKSPACE {
        match u.int_in_range(0..=9)? {
            0 => query.saturating_sub(u.int_in_range(1..=2)?),
            _ => query,
        }
    } else {
        u.int_in_range(0..=4096)?
    };
    Ok(Placed::new(&vec![0u8; len], u.int_in_range(0..=15)?))
}

/// One whole-plane or Bayer call on random buffers.
fn plane(u: &mut Unstructured<'_>, m: &Model, call: u8) -> Result<()> {
    let g = {
        let (width, height) = (dim(u)?, dim(u)?);
        N3netGeometry {
            width,
            height,
            src_stride: stride(u, width)?,
            dst_stride: stride(u, width)?,
        }
    };
    let size = [1, 2, 4, 2][usize::from(call)];
    let misaligned = size > 1 && u.ratio(1, 16)?;
    let offset = usize::from(misaligned);
    let src_len = length(u, g.height, g.width, g.src_stride)?;
    let mut src = Buf::new(u, src_len, size, offset)?;
    let in_place = u.ratio(1, 8)?;
    let mut dst = if in_place {
        None
    } else {
        let dst_len = length(u, g.height, g.width, g.dst_stride)?;
        Some(Buf::new(u, dst_len, size, offset)?)
    };
    let noise = noise(u)?;
    let noise_ptr: *const N3netNoise = if u.ratio(1, 8)? { ptr::null() } else { &noise };
    let bit_depth = u.int_in_range(0..=17)?;
    let bayer = N3netBayer {
        cfa: u.int_in_range(0..=4)?,
        black_level: u.int_in_range(0..=4096)?,
        white_level: u.int_in_range(0..=70000)?,
        reserved0: u32::from(u.ratio(1, 32)?),
        noise: [(); 4].map(|_| noise),
    };
    let mut query = 0usize;
    // SAFETY: the model is open and `query` is writable.
    let rc = unsafe {
        if call == 3 {
            n3net_bayer_workspace_size(&*m.0, g.width, g.height, &mut query)
        } else {
            n3net_workspace_size(&*m.0, g.width, g.height, &mut query)
        }
    };
    check_code(rc);
    let mut ws = workspace(u, rc, query)?;
    let src_ptr = src.ptr::<c_void>().cast_const();
    let src_samples = src.bytes.bytes().to_vec();
    let (dst_buf, dst_stride) = match &mut dst {
        Some(d) => (d, g.dst_stride),
        None => (&mut src, g.src_stride),
    };
    let geometry = N3netGeometry { dst_stride, ..g };
    let before = dst_buf.bytes.bytes().to_vec();
    let (dst_ptr, dst_len) = (dst_buf.ptr::<c_void>(), dst_buf.len);
    let (w, wl) = (
        ws.bytes_mut().as_mut_ptr().cast::<c_void>(),
        ws.bytes().len(),
    );
    // SAFETY: every pointer points to a buffer of the length passed with
    // it; in place, `src` and `dst` are the same buffer.
    let rc = unsafe {
        match call {
            0 => n3net_denoise_u8(
                &*m.0,
                &geometry,
                src_ptr.cast(),
                src_len,
                dst_ptr.cast(),
                dst_len,
                noise_ptr,
                w,
                wl,
            ),
            1 => n3net_denoise_u16(
                &*m.0,
                &geometry,
                bit_depth,
                src_ptr.cast(),
                src_len,
                dst_ptr.cast(),
                dst_len,
                noise_ptr,
                w,
                wl,
            ),
            2 => n3net_denoise_f32(
                &*m.0,
                &geometry,
                src_ptr.cast(),
                src_len,
                dst_ptr.cast(),
                dst_len,
                noise_ptr,
                w,
                wl,
            ),
            _ => n3net_denoise_bayer(
                &*m.0,
                &geometry,
                &bayer,
                src_ptr.cast(),
                src_len,
                dst_ptr.cast(),
                dst_len,
                w,
                wl,
            ),
        }
    };
    check_code(rc);
    let after = dst_buf.bytes.bytes();
    let (width, rows) = (g.width as usize, g.height as usize);
    // Float samples far outside [0, 1] can overflow inside the network: the
    // call then fails with N3NET_ERR_NON_FINITE_INPUT part way (documented),
    // having written only image samples.
    let overflow = call == 2
        && rc == N3NET_ERR_NON_FINITE_INPUT
        && src_samples
            .chunks(4)
            .enumerate()
            .filter(|&(i, _)| written(i, width, g.src_stride, rows))
            .all(|(_, b)| f32::from_ne_bytes(b.try_into().expect("4 bytes")).is_finite());
    if rc != N3NET_OK && !overflow {
        assert!(before == after, "a refused call wrote to dst (code {rc})");
        return Ok(());
    }
    assert!(!misaligned, "a misaligned buffer was accepted");
    for (i, (a, b)) in before.chunks(size).zip(after.chunks(size)).enumerate() {
        if !written(i, width, dst_stride, rows) {
            assert_eq!(a, b, "sample {i} outside the image was written");
        } else if call == 2 && rc == N3NET_OK {
            let v = f32::from_ne_bytes(b.try_into().expect("4 bytes"));
            assert!(v.is_finite(), "non-finite output at {i}");
        }
    }
    Ok(())
}

/// A stream opened with random parameters, then random pushes and pulls.
fn stream(u: &mut Unstructured<'_>, m: &Model) -> Result<()> {
    let (width, height) = (dim(u)?, dim(u)?);
    let format = u.int_in_range(0..=3)?;
    let bit_depth = u.int_in_range(0..=17)?;
    let noise = noise(u)?;
    let noise_ptr: *const N3netNoise = if u.ratio(1, 8)? { ptr::null() } else { &noise };
    let mut query = 0usize;
    // SAFETY: the model is open and `query` is writable.
    let rc = unsafe { n3net_stream_workspace_size(&*m.0, width, height, &mut query) };
    check_code(rc);
    let mut ws = workspace(u, rc, query)?;
    let mut s: *mut N3netStream = ptr::null_mut();
    // SAFETY: the model is open, the workspace is `ws.len()` writable bytes,
    // `s` is a writable pointer.
    let rc = unsafe {
        n3net_stream_open(
            &*m.0,
            width,
            height,
            format,
            bit_depth,
            noise_ptr,
            ws.bytes_mut().as_mut_ptr().cast(),
            ws.bytes().len(),
            &mut s,
        )
    };
    check_code(rc);
    if rc != N3NET_OK {
        assert!(s.is_null());
        return Ok(());
    }
    let size = [1usize, 2, 4][format as usize];
    let (w, h) = (width as usize, height as usize);
    let (mut pushed, mut pulled) = (0usize, 0usize);
    // Random pushes and pulls of random rows and lengths, while the input
    // lasts, at most `MAX_STEPS` of them.
    for _ in 0..MAX_STEPS {
        if u.is_empty() || pulled == h {
            break;
        }
        let push = u.arbitrary()?;
        let len = match u.int_in_range(0..=7)? {
            0 => w.saturating_sub(1),
            1 => w + 1,
            _ => w,
        };
        let mut row = Buf::new(u, len, size, 0)?;
        let rc = step(s, push, &mut row, len);
        match (push, rc) {
            (true, N3NET_OK) => pushed += 1,
            (false, 1) => pulled += 1,
            (false, 0) => assert!(pushed < h, "no row final after the whole image"),
            _ => assert!(rc < 0, "unexpected code {rc}"),
        }
        assert!(pushed <= h && pulled <= pushed);
    }
    // Then the documented way to finish: push each remaining (zero) row
    // and pull every final row after it; every row must come out. (A large
    // image is closed unfinished, which is allowed too; so is a float
    // stream whose earlier samples overflowed inside the network.)
    if w * h <= MAX_STREAMED {
        let mut row = Buf::new(&mut Unstructured::new(&[]), w, size, 0)?;
        let overflow = |rc| size == 4 && rc == N3NET_ERR_NON_FINITE_INPUT;
        let mut stopped = false;
        for y in pushed..=h {
            if y < h {
                let rc = step(s, true, &mut row, w);
                stopped = overflow(rc);
                assert!(rc == N3NET_OK || stopped, "a valid push failed: {rc}");
            }
            while !stopped {
                match step(s, false, &mut row, w) {
                    1 => pulled += 1,
                    0 => break,
                    rc => {
                        stopped = overflow(rc);
                        assert!(stopped, "a valid pull failed: {rc}");
                    }
                }
            }
            if stopped {
                break;
            }
        }
        assert!(
            stopped || pulled == h,
            "rows missing after the whole image was pushed"
        );
    }
    // SAFETY: `s` is open and closed once; close sets it to NULL.
    unsafe { n3net_stream_close(&mut s) };
    assert!(s.is_null());
    Ok(())
}

/// Pushes `row` to, or pulls it from, the open stream `s`; checks the code
/// and, for a float row pulled, that it is finite.
fn step(s: *mut N3netStream, push: bool, row: &mut Buf, len: usize) -> i32 {
    // SAFETY: `s` is open; `row` holds `len` samples of the stream's format.
    let rc = unsafe {
        if push {
            n3net_stream_push_row(s, row.ptr::<c_void>().cast_const(), len)
        } else {
            n3net_stream_pull_row(s, row.ptr(), len)
        }
    };
    check_code(rc);
    if !push && rc == 1 && row.size == 4 {
        let finite = row
            .bytes
            .bytes()
            .chunks(4)
            .all(|b| f32::from_ne_bytes(b.try_into().expect("4 bytes")).is_finite());
        assert!(finite, "non-finite row");
    }
    rc
}

fn fuzz(u: &mut Unstructured<'_>) -> Result<()> {
    let Some(m) = Model::open(u)? else {
        return Ok(());
    };
    match u.int_in_range(0u8..=4)? {
        4 => stream(u, &m),
        call => plane(u, &m, call),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = fuzz(&mut Unstructured::new(data));
});
