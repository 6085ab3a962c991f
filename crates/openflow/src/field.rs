//! The match-field table: one row per field, read by the wire decoder and encoder, the ovs-ofctl
//! text parser and the printer alike. Facts come from OVS's `include/openvswitch/meta-flow.h`.
//!
//! Register families (`reg<N>`, `xreg<N>`, `xxreg<N>`) are one row each; the index is added to the
//! row's wire field code and name.

use std::fmt;

/// A match or set-field target. `Reg`, `Xreg` and `Xxreg` carry their index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // the table below documents each field
pub enum Field {
    PacketType,
    DpHash,
    RecircId,
    ConjId,
    InPort,
    /// NXM_OF_IN_PORT: the 16-bit (OpenFlow 1.0) input port, as OVS's subfields and Nicira
    /// actions see `in_port`. Matches keep it as [`Field::InPort`].
    InPort16,
    ActsetOutput,
    PktMark,
    CtState,
    CtZone,
    CtMark,
    CtLabel,
    CtNwSrc,
    CtIpv6Src,
    CtNwDst,
    CtIpv6Dst,
    CtNwProto,
    CtTpSrc,
    CtTpDst,
    Reg(u8),
    Xreg(u8),
    Xxreg(u8),
    TunId,
    TunFlags,
    TunSrc,
    TunDst,
    TunIpv6Src,
    TunIpv6Dst,
    TunGbpId,
    TunGbpFlags,
    TunErspanIdx,
    TunErspanVer,
    TunErspanDir,
    TunErspanHwid,
    /// A tunnel option the switch's TLV table maps (`tun_metadata<N>`). OVS allows 124 bytes;
    /// this crate carries up to 16 and sends the fewest bytes that hold the value, as
    /// ovs-ofctl does without the table, leaving the switch to widen it to the mapped length.
    TunMetadata(u8),
    Metadata,
    EthSrc,
    EthDst,
    EthType,
    /// The whole 802.1Q TCI (OVS's internal form of `vlan_vid` + `vlan_pcp`).
    VlanTci,
    /// OXM VLAN_VID: 12-bit VID plus the 0x1000 "present" bit.
    VlanVid,
    VlanPcp,
    MplsLabel,
    MplsTc,
    MplsBos,
    MplsTtl,
    Ipv4Src,
    Ipv4Dst,
    Ipv6Src,
    Ipv6Dst,
    Ipv6Label,
    IpProto,
    /// The 8-bit TOS byte with the ECN bits zero (NXM_OF_IP_TOS; OVS's `nw_tos`).
    NwTos,
    /// DSCP, the TOS byte shifted right by 2 (OXM_OF_IP_DSCP).
    IpDscp,
    IpEcn,
    IpTtl,
    IpFrag,
    ArpOp,
    ArpSpa,
    ArpTpa,
    ArpSha,
    ArpTha,
    TcpSrc,
    TcpDst,
    TcpFlags,
    UdpSrc,
    UdpDst,
    SctpSrc,
    SctpDst,
    Icmpv4Type,
    Icmpv4Code,
    Icmpv6Type,
    Icmpv6Code,
    NdTarget,
    NdSll,
    NdTll,
}

/// Which OXM/NXM class a header belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OxmClass {
    /// NXM_OF_* (class 0x0000).
    Nxm0,
    /// NXM_NX_* (class 0x0001).
    Nxm1,
    /// OXM_OF_* (class 0x8000).
    OpenFlowBasic,
    /// OXM_OF_PKT_REG* (class 0x8001).
    PacketRegs,
    /// ONFOXM_ET_* (experimenter class 0xffff, ONF 0x4f4e4600).
    Onf,
    /// NXOXM_ET_* (experimenter class 0xffff, Nicira 0x00002320).
    Nicira,
}

impl OxmClass {
    /// The 16-bit class on the wire.
    pub fn class(self) -> u16 {
        match self {
            OxmClass::Nxm0 => 0x0000,
            OxmClass::Nxm1 => 0x0001,
            OxmClass::OpenFlowBasic => 0x8000,
            OxmClass::PacketRegs => 0x8001,
            OxmClass::Onf | OxmClass::Nicira => 0xffff,
        }
    }

    /// The experimenter id following the header, for experimenter classes.
    pub fn experimenter(self) -> Option<u32> {
        match self {
            OxmClass::Onf => Some(0x4f4e_4600),
            OxmClass::Nicira => Some(0x0000_2320),
            _ => None,
        }
    }
}

/// One wire header a field may be encoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OxmHeader {
    /// The class.
    pub class: OxmClass,
    /// The 7-bit field code (for register families: the code of index 0).
    pub code: u8,
    /// The header's name as OVS prints it in subfields (`NXM_NX_REG0`); for families the
    /// index is appended.
    pub name: &'static str,
    /// The OpenFlow version (wire byte) the header is standard since, 0 for Nicira/ONF
    /// extensions usable in any version: OVS encodes a field with its newest header not newer
    /// than the connection's version (`nxm_field_by_mf_id`).
    pub since: u8,
}

/// What must be matched before a field may be matched (OVS "Prerequisites").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Prereq {
    None,
    Ethernet,
    Vlan,
    Mpls,
    Ipv4,
    Ipv6,
    IpAny,
    Arp,
    Tcp,
    Udp,
    Sctp,
    Icmpv4,
    Icmpv6,
    Nd,
    NdSolicit,
    NdAdvert,
    Ct,
}

/// How a field's value is written in ovs-ofctl text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Format {
    Decimal,
    Hex,
    Ipv4,
    Ipv6,
    Ethernet,
    /// An OpenFlow 1.1+ port number or reserved port name.
    Port,
    CtState,
    TcpFlags,
    TunFlags,
    Frag,
    PacketType,
}

/// One row of the field table.
#[derive(Debug)]
pub struct FieldDef {
    /// The field (index 0 for families).
    pub field: Field,
    /// ovs-ofctl's name (families: without the index).
    pub name: &'static str,
    /// Other names ovs-ofctl accepts.
    pub aliases: &'static [&'static str],
    /// Significant bits of the value.
    pub bits: u16,
    /// Bytes on the wire.
    pub bytes: u8,
    /// Whether arbitrary bitwise masks are allowed.
    pub maskable: bool,
    /// What must be matched first.
    pub prereq: Prereq,
    /// Text format.
    pub format: Format,
    /// Wire headers, the one OVS uses for OpenFlow 1.5 first.
    pub headers: &'static [OxmHeader],
    /// How many instances the family has (1 for plain fields).
    pub count: u8,
}

/// OpenFlow 1.2, 1.3 and 1.5 as `since` values (the version bytes).
const OF12: u8 = 0x03;
const OF13: u8 = 0x04;
const OF15: u8 = 0x06;

macro_rules! h {
    // Standard OXM classes default to OpenFlow 1.2 (where OXM began), extensions to 0.
    (OpenFlowBasic, $code:expr, $name:expr) => { h!(OpenFlowBasic, $code, $name, OF12) };
    ($class:ident, $code:expr, $name:expr) => { h!($class, $code, $name, 0) };
    ($class:ident, $code:expr, $name:expr, $since:expr) => {
        OxmHeader { class: OxmClass::$class, code: $code, name: $name, since: $since }
    };
}

macro_rules! row {
    ($field:expr, $name:expr, [$($alias:expr),*], $bits:expr, $bytes:expr, $mask:expr,
     $prereq:ident, $fmt:ident, [$($hdr:expr),*]) => {
        row!($field, $name, [$($alias),*], $bits, $bytes, $mask, $prereq, $fmt, [$($hdr),*], 1)
    };
    ($field:expr, $name:expr, [$($alias:expr),*], $bits:expr, $bytes:expr, $mask:expr,
     $prereq:ident, $fmt:ident, [$($hdr:expr),*], $count:expr) => {
        FieldDef {
            field: $field,
            name: $name,
            aliases: &[$($alias),*],
            bits: $bits,
            bytes: $bytes,
            maskable: $mask,
            prereq: Prereq::$prereq,
            format: Format::$fmt,
            headers: &[$($hdr),*],
            count: $count,
        }
    };
}

const M: bool = true;
const X: bool = false;

/// The field table. Order is irrelevant to behaviour; printing order is ovs-ofctl's, kept in
/// the printer.
pub static FIELDS: &[FieldDef] = &[
    row!(Field::PacketType, "packet_type", [], 32, 4, X, None, PacketType,
        [h!(OpenFlowBasic, 44, "OXM_OF_PACKET_TYPE", OF15)]),
    row!(Field::DpHash, "dp_hash", [], 32, 4, M, None, Hex,
        [h!(Nxm1, 35, "NXM_NX_DP_HASH"), h!(Nicira, 0, "NXOXM_ET_DP_HASH")]),
    row!(Field::RecircId, "recirc_id", [], 32, 4, X, None, Decimal,
        [h!(Nxm1, 36, "NXM_NX_RECIRC_ID")]),
    row!(Field::ConjId, "conj_id", [], 32, 4, X, None, Decimal,
        [h!(Nxm1, 37, "NXM_NX_CONJ_ID")]),
    row!(Field::InPort, "in_port", ["in_port_oxm"], 32, 4, X, None, Port,
        [h!(OpenFlowBasic, 0, "OXM_OF_IN_PORT")]),
    row!(Field::InPort16, "in_port", [], 16, 2, X, None, Port,
        [h!(Nxm0, 0, "NXM_OF_IN_PORT")]),
    row!(Field::ActsetOutput, "actset_output", [], 32, 4, X, None, Port,
        [h!(OpenFlowBasic, 43, "OXM_OF_ACTSET_OUTPUT", OF15), h!(Onf, 43, "ONFOXM_ET_ACTSET_OUTPUT", OF13)]),
    row!(Field::PktMark, "pkt_mark", [], 32, 4, M, None, Hex,
        [h!(Nxm1, 33, "NXM_NX_PKT_MARK")]),
    row!(Field::CtState, "ct_state", [], 8, 4, M, None, CtState,
        [h!(Nxm1, 105, "NXM_NX_CT_STATE")]),
    row!(Field::CtZone, "ct_zone", [], 16, 2, X, None, Hex,
        [h!(Nxm1, 106, "NXM_NX_CT_ZONE")]),
    row!(Field::CtMark, "ct_mark", [], 32, 4, M, None, Hex,
        [h!(Nxm1, 107, "NXM_NX_CT_MARK")]),
    row!(Field::CtLabel, "ct_label", [], 128, 16, M, None, Hex,
        [h!(Nxm1, 108, "NXM_NX_CT_LABEL")]),
    row!(Field::CtNwSrc, "ct_nw_src", [], 32, 4, M, Ct, Ipv4,
        [h!(Nxm1, 120, "NXM_NX_CT_NW_SRC")]),
    row!(Field::CtIpv6Src, "ct_ipv6_src", [], 128, 16, M, Ct, Ipv6,
        [h!(Nxm1, 122, "NXM_NX_CT_IPV6_SRC")]),
    row!(Field::CtNwDst, "ct_nw_dst", [], 32, 4, M, Ct, Ipv4,
        [h!(Nxm1, 121, "NXM_NX_CT_NW_DST")]),
    row!(Field::CtIpv6Dst, "ct_ipv6_dst", [], 128, 16, M, Ct, Ipv6,
        [h!(Nxm1, 123, "NXM_NX_CT_IPV6_DST")]),
    row!(Field::CtNwProto, "ct_nw_proto", [], 8, 1, X, Ct, Decimal,
        [h!(Nxm1, 119, "NXM_NX_CT_NW_PROTO")]),
    row!(Field::CtTpSrc, "ct_tp_src", [], 16, 2, M, Ct, Decimal,
        [h!(Nxm1, 124, "NXM_NX_CT_TP_SRC")]),
    row!(Field::CtTpDst, "ct_tp_dst", [], 16, 2, M, Ct, Decimal,
        [h!(Nxm1, 125, "NXM_NX_CT_TP_DST")]),
    row!(Field::Reg(0), "reg", [], 32, 4, M, None, Hex,
        [h!(Nxm1, 0, "NXM_NX_REG")], 16),
    row!(Field::Xreg(0), "xreg", [], 64, 8, M, None, Hex,
        [h!(PacketRegs, 0, "OXM_OF_PKT_REG", OF13)], 8),
    row!(Field::Xxreg(0), "xxreg", [], 128, 16, M, None, Hex,
        [h!(Nxm1, 111, "NXM_NX_XXREG")], 4),
    row!(Field::TunId, "tun_id", ["tunnel_id"], 64, 8, M, None, Hex,
        [h!(OpenFlowBasic, 38, "OXM_OF_TUNNEL_ID", OF13), h!(Nxm1, 16, "NXM_NX_TUN_ID")]),
    row!(Field::TunFlags, "tun_flags", [], 1, 2, M, None, TunFlags,
        [h!(Nxm1, 104, "NXM_NX_TUN_FLAGS")]),
    row!(Field::TunSrc, "tun_src", [], 32, 4, M, None, Ipv4,
        [h!(Nxm1, 31, "NXM_NX_TUN_IPV4_SRC")]),
    row!(Field::TunDst, "tun_dst", [], 32, 4, M, None, Ipv4,
        [h!(Nxm1, 32, "NXM_NX_TUN_IPV4_DST")]),
    row!(Field::TunIpv6Src, "tun_ipv6_src", [], 128, 16, M, None, Ipv6,
        [h!(Nxm1, 109, "NXM_NX_TUN_IPV6_SRC")]),
    row!(Field::TunIpv6Dst, "tun_ipv6_dst", [], 128, 16, M, None, Ipv6,
        [h!(Nxm1, 110, "NXM_NX_TUN_IPV6_DST")]),
    row!(Field::TunGbpId, "tun_gbp_id", [], 16, 2, M, None, Decimal,
        [h!(Nxm1, 38, "NXM_NX_TUN_GBP_ID")]),
    row!(Field::TunGbpFlags, "tun_gbp_flags", [], 8, 1, M, None, Hex,
        [h!(Nxm1, 39, "NXM_NX_TUN_GBP_FLAGS")]),
    // OVS documents the ERSPAN fields as 20, 4, 1 and 6 bits but checks and stores whole
    // bytes, so they are as wide as their bytes here.
    row!(Field::TunErspanIdx, "tun_erspan_idx", [], 32, 4, M, None, Hex,
        [h!(Nicira, 11, "NXOXM_ET_ERSPAN_IDX")]),
    row!(Field::TunErspanVer, "tun_erspan_ver", [], 8, 1, M, None, Decimal,
        [h!(Nicira, 12, "NXOXM_ET_ERSPAN_VER")]),
    row!(Field::TunErspanDir, "tun_erspan_dir", [], 8, 1, M, None, Decimal,
        [h!(Nicira, 13, "NXOXM_ET_ERSPAN_DIR")]),
    row!(Field::TunErspanHwid, "tun_erspan_hwid", [], 8, 1, M, None, Hex,
        [h!(Nicira, 14, "NXOXM_ET_ERSPAN_HWID")]),
    row!(Field::TunMetadata(0), "tun_metadata", [], 128, 16, M, None, Hex,
        [h!(Nxm1, 40, "NXM_NX_TUN_METADATA")], 64),
    row!(Field::Metadata, "metadata", [], 64, 8, M, None, Hex,
        [h!(OpenFlowBasic, 2, "OXM_OF_METADATA")]),
    row!(Field::EthSrc, "eth_src", ["dl_src"], 48, 6, M, Ethernet, Ethernet,
        [h!(OpenFlowBasic, 4, "OXM_OF_ETH_SRC"), h!(Nxm0, 2, "NXM_OF_ETH_SRC")]),
    row!(Field::EthDst, "eth_dst", ["dl_dst"], 48, 6, M, Ethernet, Ethernet,
        [h!(OpenFlowBasic, 3, "OXM_OF_ETH_DST"), h!(Nxm0, 1, "NXM_OF_ETH_DST")]),
    row!(Field::EthType, "eth_type", ["dl_type"], 16, 2, X, Ethernet, Hex,
        [h!(OpenFlowBasic, 5, "OXM_OF_ETH_TYPE"), h!(Nxm0, 3, "NXM_OF_ETH_TYPE")]),
    row!(Field::VlanTci, "vlan_tci", [], 16, 2, M, Ethernet, Hex,
        [h!(Nxm0, 4, "NXM_OF_VLAN_TCI")]),
    row!(Field::VlanVid, "vlan_vid", [], 13, 2, M, Ethernet, Decimal,
        [h!(OpenFlowBasic, 6, "OXM_OF_VLAN_VID")]),
    row!(Field::VlanPcp, "vlan_pcp", [], 3, 1, X, Vlan, Decimal,
        [h!(OpenFlowBasic, 7, "OXM_OF_VLAN_PCP")]),
    row!(Field::MplsLabel, "mpls_label", [], 20, 4, X, Mpls, Decimal,
        [h!(OpenFlowBasic, 34, "OXM_OF_MPLS_LABEL")]),
    row!(Field::MplsTc, "mpls_tc", [], 3, 1, X, Mpls, Decimal,
        [h!(OpenFlowBasic, 35, "OXM_OF_MPLS_TC")]),
    row!(Field::MplsBos, "mpls_bos", [], 1, 1, X, Mpls, Decimal,
        [h!(OpenFlowBasic, 36, "OXM_OF_MPLS_BOS", OF13)]),
    row!(Field::MplsTtl, "mpls_ttl", [], 8, 1, X, Mpls, Decimal,
        [h!(Nxm1, 30, "NXM_NX_MPLS_TTL")]),
    row!(Field::Ipv4Src, "ip_src", ["nw_src"], 32, 4, M, Ipv4, Ipv4,
        [h!(OpenFlowBasic, 11, "OXM_OF_IPV4_SRC"), h!(Nxm0, 7, "NXM_OF_IP_SRC")]),
    row!(Field::Ipv4Dst, "ip_dst", ["nw_dst"], 32, 4, M, Ipv4, Ipv4,
        [h!(OpenFlowBasic, 12, "OXM_OF_IPV4_DST"), h!(Nxm0, 8, "NXM_OF_IP_DST")]),
    row!(Field::Ipv6Src, "ipv6_src", [], 128, 16, M, Ipv6, Ipv6,
        [h!(OpenFlowBasic, 26, "OXM_OF_IPV6_SRC"), h!(Nxm1, 19, "NXM_NX_IPV6_SRC")]),
    row!(Field::Ipv6Dst, "ipv6_dst", [], 128, 16, M, Ipv6, Ipv6,
        [h!(OpenFlowBasic, 27, "OXM_OF_IPV6_DST"), h!(Nxm1, 20, "NXM_NX_IPV6_DST")]),
    row!(Field::Ipv6Label, "ipv6_label", [], 20, 4, M, Ipv6, Hex,
        [h!(OpenFlowBasic, 28, "OXM_OF_IPV6_FLABEL"), h!(Nxm1, 27, "NXM_NX_IPV6_LABEL")]),
    row!(Field::IpProto, "nw_proto", ["ip_proto"], 8, 1, X, IpAny, Decimal,
        [h!(OpenFlowBasic, 10, "OXM_OF_IP_PROTO"), h!(Nxm0, 6, "NXM_OF_IP_PROTO")]),
    row!(Field::NwTos, "nw_tos", [], 8, 1, X, IpAny, Decimal,
        [h!(Nxm0, 5, "NXM_OF_IP_TOS")]),
    row!(Field::IpDscp, "ip_dscp", [], 6, 1, X, IpAny, Decimal,
        [h!(OpenFlowBasic, 8, "OXM_OF_IP_DSCP")]),
    row!(Field::IpEcn, "nw_ecn", ["ip_ecn"], 2, 1, X, IpAny, Decimal,
        [h!(OpenFlowBasic, 9, "OXM_OF_IP_ECN"), h!(Nxm1, 28, "NXM_NX_IP_ECN")]),
    row!(Field::IpTtl, "nw_ttl", [], 8, 1, X, IpAny, Decimal,
        [h!(Nxm1, 29, "NXM_NX_IP_TTL")]),
    row!(Field::IpFrag, "ip_frag", ["nw_frag"], 2, 1, M, IpAny, Frag,
        [h!(Nxm1, 26, "NXM_NX_IP_FRAG")]),
    row!(Field::ArpOp, "arp_op", [], 16, 2, X, Arp, Decimal,
        [h!(OpenFlowBasic, 21, "OXM_OF_ARP_OP"), h!(Nxm0, 15, "NXM_OF_ARP_OP")]),
    row!(Field::ArpSpa, "arp_spa", [], 32, 4, M, Arp, Ipv4,
        [h!(OpenFlowBasic, 22, "OXM_OF_ARP_SPA"), h!(Nxm0, 16, "NXM_OF_ARP_SPA")]),
    row!(Field::ArpTpa, "arp_tpa", [], 32, 4, M, Arp, Ipv4,
        [h!(OpenFlowBasic, 23, "OXM_OF_ARP_TPA"), h!(Nxm0, 17, "NXM_OF_ARP_TPA")]),
    row!(Field::ArpSha, "arp_sha", [], 48, 6, M, Arp, Ethernet,
        [h!(OpenFlowBasic, 24, "OXM_OF_ARP_SHA"), h!(Nxm1, 17, "NXM_NX_ARP_SHA")]),
    row!(Field::ArpTha, "arp_tha", [], 48, 6, M, Arp, Ethernet,
        [h!(OpenFlowBasic, 25, "OXM_OF_ARP_THA"), h!(Nxm1, 18, "NXM_NX_ARP_THA")]),
    row!(Field::TcpSrc, "tcp_src", ["tp_src"], 16, 2, M, Tcp, Decimal,
        [h!(OpenFlowBasic, 13, "OXM_OF_TCP_SRC"), h!(Nxm0, 9, "NXM_OF_TCP_SRC")]),
    row!(Field::TcpDst, "tcp_dst", ["tp_dst"], 16, 2, M, Tcp, Decimal,
        [h!(OpenFlowBasic, 14, "OXM_OF_TCP_DST"), h!(Nxm0, 10, "NXM_OF_TCP_DST")]),
    row!(Field::TcpFlags, "tcp_flags", [], 12, 2, M, Tcp, TcpFlags,
        [h!(OpenFlowBasic, 42, "OXM_OF_TCP_FLAGS", OF15), h!(Onf, 42, "ONFOXM_ET_TCP_FLAGS", OF13),
         h!(Nxm1, 34, "NXM_NX_TCP_FLAGS")]),
    row!(Field::UdpSrc, "udp_src", [], 16, 2, M, Udp, Decimal,
        [h!(OpenFlowBasic, 15, "OXM_OF_UDP_SRC"), h!(Nxm0, 11, "NXM_OF_UDP_SRC")]),
    row!(Field::UdpDst, "udp_dst", [], 16, 2, M, Udp, Decimal,
        [h!(OpenFlowBasic, 16, "OXM_OF_UDP_DST"), h!(Nxm0, 12, "NXM_OF_UDP_DST")]),
    row!(Field::SctpSrc, "sctp_src", [], 16, 2, M, Sctp, Decimal,
        [h!(OpenFlowBasic, 17, "OXM_OF_SCTP_SRC")]),
    row!(Field::SctpDst, "sctp_dst", [], 16, 2, M, Sctp, Decimal,
        [h!(OpenFlowBasic, 18, "OXM_OF_SCTP_DST")]),
    row!(Field::Icmpv4Type, "icmp_type", [], 8, 1, X, Icmpv4, Decimal,
        [h!(OpenFlowBasic, 19, "OXM_OF_ICMPV4_TYPE"), h!(Nxm0, 13, "NXM_OF_ICMP_TYPE")]),
    row!(Field::Icmpv4Code, "icmp_code", [], 8, 1, X, Icmpv4, Decimal,
        [h!(OpenFlowBasic, 20, "OXM_OF_ICMPV4_CODE"), h!(Nxm0, 14, "NXM_OF_ICMP_CODE")]),
    row!(Field::Icmpv6Type, "icmpv6_type", [], 8, 1, X, Icmpv6, Decimal,
        [h!(OpenFlowBasic, 29, "OXM_OF_ICMPV6_TYPE"), h!(Nxm1, 21, "NXM_NX_ICMPV6_TYPE")]),
    row!(Field::Icmpv6Code, "icmpv6_code", [], 8, 1, X, Icmpv6, Decimal,
        [h!(OpenFlowBasic, 30, "OXM_OF_ICMPV6_CODE"), h!(Nxm1, 22, "NXM_NX_ICMPV6_CODE")]),
    row!(Field::NdTarget, "nd_target", [], 128, 16, M, Nd, Ipv6,
        [h!(OpenFlowBasic, 31, "OXM_OF_IPV6_ND_TARGET"), h!(Nxm1, 23, "NXM_NX_ND_TARGET")]),
    row!(Field::NdSll, "nd_sll", [], 48, 6, M, NdSolicit, Ethernet,
        [h!(OpenFlowBasic, 32, "OXM_OF_IPV6_ND_SLL"), h!(Nxm1, 24, "NXM_NX_ND_SLL")]),
    row!(Field::NdTll, "nd_tll", [], 48, 6, M, NdAdvert, Ethernet,
        [h!(OpenFlowBasic, 33, "OXM_OF_IPV6_ND_TLL"), h!(Nxm1, 25, "NXM_NX_ND_TLL")]),
];

impl Field {
    /// The table row for this field (the family row for registers).
    pub fn def(self) -> &'static FieldDef {
        let key = self.family();
        FIELDS
            .iter()
            .find(|row| row.field == key)
            .expect("every Field variant has a row in FIELDS")
    }

    /// The field with its register index zeroed: the key of its table row.
    fn family(self) -> Field {
        match self {
            Field::Reg(_) => Field::Reg(0),
            Field::Xreg(_) => Field::Xreg(0),
            Field::Xxreg(_) => Field::Xxreg(0),
            Field::TunMetadata(_) => Field::TunMetadata(0),
            other => other,
        }
    }

    /// The register index (0 for plain fields).
    pub fn index(self) -> u8 {
        match self {
            Field::Reg(n) | Field::Xreg(n) | Field::Xxreg(n) | Field::TunMetadata(n) => n,
            _ => 0,
        }
    }

    /// Whether the field exists (register indexes in range).
    pub fn is_valid(self) -> bool {
        self.index() < self.def().count
    }

    /// Significant bits.
    pub fn bits(self) -> u16 {
        self.def().bits
    }

    /// Bytes on the wire.
    pub fn bytes(self) -> usize {
        usize::from(self.def().bytes)
    }

    /// All-ones over the field's width.
    pub fn full_mask(self) -> u128 {
        ones(self.bits())
    }

    /// All-ones over the field's bytes: the one set-field mask OVS treats as no mask
    /// (`mf_format` tests `is_all_ones` over `n_bytes`), so `load:1->vlan_pcp[0..2]` keeps its
    /// mask 0x7 while `load:1->reg0[0..31]` has none.
    pub fn byte_mask(self) -> u128 {
        ones(8 * self.bytes() as u16)
    }

    /// The OpenFlow 1.5 wire header (class, code with the index added, experimenter).
    pub fn header(self) -> (OxmClass, u8) {
        let h = &self.def().headers[0];
        (h.class, h.code + self.index())
    }

    /// Whether actions may write the field (OVS's "Read-only" fields in meta-flow.h may not be).
    pub fn is_writable(self) -> bool {
        use Field::*;
        !matches!(
            self,
            PacketType | DpHash | RecircId | ConjId | ActsetOutput | CtState | CtZone | CtNwSrc | CtNwDst | CtIpv6Src
                | CtIpv6Dst | CtNwProto | CtTpSrc | CtTpDst | EthType | IpProto | IpFrag | TcpFlags | MplsBos
        )
    }

    /// The wire header OVS encodes the field with in OpenFlow `version` (a version byte, e.g.
    /// 0x04 for 1.3): the newest header standard in that version, else the oldest one.
    pub fn header_for(self, version: u8) -> &'static OxmHeader {
        let headers = self.def().headers;
        let usable = headers.iter().filter(|h| h.since <= version);
        // Among equals the table lists OVS's choice first: `max_by_key` keeps the last of
        // equals (so iterate reversed), `min_by_key` the first.
        let newest = usable.rev().max_by_key(|h| h.since);
        newest.unwrap_or_else(|| headers.iter().min_by_key(|h| h.since).expect("every field has a header"))
    }

    /// The name OVS prints in subfields (`NXM_NX_REG3`, `OXM_OF_METADATA`): the NXM name
    /// when the field has one, else the OXM name.
    pub fn nxm_name(self) -> String {
        let def = self.def();
        let h = def
            .headers
            .iter()
            .find(|h| matches!(h.class, OxmClass::Nxm0 | OxmClass::Nxm1))
            .unwrap_or(&def.headers[0]);
        if def.count > 1 {
            format!("{}{}", h.name, self.index())
        } else {
            h.name.to_string()
        }
    }

    /// Looks a field up by a wire header.
    pub fn from_header(class: u16, code: u8, experimenter: Option<u32>) -> Option<Field> {
        for def in FIELDS {
            for h in def.headers {
                if h.class.class() != class || h.class.experimenter() != experimenter {
                    continue;
                }
                if def.count > 1 {
                    if code >= h.code && code < h.code + def.count {
                        return Some(with_index(def.field, code - h.code));
                    }
                } else if code == h.code {
                    return Some(def.field);
                }
            }
        }
        None
    }

    /// Looks a field up by its ovs-ofctl name, an alias, or an NXM/OXM header name.
    pub fn from_name(name: &str) -> Option<Field> {
        for def in FIELDS {
            if def.count > 1 {
                for prefix in std::iter::once(def.name).chain(def.headers.iter().map(|h| h.name)) {
                    if let Some(n) = name.strip_prefix(prefix).and_then(parse_index)
                        && n < def.count {
                            return Some(with_index(def.field, n));
                        }
                }
            } else if def.name == name
                || def.aliases.contains(&name)
                || def.headers.iter().any(|h| h.name == name)
            {
                return Some(def.field);
            }
        }
        None
    }
}

fn with_index(family: Field, n: u8) -> Field {
    match family {
        Field::Reg(_) => Field::Reg(n),
        Field::Xreg(_) => Field::Xreg(n),
        Field::Xxreg(_) => Field::Xxreg(n),
        Field::TunMetadata(_) => Field::TunMetadata(n),
        other => other,
    }
}

fn parse_index(digits: &str) -> Option<u8> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 2 {
        return None;
    }
    digits.parse().ok()
}

/// The fewest bytes that hold `v` (at least one): the length ovs-ofctl gives a tun_metadata
/// value when it does not know the switch's TLV table (`mf_field_len`).
pub fn min_bytes(v: u128) -> usize {
    (16 - v.leading_zeros() as usize / 8).max(1)
}

/// `bits` low bits set.
pub fn ones(bits: u16) -> u128 {
    if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 }
}

impl fmt::Display for Field {
    /// ovs-ofctl's name (`reg3`, `eth_src`, `ip_dscp`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let def = self.def();
        if def.count > 1 {
            write!(f, "{}{}", def.name, self.index())
        } else {
            f.write_str(def.name)
        }
    }
}

/// A bit range of a field, `NXM_NX_REG0[8..15]`: bits `ofs .. ofs + n_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRange {
    /// The field.
    pub field: Field,
    /// The lowest bit.
    pub ofs: u16,
    /// How many bits.
    pub n_bits: u16,
}

impl FieldRange {
    /// The whole field.
    pub fn whole(field: Field) -> Self {
        FieldRange { field, ofs: 0, n_bits: field.bits() }
    }

    /// Bits `start..=end` (inclusive, as ovs-ofctl writes them).
    pub fn bits(field: Field, start: u16, end: u16) -> Self {
        FieldRange { field, ofs: start, n_bits: end.saturating_sub(start) + 1 }
    }

    /// Whether the range lies within the field.
    pub fn is_valid(&self) -> bool {
        self.field.is_valid()
            && self.n_bits > 0
            && u32::from(self.ofs) + u32::from(self.n_bits) <= u32::from(self.field.bits())
    }

    /// Whether it covers the whole field.
    pub fn is_whole(&self) -> bool {
        self.ofs == 0 && self.n_bits == self.field.bits()
    }
}

impl fmt::Display for FieldRange {
    /// OVS's subfield syntax: `NXM_NX_REG0[]`, `NXM_NX_REG0[3]`, `NXM_NX_REG0[0..15]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field.nxm_name())?;
        if self.is_whole() {
            f.write_str("[]")
        } else if self.n_bits == 1 {
            write!(f, "[{}]", self.ofs)
        } else {
            write!(f, "[{}..{}]", self.ofs, self.ofs + self.n_bits - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_row_is_found_by_its_own_headers() {
        for def in FIELDS {
            for h in def.headers {
                let found = Field::from_header(h.class.class(), h.code, h.class.experimenter());
                assert_eq!(found, Some(def.field), "{}", h.name);
            }
        }
    }

    #[test]
    fn register_families_resolve_their_index_by_name_and_header() {
        assert_eq!(Field::from_name("reg7"), Some(Field::Reg(7)));
        assert_eq!(Field::from_name("NXM_NX_REG15"), Some(Field::Reg(15)));
        assert_eq!(Field::from_name("reg16"), None);
        assert_eq!(Field::from_name("xxreg3"), Some(Field::Xxreg(3)));
        assert_eq!(Field::from_header(0x0001, 113, None), Some(Field::Xxreg(2)));
        assert_eq!(Field::from_header(0x8001, 5, None), Some(Field::Xreg(5)));
        assert_eq!(Field::Reg(3).nxm_name(), "NXM_NX_REG3");
    }

    #[test]
    fn openflow15_headers_are_the_first_listed() {
        for def in FIELDS {
            let h = def.field.header_for(OF15);
            assert_eq!(h.name, def.headers[0].name);
            assert_eq!(def.field.header().0, h.class);
        }
    }

    #[test]
    fn older_versions_use_the_header_of_their_time() {
        assert_eq!(Field::ActsetOutput.header_for(OF13).name, "ONFOXM_ET_ACTSET_OUTPUT");
        assert_eq!(Field::ActsetOutput.header_for(OF12).name, "ONFOXM_ET_ACTSET_OUTPUT");
        assert_eq!(Field::TcpFlags.header_for(OF13).name, "ONFOXM_ET_TCP_FLAGS");
        assert_eq!(Field::TcpFlags.header_for(OF12).name, "NXM_NX_TCP_FLAGS");
        assert_eq!(Field::TunId.header_for(OF12).name, "NXM_NX_TUN_ID");
        assert_eq!(Field::TunId.header_for(OF13).name, "OXM_OF_TUNNEL_ID");
        assert_eq!(Field::EthSrc.header_for(OF12).name, "OXM_OF_ETH_SRC");
        assert_eq!(Field::DpHash.header_for(OF15).name, "NXM_NX_DP_HASH");
    }

    #[test]
    fn aliases_resolve_to_the_canonical_field() {
        assert_eq!(Field::from_name("dl_src"), Some(Field::EthSrc));
        assert_eq!(Field::from_name("nw_dst"), Some(Field::Ipv4Dst));
        assert_eq!(Field::from_name("tunnel_id"), Some(Field::TunId));
    }

    #[test]
    fn subfields_print_like_ovs() {
        assert_eq!(FieldRange::whole(Field::Reg(0)).to_string(), "NXM_NX_REG0[]");
        assert_eq!(FieldRange::bits(Field::Reg(1), 3, 3).to_string(), "NXM_NX_REG1[3]");
        assert_eq!(FieldRange::bits(Field::Metadata, 0, 31).to_string(), "OXM_OF_METADATA[0..31]");
    }
}
