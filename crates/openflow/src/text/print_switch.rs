//! Printing switch-level replies the way ovs-ofctl does: features (`show`), port descriptions
//! (`dump-ports-desc`), switch config and table stats (`dump-tables`). Follows OVS's
//! `ofputil_switch_features_format`, `ofputil_phy_port_format` and `ofp_print_bit_names`.

use std::fmt::Write;

use crate::wire::message::{Features, PortDesc, SwitchConfig};
use crate::wire::multipart::TableStats;

/// Capability bits of an OpenFlow 1.5 FEATURES_REPLY (OFPC_*), by bit.
const CAPABILITIES: &[(u32, &str)] = &[
    (1 << 0, "FLOW_STATS"),
    (1 << 1, "TABLE_STATS"),
    (1 << 2, "PORT_STATS"),
    (1 << 3, "GROUP_STATS"),
    (1 << 5, "IP_REASM"),
    (1 << 6, "QUEUE_STATS"),
    (1 << 8, "PORT_BLOCKED"),
    (1 << 9, "BUNDLES"),
    (1 << 10, "FLOW_MONITORING"),
];

/// OFPPC_* port config bits.
const PORT_CONFIG: &[(u32, &str)] =
    &[(1 << 0, "PORT_DOWN"), (1 << 2, "NO_RECV"), (1 << 5, "NO_FWD"), (1 << 6, "NO_PACKET_IN")];

/// OFPPS_* port state bits.
const PORT_STATE: &[(u32, &str)] = &[(1 << 0, "LINK_DOWN"), (1 << 1, "BLOCKED"), (1 << 2, "LIVE")];

/// OFPPF_* port feature bits, named as OVS's `netdev_feature_to_name`.
const PORT_FEATURES: &[(u32, &str)] = &[
    (1 << 0, "10MB-HD"),
    (1 << 1, "10MB-FD"),
    (1 << 2, "100MB-HD"),
    (1 << 3, "100MB-FD"),
    (1 << 4, "1GB-HD"),
    (1 << 5, "1GB-FD"),
    (1 << 6, "10GB-FD"),
    (1 << 7, "40GB-FD"),
    (1 << 8, "100GB-FD"),
    (1 << 9, "1TB-FD"),
    (1 << 10, "OTHER"),
    (1 << 11, "COPPER"),
    (1 << 12, "FIBER"),
    (1 << 13, "AUTO_NEG"),
    (1 << 14, "AUTO_PAUSE"),
    (1 << 15, "AUTO_PAUSE_ASYM"),
];

/// Bit names separated by `sep`; unnamed bits as one hex number at the end; `0` for none.
pub fn format_bit_names(s: &mut String, bits: u32, names: &[(u32, &str)], sep: char) {
    if bits == 0 {
        s.push('0');
        return;
    }
    let mut rest = bits;
    let mut n = 0;
    for i in 0..32 {
        let bit = 1u32 << i;
        if bits & bit == 0 {
            continue;
        }
        if let Some((_, name)) = names.iter().find(|(b, _)| *b == bit) {
            if n > 0 {
                s.push(sep);
            }
            n += 1;
            s.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        if n > 0 {
            s.push(sep);
        }
        let _ = write!(s, "0x{rest:x}");
    }
}

/// The body of a FEATURES_REPLY (after the message header line's `: `).
pub fn format_features(s: &mut String, f: &Features) {
    let _ = writeln!(s, "dpid:{:016x}", f.datapath_id);
    let _ = writeln!(s, "n_tables:{}, n_buffers:{}", f.n_tables, f.n_buffers);
    s.push_str("capabilities: ");
    format_bit_names(s, f.capabilities, CAPABILITIES, ' ');
    s.push('\n');
}

/// One port, as in `show` and `dump-ports-desc` (several lines, each ending in a newline).
pub fn format_port_desc(s: &mut String, p: &PortDesc) {
    s.push(' ');
    super::print::format_port(s, p.port_no, None);
    let name: String = p.name.chars().take_while(|c| c.is_ascii_graphic() || *c == ' ').collect();
    let _ = writeln!(s, "({name}): addr:{}", p.hw_addr);
    s.push_str("     config:     ");
    format_bit_names(s, p.config, PORT_CONFIG, ' ');
    s.push('\n');
    s.push_str("     state:      ");
    format_bit_names(s, p.state, PORT_STATE, ' ');
    s.push('\n');
    let [curr, advertised, supported, peer, curr_speed, max_speed] = p.ethernet.unwrap_or([0; 6]);
    for (bits, label) in [(curr, "current:    "), (advertised, "advertised: "), (supported, "supported:  "), (peer, "peer:       ")] {
        if bits != 0 {
            let _ = write!(s, "     {label}");
            format_bit_names(s, bits, PORT_FEATURES, ' ');
            s.push('\n');
        }
    }
    let _ = writeln!(s, "     speed: {} Mbps now, {} Mbps max", curr_speed / 1000, max_speed / 1000);
}

/// Ports sorted by number, as OVS prints them.
pub fn format_port_descs(s: &mut String, ports: &[PortDesc]) {
    let mut sorted: Vec<&PortDesc> = ports.iter().collect();
    sorted.sort_by_key(|p| p.port_no.0);
    for p in sorted {
        format_port_desc(s, p);
    }
}

/// A GET_CONFIG_REPLY body: `frags=normal miss_send_len=0`.
pub fn format_switch_config(s: &mut String, c: &SwitchConfig) {
    let frags = match c.flags & 3 {
        0 => "normal",
        1 => "drop",
        2 => "reassemble",
        _ => "nx-match",
    };
    let _ = write!(s, "frags={frags}");
    if c.flags & !3 != 0 {
        let _ = write!(s, " flags=0x{:x}", c.flags & !3);
    }
    let _ = writeln!(s, " miss_send_len={}", c.miss_send_len);
}

/// Table statistics as `dump-tables` prints them: a table whose counters and name equal the
/// previous printed table's is folded into a `ditto` line (OVS's `ofputil_table_features_format`
/// with `prev`), consecutive dittos into one `tables A...B: ditto` line.
pub fn format_table_stats(s: &mut String, stats: &[TableStats], names: &std::collections::HashMap<u8, String>) {
    let mut i = 0;
    let mut prev: Option<&TableStats> = None;
    while i < stats.len() {
        let t = &stats[i];
        let same = |a: &TableStats, b: &TableStats| {
            a.active_count == b.active_count && a.lookup_count == b.lookup_count && a.matched_count == b.matched_count
        };
        let ditto = |x: &TableStats| prev.is_some_and(|p| same(p, x)) && !names.contains_key(&x.table_id);
        if ditto(t) {
            let mut j = i;
            while j + 1 < stats.len() && ditto(&stats[j + 1]) && same(&stats[j + 1], t) {
                j += 1;
            }
            if j == i {
                let _ = writeln!(s, "  table {}: ditto", t.table_id);
            } else {
                let _ = writeln!(s, "  tables {}...{}: ditto", t.table_id, stats[j].table_id);
            }
            i = j + 1;
            if i < stats.len() {
                s.push('\n');
            }
            continue;
        }
        let _ = write!(s, "  table {}", t.table_id);
        if let Some(n) = names.get(&t.table_id) {
            let _ = write!(s, " (\"{n}\")");
        }
        s.push_str(":\n");
        let _ = writeln!(s, "    active={}, lookup={}, matched={}", t.active_count, t.lookup_count, t.matched_count);
        prev = Some(t);
        i += 1;
        if i < stats.len() {
            s.push('\n');
        }
    }
}
