#!/usr/bin/env python3
"""Check the network-policy-api conformance cases in conformance/anp and conformance/cnp.

Usage: python3 conformance/check_cases.py [--no-eval] [SUITE_DIR ...]

For every file it checks the structure (required keys, upstream block, model, step numbering,
every probe's pods, ports and protocols, policy kinds and fields, placeholders), then, unless
--no-eval, replays every step with a small independent evaluator of the tiered semantics
(admin tier -> NetworkPolicy -> baseline tier -> allow) and reports any probe whose `expect`
it does not reproduce. The expectations in the files come from upstream's Go tests, not from
this evaluator: a disagreement means a transcription slip or a semantic question, never
something to "fix" by editing the expectation alone.

Prints tests, subtests, steps and probes per suite; exits 1 on any error.
Needs Python 3 and PyYAML only.
"""
import ipaddress
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SUITES = ('anp', 'cnp')
EXPECTED = {  # upstream size: tests, subtests (t.Run), probes (PokeServer calls)
    'anp': (24, 92, 289),
    'cnp': (24, 92, 301),
}
PROTOCOLS = ('TCP', 'UDP', 'SCTP')
PLACEHOLDER = re.compile(r'\{\{\s*(\w+)\s+([^}]*?)\s*\}\}')
TOP_KEYS = ('name', 'description', 'source', 'upstream', 'probe_semantics', 'sequential', 'model', 'steps')
TOP_OPTIONAL = ('notes',)
UPSTREAM_KEYS = ('repo', 'commit', 'path', 'manifests', 'features', 'profile')
STEP_KEYS = ('step', 'name', 'policies', 'probes')
STEP_OPTIONAL = ('changes', 'model_updates')
PROBE_KEYS = ('from', 'to', 'port', 'protocol', 'expect')
KINDS = {
    'anp': {('policy.networking.k8s.io/v1alpha1', 'AdminNetworkPolicy'),
            ('policy.networking.k8s.io/v1alpha1', 'BaselineAdminNetworkPolicy'),
            ('networking.k8s.io/v1', 'NetworkPolicy')},
    'cnp': {('policy.networking.k8s.io/v1alpha2', 'ClusterNetworkPolicy'),
            ('networking.k8s.io/v1', 'NetworkPolicy')},
}
ACTIONS = {
    'AdminNetworkPolicy': {'Allow', 'Deny', 'Pass'},
    'BaselineAdminNetworkPolicy': {'Allow', 'Deny'},
    'ClusterNetworkPolicy': {'Accept', 'Deny', 'Pass'},
}


class Errors:
    def __init__(self):
        self.items = []

    def add(self, where, msg):
        self.items.append('%s: %s' % (where, msg))


# ---------------------------------------------------------------- model

class Model:
    def __init__(self, m, where, err):
        self.ns_labels = {}
        self.pods = {}  # "ns/name" -> dict(labels, host, ports=[(port, proto, name)])
        self.node_labels = dict((m.get('nodes') or {}).get('labels') or {})
        hp = m.get('host_network_ports')
        if not (isinstance(hp, list) and len(hp) == 8 and all(isinstance(p, int) for p in hp)):
            err.add(where, 'model.host_network_ports must be 8 integers')
        for ns, labels in (m.get('namespaces') or {}).items():
            if not isinstance(labels, dict):
                err.add(where, 'model.namespaces.%s: labels must be a mapping' % ns)
                labels = {}
            if labels.get('kubernetes.io/metadata.name') != ns:
                err.add(where, 'namespace %s lacks kubernetes.io/metadata.name: %s' % (ns, ns))
            self.ns_labels[ns] = {str(k): str(v) for k, v in labels.items()}
        for p in m.get('pods') or []:
            for k in ('namespace', 'name', 'labels', 'ports'):
                if k not in p:
                    err.add(where, 'model pod %r lacks %s' % (p.get('name'), k))
            ns, name = p.get('namespace'), p.get('name')
            if ns not in self.ns_labels:
                err.add(where, 'model pod %s/%s: unknown namespace' % (ns, name))
            key = '%s/%s' % (ns, name)
            if key in self.pods:
                err.add(where, 'model pod %s listed twice' % key)
            ports = []
            for port in p.get('ports') or []:
                pn, proto = port.get('port'), port.get('protocol')
                if not (isinstance(pn, int) and 1 <= pn <= 65535) or proto not in PROTOCOLS:
                    err.add(where, 'model pod %s: bad port %r' % (key, port))
                ports.append((pn, proto, port.get('name')))
            self.pods[key] = dict(ns=ns, labels={str(k): str(v) for k, v in (p.get('labels') or {}).items()},
                                  host=bool(p.get('hostNetwork')), ports=ports)
        if not self.pods:
            err.add(where, 'model has no pods')

    def serves(self, pod, port, proto):
        return any(p == port and pr == proto for p, pr, _ in self.pods[pod]['ports'])

    def named(self, pod, name):
        return [(p, pr) for p, pr, n in self.pods[pod]['ports'] if n == name]


# ---------------------------------------------------------------- selectors

def sel_match(sel, labels):
    """LabelSelector semantics; None and {} select everything."""
    if not sel:
        return True
    for k, v in (sel.get('matchLabels') or {}).items():
        if labels.get(str(k)) != str(v):
            return False
    for e in sel.get('matchExpressions') or []:
        k, op, vals = e['key'], e['operator'], [str(v) for v in e.get('values') or []]
        if op == 'In' and labels.get(k) not in vals:
            return False
        if op == 'NotIn' and k in labels and labels[k] in vals:
            return False
        if op == 'Exists' and k not in labels:
            return False
        if op == 'DoesNotExist' and k in labels:
            return False
    return True


# ---------------------------------------------------------------- evaluator

class World:
    """Symbolic addresses: pod P has IP ip(P); every hostNetwork pod has its node's IP.
    The evaluator treats 0.0.0.0/0 and ::/0 as matching every address, {{hostcidr P}} and
    {{ip P}} as matching exactly P's IP (for a hostNetwork P: every hostNetwork pod, since
    nodes are not placed here), {{cidr P N}} as every pod IP (the suites assume all pod IPs share it)."""

    def __init__(self, model, ns_labels):
        self.m = model
        self.ns = ns_labels

    def pods_in(self, nssel, podsel=None):
        return {k for k, p in self.m.pods.items() if not p['host']
                and sel_match(nssel, self.ns[p['ns']]) and (podsel is None or sel_match(podsel, p['labels']))}

    def cidr_matches(self, cidr, pod):
        c = str(cidr).strip()
        m = PLACEHOLDER.fullmatch(c)
        if m:
            fn, arg = m.group(1), m.group(2).split()
            if fn in ('ip', 'hostcidr'):
                target = arg[0]
                if self.m.pods[target]['host'] and self.m.pods[pod]['host']:
                    return True
                return target == pod
            if fn == 'cidr':
                return not self.m.pods[pod]['host']
            raise ValueError('unknown placeholder ' + c)
        net = ipaddress.ip_network(c, strict=False)
        return net.prefixlen == 0

    # ---- ports
    def v1_ports_match(self, ports, dst, port, proto):
        if ports is None:
            return True
        for p in ports:
            if 'portNumber' in p:
                if p['portNumber']['port'] == port and p['portNumber'].get('protocol', 'TCP') == proto:
                    return True
            elif 'portRange' in p:
                r = p['portRange']
                if r.get('protocol', 'TCP') == proto and r['start'] <= port <= r['end']:
                    return True
            elif 'namedPort' in p:
                if (port, proto) in self.m.named(dst, p['namedPort']):
                    return True
        return False

    def v2_protocols_match(self, protos, dst, port, proto):
        if protos is None:
            return True
        for p in protos:
            if 'destinationNamedPort' in p:
                if (port, proto) in self.m.named(dst, p['destinationNamedPort']):
                    return True
                continue
            for pk, spec in p.items():
                if pk.upper() != proto:
                    continue
                dp = (spec or {}).get('destinationPort')
                if dp is None:
                    return True
                if 'number' in dp and dp['number'] == port:
                    return True
                if 'range' in dp and dp['range']['start'] <= port <= dp['range']['end']:
                    return True
        return False

    # ---- cluster-scoped policies
    def subjects(self, spec):
        s = spec.get('subject') or {}
        if 'namespaces' in s:
            return self.pods_in(s['namespaces'])
        if 'pods' in s:
            return self.pods_in(s['pods'].get('namespaceSelector'), s['pods'].get('podSelector'))
        return set()

    def peer_matches(self, peer, pod):
        p = self.m.pods[pod]
        if 'namespaces' in peer:
            return not p['host'] and sel_match(peer['namespaces'], self.ns[p['ns']])
        if 'pods' in peer:
            return (not p['host'] and sel_match(peer['pods'].get('namespaceSelector'), self.ns[p['ns']])
                    and sel_match(peer['pods'].get('podSelector'), p['labels']))
        if 'nodes' in peer:
            return p['host'] and sel_match(peer['nodes'], self.m.node_labels)
        if 'networks' in peer:
            return any(self.cidr_matches(c, pod) for c in peer['networks'])
        return False  # domainNames and unknown peers match nothing here

    def tier_decision(self, pols, direction, me, peer, dst, port, proto):
        """First matching rule over policies in priority order: 'allow'|'deny'|'pass'|None."""
        for pol in pols:
            spec = pol['spec']
            if me not in self.subjects(spec):
                continue
            for rule in spec.get(direction) or []:
                peers = rule.get('to' if direction == 'egress' else 'from') or []
                if not any(self.peer_matches(x, peer) for x in peers):
                    continue
                if pol['kind'] == 'ClusterNetworkPolicy':
                    ok = self.v2_protocols_match(rule.get('protocols'), dst, port, proto)
                else:
                    ok = self.v1_ports_match(rule.get('ports'), dst, port, proto)
                if ok:
                    return {'Allow': 'allow', 'Accept': 'allow', 'Deny': 'deny', 'Pass': 'pass'}[rule['action']]
        return None

    # ---- NetworkPolicy
    def np_peer_matches(self, pol, peer, pod):
        p = self.m.pods[pod]
        if 'ipBlock' in peer:
            ib = peer['ipBlock']
            if not self.cidr_matches(ib['cidr'], pod):
                return False
            return not any(self.cidr_matches(e, pod) for e in ib.get('except') or [])
        if p['host']:
            return False
        if 'namespaceSelector' in peer:
            if not sel_match(peer['namespaceSelector'], self.ns[p['ns']]):
                return False
        elif p['ns'] != pol['metadata']['namespace']:
            return False
        return sel_match(peer.get('podSelector'), p['labels'])

    def np_decision(self, nps, direction, me, peer, dst, port, proto):
        """'allow'|'deny' if some NetworkPolicy isolates `me` in that direction, else None."""
        p = self.m.pods[me]
        if p['host']:
            return None
        isolated = False
        for pol in nps:
            spec = pol['spec']
            if pol['metadata']['namespace'] != p['ns'] or not sel_match(spec.get('podSelector'), p['labels']):
                continue
            types = spec.get('policyTypes') or (['Ingress', 'Egress'] if 'egress' in spec else ['Ingress'])
            if direction.capitalize() not in types:
                continue
            isolated = True
            for rule in spec.get(direction) or []:
                peers = rule.get('to' if direction == 'egress' else 'from')
                if peers and not any(self.np_peer_matches(pol, x, peer) for x in peers):
                    continue
                ports = rule.get('ports')
                if not ports:
                    return 'allow'
                for pp in ports:
                    pr = pp.get('protocol', 'TCP')
                    if pr != proto:
                        continue
                    if 'port' not in pp:
                        return 'allow'
                    if isinstance(pp['port'], str):
                        if (port, proto) in self.m.named(dst, pp['port']):
                            return 'allow'
                    elif pp['port'] <= port <= pp.get('endPort', pp['port']):
                        return 'allow'
        return 'deny' if isolated else None

    def direction_allows(self, policies, direction, me, peer, dst, port, proto):
        if self.m.pods[me]['host']:
            return True  # hostNetwork pods are never subjects
        admin, baseline, nps = [], [], []
        for pol in policies:
            k = pol['kind']
            if k == 'AdminNetworkPolicy' or (k == 'ClusterNetworkPolicy' and pol['spec']['tier'] == 'Admin'):
                admin.append(pol)
            elif k == 'BaselineAdminNetworkPolicy' or (k == 'ClusterNetworkPolicy' and pol['spec']['tier'] == 'Baseline'):
                baseline.append(pol)
            else:
                nps.append(pol)
        admin.sort(key=lambda p: p['spec']['priority'])
        baseline.sort(key=lambda p: p['spec'].get('priority', 0))
        d = self.tier_decision(admin, direction, me, peer, dst, port, proto)
        if d in ('allow', 'deny'):
            return d == 'allow'
        d = self.np_decision(nps, direction, me, peer, dst, port, proto)
        if d is not None:
            return d == 'allow'
        d = self.tier_decision(baseline, direction, me, peer, dst, port, proto)
        return d != 'deny'

    def allowed(self, policies, src, dst, port, proto):
        return (self.direction_allows(policies, 'egress', src, dst, dst, port, proto)
                and self.direction_allows(policies, 'ingress', dst, src, dst, port, proto))


# ---------------------------------------------------------------- structure

def walk_strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from walk_strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk_strings(v)


def check_placeholders(obj, model, where, err):
    for s in walk_strings(obj):
        for m in PLACEHOLDER.finditer(s):
            fn, args = m.group(1), m.group(2).split()
            if fn in ('ip', 'hostcidr') and len(args) == 1 and args[0] in model.pods:
                continue
            if fn == 'cidr' and len(args) == 2 and args[0] in model.pods and args[1].isdigit():
                continue
            err.add(where, 'bad placeholder %r' % m.group(0))
        if '{{' in PLACEHOLDER.sub('', s):
            err.add(where, 'unrecognised template text %r' % s)


def check_rules(pol, where, err):
    kind = pol['kind']
    spec = pol.get('spec') or {}
    if kind == 'NetworkPolicy':
        if 'namespace' not in pol.get('metadata', {}):
            err.add(where, 'NetworkPolicy without metadata.namespace')
        return
    if kind == 'ClusterNetworkPolicy':
        if spec.get('tier') not in ('Admin', 'Baseline'):
            err.add(where, 'tier must be Admin or Baseline')
    if kind != 'BaselineAdminNetworkPolicy':
        pr = spec.get('priority')
        if not (isinstance(pr, int) and 0 <= pr <= 1000):
            err.add(where, 'priority must be an integer 0..1000')
    elif pol['metadata'].get('name') != 'default':
        err.add(where, 'BaselineAdminNetworkPolicy must be named default')
    subj = spec.get('subject') or {}
    if len([k for k in ('namespaces', 'pods') if k in subj]) != 1:
        err.add(where, 'subject must have exactly one of namespaces, pods')
    for direction, peerkey in (('ingress', 'from'), ('egress', 'to')):
        rules = spec.get(direction) or []
        if len(rules) > 100:
            err.add(where, 'too many %s rules' % direction)
        for i, r in enumerate(rules):
            w = '%s %s[%d]' % (where, direction, i)
            if not r.get('name'):
                err.add(w, 'rule without name')
            if r.get('action') not in ACTIONS[kind]:
                err.add(w, 'bad action %r for %s' % (r.get('action'), kind))
            peers = r.get(peerkey)
            if not peers:
                err.add(w, 'rule without %s peers' % peerkey)
            allowed = {'namespaces', 'pods'} | ({'nodes', 'networks', 'domainNames'} if direction == 'egress' else set())
            for peer in peers or []:
                if len(peer) != 1 or not set(peer) <= allowed:
                    err.add(w, 'bad peer %r' % (peer,))
            if kind == 'ClusterNetworkPolicy':
                if 'ports' in r:
                    err.add(w, 'v1alpha2 rule uses ports (must be protocols)')
                for p in r.get('protocols') or []:
                    ok = (len(p) == 1 and ('destinationNamedPort' in p or set(p) <= {'tcp', 'udp', 'sctp'}))
                    if ok and 'destinationNamedPort' not in p:
                        dp = (list(p.values())[0] or {}).get('destinationPort')
                        ok = dp is None or (len(dp) == 1 and ('number' in dp or 'range' in dp))
                    if not ok:
                        err.add(w, 'bad protocols entry %r' % (p,))
            else:
                if 'protocols' in r:
                    err.add(w, 'v1alpha1 rule uses protocols (must be ports)')
                for p in r.get('ports') or []:
                    if len(p) != 1 or not set(p) <= {'portNumber', 'portRange', 'namedPort'}:
                        err.add(w, 'bad ports entry %r' % (p,))
                    elif 'portNumber' in p and p['portNumber'].get('protocol') not in PROTOCOLS:
                        err.add(w, 'bad portNumber protocol %r' % (p,))
                    elif 'portRange' in p and p['portRange'].get('protocol') not in PROTOCOLS:
                        err.add(w, 'bad portRange protocol %r' % (p,))


def check_file(suite, path, err, do_eval, stats):
    fname = os.path.basename(path)
    where = '%s/%s' % (suite, fname)
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        err.add(where, 'YAML error: %s' % e)
        return None
    if not isinstance(doc, dict):
        err.add(where, 'not a mapping')
        return None
    for k in TOP_KEYS:
        if k not in doc:
            err.add(where, 'missing key %s' % k)
    for k in doc:
        if k not in TOP_KEYS + TOP_OPTIONAL:
            err.add(where, 'unknown key %s' % k)
    if 'steps' not in doc or 'model' not in doc:
        return None
    up = doc.get('upstream') or {}
    for k in UPSTREAM_KEYS:
        if k not in up:
            err.add(where, 'upstream lacks %s' % k)
    if up.get('repo') != 'kubernetes-sigs/network-policy-api':
        err.add(where, 'upstream.repo must be kubernetes-sigs/network-policy-api')
    if not re.fullmatch(r'[0-9a-f]{40}', str(up.get('commit', ''))):
        err.add(where, 'upstream.commit must be a full commit id')
    if not str(up.get('path', '')).startswith('conformance/tests/'):
        err.add(where, 'upstream.path must be a conformance/tests/ file')
    if up.get('profile') not in ('standard', 'experimental'):
        err.add(where, 'upstream.profile must be standard or experimental')
    if doc.get('sequential') is not True:
        err.add(where, 'sequential must be true')
    model = Model(doc['model'], where, err)
    ns_labels = {k: dict(v) for k, v in model.ns_labels.items()}
    steps = doc['steps'] or []
    if not steps:
        err.add(where, 'no steps')
    subtests = 0
    prev_name = None
    nprobes = 0
    disagree = 0
    evaluated = 0
    for i, st in enumerate(steps, 1):
        w = '%s step %s' % (where, st.get('step'))
        for k in STEP_KEYS:
            if k not in st:
                err.add(w, 'missing %s' % k)
        for k in st:
            if k not in STEP_KEYS + STEP_OPTIONAL:
                err.add(w, 'unknown key %s' % k)
        if st.get('step') != i:
            err.add(w, 'steps must be numbered 1..n in order (expected %d)' % i)
        name = st.get('name')
        if not isinstance(name, str) or not name:
            err.add(w, 'step name must be a non-empty string')
        if name == prev_name:
            if not (st.get('changes') or st.get('model_updates')):
                err.add(w, 'a repeated step name (a split subtest) needs changes or model_updates')
        else:
            subtests += 1
        prev_name = name
        ch = st.get('changes')
        if ch is not None and not (isinstance(ch, list) and all(isinstance(c, str) for c in ch)):
            err.add(w, 'changes must be a list of strings')
        mu = st.get('model_updates') or {}
        for k in mu:
            if k not in ('namespaces', 'pods'):
                err.add(w, 'model_updates: unknown key %s' % k)
        for ns, upd in (mu.get('namespaces') or {}).items():
            if ns not in ns_labels:
                err.add(w, 'model_updates: unknown namespace %s' % ns)
                continue
            ns_labels[ns].update({str(k): str(v) for k, v in (upd.get('add_labels') or {}).items()})
        for pod, upd in (mu.get('pods') or {}).items():
            if pod not in model.pods:
                err.add(w, 'model_updates: unknown pod %s' % pod)
                continue
            model.pods[pod]['labels'].update({str(k): str(v) for k, v in (upd.get('add_labels') or {}).items()})
        pols = st.get('policies')
        if not isinstance(pols, list):
            err.add(w, 'policies must be a list')
            pols = []
        seen = set()
        for pol in pols:
            pk = (pol.get('apiVersion'), pol.get('kind'))
            pw = '%s %s/%s' % (w, pol.get('kind'), (pol.get('metadata') or {}).get('name'))
            if pk not in KINDS[suite]:
                err.add(pw, 'kind %s %s not allowed in %s/' % (pk[0], pk[1], suite))
                continue
            ident = (pol['kind'], pol['metadata'].get('namespace'), pol['metadata'].get('name'))
            if ident in seen:
                err.add(pw, 'duplicate object')
            seen.add(ident)
            check_rules(pol, pw, err)
            check_placeholders(pol, model, pw, err)
        probes = st.get('probes')
        if not isinstance(probes, list) or not probes:
            err.add(w, 'probes must be a non-empty list')
            probes = []
        world = World(model, ns_labels)
        for j, pr in enumerate(probes):
            pw = '%s probe %d' % (w, j + 1)
            if set(pr) != set(PROBE_KEYS):
                err.add(pw, 'probe keys must be exactly %s' % (PROBE_KEYS,))
                continue
            nprobes += 1
            src, dst, port, proto, exp = (pr[k] for k in PROBE_KEYS)
            bad = False
            for p in (src, dst):
                if p not in model.pods:
                    err.add(pw, 'pod %s not in model' % p)
                    bad = True
            if not (isinstance(port, int) and 1 <= port <= 65535):
                err.add(pw, 'bad port %r' % port)
                bad = True
            if proto not in PROTOCOLS:
                err.add(pw, 'bad protocol %r' % proto)
                bad = True
            if exp not in ('allow', 'deny'):
                err.add(pw, 'expect must be allow or deny')
                bad = True
            if bad:
                continue
            if src == dst:
                err.add(pw, 'probe from a pod to itself')
            if model.pods[src]['host']:
                err.add(pw, 'client %s is a hostNetwork pod' % src)
            if not model.serves(dst, port, proto):
                err.add(pw, '%s does not serve %d/%s' % (dst, port, proto))
                continue
            if do_eval:
                try:
                    got = 'allow' if world.allowed(pols, src, dst, port, proto) else 'deny'
                except (KeyError, ValueError, TypeError) as e:
                    err.add(pw, 'evaluator could not evaluate: %r' % (e,))
                    continue
                evaluated += 1
                if got != exp:
                    disagree += 1
                    err.add(pw, 'expect %s but the evaluator derives %s (%s -> %s %d/%s)' % (exp, got, src, dst, port, proto))
    stats['tests'] += 1
    stats['subtests'] += subtests
    stats['steps'] += len(steps)
    stats['probes'] += nprobes
    stats['disagree'] += disagree
    stats['evaluated'] += evaluated
    stats['profiles'][up.get('profile')] = stats['profiles'].get(up.get('profile'), 0) + 1
    return doc


def check_suite(suite, d, err, do_eval):
    stats = dict(tests=0, subtests=0, steps=0, probes=0, disagree=0, evaluated=0, profiles={})
    files = sorted(f for f in os.listdir(d) if f.endswith('.yaml'))
    names = set()
    for n, f in enumerate(files, 1):
        m = re.match(r'(\d{3})-[a-z0-9-]+\.yaml$', f)
        if not m:
            err.add('%s/%s' % (suite, f), 'file name must be NNN-slug.yaml')
        elif int(m.group(1)) != n:
            err.add('%s/%s' % (suite, f), 'file numbers must run 001..%03d without gaps (expected %03d)' % (len(files), n))
        doc = check_file(suite, os.path.join(d, f), err, do_eval, stats)
        if doc:
            if doc.get('name') in names:
                err.add('%s/%s' % (suite, f), 'duplicate test name %s' % doc.get('name'))
            names.add(doc.get('name'))
    return stats


def main(argv):
    do_eval = '--no-eval' not in argv
    dirs = [a for a in argv if not a.startswith('--')] or [os.path.join(HERE, s) for s in SUITES]
    err = Errors()
    rows = []
    for d in dirs:
        suite = os.path.basename(os.path.normpath(d))
        if suite not in KINDS:
            print('unknown suite directory %s (expected anp or cnp)' % d)
            return 2
        st = check_suite(suite, d, err, do_eval)
        rows.append((suite, st))
    print('%-5s %6s %9s %6s %7s  %s' % ('suite', 'tests', 'subtests', 'steps', 'probes', 'profiles'))
    for suite, st in rows:
        print('%-5s %6d %9d %6d %7d  %s' % (suite, st['tests'], st['subtests'], st['steps'], st['probes'],
                                          ', '.join('%s %d' % kv for kv in sorted(st['profiles'].items()))))
        exp = EXPECTED.get(suite)
        if exp and (st['tests'], st['subtests'], st['probes']) != exp:
            err.add(suite, 'upstream has %d tests, %d subtests, %d probes; found %d, %d, %d'
                    % (exp + (st['tests'], st['subtests'], st['probes'])))
    if do_eval:
        total = sum(st['probes'] for _, st in rows)
        done = sum(st['evaluated'] for _, st in rows)
        bad = sum(st['disagree'] for _, st in rows)
        print('evaluator: %d of %d probes re-derived, %d disagree with the file' % (done, total, bad))
    for e in err.items:
        print('ERROR ' + e)
    print('%d errors' % len(err.items))
    return 1 if err.items else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
