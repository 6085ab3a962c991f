//! The OpenFlow header and stream framing: a frame is found from the header's length alone.

use super::Put;

/// `ofp_header` field offsets.
mod field {
    use std::ops::Range;
    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const XID: Range<usize> = 4..8;
}

/// Bytes in `ofp_header`.
pub const HEADER_LEN: usize = field::XID.end;

/// One message's header and the whole message's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The version byte.
    pub version: u8,
    /// The message type.
    pub msg_type: u8,
    /// The transaction id.
    pub xid: u32,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

impl Frame<'_> {
    /// The message body after the header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// Why the start of a stream is not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// More bytes are needed; `needed` is the frame's full size if known.
    #[error("incomplete OpenFlow message ({needed:?} bytes needed)")]
    Incomplete {
        /// The frame's full length, once the header is in.
        needed: Option<usize>,
    },
    /// The header's length is shorter than the header itself.
    #[error("OpenFlow header claims length {0}, shorter than the 8-byte header")]
    BadLength(usize),
}

/// Splits the first message off a byte stream.
pub fn split_frame(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Incomplete { needed: None });
    }
    let len = usize::from(u16::from_be_bytes([buf[field::LENGTH.start], buf[field::LENGTH.start + 1]]));
    if len < HEADER_LEN {
        return Err(FrameError::BadLength(len));
    }
    if buf.len() < len {
        return Err(FrameError::Incomplete { needed: Some(len) });
    }
    let xid = u32::from_be_bytes(buf[field::XID].try_into().expect("4-byte range"));
    Ok(Frame { version: buf[field::VERSION], msg_type: buf[field::TYPE], xid, bytes: &buf[..len] })
}

/// Writes a header with a zero length; returns the message start for [`finish_header`].
pub(crate) fn put_header(out: &mut Vec<u8>, version: u8, msg_type: u8, xid: u32) -> usize {
    let start = out.len();
    out.put_u8(version);
    out.put_u8(msg_type);
    out.put_u16(0);
    out.put_u32(xid);
    start
}

/// Patches the length of the message started at `start`.
pub(crate) fn finish_header(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + field::LENGTH.start..start + field::LENGTH.end].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_header_is_incomplete() {
        assert_eq!(split_frame(&[6, 0, 0]), Err(FrameError::Incomplete { needed: None }));
    }

    #[test]
    fn a_partial_body_reports_the_full_length() {
        assert_eq!(split_frame(&[6, 2, 0, 12, 0, 0, 0, 1, 0]), Err(FrameError::Incomplete { needed: Some(12) }));
    }

    #[test]
    fn a_length_below_the_header_is_invalid() {
        assert_eq!(split_frame(&[6, 2, 0, 4, 0, 0, 0, 1]), Err(FrameError::BadLength(4)));
    }

    #[test]
    fn a_whole_frame_is_split_from_what_follows() {
        let f = split_frame(&[6, 2, 0, 8, 0, 0, 0, 9, 6]).unwrap();
        assert_eq!((f.msg_type, f.xid, f.bytes.len()), (2, 9, 8));
    }
}
