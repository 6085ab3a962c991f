//! Message decoding never panics, and whatever decodes re-encodes to bytes that decode to the
//! same message (the codec's own canonical form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::wire::{decode_message, split_frame};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = split_frame(data) else { return };
    let Ok(msg) = decode_message(&frame) else { return };
    let bytes = msg.to_bytes(frame.xid);
    let again = split_frame(&bytes).expect("encoded message frames");
    let back = decode_message(&again).unwrap_or_else(|e| panic!("re-encoded {msg:?} does not decode: {e}"));
    assert_eq!(back, msg);
});
