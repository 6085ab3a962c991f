//! OpenFlow 1.5 messages: the [`Message`] value, [`decode_message`] and [`Message::encode`].

use super::action::{decode_actions, encode_actions};
use super::codes::{self, NX_VENDOR_ID, msg_type};
use super::frame::{Frame, HEADER_LEN, finish_header, put_header};
use super::instruction::{decode_instructions, encode_instructions};
pub use super::group::{Bucket, GroupMod, decode_buckets, encode_buckets, group_type};
use super::group::{decode_group_mod, encode_group_mod};
pub use super::meter::{MeterBand, MeterMod, encode_bands};
use super::meter::{decode_meter_mod, encode_meter_mod};
use super::multipart::{MultipartReply, MultipartRequest};
use super::oxm::{decode_match, encode_match};
use super::{DecodeError, DecodeErrorKind, OFP15_VERSION, Put, Reader, len_placeholder, pad8, patch_len};
use crate::action::Action;
use crate::flow::{Flow, FlowFlags, FlowMod, FlowModCommand};
use crate::flow_match::Match;
use crate::mac::Mac;
use crate::port::PortNo;

/// An OFPT_ERROR message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorMsg {
    /// OFPET_* (0xffff: experimenter).
    pub etype: u16,
    /// The code (experimenter code for experimenter errors).
    pub code: u16,
    /// The experimenter id (0 for standard errors).
    pub experimenter: u32,
    /// The start of the offending message.
    pub data: Vec<u8>,
}

impl ErrorMsg {
    /// OVS's name for the error (`OFPBAC_BAD_OUT_PORT`), if known.
    pub fn name(&self) -> Option<&'static str> {
        codes::error_code(self.etype, self.code, self.experimenter).map(|e| e.name)
    }

    /// The error type's name (`BAD_ACTION`), if known.
    pub fn type_name(&self) -> Option<&'static str> {
        codes::error_type::name(self.etype)
    }
}

impl std::fmt::Display for ErrorMsg {
    /// `OFPBAC_BAD_OUT_PORT (BAD_ACTION, code 4): Problem validating output port`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tname = self.type_name().unwrap_or("unknown type");
        match codes::error_code(self.etype, self.code, self.experimenter) {
            Some(e) => write!(f, "{} ({tname}, code {}): {}", e.name, self.code, e.text),
            None => write!(f, "error type {} ({tname}) code {}", self.etype, self.code),
        }
    }
}

/// The switch's FEATURES_REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Features {
    /// Datapath id.
    pub datapath_id: u64,
    /// Packet buffers.
    pub n_buffers: u32,
    /// Tables.
    pub n_tables: u8,
    /// Auxiliary connection id.
    pub auxiliary_id: u8,
    /// OFPC_* capabilities.
    pub capabilities: u32,
}

/// GET_CONFIG_REPLY / SET_CONFIG body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwitchConfig {
    /// OFPC_FRAG_* flags.
    pub flags: u16,
    /// Bytes of a table-miss packet sent to the controller.
    pub miss_send_len: u16,
}

/// A port's description (OpenFlow 1.4+ `ofp_port` with the Ethernet property).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortDesc {
    /// The port number.
    pub port_no: PortNo,
    /// The MAC.
    pub hw_addr: Mac,
    /// The name.
    pub name: String,
    /// OFPPC_* config bits.
    pub config: u32,
    /// OFPPS_* state bits.
    pub state: u32,
    /// Ethernet property: (curr, advertised, supported, peer, curr_speed, max_speed).
    pub ethernet: Option<[u32; 6]>,
}

/// Bundle control types (OFPBCT_*).
#[allow(missing_docs)]
pub mod bundle_ctrl {
    pub const OPEN_REQUEST: u16 = 0;
    pub const OPEN_REPLY: u16 = 1;
    pub const CLOSE_REQUEST: u16 = 2;
    pub const CLOSE_REPLY: u16 = 3;
    pub const COMMIT_REQUEST: u16 = 4;
    pub const COMMIT_REPLY: u16 = 5;
    pub const DISCARD_REQUEST: u16 = 6;
    pub const DISCARD_REPLY: u16 = 7;
    /// Bundle flag: all or nothing.
    pub const ATOMIC: u16 = 1;
    /// Bundle flag: apply in order.
    pub const ORDERED: u16 = 2;
}

/// A packet sent to the controller (OpenFlow 1.5 PACKET_IN).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacketIn {
    /// Buffer id.
    pub buffer_id: u32,
    /// Full length of the frame.
    pub total_len: u16,
    /// Why it was sent.
    pub reason: u8,
    /// The table it came from.
    pub table_id: u8,
    /// The flow's cookie.
    pub cookie: u64,
    /// Pipeline fields (in_port, registers, metadata...).
    pub matches: Match,
    /// The frame.
    pub data: Vec<u8>,
}

/// A packet sent by the controller (OpenFlow 1.5 PACKET_OUT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacketOut {
    /// Buffer id (NO_BUFFER to send `data`).
    pub buffer_id: u32,
    /// Pipeline fields (in_port at least).
    pub matches: Match,
    /// Actions.
    pub actions: Vec<Action>,
    /// The frame.
    pub data: Vec<u8>,
}

/// One property of an asynchronous configuration: the reasons (bits) for which one kind of
/// message is sent to a connection in one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AsyncConfig {
    /// OFPACPT_* (see [`async_config`]).
    pub prop_type: u16,
    /// One bit per reason (e.g. `1 << OFPR_APPLY_ACTION`).
    pub mask: u32,
}

/// Property types of an asynchronous configuration (OFPACPT_*).
pub mod async_config {
    /// Packet-ins, for a connection in the slave role.
    pub const PACKET_IN_SLAVE: u16 = 0;
    /// Packet-ins, for a connection in the master or equal role (OVS's service connections).
    pub const PACKET_IN_MASTER: u16 = 1;
    /// Packet-in reason of a `controller` action in the apply-actions list (OFPR_APPLY_ACTION).
    pub const REASON_APPLY_ACTION: u32 = 1;
}

/// The length of every standard asynchronous configuration property.
const ASYNC_PROP_LEN: usize = 8;

/// Nicira message subtypes (NXT_*).
mod nxt {
    pub const SET_PACKET_IN_FORMAT: u32 = 16;
    pub const PACKET_IN2: u32 = 30;
}

/// One OpenFlow message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// HELLO with a version bitmap (bit n = version n).
    Hello {
        /// Supported versions.
        versions: u32,
    },
    /// ERROR.
    Error(ErrorMsg),
    /// ECHO_REQUEST.
    EchoRequest(Vec<u8>),
    /// ECHO_REPLY.
    EchoReply(Vec<u8>),
    /// FEATURES_REQUEST.
    FeaturesRequest,
    /// FEATURES_REPLY.
    FeaturesReply(Features),
    /// GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// SET_CONFIG.
    SetConfig(SwitchConfig),
    /// PACKET_IN.
    PacketIn(PacketIn),
    /// PORT_STATUS (reason 0 add, 1 delete, 2 modify).
    PortStatus {
        /// OFPPR_*.
        reason: u8,
        /// The port.
        desc: PortDesc,
    },
    /// PACKET_OUT.
    PacketOut(PacketOut),
    /// FLOW_MOD.
    FlowMod(FlowMod),
    /// GROUP_MOD.
    GroupMod(GroupMod),
    /// METER_MOD.
    MeterMod(MeterMod),
    /// MULTIPART_REQUEST.
    MultipartRequest {
        /// OFPMPF_REQ_MORE.
        more: bool,
        /// The request.
        body: MultipartRequest,
    },
    /// MULTIPART_REPLY (one part; the connection reassembles).
    MultipartReply {
        /// OFPMPF_REPLY_MORE.
        more: bool,
        /// This part.
        body: MultipartReply,
    },
    /// BARRIER_REQUEST.
    BarrierRequest,
    /// BARRIER_REPLY.
    BarrierReply,
    /// BUNDLE_CONTROL.
    BundleControl {
        /// Bundle id.
        bundle_id: u32,
        /// [`bundle_ctrl`] type.
        ctrl_type: u16,
        /// [`bundle_ctrl::ATOMIC`] | [`bundle_ctrl::ORDERED`].
        flags: u16,
    },
    /// BUNDLE_ADD_MESSAGE with the inner message (its xid is the outer one).
    BundleAdd {
        /// Bundle id.
        bundle_id: u32,
        /// Flags (same as the bundle's).
        flags: u16,
        /// The message added.
        message: Box<Message>,
    },
    /// NXT_SET_PACKET_IN_FORMAT (0 standard, 1 NXT_PACKET_IN, 2 NXT_PACKET_IN2).
    SetPacketInFormat(u32),
    /// OFPT_SET_ASYNC: which asynchronous messages this connection gets, by property
    /// (properties left out keep their setting).
    SetAsync(Vec<AsyncConfig>),
    /// NXT_PACKET_IN2 properties, undecoded.
    PacketIn2(Vec<u8>),
    /// Another experimenter message.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Body.
        data: Vec<u8>,
    },
    /// A message type this crate does not decode.
    Other {
        /// OFPT_*.
        msg_type: u8,
        /// Body after the header.
        body: Vec<u8>,
    },
}

/// Decodes a whole framed message (header included).
pub fn decode_message(frame: &Frame<'_>) -> Result<Message, DecodeError> {
    let what = msg_type::name(frame.msg_type).unwrap_or("message");
    let mut r = Reader::new(frame.body(), what);
    let shift = |e: DecodeError| DecodeError::new(e.what, e.offset + HEADER_LEN, e.kind);
    let msg = decode_body(frame, &mut r).map_err(shift)?;
    r.finish().map_err(shift)?;
    Ok(msg)
}

fn decode_body(frame: &Frame<'_>, r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    Ok(match frame.msg_type {
        msg_type::HELLO => {
            let mut versions = 0u32;
            while r.remaining() >= 4 {
                let etype = r.u16()?;
                let len = usize::from(r.u16()?);
                if len < 4 {
                    return Err(r.err(DecodeErrorKind::BadLength(len)));
                }
                let mut e = r.sub(len - 4, "hello element")?;
                if etype == 1 {
                    while e.remaining() >= 4 {
                        versions |= e.u32()?;
                    }
                } else {
                    e.skip(e.remaining())?;
                }
                r.skip(((8 - len % 8) % 8).min(r.remaining()))?;
            }
            r.skip(r.remaining())?;
            if versions == 0 {
                // No bitmap: the header's version is the one offered.
                versions = 1u32
                    .checked_shl(u32::from(frame.version))
                    .ok_or_else(|| r.invalid(format!("hello version {} has no bitmap bit", frame.version)))?;
            }
            Message::Hello { versions }
        }
        msg_type::ERROR => {
            let etype = r.u16()?;
            let code = r.u16()?;
            let experimenter = if etype == 0xffff { r.u32()? } else { 0 };
            Message::Error(ErrorMsg { etype, code, experimenter, data: r.take(r.remaining())?.to_vec() })
        }
        msg_type::ECHO_REQUEST => Message::EchoRequest(r.take(r.remaining())?.to_vec()),
        msg_type::ECHO_REPLY => Message::EchoReply(r.take(r.remaining())?.to_vec()),
        msg_type::FEATURES_REQUEST => Message::FeaturesRequest,
        msg_type::FEATURES_REPLY => {
            let f = Features {
                datapath_id: r.u64()?,
                n_buffers: r.u32()?,
                n_tables: r.u8()?,
                auxiliary_id: r.u8()?,
                capabilities: {
                    r.skip(2)?;
                    r.u32()?
                },
            };
            r.skip(4)?;
            Message::FeaturesReply(f)
        }
        msg_type::GET_CONFIG_REQUEST => Message::GetConfigRequest,
        msg_type::GET_CONFIG_REPLY | msg_type::SET_CONFIG => {
            let c = SwitchConfig { flags: r.u16()?, miss_send_len: r.u16()? };
            if frame.msg_type == msg_type::SET_CONFIG { Message::SetConfig(c) } else { Message::GetConfigReply(c) }
        }
        msg_type::PACKET_IN => {
            let buffer_id = r.u32()?;
            let total_len = r.u16()?;
            let reason = r.u8()?;
            let table_id = r.u8()?;
            let cookie = r.u64()?;
            let matches = decode_match(r)?;
            r.skip(2)?;
            Message::PacketIn(PacketIn { buffer_id, total_len, reason, table_id, cookie, matches, data: r.take(r.remaining())?.to_vec() })
        }
        msg_type::PORT_STATUS => {
            let reason = r.u8()?;
            r.skip(7)?;
            Message::PortStatus { reason, desc: decode_port(r)? }
        }
        msg_type::PACKET_OUT => {
            let buffer_id = r.u32()?;
            let actions_len = usize::from(r.u16()?);
            r.skip(2)?;
            let matches = decode_match(r)?;
            let mut a = r.sub(actions_len, "packet_out actions")?;
            let actions = decode_actions(&mut a)?;
            Message::PacketOut(PacketOut { buffer_id, matches, actions, data: r.take(r.remaining())?.to_vec() })
        }
        msg_type::FLOW_MOD => Message::FlowMod(decode_flow_mod(r)?),
        msg_type::GROUP_MOD => Message::GroupMod(decode_group_mod(r)?),
        msg_type::METER_MOD => {
            Message::MeterMod(decode_meter_mod(r)?)
        }
        msg_type::MULTIPART_REQUEST | msg_type::MULTIPART_REPLY => {
            let mp_type = r.u16()?;
            let flags = r.u16()?;
            r.skip(4)?;
            let more = flags & 1 != 0;
            if frame.msg_type == msg_type::MULTIPART_REQUEST {
                Message::MultipartRequest { more, body: MultipartRequest::decode(mp_type, r)? }
            } else {
                Message::MultipartReply { more, body: MultipartReply::decode(mp_type, r)? }
            }
        }
        msg_type::BARRIER_REQUEST => Message::BarrierRequest,
        msg_type::BARRIER_REPLY => Message::BarrierReply,
        msg_type::BUNDLE_CONTROL => {
            let bundle_id = r.u32()?;
            let ctrl_type = r.u16()?;
            let flags = r.u16()?;
            r.skip(r.remaining())?; // properties: none used
            Message::BundleControl { bundle_id, ctrl_type, flags }
        }
        msg_type::BUNDLE_ADD_MESSAGE => {
            let bundle_id = r.u32()?;
            r.skip(2)?;
            let flags = r.u16()?;
            let inner = super::split_frame(r.rest()).map_err(|e| r.invalid(format!("inner message: {e}")))?;
            if inner.xid != frame.xid {
                return Err(r.invalid("inner message xid differs from the bundle's"));
            }
            let message = decode_message(&inner)?;
            r.skip(inner.bytes.len())?;
            r.skip(r.remaining())?; // padding and properties
            Message::BundleAdd { bundle_id, flags, message: Box::new(message) }
        }
        msg_type::SET_ASYNC => {
            let mut props = Vec::new();
            while r.remaining() > 0 {
                let prop_type = r.u16()?;
                let len = usize::from(r.u16()?);
                if len != ASYNC_PROP_LEN {
                    return Err(r.err(DecodeErrorKind::BadLength(len)));
                }
                props.push(AsyncConfig { prop_type, mask: r.u32()? });
            }
            Message::SetAsync(props)
        }
        msg_type::EXPERIMENTER => {
            let experimenter = r.u32()?;
            let exp_type = r.u32()?;
            match (experimenter, exp_type) {
                (NX_VENDOR_ID, nxt::SET_PACKET_IN_FORMAT) => Message::SetPacketInFormat(r.u32()?),
                (NX_VENDOR_ID, nxt::PACKET_IN2) => Message::PacketIn2(r.take(r.remaining())?.to_vec()),
                _ => Message::Experimenter { experimenter, exp_type, data: r.take(r.remaining())?.to_vec() },
            }
        }
        other => Message::Other { msg_type: other, body: r.take(r.remaining())?.to_vec() },
    })
}

/// Decodes an OpenFlow 1.5 flow-mod body.
pub fn decode_flow_mod(r: &mut Reader<'_>) -> Result<FlowMod, DecodeError> {
    let cookie = r.u64()?;
    let cookie_mask = r.u64()?;
    let table_id = r.u8()?;
    let cmd = r.u8()?;
    let command = FlowModCommand::from_code(cmd)
        .ok_or_else(|| r.err(DecodeErrorKind::Unknown { what: "flow_mod command", code: u64::from(cmd) }))?;
    let idle_timeout = r.u16()?;
    let hard_timeout = r.u16()?;
    let priority = r.u16()?;
    let buffer_id = r.u32()?;
    let out_port = PortNo(r.u32()?);
    let out_group = r.u32()?;
    let flags = FlowFlags(r.u16()?);
    let importance = r.u16()?;
    let matches = decode_match(r)?;
    let mut ir = r.sub(r.remaining(), "flow_mod instructions")?;
    let instructions = decode_instructions(&mut ir)?;
    Ok(FlowMod {
        command,
        flow: Flow { table_id, priority, matches, cookie, idle_timeout, hard_timeout, importance, flags, instructions },
        cookie_mask,
        out_port,
        out_group,
        buffer_id,
    })
}

/// Encodes an OpenFlow 1.5 flow-mod body.
pub fn encode_flow_mod(fm: &FlowMod, out: &mut Vec<u8>) {
    let f = &fm.flow;
    out.put_u64(f.cookie);
    out.put_u64(fm.cookie_mask);
    out.put_u8(f.table_id);
    out.put_u8(fm.command.code());
    out.put_u16(f.idle_timeout);
    out.put_u16(f.hard_timeout);
    out.put_u16(f.priority);
    out.put_u32(fm.buffer_id);
    out.put_u32(fm.out_port.0);
    out.put_u32(fm.out_group);
    out.put_u16(f.flags.0);
    out.put_u16(f.importance);
    encode_match(&f.matches, out);
    encode_instructions(&f.instructions, out);
}

/// Decodes an OpenFlow 1.4+ port description.
pub fn decode_port(r: &mut Reader<'_>) -> Result<PortDesc, DecodeError> {
    let port_no = PortNo(r.u32()?);
    let len = usize::from(r.u16()?);
    if len < 40 {
        return Err(r.err(DecodeErrorKind::BadLength(len)));
    }
    r.skip(2)?;
    let mac = r.take(6)?;
    r.skip(2)?;
    let name_bytes = r.take(16)?;
    let name = super::fixed_ascii(name_bytes);
    let config = r.u32()?;
    let state = r.u32()?;
    let mut props = r.sub(len - 40, "port properties")?;
    let mut ethernet = None;
    while props.remaining() > 0 {
        let ptype = props.u16()?;
        let plen = usize::from(props.u16()?);
        if plen < 4 {
            return Err(props.err(DecodeErrorKind::BadLength(plen)));
        }
        let mut p = props.sub(plen - 4, "port property")?;
        if ptype == 0 {
            p.skip(4)?;
            let mut v = [0u32; 6];
            for x in v.iter_mut() {
                *x = p.u32()?;
            }
            ethernet = Some(v);
        }
        p.skip(p.remaining())?;
        props.skip(((8 - plen % 8) % 8).min(props.remaining()))?;
    }
    Ok(PortDesc { port_no, hw_addr: Mac(mac.try_into().expect("6 bytes")), name, config, state, ethernet })
}

/// Encodes an OpenFlow 1.4+ port description.
pub fn encode_port(p: &PortDesc, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u32(p.port_no.0);
    let at = len_placeholder(out);
    out.put_zeros(2);
    out.extend_from_slice(&p.hw_addr.0);
    out.put_zeros(2);
    let mut name = [0u8; 16];
    let n = p.name.len().min(15);
    name[..n].copy_from_slice(&p.name.as_bytes()[..n]);
    out.extend_from_slice(&name);
    out.put_u32(p.config);
    out.put_u32(p.state);
    if let Some(v) = p.ethernet {
        out.put_u16(0);
        out.put_u16(32);
        out.put_zeros(4);
        for x in v {
            out.put_u32(x);
        }
    }
    patch_len(out, at, start);
}

impl Message {
    /// The OFPT_* type.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Hello { .. } => msg_type::HELLO,
            Message::Error(_) => msg_type::ERROR,
            Message::EchoRequest(_) => msg_type::ECHO_REQUEST,
            Message::EchoReply(_) => msg_type::ECHO_REPLY,
            Message::FeaturesRequest => msg_type::FEATURES_REQUEST,
            Message::FeaturesReply(_) => msg_type::FEATURES_REPLY,
            Message::GetConfigRequest => msg_type::GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => msg_type::GET_CONFIG_REPLY,
            Message::SetConfig(_) => msg_type::SET_CONFIG,
            Message::PacketIn(_) => msg_type::PACKET_IN,
            Message::PortStatus { .. } => msg_type::PORT_STATUS,
            Message::PacketOut(_) => msg_type::PACKET_OUT,
            Message::FlowMod(_) => msg_type::FLOW_MOD,
            Message::GroupMod(_) => msg_type::GROUP_MOD,
            Message::MeterMod(_) => msg_type::METER_MOD,
            Message::MultipartRequest { .. } => msg_type::MULTIPART_REQUEST,
            Message::MultipartReply { .. } => msg_type::MULTIPART_REPLY,
            Message::BarrierRequest => msg_type::BARRIER_REQUEST,
            Message::BarrierReply => msg_type::BARRIER_REPLY,
            Message::BundleControl { .. } => msg_type::BUNDLE_CONTROL,
            Message::BundleAdd { .. } => msg_type::BUNDLE_ADD_MESSAGE,
            Message::SetAsync(_) => msg_type::SET_ASYNC,
            Message::SetPacketInFormat(_) | Message::PacketIn2(_) | Message::Experimenter { .. } => msg_type::EXPERIMENTER,
            Message::Other { msg_type, .. } => *msg_type,
        }
    }

    /// Appends the message, header included, with transaction id `xid`.
    pub fn encode(&self, xid: u32, out: &mut Vec<u8>) {
        let start = put_header(out, OFP15_VERSION, self.msg_type(), xid);
        self.encode_body(xid, out);
        finish_header(out, start);
    }

    /// The encoded message as a new buffer.
    pub fn to_bytes(&self, xid: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(xid, &mut out);
        out
    }

    fn encode_body(&self, xid: u32, out: &mut Vec<u8>) {
        match self {
            Message::Hello { versions } => {
                out.put_u16(1);
                out.put_u16(8);
                out.put_u32(*versions);
            }
            Message::Error(e) => {
                out.put_u16(e.etype);
                out.put_u16(e.code);
                if e.etype == 0xffff {
                    out.put_u32(e.experimenter);
                }
                out.extend_from_slice(&e.data);
            }
            Message::EchoRequest(d) | Message::EchoReply(d) => out.extend_from_slice(d),
            Message::FeaturesRequest | Message::GetConfigRequest | Message::BarrierRequest | Message::BarrierReply => {}
            Message::FeaturesReply(f) => {
                out.put_u64(f.datapath_id);
                out.put_u32(f.n_buffers);
                out.put_u8(f.n_tables);
                out.put_u8(f.auxiliary_id);
                out.put_zeros(2);
                out.put_u32(f.capabilities);
                out.put_u32(0);
            }
            Message::GetConfigReply(c) | Message::SetConfig(c) => {
                out.put_u16(c.flags);
                out.put_u16(c.miss_send_len);
            }
            Message::PacketIn(p) => {
                out.put_u32(p.buffer_id);
                out.put_u16(p.total_len);
                out.put_u8(p.reason);
                out.put_u8(p.table_id);
                out.put_u64(p.cookie);
                encode_match(&p.matches, out);
                out.put_zeros(2);
                out.extend_from_slice(&p.data);
            }
            Message::PortStatus { reason, desc } => {
                out.put_u8(*reason);
                out.put_zeros(7);
                encode_port(desc, out);
            }
            Message::PacketOut(p) => {
                out.put_u32(p.buffer_id);
                let at = len_placeholder(out);
                out.put_zeros(2);
                encode_match(&p.matches, out);
                let astart = out.len();
                encode_actions(&p.actions, out);
                let alen = (out.len() - astart) as u16;
                out[at..at + 2].copy_from_slice(&alen.to_be_bytes());
                out.extend_from_slice(&p.data);
            }
            Message::FlowMod(fm) => encode_flow_mod(fm, out),
            Message::GroupMod(g) => encode_group_mod(g, out),
            Message::MeterMod(m) => encode_meter_mod(m, out),
            Message::MultipartRequest { more, body } => {
                out.put_u16(body.mp_type());
                out.put_u16(u16::from(*more));
                out.put_zeros(4);
                body.encode(out);
            }
            Message::MultipartReply { more, body } => {
                out.put_u16(body.mp_type());
                out.put_u16(u16::from(*more));
                out.put_zeros(4);
                body.encode(out);
            }
            Message::BundleControl { bundle_id, ctrl_type, flags } => {
                out.put_u32(*bundle_id);
                out.put_u16(*ctrl_type);
                out.put_u16(*flags);
            }
            Message::BundleAdd { bundle_id, flags, message } => {
                out.put_u32(*bundle_id);
                out.put_zeros(2);
                out.put_u16(*flags);
                message.encode(xid, out);
            }
            Message::SetAsync(props) => {
                for p in props {
                    out.put_u16(p.prop_type);
                    out.put_u16(ASYNC_PROP_LEN as u16);
                    out.put_u32(p.mask);
                }
            }
            Message::SetPacketInFormat(f) => {
                out.put_u32(NX_VENDOR_ID);
                out.put_u32(nxt::SET_PACKET_IN_FORMAT);
                out.put_u32(*f);
            }
            Message::PacketIn2(props) => {
                out.put_u32(NX_VENDOR_ID);
                out.put_u32(nxt::PACKET_IN2);
                out.extend_from_slice(props);
            }
            Message::Experimenter { experimenter, exp_type, data } => {
                out.put_u32(*experimenter);
                out.put_u32(*exp_type);
                out.extend_from_slice(data);
            }
            Message::Other { body, .. } => out.extend_from_slice(body),
        }
    }
}

/// Appends BUNDLE_ADD_MESSAGE(FLOW_MOD) without building a [`Message`]: the hot path of large
/// bundles.
pub fn encode_bundle_add_flow_mod(bundle_id: u32, flags: u16, fm: &FlowMod, xid: u32, out: &mut Vec<u8>) {
    let start = put_header(out, OFP15_VERSION, msg_type::BUNDLE_ADD_MESSAGE, xid);
    out.put_u32(bundle_id);
    out.put_zeros(2);
    out.put_u16(flags);
    let inner = put_header(out, OFP15_VERSION, msg_type::FLOW_MOD, xid);
    encode_flow_mod(fm, out);
    finish_header(out, inner);
    finish_header(out, start);
}

/// Pads to 8 (used by multipart bodies).
pub(crate) fn pad_to_8(out: &mut Vec<u8>, start: usize) {
    pad8(out, start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::split_frame;
    use crate::{Field, Instruction};

    fn roundtrip(m: Message) {
        let bytes = m.to_bytes(42);
        let f = split_frame(&bytes).unwrap();
        assert_eq!(f.xid, 42);
        assert_eq!(f.bytes.len(), bytes.len());
        assert_eq!(decode_message(&f).unwrap(), m);
    }

    #[test]
    fn control_messages_survive_encode_and_decode() {
        roundtrip(Message::Hello { versions: 1 << 6 });
        roundtrip(Message::EchoRequest(vec![1, 2, 3]));
        roundtrip(Message::BarrierReply);
        roundtrip(Message::SetPacketInFormat(2));
        roundtrip(Message::SetAsync(vec![AsyncConfig { prop_type: async_config::PACKET_IN_MASTER, mask: 2 }]));
        roundtrip(Message::SetConfig(SwitchConfig { flags: 0, miss_send_len: 128 }));
        roundtrip(Message::BundleControl { bundle_id: 1, ctrl_type: bundle_ctrl::OPEN_REQUEST, flags: 3 });
    }

    #[test]
    fn a_flow_mod_inside_a_bundle_survives_encode_and_decode() {
        let flow = Flow::new(3, 100, Match::new().tcp().with(Field::TcpDst, 22u16))
            .cookie(0xab)
            .actions([Action::output(2u32)])
            .instruction(Instruction::GotoTable(4));
        let fm = FlowMod::add(flow);
        let msg = Message::BundleAdd { bundle_id: 9, flags: 3, message: Box::new(Message::FlowMod(fm.clone())) };
        roundtrip(msg.clone());
        let mut fast = Vec::new();
        encode_bundle_add_flow_mod(9, 3, &fm, 42, &mut fast);
        assert_eq!(fast, msg.to_bytes(42));
    }

    #[test]
    fn an_error_names_its_type_and_code() {
        let e = ErrorMsg { etype: 2, code: 4, experimenter: 0, data: vec![] };
        assert_eq!(e.to_string(), "OFPBAC_BAD_OUT_PORT (BAD_ACTION, code 4): Problem validating output port");
    }
}
