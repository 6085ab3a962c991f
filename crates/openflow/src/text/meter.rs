//! Meters in ovs-ofctl syntax: `meter=1 kbps burst stats bands=type=drop rate=100 burst_size=10`,
//! parsed as OVS's `parse_ofp_meter_mod_str` and printed as its `ofputil_format_meter_config`
//! (what `dump-meters` shows); meter statistics as its `ofputil_format_meter_stats`, and meter
//! features as its `ofputil_format_meter_features`.

use std::fmt::Write;

use super::lex::{parse_u8, parse_u32};
use super::parse::ParseError;
use crate::wire::meter::{MeterBand, MeterFeatures, MeterMod, MeterStats, band_type, meter_command, meter_flags, meter_id};

/// Flag names in the order OVS prints them.
const FLAGS: &[(u16, &str)] =
    &[(meter_flags::KBPS, "kbps"), (meter_flags::PKTPS, "pktps"), (meter_flags::BURST, "burst"), (meter_flags::STATS, "stats")];

/// Meter ids with names.
const NAMED_IDS: &[(u32, &str)] =
    &[(meter_id::ALL, "all"), (meter_id::CONTROLLER, "controller"), (meter_id::SLOWPATH, "slowpath")];

/// What a meter text is for: which keywords it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterText {
    /// `add-meter`, `mod-meter`: the meter, its flags and bands.
    Mod(u16),
    /// `del-meter`, `dump-meter`: the meter only.
    Select,
}

/// OVS tokenizes meter text with `strtok(s, "=, \t\r\n")`.
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(['=', ',', ' ', '\t', '\r', '\n']).filter(|t| !t.is_empty())
}

fn parse_meter_id(v: &str) -> Result<u32, ParseError> {
    if let Some((id, _)) = NAMED_IDS.iter().find(|(_, n)| *n == v) {
        return Ok(*id);
    }
    let id = parse_u32(v, "meter")?;
    if id == 0 || id > meter_id::MAX {
        return Err(ParseError::new(v, "invalid value for meter"));
    }
    Ok(id)
}

/// Parses a meter for `what`: `Mod(command)` gives a METER_MOD with that OFPMC_* command,
/// `Select` a meter-mod whose only use is its `meter_id`. Errors are OVS's, naming the token.
pub fn parse_meter(s: &str, what: MeterText) -> Result<MeterMod, ParseError> {
    let command = match what {
        MeterText::Mod(c) => c,
        MeterText::Select => meter_command::DELETE,
    };
    let mut m = MeterMod { command, flags: 0, meter_id: 0, bands: Vec::new() };
    let with_bands = what != MeterText::Select;
    // As OVS: everything after the first "band" is the band list (after its '=').
    let (head, band_text) = match (with_bands, s.find("band")) {
        (false, _) => (s, None),
        (true, None) => return Err(ParseError::new(s.trim(), "must specify bands")),
        (true, Some(i)) => match s[i..].find('=') {
            Some(j) => (&s[..i], Some(&s[i + j + 1..])),
            None => return Err(ParseError::new(s.trim(), "must specify bands")),
        },
    };
    let mut toks = tokens(head);
    while let Some(name) = toks.next() {
        if let Some((bit, _)) = FLAGS.iter().find(|(_, n)| with_bands && *n == name) {
            m.flags |= bit;
            continue;
        }
        let value = toks.next().ok_or_else(|| ParseError::new(name, format!("field {name} missing value")))?;
        match name {
            "meter" => m.meter_id = parse_meter_id(value)?,
            _ => return Err(ParseError::new(name, format!("unknown keyword {name}"))),
        }
    }
    if m.meter_id == 0 {
        return Err(ParseError::new(s.trim(), "must specify 'meter'"));
    }
    let Some(band_text) = band_text else { return Ok(m) };
    if m.flags == 0 {
        return Err(ParseError::new(s.trim(), "meter must specify either 'kbps' or 'pktps'"));
    }
    let mut toks = tokens(band_text);
    while let Some(name) = toks.next() {
        let value = toks.next().ok_or_else(|| ParseError::new(name, format!("field {name} missing value")))?;
        if name == "type" {
            let band_type = match value {
                "drop" => band_type::DROP,
                "dscp_remark" => band_type::DSCP_REMARK,
                _ => return Err(ParseError::new(value, format!("field {name} unknown value {value}"))),
            };
            m.bands.push(MeterBand { band_type, rate: 0, burst_size: 0, prec_level: 0 });
            continue;
        }
        let band = m.bands.last_mut().ok_or_else(|| ParseError::new(name, "band must start with the 'type' keyword"))?;
        match name {
            "rate" => band.rate = parse_u32(value, "rate")?,
            "burst_size" => band.burst_size = parse_u32(value, "burst_size")?,
            "prec_level" => band.prec_level = parse_u8(value, "prec_level")?,
            _ => return Err(ParseError::new(name, format!("unknown keyword {name}"))),
        }
    }
    if m.bands.is_empty() {
        return Err(ParseError::new(band_text.trim(), "meter must have bands"));
    }
    let burst = m.flags & meter_flags::BURST != 0;
    for b in &m.bands {
        let problem = match () {
            _ if b.band_type == band_type::DSCP_REMARK && b.prec_level == 0 => "'dscp_remark' band must have 'prec_level'",
            _ if b.band_type != band_type::DSCP_REMARK && b.prec_level != 0 => "Only 'dscp_remark' band may have 'prec_level'",
            _ if b.rate == 0 => "band must have 'rate'",
            _ if burst && b.burst_size == 0 => "band must have 'burst_size' when 'burst' flag is set",
            _ if !burst && b.burst_size != 0 => "band may have 'burst_size' only when 'burst' flag is set",
            _ => continue,
        };
        return Err(ParseError::new(band_text.trim(), problem));
    }
    Ok(m)
}

/// `meter=N` (or `meter=all`...), as OVS's `ofputil_format_meter_id` with `sep` (`=` or `:`).
fn format_meter_id(s: &mut String, id: u32, sep: char) {
    match NAMED_IDS.iter().find(|(n, _)| *n == id) {
        Some((_, name)) => {
            let _ = write!(s, "meter{sep}{name}");
        }
        None if id > meter_id::MAX => {
            let _ = write!(s, "meter{sep}unknown");
        }
        None => {
            let _ = write!(s, "meter{sep}{id}");
        }
    }
}

/// A duration as OVS's `ofp_print_duration`: seconds, then milliseconds when exact, else
/// the nanoseconds without trailing zeros, then `s`.
fn format_duration(s: &mut String, sec: u32, nsec: u32) {
    let _ = write!(s, "{sec}");
    if nsec > 0 {
        if nsec.is_multiple_of(1_000_000) {
            let _ = write!(s, ".{:03}", nsec / 1_000_000);
        } else {
            let digits = format!("{nsec:09}");
            let _ = write!(s, ".{}", digits.trim_end_matches('0'));
        }
    }
    s.push('s');
}

/// Prints a meter's statistics as `meter-stats` does (OVS's `ofputil_format_meter_stats`):
/// `meter:1 flow_count:0 ... bands:` and one `N: packet_count:.. byte_count:..` line per band.
pub fn format_meter_stats(s: &mut String, m: &MeterStats) {
    format_meter_id(s, m.meter_id, ':');
    let _ = write!(
        s,
        " flow_count:{} packet_in_count:{} byte_in_count:{} duration:",
        m.flow_count, m.packet_in_count, m.byte_in_count
    );
    format_duration(s, m.duration_sec, m.duration_nsec);
    s.push_str(" bands:\n");
    for (i, (packets, bytes)) in m.bands.iter().enumerate() {
        let _ = writeln!(s, "{i}: packet_count:{packets} byte_count:{bytes}");
    }
}

/// Prints a meter's configuration as `dump-meters` does (two or more lines, each ending in a
/// newline): `meter=1 kbps burst bands=` then `type=drop rate=100 burst_size=10` per band.
pub fn format_meter(s: &mut String, m: &MeterMod) {
    format_meter_id(s, m.meter_id, '=');
    s.push(' ');
    for (bit, name) in FLAGS {
        if m.flags & bit != 0 {
            let _ = write!(s, "{name} ");
        }
    }
    let other = m.flags & !FLAGS.iter().fold(0, |a, (b, _)| a | b);
    if other != 0 {
        let _ = write!(s, "flags:{other:#x} ");
    }
    s.push_str("bands=");
    for b in &m.bands {
        s.push_str("\ntype=");
        match b.band_type {
            band_type::DROP => s.push_str("drop"),
            band_type::DSCP_REMARK => s.push_str("dscp_remark"),
            t => {
                let _ = write!(s, "{t}");
            }
        }
        let _ = write!(s, " rate={}", b.rate);
        if m.flags & meter_flags::BURST != 0 {
            let _ = write!(s, " burst_size={}", b.burst_size);
        }
        if b.band_type == band_type::DSCP_REMARK {
            let _ = write!(s, " prec_level={}", b.prec_level);
        }
    }
    s.push('\n');
}

/// Band type bits of [`MeterFeatures::band_types`] with OVS's names.
const BAND_TYPE_BITS: &[(u32, &str)] = &[(1 << band_type::DROP, "drop"), (1 << band_type::DSCP_REMARK, "dscp_remark")];

/// Bits by name, then the unnamed rest in hex, "0" for none (OVS's `ofp_print_bit_names`).
fn format_bit_names(s: &mut String, bits: u32, names: &[(u32, &str)]) {
    if bits == 0 {
        s.push('0');
        return;
    }
    let named: Vec<&str> = names.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect();
    s.push_str(&named.join(" "));
    let rest = bits & !names.iter().fold(0, |acc, (b, _)| acc | b);
    if rest != 0 {
        let _ = write!(s, "{}0x{rest:x}", if named.is_empty() { "" } else { " " });
    }
}

/// Prints meter features as ovs-ofctl's `meter-features` does after the reply header line.
pub fn format_meter_features(s: &mut String, f: &MeterFeatures) {
    let _ = writeln!(s, "max_meter:{} max_bands:{} max_color:{}", f.max_meter, f.max_bands, f.max_color);
    s.push_str("band_types: ");
    format_bit_names(s, f.band_types, BAND_TYPE_BITS);
    s.push_str("\ncapabilities: ");
    let caps: Vec<(u32, &str)> = FLAGS.iter().map(|(b, n)| (u32::from(*b), *n)).collect();
    format_bit_names(s, f.capabilities, &caps);
    s.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &str) -> Result<MeterMod, String> {
        parse_meter(s, MeterText::Mod(meter_command::ADD)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_meter_with_flags_and_bands_parses_and_prints_like_ovs() {
        let m = add("meter=1 kbps burst stats bands=type=drop rate=100 burst_size=10").unwrap();
        assert_eq!(m.flags, meter_flags::KBPS | meter_flags::BURST | meter_flags::STATS);
        let mut s = String::new();
        format_meter(&mut s, &m);
        assert_eq!(s, "meter=1 kbps burst stats bands=\ntype=drop rate=100 burst_size=10\n");
    }

    #[test]
    fn several_bands_each_start_with_their_type() {
        let m = add("meter=2,pktps,band=type=dscp_remark,rate=5,prec_level=1,type=drop,rate=9").unwrap();
        assert_eq!(m.bands.len(), 2);
        assert_eq!(m.bands[0], MeterBand { band_type: band_type::DSCP_REMARK, rate: 5, burst_size: 0, prec_level: 1 });
        assert_eq!(m.bands[1].band_type, band_type::DROP);
    }

    #[test]
    fn bad_meters_get_ovs_s_error_naming_the_token() {
        assert_eq!(add("meter=1 kbps").unwrap_err(), "\"meter=1 kbps\": must specify bands");
        assert_eq!(add("meter=1 bands=type=drop rate=1").unwrap_err(), "\"meter=1 bands=type=drop rate=1\": meter must specify either 'kbps' or 'pktps'");
        assert_eq!(add("meter=1 kbps bands=rate=1").unwrap_err(), "\"rate\": band must start with the 'type' keyword");
        assert_eq!(add("meter=1 kbps bands=type=drop rate=1 burst_size=3").unwrap_err(), "\"type=drop rate=1 burst_size=3\": band may have 'burst_size' only when 'burst' flag is set");
        assert_eq!(add("meter=0 kbps bands=type=drop rate=1").unwrap_err(), "\"0\": invalid value for meter");
        assert_eq!(add("color=1 kbps bands=type=drop rate=1").unwrap_err(), "\"color\": unknown keyword color");
    }

    #[test]
    fn meter_stats_print_like_ovs_with_ovs_s_duration_precision() {
        let mut m = MeterStats { meter_id: 1, flow_count: 2, packet_in_count: 3, byte_in_count: 4, duration_sec: 5, duration_nsec: 0, bands: vec![(6, 7)] };
        let mut s = String::new();
        format_meter_stats(&mut s, &m);
        assert_eq!(s, "meter:1 flow_count:2 packet_in_count:3 byte_in_count:4 duration:5s bands:\n0: packet_count:6 byte_count:7\n");
        for (nsec, shown) in [(12_000_000, "5.012s"), (12_300_000, "5.0123s"), (1, "5.000000001s")] {
            m.duration_nsec = nsec;
            let mut s = String::new();
            format_meter_stats(&mut s, &m);
            assert!(s.contains(&format!("duration:{shown} ")), "{s}");
        }
    }

    #[test]
    fn a_selection_takes_only_the_meter_and_names_all() {
        assert_eq!(parse_meter("meter=all", MeterText::Select).unwrap().meter_id, meter_id::ALL);
        assert!(parse_meter("meter=3 kbps", MeterText::Select).is_err());
    }

    #[test]
    fn meter_features_print_named_bits_then_the_rest_in_hex() {
        let f = MeterFeatures { max_meter: 262144, band_types: 0x1 << 1 | 0x40, capabilities: 0xf, max_bands: 8, max_color: 0 };
        let mut s = String::new();
        format_meter_features(&mut s, &f);
        assert_eq!(s, "max_meter:262144 max_bands:8 max_color:0\nband_types: drop 0x40\ncapabilities: kbps pktps burst stats\n");
        let mut s = String::new();
        format_meter_features(&mut s, &MeterFeatures { band_types: 0, ..f });
        assert!(s.contains("band_types: 0\n"), "{s}");
    }
}
