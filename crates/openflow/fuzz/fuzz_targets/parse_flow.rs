//! Flow-text parsing never panics; an added flow prints to text that parses to the same flow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::Flow;
use openflow::text::parse_flow_mod_line;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(fm) = parse_flow_mod_line(text, None) else { return };
    // Only added flows have a flow text to print (deletes and modifies are selections).
    if fm.command != openflow::FlowModCommand::Add {
        return;
    }
    let printed = fm.flow.to_string();
    let again: Flow = printed.parse().unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} does not parse: {e}"));
    assert_eq!(again, fm.flow, "{text:?} printed as {printed:?}");
});
