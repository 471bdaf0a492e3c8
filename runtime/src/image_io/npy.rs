//! Minimal `.npy` header reader and writer.

use std::io::Read;
use std::path::Path;

use super::{
    decode_err, dims_string, element_count, read_exact_or, too_large, unsupported, ImageError,
};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header accepted when reading (NumPy itself caps it at 10 kB by
/// default; be a little more generous).
const MAX_HEADER: usize = 1 << 20;

/// Element type of a readable `.npy` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dtype {
    /// `<f4`
    F32,
    /// `<f8`, converted to `f32` when read.
    F64,
}

impl Dtype {
    /// Bytes an element occupies in the file.
    pub(super) fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }

    /// Converts the little-endian elements in `bytes` to `f32`, one for each
    /// value of `out`.
    pub(super) fn decode(self, bytes: &[u8], out: &mut [f32]) {
        match self {
            Dtype::F32 => {
                for (v, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Dtype::F64 => {
                for (v, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                    *v =
                        f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32;
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// The array a `.npy` header describes.
pub(super) struct Header {
    /// Element type.
    pub(super) dtype: Dtype,
    /// Shape, C order.
    pub(super) shape: Vec<usize>,
    /// Number of elements, at most [`super::MAX_ELEMENTS`].
    pub(super) len: usize,
    /// Offset of the data section from the start of the file.
    pub(super) data_start: u64,
}

impl Header {
    /// Checks that a data section of `actual` bytes holds exactly the array.
    pub(super) fn check_data_len(&self, path: &Path, actual: u64) -> Result<(), ImageError> {
        // len ≤ 2^31 and size ≤ 8: no overflow.
        let need = self.len as u64 * self.dtype.size() as u64;
        if actual == need {
            return Ok(());
        }
        Err(decode_err(
            path,
            format!(
                "data section has {actual} bytes, shape {} of {} needs {need}",
                dims_string(&self.shape),
                self.dtype.descr()
            ),
        ))
    }
}

/// Reads the preamble and header of a `.npy` file from `r`, leaving `r` at
/// the start of the data section.
pub(super) fn read_header(path: &Path, r: &mut impl Read) -> Result<Header, ImageError> {
    let mut magic = [0u8; 6];
    read_exact_or(r, &mut magic, path, || {
        "not a .npy file (bad magic string)".into()
    })?;
    if &magic != MAGIC {
        return Err(decode_err(path, "not a .npy file (bad magic string)"));
    }
    let preamble = || "truncated .npy preamble".to_owned();
    let mut version = [0u8; 2];
    read_exact_or(r, &mut version, path, preamble)?;
    let [major, minor] = version;
    let (header_len, header_start) = match major {
        1 => {
            let mut len = [0u8; 2];
            read_exact_or(r, &mut len, path, preamble)?;
            (usize::from(u16::from_le_bytes(len)), 10)
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            read_exact_or(r, &mut len, path, preamble)?;
            let len = u32::from_le_bytes(len);
            (usize::try_from(len).unwrap_or(usize::MAX), 12)
        }
        _ => {
            return Err(unsupported(
                path,
                format!(".npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"),
            ))
        }
    };
    if header_len > MAX_HEADER {
        return Err(decode_err(
            path,
            format!(".npy header length {header_len} is implausible"),
        ));
    }
    let mut header = vec![0u8; header_len];
    read_exact_or(r, &mut header, path, || "truncated .npy header".into())?;
    let header = if major == 3 {
        String::from_utf8(header).map_err(|_| decode_err(path, ".npy header is not valid UTF-8"))?
    } else {
        // Versions 1 and 2 use latin-1; a valid header is ASCII.
        if !header.is_ascii() {
            return Err(decode_err(path, ".npy header is not ASCII"));
        }
        String::from_utf8_lossy(&header).into_owned()
    };
    let (dtype, shape) = parse_header(&header)
        .map_err(|r| decode_err(path, format!("bad .npy header {header:?}: {r}")))?;
    let dtype = dtype.map_err(|d| unsupported(path, d))?;
    let len = element_count(&shape).ok_or_else(|| too_large(path, &shape))?;
    Ok(Header {
        dtype,
        shape,
        len,
        data_start: (header_start + header_len) as u64,
    })
}

/// Decodes a whole `.npy` file held in memory.
pub(super) fn decode(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), ImageError> {
    let mut payload = bytes;
    let header = read_header(path, &mut payload)?;
    header.check_data_len(path, payload.len() as u64)?;
    let mut data = vec![0.0; header.len];
    header.dtype.decode(payload, &mut data);
    Ok((header.shape, data))
}

/// Parses the header dict. `Err`: the header is malformed. `Ok((dtype,
/// shape))` where `dtype` is `Err(reason)` when the (well-formed) header
/// describes something unsupported (other dtype, Fortran order).
fn parse_header(header: &str) -> Result<(Result<Dtype, String>, Vec<usize>), String> {
    let mut p = Parser {
        s: header.as_bytes(),
        pos: 0,
    };
    let mut descr: Option<String> = None;
    let mut fortran: Option<bool> = None;
    let mut shape: Option<Vec<usize>> = None;
    p.expect(b'{')?;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = match p.value()? {
            Value::Str(s) => s,
            other => return Err(format!("dict key must be a string, got {other:?}")),
        };
        p.expect(b':')?;
        let value = p.value()?;
        let dup = match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr.replace(s).is_some(),
            ("fortran_order", Value::Bool(b)) => fortran.replace(b).is_some(),
            ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
            ("descr" | "fortran_order" | "shape", v) => {
                return Err(format!("key '{key}' has a value of the wrong type: {v:?}"))
            }
            _ => return Err(format!("unexpected key '{key}'")),
        };
        if dup {
            return Err(format!("duplicate key '{key}'"));
        }
        p.skip_ws();
        if p.eat(b',') {
            continue;
        }
        p.expect(b'}')?;
        break;
    }
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err("trailing characters after the dict".into());
    }
    let descr = descr.ok_or("missing key 'descr'")?;
    let fortran = fortran.ok_or("missing key 'fortran_order'")?;
    let shape = shape.ok_or("missing key 'shape'")?;
    let dtype = if fortran {
        Err("fortran_order True is not supported (save a C-order array)".to_owned())
    } else {
        match descr.as_str() {
            "<f4" => Ok(Dtype::F32),
            "<f8" => Ok(Dtype::F64),
            other => Err(format!(
                "dtype '{other}' is not supported (expected '<f4' or '<f8')"
            )),
        }
    };
    Ok((dtype, shape))
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.pos))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.s.get(self.pos) {
            Some(&q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while let Some(&b) = self.s.get(self.pos) {
                    if b == q {
                        let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                        self.pos += 1;
                        return Ok(Value::Str(text));
                    }
                    if b == b'\\' {
                        return Err("escape sequences in strings are not supported".into());
                    }
                    self.pos += 1;
                }
                Err("unterminated string".into())
            }
            Some(b'(') => {
                self.pos += 1;
                let mut dims = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(b')') {
                        break;
                    }
                    dims.push(self.integer()?);
                    self.skip_ws();
                    if self.eat(b',') {
                        continue;
                    }
                    self.expect(b')')?;
                    break;
                }
                Ok(Value::Tuple(dims))
            }
            Some(b) if b.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    other => Err(format!(
                        "unexpected identifier '{}'",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
            Some(&b) => Err(format!(
                "unexpected character '{}' at offset {}",
                b as char, self.pos
            )),
            None => Err("unexpected end of header".into()),
        }
    }

    fn integer(&mut self) -> Result<usize, String> {
        let start = self.pos;
        let mut v: usize = 0;
        while let Some(&b) = self.s.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(b - b'0')))
                .ok_or("shape dimension overflows")?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(format!(
                "expected a non-negative integer at offset {}",
                self.pos
            ));
        }
        // Python 2 long suffix.
        if matches!(self.s.get(self.pos), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        Ok(v)
    }
}

/// Builds the preamble + header for a `<f4` C-order array of `shape`,
/// padded with spaces and a final newline to a multiple of 64 bytes.
pub(super) fn encode_header(shape: &[usize]) -> Vec<u8> {
    let shape_str = match shape {
        [] => "()".to_owned(),
        [d] => format!("({d},)"),
        _ => dims_string(shape),
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    // Version 1.0: 10-byte preamble, u16 header length.
    let total_v1 = (10 + dict.len() + 1).div_ceil(64) * 64;
    let (version, prefix, total) = if total_v1 - 10 <= usize::from(u16::MAX) {
        (1u8, 10usize, total_v1)
    } else {
        (2u8, 12usize, (12 + dict.len() + 1).div_ceil(64) * 64)
    };
    let header_len = total - prefix;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.push(0);
    if version == 1 {
        // header_len ≤ u16::MAX checked above
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}
