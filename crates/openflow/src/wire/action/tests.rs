use super::*;
use crate::action::{Bundle, Ct, CtZone, Encap, Learn, LearnSpec, LearnSrc, Multipath, Nat, NatKind, ObsId, PacketType, Sample};

fn roundtrip(a: Action) {
    let mut out = Vec::new();
    encode_action(&a, &mut out);
    assert_eq!(out.len() % 8, 0, "{a:?}");
    let mut r = Reader::new(&out, "test");
    assert_eq!(decode_actions(&mut r).unwrap(), vec![a]);
}

#[test]
fn every_kind_of_action_survives_encode_and_decode() {
    let reg0 = FieldRange::bits(Field::Reg(0), 0, 15);
    roundtrip(Action::output(3u32));
    roundtrip(Action::Output { port: PortNo::CONTROLLER, max_len: 128 });
    roundtrip(Action::Group(7));
    roundtrip(Action::Meter(2));
    roundtrip(Action::SetField { field: Field::Reg(1), value: 0x50, mask: Some(0xf0) });
    roundtrip(Action::set_field(Field::EthDst, crate::Mac([1, 2, 3, 4, 5, 6])));
    roundtrip(Action::Move { src: reg0, dst: FieldRange::bits(Field::Reg(1), 16, 31) });
    roundtrip(Action::resubmit_table(4));
    roundtrip(Action::Resubmit { port: Some(PortNo(2)), table: None, ct: false });
    roundtrip(Action::Resubmit { port: None, table: Some(9), ct: true });
    roundtrip(Action::Conjunction { id: 100, clause: 2, n_clauses: 3 });
    roundtrip(Action::CtClear);
    roundtrip(Action::DecTtl);
    roundtrip(Action::Note(vec![1, 2, 3, 4, 5, 6]));
    roundtrip(Action::Controller(Controller::default()));
    roundtrip(Action::Controller(Controller { userdata: vec![1, 2, 3], pause: true, meter_id: Some(1), ..Controller::default() }));
    roundtrip(Action::Ct(Ct {
        commit: true,
        zone: CtZone::Field(reg0),
        table: Some(5),
        nat: Some(Nat {
            kind: Some(NatKind::Src),
            addrs: Some(("10.0.0.1".parse().unwrap(), "10.0.0.9".parse().unwrap())),
            ports: Some((100, 200)),
            random: true,
            ..Nat::default()
        }),
        exec: vec![Action::SetField { field: Field::CtMark, value: 1, mask: None }],
        ..Ct::default()
    }));
    roundtrip(Action::Learn(Box::new(Learn {
        specs: vec![
            LearnSpec::Match { dst: FieldRange::whole(Field::EthDst), src: LearnSrc::Field(FieldRange::whole(Field::EthSrc)) },
            LearnSpec::Load { dst: FieldRange::whole(Field::Reg(0)), src: LearnSrc::Imm(5) },
            LearnSpec::Output { src: FieldRange::bits(Field::Reg(1), 0, 15) },
        ],
        ..Learn::default()
    })));
    roundtrip(Action::Clone(vec![Action::output(1u32)]));
}

#[test]
fn every_action_ovs_has_beyond_the_pipeline_s_survives_encode_and_decode() {
    let reg0 = FieldRange::bits(Field::Reg(0), 0, 15);
    for a in [
        Action::SetNwTtl(9),
        Action::SetMplsTtl(7),
        Action::DecMplsTtl,
        Action::PushMpls(0x8847),
        Action::PopMpls(0x0800),
        Action::DecTtlIds(vec![1, 2, 3]),
        Action::FinTimeout { idle: 5, hard: 0 },
        Action::OutputTrunc { port: PortNo(5), max_len: 100 },
        Action::CheckPktLarger { pkt_len: 1500, dst: FieldRange::bits(Field::Reg(1), 3, 3) },
        Action::StackPush(reg0),
        Action::StackPop(FieldRange::whole(Field::Xxreg(1))),
        Action::Sample(Sample {
            probability: 1,
            collector_set_id: 2,
            obs_domain: ObsId::Field(reg0),
            obs_point: ObsId::Imm(4),
            sampling_port: Some(PortNo(5)),
            direction: 2,
        }),
        Action::Sample(Sample { probability: 1, collector_set_id: 2, obs_domain: ObsId::Imm(3), obs_point: ObsId::Imm(4), sampling_port: None, direction: 0 }),
        Action::Multipath(Multipath { fields: 1, basis: 50, algorithm: 3, max_link: 3, arg: 7, dst: reg0 }),
        Action::Bundle(Bundle { fields: 0, basis: 1, algorithm: 1, members: vec![PortNo(1), PortNo::LOCAL], dst: None }),
        Action::Bundle(Bundle { fields: 6, basis: 1, algorithm: 0, members: vec![], dst: Some(reg0) }),
        Action::Encap(Encap { packet_type: PacketType { ns: 1, ns_type: 0x894f }, hdr_size: 0, nsh_md_type: Some(2) }),
        Action::Decap(None),
        Action::Decap(Some(PacketType { ns: 1, ns_type: 0x800 })),
        Action::Ct(Ct { exec: vec![Action::SetField { field: Field::CtMark, value: 1, mask: None }, Action::Nat(Nat::default())], ..Ct::default() }),
    ] {
        roundtrip(a);
    }
}

#[test]
fn the_new_actions_refuse_what_ovs_refuses_with_ovs_s_errors() {
    // push_mpls of IPv4's Ethernet type.
    assert_eq!(ovs_error("0013 0008 0800 0000"), Some("OFPBAC_BAD_ARGUMENT"));
    // multipath over 4 links into one bit.
    assert_eq!(ovs_error("ffff 0020 00002320 000a 0000 0000 0000 0000 0003 00000000 0000 0000 00010004"), Some("OFPBAC_BAD_ARGUMENT"));
    // bundle with an unknown algorithm.
    assert_eq!(ovs_error("ffff 0020 00002320 000c 0009 0000 0000 00000002 0000 0000 00000000 00000000"), Some("OFPBAC_BAD_ARGUMENT"));
    // sample with probability 0.
    assert_eq!(ovs_error("ffff 0018 00002320 001d 0000 00000001 00000002 00000003"), Some("OFPBAC_BAD_ARGUMENT"));
    // encap of an unknown packet type.
    assert_eq!(ovs_error("ffff 0010 00002320 002e 0000 00019999"), Some("NXBAC_BAD_HEADER_TYPE"));
    // check_pkt_larger with nonzero padding.
    assert_eq!(ovs_error("ffff 0018 00002320 0031 05dc 0000 00010004 000000000001"), Some("NXBRC_MUST_BE_ZERO"));
}

fn ovs_error(hex: &str) -> Option<&'static str> {
    let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
    let bytes: Vec<u8> = digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect();
    decode_actions(&mut Reader::new(&bytes, "test")).unwrap_err().ofp_error()
}

#[test]
fn an_action_length_that_is_not_a_multiple_of_8_is_ovs_s_bad_len() {
    assert_eq!(ovs_error("0000 000c 00000001 00000000 00000000"), Some("OFPBAC_BAD_LEN"));
    assert_eq!(ovs_error("0000 000c 00000001 00000000"), Some("OFPBRC_BAD_LEN"));
    assert_eq!(ovs_error("0000 0018 00000001 ffff0000 00000000"), Some("OFPBAC_BAD_LEN"));
}

#[test]
fn unknown_types_vendors_and_subtypes_get_ovs_s_errors() {
    assert_eq!(ovs_error("001e 0008 00000000"), Some("OFPBAC_BAD_TYPE"));
    assert_eq!(ovs_error("ffff 0010 12345678 0001 000000000000"), Some("OFPBAC_BAD_VENDOR"));
    assert_eq!(ovs_error("ffff 0010 00002320 0063 000000000000"), Some("OFPBAC_BAD_VENDOR_TYPE"));
    // NXAST_REG_LOAD is not an OpenFlow 1.5 action for OVS either.
    assert_eq!(ovs_error("ffff 0018 00002320 0007 000f 00000802 000000000000f009"), Some("OFPBAC_BAD_VENDOR_TYPE"));
}

#[test]
fn bad_ports_and_set_fields_get_ovs_s_errors() {
    assert_eq!(ovs_error("0000 0010 ffffffff ffff 000000000000"), Some("OFPBAC_BAD_OUT_PORT"));
    // set_field of ip_proto (read-only), of an unknown OXM field, of ip_proto with 2 bytes.
    assert_eq!(ovs_error("0019 0010 80001401 06 000000 00000000"), Some("OFPBAC_BAD_SET_ARGUMENT"));
    assert_eq!(ovs_error("0019 0010 80007204 06000000 00000000"), Some("OFPBAC_BAD_SET_TYPE"));
    assert_eq!(ovs_error("0019 0010 80001402 0600 0000 00000000"), Some("OFPBAC_BAD_SET_LEN"));
}
