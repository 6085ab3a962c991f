//! The OpenFlow 1.5 wire codec: decode with nom from `&[u8]`, encode with explicit writers into
//! a `Vec<u8>`.
//!
//! Contract: decoders never panic on any input; they return a [`DecodeError`] naming the
//! structure and byte offset. Nested TLVs (OXMs, actions, properties) decode from a bounded
//! sub-slice, and overrunning or leaving bytes in it is an error. Encoders write lengths as a
//! placeholder and patch them when the body is done.

pub mod action;
pub mod codes;
pub mod frame;
pub mod group;
pub mod instruction;
pub mod message;
pub mod meter;
pub mod multipart;
pub mod oxm;

use nom::IResult;
use nom::number::complete::{be_u8, be_u16, be_u32, be_u64};

pub use frame::{Frame, FrameError, split_frame};
pub use message::{Message, decode_message};

/// The OpenFlow version byte for 1.2 (the first with OXM matches).
pub const OFP12_VERSION: u8 = 0x03;
/// The OpenFlow version byte for 1.3.
pub const OFP13_VERSION: u8 = 0x04;
/// The OpenFlow version byte for 1.5.
pub const OFP15_VERSION: u8 = 0x06;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}: {kind}")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// Offset within the structure being decoded.
    pub offset: usize,
    /// The enclosing structure.
    pub what: &'static str,
}

/// The kinds of [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// Fewer bytes than the structure needs.
    #[error("truncated")]
    Truncated,
    /// A length field that is impossible.
    #[error("bad length {0}")]
    BadLength(usize),
    /// Bytes left over after the structure.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A code this crate does not know.
    #[error("unknown {what} {code:#x}")]
    Unknown {
        /// What kind of code.
        what: &'static str,
        /// The code.
        code: u64,
    },
    /// A value that breaks a rule of the format.
    #[error("{0}")]
    Invalid(String),
    /// Input OVS rejects with the named OpenFlow error, e.g. a match entry whose
    /// prerequisites are missing (`OFPBMC_BAD_PREREQ`) or an action of unknown type
    /// (`OFPBAC_BAD_TYPE`).
    #[error("{detail} ({error})")]
    Rejected {
        /// OVS's name of the error (`ofperr_get_name`).
        error: &'static str,
        /// What was wrong, naming the field or action.
        detail: String,
    },
}

impl DecodeError {
    /// An error in `what` at `offset`.
    pub fn new(what: &'static str, offset: usize, kind: DecodeErrorKind) -> Self {
        DecodeError { kind, offset, what }
    }

    /// A [`DecodeErrorKind::Rejected`] error.
    pub fn rejected(what: &'static str, offset: usize, error: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::new(what, offset, DecodeErrorKind::Rejected { error, detail: detail.into() })
    }

    /// The name of the OpenFlow error OVS answers the same input with, when known.
    pub fn ofp_error(&self) -> Option<&'static str> {
        match self.kind {
            DecodeErrorKind::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }
}

type NomResult<'a, T> = IResult<&'a [u8], T, nom::error::Error<&'a [u8]>>;

/// A bounded cursor over a structure's bytes, reading with nom's big-endian parsers.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` decoding `what`.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes left, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// An error at the current position.
    pub fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(self.what, self.pos, kind)
    }

    /// An `Invalid` error at the current position.
    pub fn invalid(&self, msg: impl Into<String>) -> DecodeError {
        self.err(DecodeErrorKind::Invalid(msg.into()))
    }

    fn run<T>(&mut self, p: impl Fn(&'a [u8]) -> NomResult<'a, T>) -> Result<T, DecodeError> {
        match p(self.rest()) {
            Ok((rest, v)) => {
                self.pos = self.buf.len() - rest.len();
                Ok(v)
            }
            Err(_) => Err(self.err(DecodeErrorKind::Truncated)),
        }
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.run(be_u8)
    }
    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.run(be_u16)
    }
    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.run(be_u32)
    }
    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.run(be_u64)
    }

    /// `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.run(|i| nom::bytes::complete::take(n)(i))
    }

    /// Skips `n` bytes of padding.
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    /// A sub-reader over the next `n` bytes, for a nested structure named `what`.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let bytes = self.take(n)?;
        Ok(Reader::new(bytes, what))
    }

    /// Fails if any bytes are left.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.err(DecodeErrorKind::TrailingBytes(n))),
        }
    }
}

/// A NUL-padded fixed-size string field (port names, descriptions) as text: at most `len - 1`
/// bytes (the encoder keeps room for the NUL, as OVS's `ovs_strlcpy`), non-ASCII bytes as `?`,
/// so decoding what the encoder writes gives the same string.
pub fn fixed_ascii(bytes: &[u8]) -> String {
    let cap = bytes.len().saturating_sub(1);
    bytes[..cap]
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| if b.is_ascii() { char::from(*b) } else { '?' })
        .collect()
}

/// Writes a placeholder u16 length at the current end and returns its offset.
pub(crate) fn len_placeholder(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    at
}

/// Patches the u16 length at `at` with the bytes written since `start`.
pub(crate) fn patch_len(out: &mut [u8], at: usize, start: usize) {
    let len = (out.len() - start) as u16;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Zero-pads `out` so that the bytes since `start` are a multiple of 8.
pub(crate) fn pad8(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    out.resize(out.len() + (8 - len % 8) % 8, 0);
}

/// Big-endian writers on `Vec<u8>`.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_zeros(&mut self, n: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_past_the_end_is_truncated_not_a_panic() {
        let mut r = Reader::new(&[1, 2, 3], "thing");
        assert_eq!(r.u16().unwrap(), 0x0102);
        let e = r.u16().unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::Truncated);
        assert_eq!(e.offset, 2);
        assert_eq!(e.what, "thing");
    }

    #[test]
    fn leftover_bytes_are_reported_by_finish() {
        let mut r = Reader::new(&[1, 2, 3], "thing");
        r.u8().unwrap();
        assert_eq!(r.finish().unwrap_err().kind, DecodeErrorKind::TrailingBytes(2));
    }
}
