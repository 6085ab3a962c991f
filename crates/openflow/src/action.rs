//! Actions: what a flow does to a packet. Values only; the wire codec is in `wire::action` and
//! the text syntax in `text`.
//!
//! Canonical forms (so that an action read back from OVS in OpenFlow 1.5 equals what was sent):
//! - `load:` and `set_field:` are both [`Action::SetField`]; OVS encodes both as OpenFlow 1.5
//!   set-field (with a mask for partial loads). [`Action::Load`] is NXAST_REG_LOAD, an
//!   OpenFlow 1.0-1.4 action that ovs-ofctl prints as `load:`: it can be encoded, but OpenFlow
//!   1.5 decoding refuses it as OVS does (OFPBAC_BAD_VENDOR_TYPE).
//! - A set-field mask is kept unless it covers the field's bytes, as OVS keeps and prints it
//!   (`load:1->vlan_pcp[0..2]` is `set_field:1/0x7->vlan_pcp`); see [`Field::byte_mask`].
//! - `output:CONTROLLER` is [`Action::Controller`] with the default reason and id, as in OVS.
//! - `mod_tp_src`/`mod_tp_dst` are set-field on the L4 field of the flow's protocol, and
//!   `mod_vlan_vid`/`mod_vlan_pcp` push a VLAN header first when the flow has none, as OVS
//!   resolves them against the match; `mod_nw_ttl` is its own action ([`Action::SetNwTtl`]).
//! - Inside `ct`, a NAT that comes first is [`Ct::nat`]; one after other nested actions is an
//!   [`Action::Nat`] in [`Ct::exec`], so the order OVS keeps survives.
//! - A drop is an empty action list: there is no drop action.

use std::net::IpAddr;

use crate::field::{Field, FieldRange};
use crate::port::PortNo;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Output to a port (not the controller; see [`Action::Controller`]).
    Output {
        /// The port.
        port: PortNo,
        /// Bytes to send when the port is the controller (kept for OpenFlow compatibility).
        max_len: u16,
    },
    /// Output to the port number held in a field range (NXAST_OUTPUT_REG).
    OutputReg {
        /// Where the port number is.
        src: FieldRange,
        /// Bytes to send to the controller.
        max_len: u16,
    },
    /// Send to the controller.
    Controller(Controller),
    /// Apply a group.
    Group(u32),
    /// Apply a meter (an action in OpenFlow 1.5).
    Meter(u32),
    /// Set the queue id.
    SetQueue(u32),
    /// Restore the queue id (NXAST_POP_QUEUE).
    PopQueue,
    /// Set a field, or the bits of it under `mask` (`set_field:v->f`, `load:v->f[a..b]`).
    SetField {
        /// The field.
        field: Field,
        /// The value (only bits under the mask are set).
        value: u128,
        /// `None` sets the whole field.
        mask: Option<u128>,
    },
    /// NXAST_REG_LOAD (`load:v->f[a..b]`), an OpenFlow 1.0-1.4 encoding (see the module doc).
    Load {
        /// Destination bits.
        dst: FieldRange,
        /// The value, right-aligned.
        value: u128,
    },
    /// Copy bits from one field to another (`move:`; OpenFlow 1.5 copy-field).
    Move {
        /// Source bits.
        src: FieldRange,
        /// Destination bits (same width).
        dst: FieldRange,
    },
    /// Push an 802.1Q header with this Ethernet type.
    PushVlan(u16),
    /// Pop the outer VLAN header (`strip_vlan` / `pop_vlan`).
    PopVlan,
    /// Decrement the IP TTL.
    DecTtl,
    /// Resubmit to a port and/or table (NXAST_RESUBMIT / _TABLE / _TABLE_CT).
    Resubmit {
        /// The input port to pretend; `None` keeps the current one (IN_PORT).
        port: Option<PortNo>,
        /// The table; `None` is the current table.
        table: Option<u8>,
        /// Use the conntrack original-direction tuple (`resubmit(,N,ct)`).
        ct: bool,
    },
    /// A clause of a conjunctive match.
    Conjunction {
        /// The conjunction id.
        id: u32,
        /// This clause, 1-based.
        clause: u8,
        /// How many clauses.
        n_clauses: u8,
    },
    /// Connection tracking.
    Ct(Ct),
    /// NAT among a `ct` action's nested actions after others, as OVS keeps the order of
    /// `ct(exec(...),nat(...))`; a NAT that comes first is [`Ct::nat`].
    Nat(Nat),
    /// Clear the conntrack state.
    CtClear,
    /// An opaque note (`note:01.02`). OVS pads it with zeros to fill its 8-byte alignment and
    /// reads the padding back, so keep it `len % 8 == 6` to compare equal after a round trip.
    Note(Vec<u8>),
    /// Learn a new flow.
    Learn(Box<Learn>),
    /// Stop processing actions.
    Exit,
    /// Run actions on a clone of the packet.
    Clone(Vec<Action>),
    /// Set the IPv4 TTL or IPv6 hop limit (OFPAT_SET_NW_TTL, `mod_nw_ttl`).
    SetNwTtl(u8),
    /// Set the MPLS TTL (OFPAT_SET_MPLS_TTL).
    SetMplsTtl(u8),
    /// Decrement the MPLS TTL (OFPAT_DEC_MPLS_TTL).
    DecMplsTtl,
    /// Push an MPLS label stack entry; the value is the new Ethernet type (0x8847 or 0x8848).
    PushMpls(u16),
    /// Pop an MPLS label stack entry; the value is the Ethernet type of what is under it.
    PopMpls(u16),
    /// Decrement the IP TTL and tell these controllers when it expires
    /// (NXAST_DEC_TTL_CNT_IDS). Plain `dec_ttl` is [`Action::DecTtl`].
    DecTtlIds(Vec<u16>),
    /// Shorten the flow's timeouts once a FIN or RST is seen (0 leaves one unchanged).
    FinTimeout {
        /// The new idle timeout.
        idle: u16,
        /// The new hard timeout.
        hard: u16,
    },
    /// Output at most `max_len` bytes of the packet (NXAST_OUTPUT_TRUNC).
    OutputTrunc {
        /// The port.
        port: PortNo,
        /// Bytes kept.
        max_len: u32,
    },
    /// Set one bit to whether the packet is longer than `pkt_len` bytes.
    CheckPktLarger {
        /// The length compared.
        pkt_len: u16,
        /// The result bit.
        dst: FieldRange,
    },
    /// Push bits of a field on the stack (NXAST_STACK_PUSH).
    StackPush(FieldRange),
    /// Pop the stack into bits of a field (NXAST_STACK_POP).
    StackPop(FieldRange),
    /// Sample packets to an IPFIX collector.
    Sample(Sample),
    /// Choose a link by hashing and store its number in a field.
    Multipath(Multipath),
    /// Choose a member port by hashing (`bundle`) and output to it, or store it (`bundle_load`).
    Bundle(Bundle),
    /// Push a header of a new packet type (NXAST_ENCAP).
    Encap(Encap),
    /// Pop the outer header (NXAST_DECAP); `None` takes the next protocol from the header.
    Decap(Option<PacketType>),
    /// Remove a tunnel option from the packet (NXAST_DELETE_FIELD; OVS allows tun_metadata).
    DeleteField(Field),
}

/// An OpenFlow 1.5 packet type: namespace and type within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketType {
    /// 0 = OpenFlow (Ethernet), 1 = an Ethertype.
    pub ns: u16,
    /// The type within the namespace.
    pub ns_type: u16,
}

impl PacketType {
    /// The 32-bit form on the wire.
    pub fn to_u32(self) -> u32 {
        u32::from(self.ns) << 16 | u32::from(self.ns_type)
    }

    /// From the 32-bit wire form.
    pub fn from_u32(v: u32) -> PacketType {
        PacketType { ns: (v >> 16) as u16, ns_type: v as u16 }
    }
}

/// The headers `encap` can push, with ovs-ofctl's names (OVS's `parse_encap_header`).
pub const ENCAP_HEADERS: &[(PacketType, &str)] = &[
    (PacketType { ns: 0, ns_type: 0 }, "ethernet"),
    (PacketType { ns: 1, ns_type: 0x894f }, "nsh"),
    (PacketType { ns: 1, ns_type: 0x8847 }, "mpls"),
    (PacketType { ns: 1, ns_type: 0x8848 }, "mpls_mc"),
];

/// `encap(...)`: the header to push and its properties.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Encap {
    /// The packet type of the result (one of [`ENCAP_HEADERS`]).
    pub packet_type: PacketType,
    /// Header size in bytes (0 = not given).
    pub hdr_size: u16,
    /// NSH metadata type (`nsh(md_type=1|2)`), the one property this crate carries.
    pub nsh_md_type: Option<u8>,
}

/// Where a sample's observation id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObsId {
    /// A constant.
    Imm(u32),
    /// Up to 32 bits of a field.
    Field(FieldRange),
}

/// Which packets `sample` sees: [`Sample::direction`].
pub mod sample_direction {
    /// OVS decides.
    pub const DEFAULT: u8 = 0;
    /// Sample on ingress.
    pub const INGRESS: u8 = 1;
    /// Sample on egress.
    pub const EGRESS: u8 = 2;
}

/// The `sample` action (NXAST_SAMPLE .. NXAST_SAMPLE4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sample {
    /// Packets sampled out of 65535.
    pub probability: u16,
    /// The IPFIX collector set in OVSDB.
    pub collector_set_id: u32,
    /// Observation domain id.
    pub obs_domain: ObsId,
    /// Observation point id.
    pub obs_point: ObsId,
    /// The tunnel port whose output is sampled, if any.
    pub sampling_port: Option<PortNo>,
    /// [`sample_direction`].
    pub direction: u8,
}

/// Which packet fields `multipath` and `bundle` hash (NX_HASH_FIELDS_*), with ovs-ofctl's names.
pub const HASH_FIELDS: &[(u16, &str)] = &[
    (0, "eth_src"),
    (1, "symmetric_l4"),
    (2, "symmetric_l3l4"),
    (3, "symmetric_l3l4+udp"),
    (4, "nw_src"),
    (5, "nw_dst"),
    (6, "symmetric_l3"),
];

/// `multipath` algorithms (NX_MP_ALG_*).
pub const MULTIPATH_ALGORITHMS: &[(u16, &str)] = &[(0, "modulo_n"), (1, "hash_threshold"), (2, "hrw"), (3, "iter_hash")];

/// `bundle` algorithms (NX_BD_ALG_*).
pub const BUNDLE_ALGORITHMS: &[(u16, &str)] = &[(0, "active_backup"), (1, "hrw")];

/// The name of `code` in one of the tables above.
pub fn code_name(table: &[(u16, &'static str)], code: u16) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The code of `name` in one of the tables above.
pub fn code_of(table: &[(u16, &str)], name: &str) -> Option<u16> {
    table.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

/// The `multipath` action (NXAST_MULTIPATH).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Multipath {
    /// [`HASH_FIELDS`] code.
    pub fields: u16,
    /// Hash basis.
    pub basis: u16,
    /// [`MULTIPATH_ALGORITHMS`] code.
    pub algorithm: u16,
    /// Number of links minus one.
    pub max_link: u16,
    /// Algorithm argument.
    pub arg: u32,
    /// Where the link number goes.
    pub dst: FieldRange,
}

/// The `bundle` and `bundle_load` actions (NXAST_BUNDLE, NXAST_BUNDLE_LOAD).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bundle {
    /// [`HASH_FIELDS`] code.
    pub fields: u16,
    /// Hash basis.
    pub basis: u16,
    /// [`BUNDLE_ALGORITHMS`] code.
    pub algorithm: u16,
    /// The member ports.
    pub members: Vec<PortNo>,
    /// `bundle_load`: where the chosen port goes; `None` outputs to it.
    pub dst: Option<FieldRange>,
}

impl Action {
    /// `output:port`.
    pub fn output(port: impl Into<PortNo>) -> Action {
        Action::Output { port: port.into(), max_len: 0 }
    }

    /// `resubmit(,table)`.
    pub fn resubmit_table(table: u8) -> Action {
        Action::Resubmit { port: None, table: Some(table), ct: false }
    }

    /// `set_field:value->field`.
    pub fn set_field(field: Field, value: impl crate::FieldValue) -> Action {
        Action::SetField { field, value: value.to_u128(), mask: None }
    }

    /// Loads `value` into the bits of `dst` (`load:value->dst`), in canonical set-field form:
    /// masked unless the bits cover the field's bytes (see [`Field::byte_mask`]).
    pub fn load(dst: FieldRange, value: u128) -> Action {
        let mask = crate::field::ones(dst.n_bits) << dst.ofs;
        let value = (value << dst.ofs) & mask;
        Action::SetField { field: dst.field, value, mask: (mask != dst.field.byte_mask()).then_some(mask) }
    }
}

/// Where a `ct` action takes its zone from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CtZone {
    /// A fixed zone.
    Imm(u16),
    /// 16 bits of a field.
    Field(FieldRange),
}

/// The `ct` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ct {
    /// Commit the connection.
    pub commit: bool,
    /// Force: terminate an existing connection in the other direction first.
    pub force: bool,
    /// The zone.
    pub zone: CtZone,
    /// Recirculate to this table after conntrack.
    pub table: Option<u8>,
    /// Application-layer gateway port (21 = ftp, 69 = tftp); 0 for none.
    pub alg: u16,
    /// NAT, encoded as the first nested action.
    pub nat: Option<Nat>,
    /// Nested actions (set_field on ct_mark/ct_label).
    pub exec: Vec<Action>,
}

impl Default for Ct {
    fn default() -> Self {
        Ct { commit: false, force: false, zone: CtZone::Imm(0), table: None, alg: 0, nat: None, exec: Vec::new() }
    }
}

/// Which side NAT rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatKind {
    /// Source NAT.
    Src,
    /// Destination NAT.
    Dst,
}

/// A NAT specification inside `ct`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Nat {
    /// `None` = `nat` alone: apply the connection's existing NAT.
    pub kind: Option<NatKind>,
    /// Address range (inclusive).
    pub addrs: Option<(IpAddr, IpAddr)>,
    /// Port range (inclusive).
    pub ports: Option<(u16, u16)>,
    /// Keep the same mapping across restarts.
    pub persistent: bool,
    /// Hash-based port selection.
    pub hash: bool,
    /// Random port selection.
    pub random: bool,
}

/// Why a packet goes to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketInReason(pub u8);

impl PacketInReason {
    /// No matching flow (table miss).
    pub const NO_MATCH: PacketInReason = PacketInReason(0);
    /// An explicit output to the controller.
    pub const ACTION: PacketInReason = PacketInReason(1);
    /// Invalid TTL.
    pub const INVALID_TTL: PacketInReason = PacketInReason(2);
    /// Output to the controller in an action set.
    pub const ACTION_SET: PacketInReason = PacketInReason(3);
    /// Output to the controller in a group bucket.
    pub const GROUP: PacketInReason = PacketInReason(4);
    /// Output to the controller by packet-out.
    pub const PACKET_OUT: PacketInReason = PacketInReason(5);

    /// ovs-ofctl's name for the reason.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "no_match",
            1 => "action",
            2 => "invalid_ttl",
            3 => "action_set",
            4 => "group",
            5 => "packet_out",
            _ => return None,
        })
    }
}

/// Send to the controller (OpenFlow output:CONTROLLER or NXAST_CONTROLLER2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Controller {
    /// Bytes of the packet to send.
    pub max_len: u16,
    /// The controller connection id.
    pub controller_id: u16,
    /// The reason reported.
    pub reason: PacketInReason,
    /// Opaque bytes passed to the controller.
    pub userdata: Vec<u8>,
    /// Pause the pipeline (continuation).
    pub pause: bool,
    /// Rate-limit with this meter.
    pub meter_id: Option<u32>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller {
            max_len: u16::MAX,
            controller_id: 0,
            reason: PacketInReason::ACTION,
            userdata: Vec::new(),
            pause: false,
            meter_id: None,
        }
    }
}

impl Controller {
    /// Whether OpenFlow's plain output:CONTROLLER can carry it (OVS then prefers that).
    pub fn is_plain(&self) -> bool {
        self.reason == PacketInReason::ACTION
            && self.controller_id == 0
            && self.userdata.is_empty()
            && !self.pause
            && self.meter_id.is_none()
    }
}

/// Where a learned value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LearnSrc {
    /// Bits of a field of the packet being processed.
    Field(FieldRange),
    /// A constant (right-aligned, as wide as the destination).
    Imm(u128),
}

/// One specification of a `learn` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LearnSpec {
    /// The learned flow matches `dst` against `src`.
    Match {
        /// Match bits in the learned flow.
        dst: FieldRange,
        /// The value.
        src: LearnSrc,
    },
    /// The learned flow loads `src` into `dst`.
    Load {
        /// Bits to load in the learned flow.
        dst: FieldRange,
        /// The value.
        src: LearnSrc,
    },
    /// The learned flow outputs to the port in `src`.
    Output {
        /// The port.
        src: FieldRange,
    },
}

/// Flags of a `learn` action.
pub mod learn_flags {
    /// The learned flow has send_flow_rem.
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    /// Delete learned flows when this flow is removed.
    pub const DELETE_LEARNED: u16 = 1 << 1;
    /// Write whether learning succeeded into `result_dst`.
    pub const WRITE_RESULT: u16 = 1 << 2;
}

/// The `learn` action (NXAST_LEARN / NXAST_LEARN2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Learn {
    /// The learned flow's idle timeout.
    pub idle_timeout: u16,
    /// The learned flow's hard timeout.
    pub hard_timeout: u16,
    /// The learned flow's priority.
    pub priority: u16,
    /// The learned flow's cookie.
    pub cookie: u64,
    /// [`learn_flags`].
    pub flags: u16,
    /// The learned flow's table.
    pub table_id: u8,
    /// Idle timeout after FIN/RST.
    pub fin_idle_timeout: u16,
    /// Hard timeout after FIN/RST.
    pub fin_hard_timeout: u16,
    /// Maximum number of flows learned (0 = unlimited; needs NXAST_LEARN2).
    pub limit: u32,
    /// Where to write the result bit (NXAST_LEARN2).
    pub result_dst: Option<FieldRange>,
    /// The specifications, in order.
    pub specs: Vec<LearnSpec>,
}

impl Default for Learn {
    fn default() -> Self {
        Learn {
            idle_timeout: 0,
            hard_timeout: 0,
            priority: 0x8000,
            cookie: 0,
            flags: 0,
            table_id: 1,
            fin_idle_timeout: 0,
            fin_hard_timeout: 0,
            limit: 0,
            result_dst: None,
            specs: Vec::new(),
        }
    }
}
