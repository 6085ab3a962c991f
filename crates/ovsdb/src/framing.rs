//! Splitting the JSON-RPC byte stream into messages.
//!
//! OVSDB sends JSON objects back to back with no length prefix or delimiter. [`Framer`]
//! finds where each top-level object ends by counting braces outside strings (honouring
//! backslash escapes), and remembers how far it has scanned, so a message that arrives in
//! many reads is scanned once: linear in the bytes received, however the stream is cut.
//! Each complete message is then parsed with one `serde_json::from_slice`.
use serde_json::Value;

/// Malformed stream framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A byte outside any message that cannot start one.
    #[error("unexpected byte 0x{byte:02x} between JSON-RPC messages")]
    Unexpected {
        /// The offending byte.
        byte: u8,
    },
    /// A complete object that is not valid JSON.
    #[error("invalid JSON in message: {0}")]
    Json(String),
    /// More closing than opening braces/brackets.
    #[error("unbalanced brackets in message")]
    Unbalanced,
    /// A message still open after [`MAX_MESSAGE_BYTES`]: a broken or hostile peer.
    #[error("a message is over {MAX_MESSAGE_BYTES} bytes and still not complete")]
    TooLarge,
}

/// The largest message accepted. Initial monitor replies of big databases run to tens of MB;
/// past this a peer is broken, and buffering on would only exhaust memory.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Incremental message splitter: [`Framer::push`] bytes, then take messages with
/// [`Framer::next_message`] until it returns `Ok(None)`.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the message being scanned (bytes before it are consumed).
    start: usize,
    /// How far the scan has got.
    pos: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        // Drop consumed bytes before growing, so the buffer holds at most one partial message
        // plus what was just read.
        let all_consumed = self.start > 0 && self.start == self.pos;
        let mostly_consumed = self.start > 64 * 1024 && self.start > self.buf.len() / 2;
        if all_consumed || mostly_consumed {
            self.buf.drain(..self.start);
            self.pos -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes of an incomplete message held back.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Value>, FramingError> {
        while self.pos < self.buf.len() {
            let c = self.buf[self.pos];
            self.pos += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == b'\\' {
                    self.escaped = true;
                } else if c == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match c {
                b'"' if self.depth > 0 => self.in_string = true,
                b'{' | b'[' => {
                    if self.depth == 0 {
                        if c != b'{' {
                            return Err(FramingError::Unexpected { byte: c });
                        }
                        self.start = self.pos - 1;
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err(FramingError::Unbalanced);
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        let msg = &self.buf[self.start..self.pos];
                        self.start = self.pos;
                        return serde_json::from_slice(msg).map(Some).map_err(|e| FramingError::Json(e.to_string()));
                    }
                }
                b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 => self.start = self.pos,
                _ if self.depth == 0 => return Err(FramingError::Unexpected { byte: c }),
                _ => {}
            }
        }
        if self.depth > 0 && self.pos - self.start > MAX_MESSAGE_BYTES {
            return Err(FramingError::TooLarge);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_that_never_ends_is_refused_past_the_limit() {
        let mut f = Framer::new();
        f.push(b"{\"a\":\"");
        assert_eq!(f.next_message(), Ok(None));
        f.push(&vec![b'x'; MAX_MESSAGE_BYTES]);
        assert_eq!(f.next_message(), Err(FramingError::TooLarge));
    }

    const RECORDED: &str = concat!(
        r#"{"id":"echo","method":"echo","params":[]}"#,
        "\n",
        r#"{"id":null,"method":"update3","params":["m1","00000000-0000-0000-0000-000000000000",{"Interface":{"3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01":{"modify":{"external_ids":["map",[["note","a } in \"quotes\" {"]]]}}}}]}"#,
        r#"{"error":null,"id":7,"result":[{"uuid":["uuid","3a1b5a0e-6f39-4e4a-8f41-0f7c6a4b9b01"]}]}"#,
    );

    fn all(framer: &mut Framer) -> Vec<Value> {
        let mut out = vec![];
        while let Some(v) = framer.next_message().unwrap() {
            out.push(v);
        }
        out
    }

    #[test]
    fn splits_back_to_back_messages_with_braces_in_strings() {
        let mut f = Framer::new();
        f.push(RECORDED.as_bytes());
        let msgs = all(&mut f);
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0]["method"], json!("echo"));
        assert_eq!(msgs[2]["id"], json!(7));
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn any_cut_of_the_stream_yields_the_same_messages() {
        let whole = {
            let mut f = Framer::new();
            f.push(RECORDED.as_bytes());
            all(&mut f)
        };
        for piece in 1..=17 {
            let mut f = Framer::new();
            let mut got = vec![];
            for chunk in RECORDED.as_bytes().chunks(piece) {
                f.push(chunk);
                got.extend(all(&mut f));
            }
            assert_eq!(got, whole, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn text_between_messages_is_an_error() {
        let mut f = Framer::new();
        f.push(b"{\"a\":1} x");
        assert!(f.next_message().unwrap().is_some());
        assert_eq!(f.next_message(), Err(FramingError::Unexpected { byte: b'x' }));
    }

    #[test]
    fn top_level_array_and_stray_closer_are_errors() {
        let mut f = Framer::new();
        f.push(b"[1]");
        assert_eq!(f.next_message(), Err(FramingError::Unexpected { byte: b'[' }));
        let mut f = Framer::new();
        f.push(b"}");
        assert_eq!(f.next_message(), Err(FramingError::Unbalanced));
    }

    #[test]
    fn balanced_but_invalid_json_is_an_error() {
        let mut f = Framer::new();
        f.push(b"{\"a\" 1}");
        assert!(matches!(f.next_message(), Err(FramingError::Json(_))));
    }
}
