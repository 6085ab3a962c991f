//! Bytes from ovsdb-server, cut into arbitrary reads, never make the framer or the JSON-RPC
//! classifier panic; the messages (and the first error) do not depend on how the stream was
//! cut; and every classified message survives its own wire form.
//!
//! Input: byte 0 mod 8 is the number `k` of read sizes that follow (each byte + 1, used in
//! turn); the rest is the stream. `k == 0` delivers the stream in one read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovsdb::framing::{Framer, FramingError};
use ovsdb::jsonrpc::{Calls, Message};
use serde_json::Value;

/// Everything the client's read loop would get: messages until the first error, which
/// closes the connection.
fn frame(reads: impl Iterator<Item = Vec<u8>>, total: usize) -> (Vec<Value>, Option<FramingError>) {
    let mut framer = Framer::new();
    let mut out = vec![];
    for bytes in reads {
        framer.push(&bytes);
        loop {
            match framer.next_message() {
                Ok(Some(v)) => out.push(v),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert!(framer.pending() <= total, "framer holds more than it was given");
    }
    (out, None)
}

fn check_message(v: Value, calls: &mut Calls<u64>) {
    let Ok(msg) = Message::from_json(v) else { return };
    assert_eq!(Message::from_json(msg.to_json()).as_ref(), Ok(&msg), "wire form of {msg:?}");
    // The bytes the client would send frame back into one message of the same kind.
    let reply = msg.answer();
    for m in std::iter::once(&msg).chain(reply.as_ref()) {
        let (again, err) = frame(std::iter::once(m.to_bytes()), usize::MAX);
        assert!(err.is_none() && again.len() == 1, "{m:?} does not frame as one message: {err:?}");
        let back = Message::from_json(again.into_iter().next().expect("one")).expect("classifies");
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(m));
    }
    if let Message::Response { id, result, error } = msg {
        if let Some((waiter, _)) = calls.complete(&id, result, error) {
            assert_eq!(Some(waiter), id.as_u64());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let k = usize::from(k % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(k);

    let whole = frame(std::iter::once(stream.to_vec()), stream.len());
    let reads = {
        let mut reads = vec![];
        let mut at = 0;
        let mut i = 0;
        while at < stream.len() {
            let n = sizes.get(i % k.max(1)).map_or(stream.len(), |&s| usize::from(s) + 1);
            let end = (at + n).min(stream.len());
            reads.push(stream[at..end].to_vec());
            at = end;
            i += 1;
        }
        reads
    };
    let cut = frame(reads.into_iter(), stream.len());
    assert_eq!(cut, whole, "the stream's messages depend on how it was cut");

    let mut calls = Calls::default();
    for id in 0..8u64 {
        calls.register(id, id);
    }
    for v in whole.0 {
        check_message(v, &mut calls);
    }
});
