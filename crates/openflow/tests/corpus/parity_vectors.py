#!/usr/bin/env python3
"""Regenerates the OVS-vector part of parity.flows and parity-unsupported.flows.

Every flow and action text of OVS's tests/ofp-actions.at and tests/ovs-ofctl.at, plus one flow
per maskable field with a few masks and the flows of parity_extra.txt and set_field/load/move on
every writable field (what the vectors leave out), is made installable (a unique priority, timeouts that
outlast a test, the match prerequisites OVS checks), then added alone to a switch with
`ovs-ofctl -O OpenFlow15 add-flow` and with `weir ofctl add-flows --bundle`: a flow both
install with equal dumps, and that `weir ofctl dump-flows` prints byte for byte as ovs-ofctl,
goes into the corpus; every other one into the unsupported list with the reason.

Usage (OVS 3.5 first on PATH, a switch with port 5, group 1, meter 1 and the TLV map
{class=0xffff,type=0,len=4}->tun_metadata0,{class=0xffff,type=1,len=8}->tun_metadata10):
  parity_vectors.py OVS_TESTS_DIR unix:BRIDGE.mgmt WEIR_BINARY
OVS_TESTS_DIR holds ofp-actions.at and ovs-ofctl.at (`git show v3.5.0:tests/...`).
"""
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BEGIN = "# OVS's own vectors:"

# Prerequisites OVS checks in OpenFlow 1.5 that the vectors (written for parse-flow) lack.
PREREQS = [
    (r'^actions=(mod_nw_src|mod_nw_dst|mod_nw_tos|mod_nw_ecn|dec_ttl|mod_nw_ttl)', 'ip,'),
    (r'^actions=(mod_tp_src|mod_tp_dst|fin_timeout)', 'tcp,'),
    (r'^actions=(strip_vlan|pop_vlan|set_vlan_vid|set_vlan_pcp)', 'dl_vlan=9,'),
    (r'^actions=resubmit\(10,5,ct\)', 'ip,ct_state=+trk-inv,'),
    (r'^actions=ct\(alg=ftp', 'tcp,'),
    (r'^actions=ct\(alg=tftp', 'udp,'),
    (r'^actions=ct\(commit,nat\(src=.*fe80', 'ipv6,'),
    (r'^actions=ct\(', 'ip,'),
]
# Objects the test switch has instead of the vectors' own.
RENAMES = [('group:5', 'group:1'), ('meter:5', 'meter:1')]

# Prerequisites of the masked-field flows.
MASK_PREREQS = {
    'ip_src': 'ip', 'ipv6_label': 'ipv6', 'tcp_src': 'tcp', 'tcp_dst': 'tcp', 'tcp_flags': 'tcp', 'tp_src': 'tcp',
    'tp_dst': 'tcp', 'udp_src': 'udp', 'udp_dst': 'udp', 'sctp_src': 'sctp', 'sctp_dst': 'sctp', 'ct_nw_src': 'ip,ct_state=+trk',
    'ipv6_src': 'ipv6', 'arp_sha': 'arp', 'nd_target': 'icmp6,icmp_type=135', 'ip_frag': 'ip',
}
MASK_INTS = ['pkt_mark', 'ct_mark', 'ct_label', 'reg3', 'xreg2', 'xxreg1', 'tun_id', 'tun_gbp_id', 'tun_gbp_flags', 'metadata',
             'vlan_tci', 'vlan_vid', 'ipv6_label', 'tcp_src', 'tcp_dst', 'udp_src', 'udp_dst', 'sctp_src', 'sctp_dst', 'tp_src',
             'tp_dst', 'tcp_flags']
MASK_OTHERS = [('ip_src', '10.0.0.0/255.0.255.0'), ('ipv6_src', '::/ffff::ff'),
               ('arp_sha', '00:00:00:00:00:00/01:00:00:00:00:00'), ('nd_target', '::/::ffff'),
               ('eth_src', '00:00:00:00:00:00/ff:00:00:00:00:00'), ('tun_src', '0.0.0.0/0.0.0.1'), ('tun_ipv6_dst', '::/::1'),
               ('tun_flags', '-oam'), ('ct_state', '-trk'), ('ct_state', '+new-est')]


def vectors(tests):
    """(source, flow) for every flow text of the two .at files, first occurrence only."""
    out, sec = [], None
    for line in (tests / 'ofp-actions.at').read_text().splitlines():
        if m := re.match(r'AT_SETUP\(\[(.*)\]\)', line):
            sec = m.group(1)
        if m := re.match(r'# (actions=.*)$', line):
            out.append(('ofp-actions.at: ' + sec, m.group(1)))
    in_data = False
    for line in (tests / 'ovs-ofctl.at').read_text().splitlines():
        if m := re.match(r'AT_SETUP\(\[(.*)\]\)', line):
            sec = m.group(1)
        if sec.startswith('ovs-ofctl parse-flows choice') and (m := re.match(r"\s*'(\S+)\s+(\S+)'", line)):
            # "none": no protocol can carry the match; OVS refuses the flow itself.
            out.append(('ovs-ofctl.at: ' + sec, m.group(1).replace('[[', '[').replace(']]', ']') + ',actions=drop'))
        elif m := re.match(r'AT_DATA\(\[([^\]]*)\], \[\[(.*)$', line):
            in_data = True
            if m.group(2):
                out.append(('ovs-ofctl.at: ' + sec, m.group(2)))
        elif in_data and line.startswith(']])'):
            in_data = False
        elif in_data and line.strip() and not line.startswith('#'):
            out.append(('ovs-ofctl.at: ' + sec, line.strip()))
    seen = set()
    return [(s, f) for s, f in out if not (f in seen or seen.add(f))]


# Writable fields with a value and the match they need, for set_field, load and move flows.
WRITABLE = [
    ('reg5', '0x12345678', '', 32), ('xreg3', '0x123456789abcdef', '', 64), ('xxreg2', '0x1', '', 128),
    ('tun_id', '0x5', '', 64), ('tun_src', '1.2.3.4', '', 32), ('tun_dst', '1.2.3.4', '', 32),
    ('tun_ipv6_src', '2001:db8::1', '', 128), ('tun_ipv6_dst', '2001:db8::1', '', 128), ('tun_gbp_id', '7', '', 16),
    ('tun_gbp_flags', '0x1', '', 8), ('tun_erspan_idx', '0x5', '', 32), ('tun_erspan_ver', '2', '', 8),
    ('tun_erspan_dir', '1', '', 8), ('tun_erspan_hwid', '0x7', '', 8), ('metadata', '0x5', '', 64), ('pkt_mark', '0x5', '', 32), ('in_port', '5', '', 32),
    ('eth_src', '00:11:22:33:44:55', '', 48), ('eth_dst', '00:11:22:33:44:55', '', 48), ('vlan_tci', '0x1005', '', 16),
    ('vlan_vid', '4101', 'dl_vlan=1', 13), ('vlan_pcp', '3', 'dl_vlan=1', 3), ('mpls_label', '5', 'mpls', 20),
    ('mpls_tc', '3', 'mpls', 3), ('mpls_ttl', '9', 'mpls', 8), ('ip_src', '10.0.0.1', 'ip', 32), ('ip_dst', '10.0.0.1', 'ip', 32),
    ('ipv6_src', '2001:db8::1', 'ipv6', 128), ('ipv6_dst', '2001:db8::1', 'ipv6', 128), ('ipv6_label', '0x12345', 'ipv6', 20),
    ('nw_tos', '16', 'ip', 8), ('ip_dscp', '4', 'ip', 6), ('nw_ecn', '1', 'ip', 2), ('nw_ttl', '9', 'ip', 8),
    ('arp_op', '2', 'arp', 16), ('arp_spa', '10.0.0.1', 'arp', 32), ('arp_tpa', '10.0.0.1', 'arp', 32),
    ('arp_sha', '00:11:22:33:44:55', 'arp', 48), ('arp_tha', '00:11:22:33:44:55', 'arp', 48), ('tcp_src', '80', 'tcp', 16),
    ('tcp_dst', '80', 'tcp', 16), ('udp_src', '53', 'udp', 16), ('udp_dst', '53', 'udp', 16), ('sctp_src', '9', 'sctp', 16),
    ('sctp_dst', '9', 'sctp', 16), ('icmp_type', '8', 'icmp', 8), ('icmp_code', '1', 'icmp', 8),
    ('icmpv6_type', '128', 'icmp6', 8), ('icmpv6_code', '1', 'icmp6', 8), ('nd_target', '2001:db8::1', 'icmp6,icmp_type=135', 128),
    ('nd_sll', '00:11:22:33:44:55', 'icmp6,icmp_type=135', 48), ('nd_tll', '00:11:22:33:44:55', 'icmp6,icmp_type=136', 48),
]


def extra_flows():
    """parity_extra.txt, then set_field (whole and masked), load and move on every writable field."""
    flows = [('extra actions', line) for line in (HERE / 'parity_extra.txt').read_text().splitlines()
             if line.strip() and not line.startswith('#')]
    for name, value, pre, bits in WRITABLE:
        p = pre + ',' if pre else ''
        low = min(bits, 8) - 1
        flows += [('set_field, load and move', f) for f in (
            f'{p}actions=set_field:{value}->{name}',
            f'{p}actions=set_field:0x1/0x1->{name}' if value[:1].isdigit() and '.' not in value and ':' not in value else None,
            f'{p}actions=load:0x1->{name}[0..{low}]',
            f'{p}actions=move:NXM_NX_XXREG0[0..{bits - 1}]->{name}[]',
            f'{p}actions=move:{name}[]->NXM_NX_XXREG1[0..{bits - 1}]',
        ) if f]
    return flows


def masked_flows():
    flows = []
    for f in MASK_INTS:
        for v, m in [(0, 0xf0), (0x10, 0xf0), (1, 1), (0, 1)]:
            if f == 'vlan_vid':
                v, m = v | 0x1000, m | 0x1000
            pre = MASK_PREREQS.get(f)
            flows.append(('masked fields', f'{pre + "," if pre else ""}{f}={v:#x}/{m:#x},actions=drop'))
    for f, val in MASK_OTHERS:
        pre = MASK_PREREQS.get(f)
        flows.append(('masked fields', f'{pre + "," if pre else ""}{f}={val},actions=drop'))
    return flows


class Installable:
    """Rewrites a vector so that it installs alone and next to all the others."""

    def __init__(self):
        self.priority = 40000

    def __call__(self, flow):
        for pat, pre in PREREQS:
            if re.search(pat, flow):
                flow = pre + flow
                break
        for a, b in RENAMES:
            flow = flow.replace(a, b)
        i = flow.find('actions=')
        head, acts = (flow[:i], flow[i:]) if i >= 0 else (flow, '')
        head = re.sub(r'(idle_timeout|hard_timeout)=(\d+)', lambda m: f'{m.group(1)}={int(m.group(2)) + 3600}' if int(m.group(2)) < 3600 else m.group(0), head)
        if not re.search(r'\bpriority=', head):
            self.priority += 1
            head = f'priority={self.priority},' + head
        return head + acts


def run(*args):
    return subprocess.run(args, capture_output=True, text=True)


def last_line(text):
    """The last line of an error output, without terminal colours."""
    lines = re.sub(r'\x1b\[[0-9;]*m', '', text).strip().splitlines()
    return lines[-1] if lines else ''


def check(flow, target, weir, scratch):
    """None when weir matches ovs-ofctl for `flow`, else why not."""
    ovs = lambda *a: run('ovs-ofctl', '-O', 'OpenFlow15', *a)
    ovs('del-flows', target)
    r = ovs('add-flow', target, flow)
    if r.returncode != 0:
        return 'OVS limitation: ovs-ofctl refuses it: ' + last_line(r.stderr)
    want = ovs('dump-flows', '--no-stats', target).stdout
    mine = run(weir, 'ofctl', 'dump-flows', '--no-stats', target)
    if mine.stdout != want:
        return 'weir dump-flows: ' + (last_line(mine.stderr) if mine.returncode else 'prints ' + mine.stdout.strip())
    ovs('del-flows', target)
    scratch.write_text(flow + '\n')
    r = run(weir, 'ofctl', 'add-flows', '--bundle', target, str(scratch))
    if r.returncode != 0:
        return 'weir add-flows: ' + last_line(r.stderr)
    got = ovs('dump-flows', '--no-stats', target).stdout
    return None if got == want else 'weir installs ' + got.strip()


def main():
    tests, target, weir = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    scratch = Path('/tmp/parity-vector.flows')
    installable = Installable()
    passed, failed, last = [], [], None
    for src, flow in vectors(tests) + masked_flows() + extra_flows():
        flow = installable(flow)
        why = check(flow, target, weir, scratch)
        if why is not None and src in ('extra actions', 'set_field, load and move') and why.startswith('OVS limitation'):
            continue  # not OVS's vectors: a flow ovs-ofctl refuses is a mistake of the list
        if why is None:
            if src != last:
                passed.append('# ' + src)
                last = src
            passed.append(flow)
        else:
            failed.append(f'{flow}\t# {src}: {why}')
    corpus = HERE / 'parity.flows'
    text = corpus.read_text()
    head = text[: text.index(BEGIN)] if BEGIN in text else text + '\n'
    header = (HERE / 'parity_vectors.header').read_text()
    corpus.write_text(head + header + '\n'.join(passed) + '\n')
    unsupported = HERE / 'parity-unsupported.flows'
    keep = [line for line in unsupported.read_text().splitlines() if line.startswith('#')] if unsupported.exists() else []
    unsupported.write_text('\n'.join(keep + failed) + '\n')
    print(f'{sum(1 for p in passed if not p.startswith("#"))} in the corpus, {len(failed)} left out', file=sys.stderr)


if __name__ == '__main__':
    main()
