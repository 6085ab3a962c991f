//! OpenFlow 1.1+ port numbers, with the reserved ports by name.

use std::fmt;

/// An OpenFlow 1.1+ (32-bit) port number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortNo(pub u32);

/// Reserved ports: (number, ovs-ofctl name).
const RESERVED: &[(u32, &str)] = &[
    (0xffff_fff8, "IN_PORT"),
    (0xffff_fff9, "TABLE"),
    (0xffff_fffa, "NORMAL"),
    (0xffff_fffb, "FLOOD"),
    (0xffff_fffc, "ALL"),
    (0xffff_fffd, "CONTROLLER"),
    (0xffff_fffe, "LOCAL"),
    (0xffff_ffff, "ANY"),
];

impl PortNo {
    /// The highest physical port number.
    pub const MAX: PortNo = PortNo(0xffff_ff00);
    /// The input port.
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// Submit to the first table.
    pub const TABLE: PortNo = PortNo(0xffff_fff9);
    /// Normal L2 processing.
    pub const NORMAL: PortNo = PortNo(0xffff_fffa);
    /// All ports except input and blocked.
    pub const FLOOD: PortNo = PortNo(0xffff_fffb);
    /// All ports except input.
    pub const ALL: PortNo = PortNo(0xffff_fffc);
    /// The controller.
    pub const CONTROLLER: PortNo = PortNo(0xffff_fffd);
    /// The local (bridge) port.
    pub const LOCAL: PortNo = PortNo(0xffff_fffe);
    /// Any port / no port ("NONE" in OpenFlow 1.0).
    pub const ANY: PortNo = PortNo(0xffff_ffff);

    /// The reserved port's name, if this is one.
    pub fn reserved_name(self) -> Option<&'static str> {
        RESERVED.iter().find(|(n, _)| *n == self.0).map(|(_, name)| *name)
    }

    /// A reserved port by name (case-insensitive, "NONE" = ANY), or a decimal number.
    pub fn from_name(s: &str) -> Option<PortNo> {
        if let Some((n, _)) = RESERVED.iter().find(|(_, name)| name.eq_ignore_ascii_case(s)) {
            return Some(PortNo(*n));
        }
        if s.eq_ignore_ascii_case("NONE") {
            return Some(PortNo::ANY);
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().map(PortNo)
    }

    /// An OpenFlow 1.0 16-bit port number mapped into the 1.1+ space.
    pub fn from_ofp10(p: u16) -> PortNo {
        if p >= 0xff00 { PortNo(u32::from(p) + 0xffff_0000) } else { PortNo(u32::from(p)) }
    }

    /// The OpenFlow 1.0 16-bit form of this port (the inverse of [`PortNo::from_ofp10`]; ports
    /// in between have none and keep their low 16 bits, as OVS's `ofp_to_u16`).
    pub fn to_ofp10(self) -> u16 {
        if self.0 >= 0xffff_ff00 { (self.0 - 0xffff_0000) as u16 } else { self.0 as u16 }
    }
}

impl fmt::Display for PortNo {
    /// The reserved name or the decimal number, as ovs-ofctl prints ports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reserved_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl From<u32> for PortNo {
    fn from(p: u32) -> Self {
        PortNo(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_print_by_name_and_parse_back() {
        assert_eq!(PortNo::CONTROLLER.to_string(), "CONTROLLER");
        assert_eq!(PortNo::from_name("local"), Some(PortNo::LOCAL));
        assert_eq!(PortNo::from_name("7"), Some(PortNo(7)));
        assert_eq!(PortNo::from_ofp10(0xfffd), PortNo::CONTROLLER);
    }

    #[test]
    fn openflow10_ports_map_both_ways() {
        for p in [0u16, 5, 0xfeff, 0xff00, 0xfff8, 0xfffe, 0xffff] {
            assert_eq!(PortNo::from_ofp10(p).to_ofp10(), p);
        }
        assert_eq!(PortNo::LOCAL.to_ofp10(), 0xfffe);
    }
}
