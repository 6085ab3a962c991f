//! OVS's own action vectors (tests/ofp-actions.at, OpenFlow 1.1/1.3/1.5 sections, copied into
//! `tests/vectors/ofp-actions.txt`): each decodes to OVS's text and re-encodes to the same
//! bytes, or OVS's "bad" vectors fail to decode with OVS's error. Vectors this crate does not support are listed
//! in [`UNSUPPORTED`] with the reason, and the test checks they really do not pass, so the list
//! cannot go stale.

use openflow::text::format_actions;
use openflow::wire::Reader;
use openflow::wire::action::{decode_actions, encode_actions};

const OF11: &str = "OpenFlow 1.1 action translation";
const OF13: &str = "OpenFlow 1.3 action translation";
const OF10_ONLY: &str = "an OpenFlow 1.0/1.1 set action; OpenFlow 1.5 sets fields with set_field, which this crate decodes";
const NX_OF10_ONLY: &str = "NXAST_REG_MOVE/NXAST_REG_LOAD are OpenFlow 1.0-1.4 actions: OVS rejects them in OpenFlow 1.5 (OFPBAC_BAD_VENDOR_TYPE) and so does this codec (the OpenFlow 1.5 vector of the same text passes)";

/// (section, expected OVS text, why this crate does not reproduce it).
const UNSUPPORTED: &[(&str, &str, &str)] = &[
    (OF11, "actions=set_vlan_vid:9", OF10_ONLY),
    (OF11, "actions=set_vlan_pcp:6", OF10_ONLY),
    (OF11, "actions=mod_dl_src:00:11:22:33:44:55", OF10_ONLY),
    (OF11, "actions=mod_dl_dst:10:20:30:40:50:60", OF10_ONLY),
    (OF11, "actions=mod_nw_src:1.2.3.4", OF10_ONLY),
    (OF11, "actions=mod_nw_dst:192.168.0.1", OF10_ONLY),
    (OF11, "actions=mod_nw_tos:48", OF10_ONLY),
    (OF11, "actions=mod_nw_ecn:2", OF10_ONLY),
    (OF11, "actions=mod_tp_src:80", OF10_ONLY),
    (OF11, "actions=mod_tp_dst:443", OF10_ONLY),
    (OF11, "actions=set_tunnel:0x12345678", "NXAST_SET_TUNNEL: the pipeline sets tun_id with set_field"),
    (OF11, "actions=set_tunnel64:0xc426384d49c53d60", "NXAST_SET_TUNNEL64: the pipeline sets tun_id with set_field"),
    (OF11, "actions=set_tunnel64:0x885f3298", "NXAST_SET_TUNNEL64: the pipeline sets tun_id with set_field"),
    (OF11, "actions=move:NXM_OF_IN_PORT[]->NXM_OF_VLAN_TCI[]", NX_OF10_ONLY),
    (OF11, "actions=load:0xf009->NXM_OF_VLAN_TCI[]", NX_OF10_ONLY),
    (OF13, "actions=move:NXM_OF_IN_PORT[]->NXM_OF_VLAN_TCI[]", "the NXAST_REG_MOVE and ONF copy_field-experimenter (0x4f4e4600) forms of move are OpenFlow 1.0-1.4 and 1.3 actions: OVS and this codec reject both in OpenFlow 1.5 (OFPBAC_BAD_VENDOR_TYPE)"),
];

struct Vector {
    section: String,
    expect: String,
    /// OVS normalizes these bytes (its `# N: x -> y` notes), so they cannot re-encode equal.
    normalized: bool,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("vectors/ofp-actions.txt");
    let mut out = Vec::new();
    let (mut section, mut expect, mut normalized, mut hex) = (String::new(), None::<String>, false, String::new());
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("@section ") {
            section = s.to_string();
        } else if line.starts_with("dnl") || line.starts_with('&') {
        } else if let Some(c) = line.strip_prefix("# ") {
            if c.starts_with("actions=") || c.starts_with("bad ") {
                expect = Some(c.to_string());
            } else if c.contains(" -> ") {
                normalized = true;
            }
        } else if line.starts_with('#') {
        } else if !line.trim().is_empty() {
            let continued = line.trim_end().ends_with(" dnl");
            hex.push_str(line.trim_end().trim_end_matches(" dnl"));
            if !continued {
                let digits: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
                let bytes = (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()).collect();
                let e = expect.take().unwrap_or_else(|| panic!("vector without expectation: {line}"));
                out.push(Vector { section: section.clone(), expect: e, normalized, bytes });
                normalized = false;
                hex.clear();
            }
        }
    }
    out
}

/// Why the vector does not pass, or `None` when it does.
fn check(v: &Vector) -> Option<String> {
    let decoded = decode_actions(&mut Reader::new(&v.bytes, "actions"));
    if let Some((_, want)) = v.expect.strip_prefix("bad ").and_then(|b| b.split_once(": ")) {
        // OVS's OpenFlow 1.5 answer to these bytes is the same error as the section's version.
        return match decoded {
            Ok(_) => Some("decoded, but OVS rejects it".to_string()),
            Err(e) if e.ofp_error() == Some(want) => None,
            Err(e) => Some(format!("rejected with {e}, not OVS's {want}")),
        };
    }
    let actions = match decoded {
        Ok(a) => a,
        Err(e) => return Some(format!("does not decode: {e}")),
    };
    let mut text = String::from("actions=");
    format_actions(&mut text, &actions, None);
    if text != v.expect {
        return Some(format!("prints {text}"));
    }
    let mut bytes = Vec::new();
    encode_actions(&actions, &mut bytes);
    if bytes != v.bytes && !v.normalized {
        return Some(format!("re-encodes to {bytes:02x?}"));
    }
    None
}

#[test]
fn ovs_action_vectors_decode_to_ovs_text_and_reencode_to_the_same_bytes() {
    let vs = vectors();
    assert!(vs.len() >= 45, "{} vectors", vs.len());
    let mut failures = Vec::new();
    for v in &vs {
        let listed = UNSUPPORTED.iter().find(|(sec, t, _)| *sec == v.section && *t == v.expect);
        match (check(v), listed) {
            (None, None) => {}
            (Some(why), None) => failures.push(format!("[{}] {}: {why}", v.section, v.expect)),
            (None, Some(_)) => failures.push(format!("[{}] {}: passes but is listed as unsupported", v.section, v.expect)),
            (Some(_), Some(_)) => {}
        }
    }
    assert!(failures.is_empty(), "{} vectors fail:\n{}", failures.len(), failures.join("\n"));
}
