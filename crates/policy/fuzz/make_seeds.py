#!/usr/bin/env python3
"""Writes seed inputs for the `manifests` fuzz target from the repository's real manifests.

Input format (fuzz_targets/manifests.rs): file versions separated by lines that are exactly
`#~`; version i goes to file slot i % 3, an empty version deletes its file.

Seeds:
- deploy/examples/*.yaml as they are, and each after the testbed's cluster objects;
- the testbed's cluster objects (Namespaces, Nodes, Pods as `weir testbed` writes them into
  cluster.yaml, for the standard model of testbed/standard.yaml) as YAML, JSON and a List;
- every conformance case (conformance/netpol), its pods serving what upstream's serve: its
  steps as a history of edits
  (cluster.yaml in slot a, the step's policies in slot b, with the placeholders filled and the
  model updates applied), and its first step as one file;
- the faults of issue 13: a policy file truncated in place, binary bytes, an unknown kind.

Usage: make_seeds.py [OUT_DIR]   (default: corpus/manifests beside this script). Needs PyYAML.
"""
import copy
import glob
import ipaddress
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
SEP = "\n#~\n"

NODES = [("node-1", "10.244.1.0/24", "172.30.0.1"), ("node-2", "10.244.2.0/24", "172.30.0.2")]


def standard_model():
    with open(os.path.join(ROOT, "testbed", "standard.yaml")) as f:
        return yaml.safe_load(f)


def cluster_state(model, protocols=None):
    """Namespaces (name -> labels) and pods (key -> dict) of a model, spread over NODES; the
    pods serve the model's ports on `protocols` (default: the model's)."""
    namespaces = {ns: dict(labels or {}) for ns, labels in model["namespaces"].items()}
    pods = {}
    i = 0
    for ns in namespaces:
        for name, labels in model["pods"].items():
            node, cidr, _ = NODES[i % len(NODES)]
            net = ipaddress.ip_network(cidr)
            ip = str(net.network_address + 10 + i)
            ports = []
            for port in model.get("ports", [80]):
                for proto in protocols or model.get("protocols", ["TCP"]):
                    ports.append({"containerPort": port, "protocol": proto, "name": f"serve-{port}-{proto.lower()}"})
            pods[f"{ns}/{name}"] = {"ns": ns, "name": name, "labels": dict(labels or {}), "node": node, "ip": ip, "ports": ports}
            i += 1
    return namespaces, pods


def cluster_objects(namespaces, pods):
    out = []
    for name, labels in namespaces.items():
        labels = dict(labels)
        labels.setdefault("kubernetes.io/metadata.name", name)
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    for name, cidr, ip in NODES:
        out.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]},
        })
    for p in pods.values():
        out.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p["name"], "namespace": p["ns"], "labels": p["labels"]},
            "spec": {"nodeName": p["node"], "containers": [{"name": "serve", "image": "weir-testbed-serve", "ports": p["ports"]}]},
            "status": {"phase": "Running", "podIP": p["ip"], "podIPs": [{"ip": p["ip"]}]},
        })
    return out


def to_yaml(objects, header=None):
    text = f"# {header}\n" if header else ""
    for o in objects:
        text += "---\n" + yaml.safe_dump(o, sort_keys=False, default_flow_style=None, width=200)
    return text


def fill(value, pods):
    """Fills {{ip P}}, {{hostcidr P}}, {{cidr P N}} (crates/policy/src/conformance/placeholder.rs)."""
    def one(m):
        words = m.group(1).split()
        ip = ipaddress.ip_address(pods[words[1]]["ip"])
        if words[0] == "ip":
            return str(ip)
        if words[0] == "hostcidr":
            return f"{ip}/{32 if ip.version == 4 else 128}"
        return str(ipaddress.ip_network(f"{ip}/{words[2]}", strict=False))

    if isinstance(value, str):
        return re.sub(r"\{\{(.*?)\}\}", one, value)
    if isinstance(value, list):
        return [fill(v, pods) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, pods) for k, v in value.items()}
    return value


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "manifests")
    os.makedirs(out, exist_ok=True)
    seeds = {}
    namespaces, pods = cluster_state(standard_model())
    cluster = to_yaml(cluster_objects(namespaces, pods), "Written by `weir testbed`: the testbed's namespaces, nodes and pods.")
    seeds["cluster"] = cluster
    seeds["cluster-json"] = "\n---\n".join(json.dumps(o) for o in cluster_objects(namespaces, pods)) + "\n"
    seeds["cluster-list"] = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": cluster_objects(namespaces, pods)[:4]})

    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "examples", "*.yaml"))):
        name = os.path.basename(path)[:-5]
        with open(path) as f:
            text = f.read()
        seeds[f"example-{name}"] = text
        seeds[f"example-{name}-with-cluster"] = cluster + SEP + text

    first_policy = None
    for path in sorted(glob.glob(os.path.join(ROOT, "conformance", "netpol", "*.yaml"))):
        with open(path) as f:
            case = yaml.safe_load(f)
        name = os.path.basename(path)[:-5]
        # The pods serve what the upstream test's pods serve (keeps the seeds small).
        ns, ps = cluster_state(case.get("model") or standard_model(), (case.get("upstream") or {}).get("protocols"))
        versions = []
        for k, step in enumerate(case.get("steps", [])):
            updates = step.get("model_updates") or {}
            for n, u in (updates.get("namespaces") or {}).items():
                ns[n].update(u.get("add_labels") or {})
            for key, u in (updates.get("pods") or {}).items():
                ps[key]["labels"].update(u.get("add_labels") or {})
            policies = to_yaml(fill(step.get("policies") or [], ps))
            if first_policy is None and policies:
                first_policy = policies
            if k == 0:
                seeds[f"case-{name}"] = to_yaml(cluster_objects(ns, ps)) + policies
            versions += [to_yaml(cluster_objects(ns, ps)), policies, ""]
        if len(case.get("steps", [])) > 1:
            seeds[f"case-{name}-history"] = SEP.join(versions[:8])

    # Issue 13's file faults, as edits of a good policy file.
    cut = first_policy[: len(first_policy) * 2 // 3]
    seeds["fault-truncated-policy"] = SEP.join([cluster, first_policy, "", cluster, cut])
    seeds["fault-unknown-kind"] = SEP.join([cluster, first_policy, "", cluster, first_policy.replace("kind: NetworkPolicy", "kind: NetworkPolicyy")])
    binary = bytes(range(0x80, 0x100))
    for name, text in seeds.items():
        with open(os.path.join(out, f"seed-{name}"), "w") as f:
            f.write(text)
    with open(os.path.join(out, "seed-fault-binary-file"), "wb") as f:
        f.write(SEP.join([cluster, first_policy, "", cluster]).encode() + SEP.encode() + binary)
    print(f"{len(seeds) + 1} seeds in {out}")


if __name__ == "__main__":
    main()
