//! OVS's flow-text vectors: the flows of tests/ovs-ofctl.at's parse-flows sections, with what
//! `ovs-ofctl -O OpenFlow15 parse-flow` prints for each (`tests/vectors/parse-flows-of15.txt`).
//! Each flow is parsed by this crate, sent through the OpenFlow 1.5 flow-mod encoder and
//! decoder as ovs-ofctl does, and printed as ovs-ofctl prints an OFPT_FLOW_MOD; the text must
//! be OVS's, and a flow OVS refuses must be refused. Vectors this crate does not reproduce are
//! listed in [`UNSUPPORTED`] with the reason, and the test checks they really do not pass.

use openflow::text::{format_ofp_flow_mod, parse_flow_mod_line};
use openflow::wire::Reader;
use openflow::wire::message::{decode_flow_mod, encode_flow_mod};

/// (input flow, why this crate does not reproduce OVS's output). Empty: every vector passes.
const UNSUPPORTED: &[(&str, &str)] = &[];

/// What `ovs-ofctl -O OpenFlow15 parse-flow` would print for `input` after the message
/// header, by this crate, or `error: ` and the parse error.
fn parse_flow(input: &str) -> String {
    let fm = match parse_flow_mod_line(input, None) {
        Ok(fm) => fm,
        Err(e) => return format!("error: {e}"),
    };
    let mut bytes = Vec::new();
    encode_flow_mod(&fm, &mut bytes);
    let back = decode_flow_mod(&mut Reader::new(&bytes, "flow_mod")).unwrap_or_else(|e| panic!("{input}: {e}"));
    let mut s = String::new();
    format_ofp_flow_mod(&mut s, &back, None);
    s.trim_start().to_string()
}

#[test]
fn ovs_parse_flows_vectors_print_as_ovs_ofctl_does() {
    let text = include_str!("vectors/parse-flows-of15.txt");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(lines.len() >= 200, "{} lines", lines.len());
    let mut failures = Vec::new();
    for pair in lines.chunks(2) {
        let input = pair[0].strip_prefix("in:  ").unwrap();
        let want = pair[1].strip_prefix("out: ").unwrap();
        let got = parse_flow(input);
        // OVS's error messages are its own; a refusal only has to be a refusal.
        let same = got == want || got.starts_with("error: ") && want.starts_with("error: ");
        match (same, UNSUPPORTED.iter().any(|(i, _)| *i == input)) {
            (true, false) | (false, true) => {}
            (false, false) => failures.push(format!("{input}\n  OVS:  {want}\n  weir: {got}")),
            (true, true) => failures.push(format!("{input}: passes but is listed as unsupported")),
        }
    }
    assert!(failures.is_empty(), "{} vectors fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_unsupported_flow_vector_names_a_vector_that_exists() {
    let text = include_str!("vectors/parse-flows-of15.txt");
    for (input, _) in UNSUPPORTED {
        assert!(text.lines().any(|l| l.strip_prefix("in:  ") == Some(input)), "{input}");
    }
}
