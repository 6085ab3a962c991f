//! `weir trace`: why a packet is allowed or denied, by policy and rule.
//!
//! Without `--node` it asks the reference evaluator. With `--node` it also traces the packet
//! through the live switch of that node (`ofproto/trace`, with the connection taken as new),
//! prints the trace with table names and each `conj_id` named by its policy and rule, and
//! says whether the switch and the oracle agree.
use crate::compile_cmd::load_cluster;
use anyhow::{Context, bail};
use pipeline::Table;
use pipeline::topology::TUNNEL_MAC;
use policy::{Cluster, Packet, PodKey, Protocol, evaluate};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Directory of manifests (the agent's manifests directory on a live node).
    #[arg(long)]
    cluster: PathBuf,
    /// Trace on this node's switch (needs --ovs-ctl and --ovsdb).
    #[arg(long, requires_all = ["ovs_ctl", "ovsdb"])]
    node: Option<String>,
    /// The node's ovs-vswitchd control socket (e.g. <rundir>/ovs-vswitchd.ctl).
    #[arg(long)]
    ovs_ctl: Option<PathBuf>,
    /// The node's OVSDB (to find the pod's port by the CNI contract).
    #[arg(long)]
    ovsdb: Option<String>,
    /// The bridge.
    #[arg(long, default_value = "br-int")]
    bridge: String,
    /// Client pod (`namespace/name`).
    from: String,
    /// Server pod (`namespace/name`).
    to: String,
    /// `PORT[/PROTO]` (e.g. `80/TCP`; TCP by default) or a named port of the server (`web`, `dns/UDP`).
    port: String,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let cluster = load_cluster(&args.cluster)?;
    let (port, protocol) = crate::policy_cmd::port_protocol(&cluster, &args.to, &args.port)?;
    let from = pod_ip(&cluster, &args.from)?;
    let to = pod_ip(&cluster, &args.to)?;
    let rules = cluster.rules();
    let verdict = evaluate(&cluster, &rules, &Packet { src: from.into(), dst: to.into(), protocol, dst_port: port });
    println!("{} ({from}) -> {} ({to}) {port}/{protocol}", args.from, args.to);
    println!("oracle: {verdict}");
    for line in traffic_control_lines(&cluster, &args.from, &args.to) {
        println!("{line}");
    }
    let Some(node) = &args.node else { return Ok(()) };

    let flow = trace_flow(&cluster, node, &args, from, to, port, protocol).await?;
    let out = std::process::Command::new("ovs-appctl")
        .arg("-t")
        .arg(args.ovs_ctl.as_ref().expect("required by clap"))
        .args(["ofproto/trace", &args.bridge, &flow, "--ct-next", "trk,new"])
        .output()
        .context("running ovs-appctl")?;
    if !out.status.success() {
        bail!("ofproto/trace failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let trace = String::from_utf8_lossy(&out.stdout);
    let topo = pipeline::offline_topology(&cluster, node).with_context(|| format!("node {node:?} is not in the cluster"))?;
    // Rules with equal peers and services share a conjunction: name them all.
    let names: BTreeMap<u32, String> = pipeline::compile(&cluster, &topo)
        .rules
        .into_iter()
        .map(|(id, rules)| (id, rules.iter().map(|r| r.origin.to_string()).collect::<Vec<_>>().join(", ")))
        .collect();
    println!("switch ({node}): ofproto/trace {flow}");
    for line in trace.lines() {
        println!("{}", annotate(line, &names));
    }
    let switch_allows = delivered(&trace);
    println!(
        "switch: {}; oracle: {}; {}",
        if switch_allows { "allowed" } else { "denied" },
        if verdict.allowed { "allowed" } else { "denied" },
        if switch_allows == verdict.allowed { "they agree" } else { "THEY DISAGREE" }
    );
    if switch_allows != verdict.allowed {
        crate::compile_cmd::exit(DISAGREE_EXIT);
    }
    Ok(())
}

/// Whether a trace delivers the packet: its datapath actions do not end in a drop and the
/// pipeline output it to a port (a Reject rule's packet goes only to the agent, which answers
/// it: not delivered).
fn delivered(trace: &str) -> bool {
    let dropped = trace.lines().rfind(|l| l.starts_with("Datapath actions:")).is_some_and(|l| l.trim_end().ends_with("drop"));
    !dropped && trace.lines().any(|l| l.trim_start().starts_with("-> output port is"))
}

/// `weir trace`'s exit code when the switch and the oracle disagree (the trace is printed).
pub(crate) const DISAGREE_EXIT: u8 = 5;

/// What TrafficControl does to the packet, in the order the pipeline applies it: the client's
/// egress, then the server's ingress (a redirect ends the pass).
fn traffic_control_lines(cluster: &Cluster, from: &str, to: &str) -> Vec<String> {
    use pipeline::traffic_control::port_name;
    let plan = cluster.traffic_control_plan();
    let mut lines = Vec::new();
    let sides = [(from, "sends", true), (to, "receives", false)];
    for (pod, verb, egress) in sides {
        let Some(tc) = pod.parse::<PodKey>().ok().and_then(|k| plan.pods.get(&k).cloned()) else { continue };
        let (mirrors, redirect) =
            if egress { (tc.egress_mirrors, tc.egress_redirect) } else { (tc.ingress_mirrors, tc.ingress_redirect) };
        for (port, name) in mirrors {
            lines.push(format!("traffic control: what {pod} {verb} is mirrored to {} by TrafficControl {name}", port_name(&port)));
        }
        if let Some((port, ret, name)) = redirect {
            let back = ret.map_or("not returned".to_string(), |r| format!("returned on {}", port_name(&r)));
            lines.push(format!("traffic control: what {pod} {verb} is redirected to {} ({back}) by TrafficControl {name}", port_name(&port)));
            if egress {
                break; // the redirect ends the pass: the server's TrafficControl does not see it
            }
        }
    }
    lines
}

fn pod_ip(cluster: &Cluster, key: &str) -> anyhow::Result<std::net::Ipv4Addr> {
    let key: PodKey = key.parse().map_err(|_| anyhow::anyhow!("{key:?} is not namespace/name"))?;
    let pod = cluster.pod(&key).with_context(|| format!("no pod {key} in the cluster"))?;
    pod.ips
        .iter()
        .find_map(|ip| match ip {
            std::net::IpAddr::V4(v4) => Some(*v4),
            std::net::IpAddr::V6(_) => None,
        })
        .with_context(|| format!("pod {key} has no IPv4 address"))
}

/// The `ofproto/trace` flow of the packet's first SYN (or datagram) as it enters `node`'s
/// bridge: from the client's port when the client is local, else from the tunnel.
async fn trace_flow(
    cluster: &Cluster,
    node: &str,
    args: &Args,
    from: std::net::Ipv4Addr,
    to: std::net::Ipv4Addr,
    port: u16,
    protocol: Protocol,
) -> anyhow::Result<String> {
    let here = cluster.nodes.get(node).with_context(|| format!("no node {node:?} in the cluster"))?;
    let gateway = pipeline::compile::gateway_for(here).context("the node has no IPv4 pod CIDR")?;
    let client = cluster.pod(&args.from.parse().map_err(|_| anyhow::anyhow!("bad pod key"))?).expect("looked up above");
    let l4 = match protocol {
        Protocol::Tcp => format!("tcp,tp_src=40000,tp_dst={port},tcp_flags=0x002"),
        Protocol::Udp => format!("udp,tp_src=40000,tp_dst={port}"),
        Protocol::Sctp => format!("sctp,tp_src=40000,tp_dst={port}"),
    };
    let ip = format!("nw_src={from},nw_dst={to},nw_ttl=64");
    if client.node.as_deref() == Some(node) {
        let client_ovsdb = ovsdb::Client::connect(args.ovsdb.as_ref().expect("required by clap")).await?;
        let mut monitor = ovsdb::InterfaceMonitor::start(&client_ovsdb).await?;
        let set = monitor.next().await.context("the OVSDB connection closed")?;
        let iface = set
            .interfaces
            .values()
            .find(|i| i.external_ids.get("iface-id") == Some(&args.from))
            .with_context(|| format!("no port with external_ids:iface-id={} on this node", args.from))?;
        let mac = iface.external_ids.get("attached-mac").context("the pod's port has no attached-mac")?;
        Ok(format!(
            "in_port={},{l4},dl_src={mac},dl_dst={},{ip}",
            iface.name,
            pipeline::Topology::gateway_mac_for(gateway)
        ))
    } else {
        let there = client.node.as_ref().and_then(|n| cluster.nodes.get(n)).context("the client's node is unknown")?;
        let tun_src = there.internal_ips.first().context("the client's node has no InternalIP")?;
        let tun_dst = here.internal_ips.first().context("this node has no InternalIP")?;
        let their_gateway = pipeline::compile::gateway_for(there).context("the client's node has no pod CIDR")?;
        Ok(format!(
            "in_port={},tun_src={tun_src},tun_dst={tun_dst},{l4},dl_src={},dl_dst={TUNNEL_MAC},{ip}",
            agent::agent::TUNNEL_PORT,
            pipeline::Topology::gateway_mac_for(their_gateway)
        ))
    }
}

/// Names the table of a trace line (` 6. ...` → ` 6. EgressRule: ...`, `goto_table:6` →
/// `goto_table:EgressRule`) and the rule behind a `conj_id`.
fn annotate(line: &str, names: &BTreeMap<u32, String>) -> String {
    let mut out = line.to_string();
    let trimmed = line.trim_start();
    if let Some((num, rest)) = trimmed.split_once(". ")
        && let Some(t) = num.parse::<u8>().ok().and_then(Table::from_id)
    {
        let indent = &line[..line.len() - trimmed.len()];
        out = format!("{indent}{num}. {}: {rest}", t.name());
    }
    if let Some(pos) = out.find("goto_table:") {
        let digits: String = out[pos + 11..].chars().take_while(char::is_ascii_digit).collect();
        if let Some(t) = digits.parse().ok().and_then(Table::from_id) {
            out.replace_range(pos + 11..pos + 11 + digits.len(), t.name());
        }
    }
    if let Some(pos) = out.find("conj_id=") {
        let id: String = out[pos + 8..].chars().take_while(char::is_ascii_digit).collect();
        if let Some(rule) = id.parse().ok().and_then(|id: u32| names.get(&id)) {
            out.push_str(&format!("    <- {rule}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_get_table_and_rule_names() {
        let names = BTreeMap::from([(7u32, "NetworkPolicy x/p ingress[0]".to_string())]);
        let (egress, ingress) = (pipeline::Table::EgressRule.id(), pipeline::Table::IngressRule.id());
        let line = annotate(&format!(" {ingress}. conj_id=7, priority 200, cookie 0x1"), &names);
        assert_eq!(line, format!(" {ingress}. IngressRule: conj_id=7, priority 200, cookie 0x1    <- NetworkPolicy x/p ingress[0]"));
        assert_eq!(annotate(&format!("    goto_table:{egress}"), &names), "    goto_table:EgressRule");
        assert_eq!(annotate(&format!("    goto_table:{ingress}"), &names), "    goto_table:IngressRule");
    }

    #[test]
    fn a_packet_is_delivered_only_when_the_pipeline_outputs_it() {
        let output = "11. L2Forwarding: ...\n    output:NXM_NX_REG1[]\n     -> output port is 2\nDatapath actions: 2\n";
        let to_agent = "12. IngressAdmin: conj_id=9\n    controller(meter_id=1)\nDatapath actions: sample(sample=100.0%,actions(meter(0),userspace(pid=0,controller(reason=1))))\n";
        let dropped = "10. L3Forwarding: priority 0\n    drop\nDatapath actions: drop\n";
        assert!(delivered(output));
        assert!(!delivered(to_agent), "a Reject rule's packet goes to the agent only");
        assert!(!delivered(dropped));
    }
}
