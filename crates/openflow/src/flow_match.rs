//! `Match`: a set of (field, value, mask) kept in one canonical form, so that two matches that
//! mean the same to OVS compare equal, whichever way they were written or encoded.
//!
//! Canonical form (what OVS itself keeps internally, so a match read back from the switch is
//! equal to the one sent):
//! - one entry per field, sorted by `Field`;
//! - a mask of all ones is no mask; a mask of zero drops the entry; value bits outside the mask
//!   are zero;
//! - `xreg<N>` and `xxreg<N>` are split into the 32-bit `reg<N>` they overlay (OVS encodes
//!   registers as `xreg` in OpenFlow 1.5 and as `reg` before);
//! - `vlan_vid`/`vlan_pcp` become `vlan_tci`; `ip_dscp` becomes `nw_tos` (the TOS byte);
//! - `packet_type=(0,0)` (Ethernet) is the default and is no entry, as OVS prints it;
//!   `ct_nw_proto=0` is no entry either (OVS never encodes it).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::field::{Field, Prereq, ones};
use crate::mac::Mac;
use crate::port::PortNo;

/// One matched field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchField {
    /// The field.
    pub field: Field,
    /// The value, right-aligned; bits outside `mask` are zero.
    pub value: u128,
    /// The mask, or `None` for an exact match.
    pub mask: Option<u128>,
}

impl MatchField {
    /// The mask with exact matches made explicit.
    pub fn effective_mask(&self) -> u128 {
        self.mask.unwrap_or_else(|| self.field.full_mask())
    }
}

/// Why a field cannot be matched as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The value has bits beyond the field's width.
    #[error("value {value:#x} does not fit in field {field} ({bits} bits)")]
    ValueTooWide {
        /// The field.
        field: Field,
        /// Its width.
        bits: u16,
        /// The value given.
        value: u128,
    },
    /// A mask was given for a field that only matches exactly.
    #[error("field {0} does not support masking")]
    NotMaskable(Field),
    /// A register index out of range.
    #[error("no such field {0:?}")]
    NoSuchField(Field),
}

/// A value that can be matched or loaded: integers, addresses, MACs and ports.
pub trait FieldValue {
    /// The value right-aligned in 128 bits.
    fn to_u128(self) -> u128;
}

macro_rules! int_value {
    ($($t:ty),*) => { $(impl FieldValue for $t { fn to_u128(self) -> u128 { self as u128 } })* };
}
int_value!(u8, u16, u32, u64, u128);

impl FieldValue for bool {
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
}
impl FieldValue for Ipv4Addr {
    fn to_u128(self) -> u128 {
        u128::from(u32::from(self))
    }
}
impl FieldValue for Ipv6Addr {
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
}
impl FieldValue for Mac {
    fn to_u128(self) -> u128 {
        self.to_u64() as u128
    }
}
impl FieldValue for PortNo {
    fn to_u128(self) -> u128 {
        u128::from(self.0)
    }
}

/// A flow match in canonical form (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Match {
    entries: Vec<MatchField>,
}

/// Ethernet types used by the helpers.
pub mod eth_type {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// RARP.
    pub const RARP: u16 = 0x8035;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MCAST: u16 = 0x8848;
}

/// IP protocol numbers used by the helpers.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

impl Match {
    /// Matches every packet.
    pub fn new() -> Self {
        Match::default()
    }

    /// Adds an exact match.
    ///
    /// # Panics
    /// If the value does not fit the field (a programming error; use [`Match::set`] for
    /// values from outside).
    pub fn with(mut self, field: Field, value: impl FieldValue) -> Self {
        if let Err(e) = self.set(field, value.to_u128(), None) {
            panic!("Match::with: {e}");
        }
        self
    }

    /// Adds a masked match.
    ///
    /// # Panics
    /// If the value or mask do not fit the field, or the field is not maskable.
    pub fn with_masked(mut self, field: Field, value: impl FieldValue, mask: impl FieldValue) -> Self {
        if let Err(e) = self.set(field, value.to_u128(), Some(mask.to_u128())) {
            panic!("Match::with_masked: {e}");
        }
        self
    }

    /// IPv4 packets.
    pub fn ipv4(self) -> Self {
        self.with(Field::EthType, eth_type::IPV4)
    }

    /// IPv6 packets.
    pub fn ipv6(self) -> Self {
        self.with(Field::EthType, eth_type::IPV6)
    }

    /// ARP packets.
    pub fn arp(self) -> Self {
        self.with(Field::EthType, eth_type::ARP)
    }

    /// IPv4 packets of IP protocol `proto`.
    pub fn ipv4_proto(self, proto: u8) -> Self {
        self.ipv4().with(Field::IpProto, proto)
    }

    /// IPv4 TCP.
    pub fn tcp(self) -> Self {
        self.ipv4_proto(ip_proto::TCP)
    }

    /// IPv4 UDP.
    pub fn udp(self) -> Self {
        self.ipv4_proto(ip_proto::UDP)
    }

    /// IPv4 SCTP.
    pub fn sctp(self) -> Self {
        self.ipv4_proto(ip_proto::SCTP)
    }

    /// A field holding an IPv4 address, matched on a `prefix`-bit CIDR prefix.
    ///
    /// # Panics
    /// If `prefix` > 32 or the field is not 32 bits wide.
    pub fn with_ipv4_prefix(self, field: Field, addr: Ipv4Addr, prefix: u8) -> Self {
        assert!(prefix <= 32 && field.bits() == 32, "with_ipv4_prefix: {field}/{prefix}");
        let mask = (ones(u16::from(prefix)) << (32 - prefix)) as u32;
        self.with_masked(field, u32::from(addr) & mask, mask)
    }

    /// A field holding an IPv6 address, matched on a `prefix`-bit CIDR prefix.
    ///
    /// # Panics
    /// If `prefix` > 128 or the field is not 128 bits wide.
    pub fn with_ipv6_prefix(self, field: Field, addr: Ipv6Addr, prefix: u8) -> Self {
        assert!(prefix <= 128 && field.bits() == 128, "with_ipv6_prefix: {field}/{prefix}");
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
        self.with_masked(field, u128::from(addr) & mask, mask)
    }

    /// Matches the input port.
    pub fn in_port(self, port: PortNo) -> Self {
        self.with(Field::InPort, port)
    }

    /// Sets (replacing any earlier entry for the same field) a match in canonical form.
    pub fn set(&mut self, field: Field, value: u128, mask: Option<u128>) -> Result<(), MatchError> {
        if !field.is_valid() {
            return Err(MatchError::NoSuchField(field));
        }
        let def = field.def();
        let full = field.full_mask();
        let check = |v: u128| {
            if v & !full != 0 {
                Err(MatchError::ValueTooWide { field, bits: def.bits, value: v })
            } else {
                Ok(v)
            }
        };
        let value = check(value)?;
        let mask = match mask {
            Some(m) => check(m)?,
            None => full,
        };
        if mask != full && mask != 0 && !def.maskable {
            return Err(MatchError::NotMaskable(field));
        }
        match field {
            Field::Xreg(n) => {
                let base = n * 2;
                self.put(Field::Reg(base), (value >> 32) & 0xffff_ffff, (mask >> 32) & 0xffff_ffff);
                self.put(Field::Reg(base + 1), value & 0xffff_ffff, mask & 0xffff_ffff);
            }
            Field::Xxreg(n) => {
                for i in 0..4u8 {
                    let shift = 96 - 32 * u32::from(i);
                    self.put(
                        Field::Reg(n * 4 + i),
                        (value >> shift) & 0xffff_ffff,
                        (mask >> shift) & 0xffff_ffff,
                    );
                }
            }
            Field::VlanVid => self.merge_tci(value, mask & 0x1fff),
            Field::VlanPcp => self.merge_tci(value << 13 | 0x1000, 0xe000 | 0x1000),
            Field::IpDscp => self.put(Field::NwTos, value << 2, 0xfc),
            Field::NwTos => self.put(Field::NwTos, value & 0xfc, 0xfc),
            Field::PacketType if value == 0 => self.put(field, 0, 0),
            // OVS encodes no ct_nw_proto (nor the ct ports under it) when it is 0.
            Field::CtNwProto if value == 0 => self.put(field, 0, 0),
            Field::InPort16 => self.put(Field::InPort, u128::from(PortNo::from_ofp10(value as u16).0), u128::from(u32::MAX)),
            // OVS's `match_set_tun_erspan_{ver,dir,hwid}_masked` store the value as the mask
            // (and the value under the given mask): `tun_erspan_ver=1` matches as 1/0x1.
            Field::TunErspanVer | Field::TunErspanDir | Field::TunErspanHwid => self.put(field, value & mask, value),
            _ => self.put(field, value, mask),
        }
        Ok(())
    }

    /// Merges bits into `vlan_tci`, keeping bits set earlier by `vlan_vid`/`vlan_pcp`.
    fn merge_tci(&mut self, value: u128, mask: u128) {
        let (old_v, old_m) = match self.get(Field::VlanTci) {
            Some(e) => (e.value, e.effective_mask()),
            None => (0, 0),
        };
        let m = old_m | mask;
        let v = (old_v & !mask) | (value & mask);
        self.put(Field::VlanTci, v, m);
    }

    /// Inserts a normalized entry; `mask` is explicit here.
    fn put(&mut self, field: Field, value: u128, mask: u128) {
        let full = field.full_mask();
        let pos = self.entries.binary_search_by(|e| e.field.cmp(&field));
        // A zero mask is no match, except on a tunnel option, where it matches the option's
        // presence (OVS's `tun_metadata0` with no value).
        if mask == 0 && !matches!(field, Field::TunMetadata(_)) {
            if let Ok(i) = pos {
                self.entries.remove(i);
            }
            return;
        }
        let entry = MatchField {
            field,
            value: value & mask,
            mask: if mask == full { None } else { Some(mask) },
        };
        match pos {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }

    /// The entry for `field` (canonical fields only: `reg<N>`, `vlan_tci`, `nw_tos`).
    pub fn get(&self, field: Field) -> Option<&MatchField> {
        self.entries
            .binary_search_by(|e| e.field.cmp(&field))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The exact value of `field`, if it is matched without a mask.
    pub fn exact(&self, field: Field) -> Option<u128> {
        self.get(field).filter(|e| e.mask.is_none()).map(|e| e.value)
    }

    /// Removes the entry for `field`.
    pub fn remove(&mut self, field: Field) -> Option<MatchField> {
        let i = self.entries.binary_search_by(|e| e.field.cmp(&field)).ok()?;
        Some(self.entries.remove(i))
    }

    /// The entries in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = &MatchField> {
        self.entries.iter()
    }

    /// Whether nothing is matched.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many fields are matched.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The matched Ethernet type, if exact.
    pub fn eth_type(&self) -> Option<u16> {
        self.exact(Field::EthType).map(|v| v as u16)
    }

    /// The matched IP protocol, if exact.
    pub fn ip_proto(&self) -> Option<u8> {
        self.exact(Field::IpProto).map(|v| v as u8)
    }

    /// The first matched field whose prerequisites the match does not meet (OVS rejects such a
    /// match with OFPBMC_BAD_PREREQ).
    pub fn unmet_prereq(&self) -> Option<Field> {
        self.iter().map(|e| e.field).find(|f| !prereqs_met(*f, self))
    }

    /// Whether every `self` packet is also matched by `other`'s constraints, i.e. `other` is
    /// no more specific than `self` (used for ovs-ofctl's non-strict flow selection).
    pub fn is_covered_by(&self, other: &Match) -> bool {
        other.iter().all(|o| match self.get(o.field) {
            Some(s) => {
                let om = o.effective_mask();
                s.effective_mask() & om == om && s.value & om == o.value
            }
            None => false,
        })
    }
}

/// Whether `field`'s prerequisites hold in `m`.
pub fn prereqs_met(field: Field, m: &Match) -> bool {
    let dl = m.eth_type();
    let proto = m.ip_proto();
    let v4 = dl == Some(eth_type::IPV4);
    let v6 = dl == Some(eth_type::IPV6);
    let icmp6_type = || if v6 && proto == Some(ip_proto::ICMPV6) { m.exact(Field::Icmpv6Type) } else { None };
    let nd_code_ok = || m.get(Field::Icmpv6Code).is_none_or(|c| c.value == 0 && c.mask.is_none());
    match field.def().prereq {
        // The conntrack ports are encoded under a nonzero ct_nw_proto only.
        Prereq::Ct if matches!(field, Field::CtTpSrc | Field::CtTpDst) => m.get(Field::CtNwProto).is_some(),
        Prereq::None | Prereq::Ethernet | Prereq::Vlan | Prereq::Ct => true,
        Prereq::Mpls => matches!(dl, Some(eth_type::MPLS | eth_type::MPLS_MCAST)),
        Prereq::Ipv4 => v4,
        Prereq::Ipv6 => v6,
        Prereq::IpAny => v4 || v6,
        Prereq::Arp => matches!(dl, Some(eth_type::ARP | eth_type::RARP)),
        Prereq::Tcp => (v4 || v6) && proto == Some(ip_proto::TCP),
        Prereq::Udp => (v4 || v6) && proto == Some(ip_proto::UDP),
        Prereq::Sctp => (v4 || v6) && proto == Some(ip_proto::SCTP),
        Prereq::Icmpv4 => v4 && proto == Some(ip_proto::ICMP),
        Prereq::Icmpv6 => v6 && proto == Some(ip_proto::ICMPV6),
        Prereq::Nd => matches!(icmp6_type(), Some(135 | 136)) && nd_code_ok(),
        Prereq::NdSolicit => icmp6_type() == Some(135) && nd_code_ok(),
        Prereq::NdAdvert => icmp6_type() == Some(136) && nd_code_ok(),
    }
}

impl FromIterator<MatchField> for Match {
    /// Builds a match from entries, normalizing them; entries that do not fit are dropped
    /// (decoders check them first).
    fn from_iter<T: IntoIterator<Item = MatchField>>(iter: T) -> Self {
        let mut m = Match::new();
        for e in iter {
            let _ = m.set(e.field, e.value, e.mask);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_ones_mask_is_the_same_as_no_mask() {
        let a = Match::new().with(Field::Reg(0), 5u32);
        let b = Match::new().with_masked(Field::Reg(0), 5u32, 0xffff_ffffu32);
        assert_eq!(a, b);
    }

    #[test]
    fn masked_off_value_bits_are_dropped() {
        let a = Match::new().with_masked(Field::Ipv4Src, Ipv4Addr::new(10, 1, 2, 3), 0xff00_0000u32);
        let b = Match::new().with_ipv4_prefix(Field::Ipv4Src, Ipv4Addr::new(10, 0, 0, 0), 8);
        assert_eq!(a, b);
    }

    #[test]
    fn xreg_splits_into_the_two_registers_it_overlays() {
        let x = Match::new().with_masked(Field::Xreg(0), 0x0000_0005_0000_0000u64, 0xffff_ffff_0000_0000u64);
        assert_eq!(x, Match::new().with(Field::Reg(0), 5u32));
    }

    #[test]
    fn xxreg_splits_into_four_registers_high_first() {
        let x = Match::new().with(Field::Xxreg(1), 1u128 << 96 | 2);
        let r = Match::new()
            .with(Field::Reg(4), 1u32)
            .with(Field::Reg(5), 0u32)
            .with(Field::Reg(6), 0u32)
            .with(Field::Reg(7), 2u32);
        assert_eq!(x, r);
    }

    #[test]
    fn ip_dscp_is_kept_as_the_tos_byte() {
        assert_eq!(Match::new().with(Field::IpDscp, 10u8), Match::new().with(Field::NwTos, 40u8));
    }

    #[test]
    fn a_value_wider_than_the_field_is_rejected_naming_the_field() {
        let err = Match::new().set(Field::IpProto, 300, None).unwrap_err();
        assert_eq!(err.to_string(), "value 0x12c does not fit in field nw_proto (8 bits)");
    }

    #[test]
    fn masking_an_exact_only_field_is_rejected() {
        assert_eq!(
            Match::new().set(Field::EthType, 0x800, Some(0xff00)),
            Err(MatchError::NotMaskable(Field::EthType))
        );
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let a = Match::new().tcp().with(Field::TcpDst, 80u16);
        let b = Match::new().with(Field::TcpDst, 80u16).with(Field::IpProto, 6u8).ipv4();
        assert_eq!(a, b);
    }
}
