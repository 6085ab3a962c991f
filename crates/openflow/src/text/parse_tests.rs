//! Parser tests: canonical printing of parsed text (expected strings are what
//! `ovs-ofctl -O OpenFlow15 parse-flow` prints for the same input), and errors.

use super::*;
use crate::{Action, Field, Flow, FlowModCommand, Match, PortNo};

fn canon(s: &str) -> String {
    let f: Flow = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
    f.to_string()
}

#[test]
fn shorthands_masks_and_timeouts_print_in_ovs_order() {
    assert_eq!(
        canon("table=3,priority=5,cookie=0x10,tcp,nw_src=10.0.0.0/8,tp_dst=80,idle_timeout=5 actions=resubmit(,4)"),
        "cookie=0x10, table=3, idle_timeout=5, priority=5,tcp,nw_src=10.0.0.0/8,tp_dst=80 actions=resubmit(,4)"
    );
}

#[test]
fn fields_without_their_prerequisites_are_dropped_like_ovs() {
    assert_eq!(canon("tp_dst=80,actions=drop"), "actions=drop");
    assert_eq!(canon("icmp6,nd_target=::1,actions=drop"), "icmp6 actions=drop");
    assert_eq!(canon("mpls_label=5,actions=drop"), "actions=drop");
}

#[test]
fn shared_fields_follow_the_protocol_matched_last() {
    assert_eq!(canon("tcp,tp_dst=80,udp,actions=drop"), "udp,tp_dst=80 actions=drop");
    assert_eq!(canon("arp,nw_src=1.2.3.4,nw_proto=2,actions=drop"), "arp,arp_spa=1.2.3.4,arp_op=2 actions=drop");
    assert_eq!(canon("icmp6,icmp_type=135,nd_target=::1,actions=drop"), "icmp6,icmp_type=135,nd_target=::1 actions=drop");
}

#[test]
fn vlan_tos_and_register_forms_are_canonicalized() {
    assert_eq!(canon("vlan_pcp=3,actions=drop"), "dl_vlan_pcp=3 actions=drop");
    assert_eq!(canon("dl_vlan=5,dl_vlan_pcp=3,actions=drop"), "dl_vlan=5,dl_vlan_pcp=3 actions=drop");
    assert_eq!(canon("vlan_vid=0x1005,actions=drop"), "dl_vlan=5 actions=drop");
    assert_eq!(canon("dl_vlan=0xffff,actions=drop"), "vlan_tci=0x0000/0x1fff actions=drop");
    assert_eq!(canon("ip,nw_tos=5,actions=drop"), "ip,nw_tos=4 actions=drop");
    assert_eq!(canon("ip,ip_dscp=5,actions=drop"), "ip,nw_tos=20 actions=drop");
    assert_eq!(canon("xreg1=0x5,actions=drop"), "reg2=0,reg3=0x5 actions=drop");
    assert_eq!(canon("reg3=5/0xf,actions=drop"), "reg3=0x5/0xf actions=drop");
    assert_eq!(canon("in_port=65534,actions=drop"), "in_port=LOCAL actions=drop");
}

#[test]
fn flags_and_special_formats_round_trip() {
    for s in [
        "tcp6,tcp_flags=+syn-ack actions=drop",
        "tun_flags=+oam actions=drop",
        "ip,nw_frag=first actions=drop",
        "packet_type=(1,0x800) actions=drop",
        "tcp,tp_src=0x100/0xff00 actions=drop",
        "ct_state=-new+trk,ct_zone=5,ct_mark=0x1/0xff,ct_label=0x1/0x1 actions=drop",
        "metadata=0x5/0xff actions=drop",
    ] {
        assert_eq!(canon(s), s);
    }
}

#[test]
fn actions_parse_to_ovs_canonical_forms() {
    for (input, want) in [
        ("CONTROLLER", "CONTROLLER:65535"),
        ("output:CONTROLLER", "CONTROLLER:65535"),
        ("controller:100", "CONTROLLER:100"),
        ("controller(userdata=01.02,pause)", "controller(userdata=01.02,pause)"),
        ("controller(reason=no_match,id=3)", "controller(reason=no_match,id=3)"),
        ("1,LOCAL,in_port", "output:1,LOCAL,IN_PORT"),
        ("output:NXM_NX_REG0[0..15]", "output:NXM_NX_REG0[0..15]"),
        ("mod_dl_src:00:11:22:33:44:55", "set_field:00:11:22:33:44:55->eth_src"),
        ("mod_nw_dst:1.2.3.4", "set_field:1.2.3.4->ip_dst"),
        ("resubmit:3", "resubmit:3"),
        ("ct(commit,nat(src=10.0.0.1:100))", "ct(commit,nat(src=10.0.0.1:100))"),
        ("ct(commit,zone=NXM_NX_REG0[0..15],exec(set_field:1->ct_mark))", "ct(commit,zone=NXM_NX_REG0[0..15],exec(set_field:0x1->ct_mark))"),
        (
            "learn(table=2,eth_dst=00:11:22:33:44:55,NXM_OF_IN_PORT[],load:NXM_NX_REG0[]->NXM_NX_REG1[])",
            "learn(table=2,eth_dst=00:11:22:33:44:55,NXM_OF_IN_PORT[],load:NXM_NX_REG0[]->NXM_NX_REG1[])",
        ),
        ("clone(1,2)", "clone(output:1,output:2)"),
        ("meter:1,2", "meter:1,output:2"),
        ("write_actions(2),goto_table:3", "write_actions(output:2),goto_table:3"),
        ("set_field:5->tun_id", "set_field:0x5->tun_id"),
        ("load:0x5->NXM_NX_TUN_ID[]", "set_field:0x5->tun_id"),
        ("load:5->NXM_NX_REG0[0..3]", "set_field:0x5/0xf->reg0"),
        ("move:reg0->reg1", "move:NXM_NX_REG0[]->NXM_NX_REG1[]"),
        ("enqueue:1:2", "set_queue:2,output:1,pop_queue"),
        ("mod_nw_tos:8", "set_field:2->ip_dscp"),
        ("conjunction(5,1/2)", "conjunction(5,1/2)"),
    ] {
        assert_eq!(canon(&format!("ip,actions={input}")), format!("ip actions={want}"), "{input}");
    }
}

#[test]
fn parsing_a_printed_flow_gives_the_same_flow() {
    let f: Flow = "table=1,priority=7,udp,reg0=0x5/0xff,actions=ct(commit,table=2,nat(dst=10.0.0.1-10.0.0.3:80-90,random)),output:3".parse().unwrap();
    let again: Flow = f.to_string().parse().unwrap();
    assert_eq!(f, again);
}

#[test]
fn errors_name_the_offending_token() {
    let e = "nosuchfield=1,actions=drop".parse::<Flow>().unwrap_err();
    assert_eq!(e.token, "nosuchfield=1");
    let e = "ip,actions=frobnicate:3".parse::<Flow>().unwrap_err();
    assert_eq!(e.token, "frobnicate:3");
    let e = "nw_proto=300,ip,actions=drop".parse::<Flow>().unwrap_err();
    assert!(e.to_string().contains("nw_proto"), "{e}");
    let e = "ip".parse::<Flow>().unwrap_err();
    assert!(e.message.contains("must specify an action"));
    let e = "ip,nw_src=10.0.0.300,actions=drop".parse::<Flow>().unwrap_err();
    assert_eq!(e.token, "10.0.0.300");
}

#[test]
fn deletes_default_to_all_tables_and_take_cookie_masks() {
    let fm = parse_flow_mod("cookie=0x5/-1,tcp", FlowModCommand::Delete, None).unwrap();
    assert_eq!(fm.flow.table_id, 0xff);
    assert_eq!((fm.flow.cookie, fm.cookie_mask), (5, u64::MAX));
    assert_eq!(fm.flow.matches, Match::new().tcp());
    assert!(parse_flow_mod("cookie=0x5/-1,actions=drop", FlowModCommand::Add, None).is_err());
}

#[test]
fn file_lines_take_a_leading_command() {
    let fm = parse_flow_mod_line("delete_strict priority=5,ip", None).unwrap();
    assert_eq!(fm.command, FlowModCommand::DeleteStrict);
    let fm = parse_flow_mod_line("ip actions=1", None).unwrap();
    assert_eq!(fm.command, FlowModCommand::Add);
    assert_eq!(fm.flow.apply_actions(), &[Action::output(PortNo(1))]);
    let lines = flow_file_lines("# c\nip,\\\n actions=1\n\n  \narp actions=2 # x\n");
    assert_eq!(lines, vec![(2, "ip, actions=1".to_string()), (6, "arp actions=2 ".to_string())]);
}

#[test]
fn named_ports_and_tables_resolve_through_names() {
    let mut names = Names::default();
    names.ports.insert(7, "p7".into());
    names.tables.insert(3, "Egress".into());
    let f = parse_flow("table=Egress,in_port=p7,actions=resubmit(,Egress),p7", Some(&names)).unwrap();
    assert_eq!(f.table_id, 3);
    assert_eq!(f.matches.exact(Field::InPort), Some(7));
}

#[test]
fn unnamed_tcp_flag_bits_print_and_parse_in_brackets() {
    assert_eq!(canon("tcp,tcp_flags=0x202,actions=drop"), "tcp,tcp_flags=syn|[200] actions=drop");
    assert_eq!(canon("tcp,tcp_flags=+[200]-syn,actions=drop"), "tcp,tcp_flags=-syn+[200] actions=drop");
}
