//! Bringing a testbed up: plan every name and address, record the plan, then create what is
//! missing. Each step checks before it creates, so running `up` again on a running testbed
//! changes nothing and repairs what is missing.
use crate::command::run;
use crate::error::Error;
use crate::layout::{self, INT_BRIDGE, Layout, PHY_BRIDGE, UNDERLAY_BRIDGE};
use crate::manifests;
use crate::netns::Netns;
use crate::ovs::{OvsSwitch, wait_until};
use crate::process::{Launcher, spawn_in_netns};
use crate::state::{NodePolicy, NodeState, PodState, State, Tunnel};
use crate::testbed::{PODS_DIR, Testbed};
use policy::{ClusterModel, ContainerPort, Labels};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What `up` builds.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The model file (a `model:` block or a whole conformance case file).
    pub model: PathBuf,
    /// How many nodes.
    pub nodes: usize,
    /// The state directory.
    pub dir: PathBuf,
    /// Name prefix of every namespace and interface (at most 6 characters).
    pub prefix: String,
    /// Tunnel type the agents use.
    pub tunnel: Tunnel,
    /// How to start each node's agent; `None` runs the testbed without agents.
    pub agent: Option<Launcher>,
    /// How to start each pod's probe server.
    pub server: Launcher,
    /// Cluster mode: a real API server holds the objects and the agents read it (see
    /// [`crate::kube_source`]); otherwise each agent reads a manifests directory.
    pub kube: bool,
    /// Where the agents realize node policy (and so where a node's address lives).
    pub node_policy: NodePolicy,
}

/// How long a probe server may take to bind its sockets.
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Brings the testbed up (see the module doc); `progress` receives one line per step.
pub fn up(opts: &UpOptions, progress: &mut dyn FnMut(&str)) -> Result<Testbed, Error> {
    if opts.kube {
        // Before anything is made: a missing program is a clear error, not a half-built testbed.
        crate::kube::Binaries::find()?;
    }
    let plan = plan(opts)?;
    let mut state = match State::load(&opts.dir) {
        Ok(existing) => {
            if let Some(what) = difference(&existing, &plan) {
                return Err(Error::Conflict { dir: opts.dir.clone(), what });
            }
            progress(&format!("testbed in {} is already planned; checking every part", opts.dir.display()));
            existing
        }
        Err(Error::NotUp(_)) => {
            // Names are only ours if our state file records them: never adopt a namespace
            // another testbed (same prefix, other state directory) or someone else made.
            let names =
                plan.nodes.iter().map(|n| &n.netns).chain(plan.pods.iter().map(|p| &p.netns)).chain(plan.vms.iter().map(|v| &v.netns));
            if let Some(taken) = names.chain(plan.underlay_netns.as_ref()).find(|n| Netns::exists(n)) {
                return Err(Error::invalid(
                    "testbed",
                    "prefix",
                    format!(
                        "network namespace {taken} already exists but {} records no testbed; \
                         another testbed uses prefix {:?} (pick another with --prefix, or --dir of that testbed)",
                        opts.dir.display(),
                        opts.prefix
                    ),
                ));
            }
            let mut plan = plan;
            plan.created_dir = !opts.dir.exists();
            std::fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
            plan
        }
        Err(e) => return Err(e),
    };
    let pods_dir = state.dir.join(PODS_DIR);
    std::fs::create_dir_all(&pods_dir).map_err(|e| Error::io(&pods_dir, e))?;
    state.save()?;
    let layout = Layout::new(&state.prefix)?;

    for node in &state.nodes {
        progress(&format!("{}: netns {}, ovsdb-server + ovs-vswitchd in {}", node.name, node.netns, node.dir.display()));
        let netns = Netns::add(&node.netns)?.keep();
        OvsSwitch::start(&netns, &node.dir)?.keep();
    }
    progress(&format!("underlay: {} node(s) on 192.168.77.0/24", state.nodes.len()));
    underlay(&state, &layout)?;
    for node in &state.nodes {
        node_bridges(&state, node)?;
    }
    for vm in &state.vms {
        progress(&format!("VM {}: netns {}, {} {} on the underlay's {UNDERLAY_BRIDGE}", vm.key(), vm.netns, vm.interface, vm.ip));
        crate::external_hosts::attach(&state, vm)?;
    }
    // As in a cluster, the agents run before the pods arrive: the source is written first
    // (the agents need their Node), then pod ports appear on br-int one by one.
    if opts.kube || state.kube.is_some() {
        crate::kube_source::start_api(&mut state, progress)?;
        progress("API server: namespaces, nodes, CRDs and pods (bound to their nodes, not attached yet)");
        crate::kube_source::create_cluster(&state)?;
    } else {
        manifests::write_cluster(&state)?;
        manifests::write_token(&state, &manifests::new_token())?;
    }
    if state.agent_command.is_some() {
        for i in 0..state.nodes.len() {
            if !state.nodes[i].agent.is_some_and(|a| a.alive()) {
                progress(&format!("{}: starting the agent", state.nodes[i].name));
                crate::testbed::start_agent(&mut state, i)?;
            }
        }
        for i in 0..state.vms.len() {
            if !state.vms[i].agent.is_some_and(|a| a.alive()) {
                progress(&format!("VM {}: starting the agent (--external-node {})", state.vms[i].key(), state.vms[i].name));
                crate::external_hosts::start_agent(&mut state, i)?;
            }
        }
    }
    let plugin = crate::cni::plugin()?;
    for node in &state.nodes {
        let pods: Vec<&PodState> = state.pods.iter().filter(|p| p.node == node.name && !p.host_network).collect();
        progress(&format!("{}: {} pod(s) on {}", node.name, pods.len(), node.pod_cidr));
        for pod in &pods {
            attach_pod(&plugin, node, pod)?;
        }
    }
    if state.kube.is_some() {
        progress("API server: every pod's status.podIP, as kubelet writes it once the pod is attached");
        crate::kube_source::write_pod_status(&state, |_| true)?;
    }
    progress(&format!("probe servers: {} pod(s)", state.pods.len()));
    start_servers(&mut state)?;
    Ok(Testbed::from_state(state))
}

/// The full state the options describe, before anything exists.
fn plan(opts: &UpOptions) -> Result<State, Error> {
    let layout = Layout::new(&opts.prefix)?;
    if opts.nodes == 0 || opts.nodes > layout::MAX_NODES {
        return Err(Error::invalid("testbed", "nodes", format!("{} is not within 1..={}", opts.nodes, layout::MAX_NODES)));
    }
    let object = format!("model {}", opts.model.display());
    let model = crate::model::load(&opts.model)?;
    let mut model_pods = model.expand();
    let node_names: Vec<String> = (1..=opts.nodes).map(|i| layout.node_name(i)).collect();
    crate::model::place(&mut model_pods, &node_names, &object)?;

    // VMs plug into the underlay's own switch, which every realization of the nodes has.
    let switched = opts.nodes > 2 || !model.external_nodes.is_empty();
    let nodes: Vec<NodeState> = (1..=opts.nodes)
        .map(|i| NodeState {
            name: layout.node_name(i),
            index: i,
            netns: layout.node_netns(i),
            dir: opts.dir.join(layout.node_name(i)),
            underlay_ip: Layout::underlay_ip(i),
            underlay_mac: layout::mac_for(Layout::underlay_ip(i)),
            pod_cidr: format!("{}/{}", Layout::pod_network(i), Layout::POD_PREFIX_LEN),
            gateway: Layout::pod_gateway(i),
            uplink: (opts.nodes > 1 || switched).then(|| layout.uplink(i)),
            agent: None,
            labels: Labels::new(),
            server: None,
        })
        .collect();
    let (nodes, mut host_ports) = name_nodes(nodes, &model, &object)?;
    let vms = crate::external_hosts::plan(&model, &nodes, &layout, &opts.dir, &object)?;
    if !vms.is_empty() {
        // VMs are host endpoints too: they serve the host ports.
        host_ports = model.host_endpoint_ports();
    }
    let mut next_host: BTreeMap<String, usize> = BTreeMap::new();
    let mut pods = Vec::new();
    for p in model_pods {
        let node_name = p.node.clone().expect("place() gives every pod a node");
        let node = nodes.iter().find(|n| n.name == node_name).expect("place() checks node names");
        let (netns, ip, mac, interface) = if p.host_network {
            (node.netns.clone(), node.underlay_ip, node.underlay_mac.clone(), None)
        } else {
            let k = next_host.entry(node_name.clone()).or_default();
            let ip = Layout::pod_ip(node.index, *k).ok_or_else(|| {
                Error::invalid(&object, "pods", format!("more pods on {node_name} than its /24 pod CIDR holds"))
            })?;
            *k += 1;
            let netns = layout.pod_netns(&p.namespace, &p.name);
            let veth = crate::cni::host_interface(&netns);
            (netns, ip, layout::mac_for(ip), Some(veth))
        };
        pods.push(PodState {
            namespace: p.namespace,
            name: p.name,
            node: node_name,
            netns,
            ip,
            mac,
            interface,
            labels: p.labels,
            ports: p.ports,
            host_network: p.host_network,
            server: None,
        });
    }
    let model_file = std::fs::canonicalize(&opts.model).unwrap_or_else(|_| opts.model.clone());
    Ok(State {
        prefix: opts.prefix.clone(),
        dir: opts.dir.clone(),
        created_dir: false,
        tunnel: opts.tunnel,
        node_policy: opts.node_policy,
        agent_command: opts.agent.clone(),
        server_command: opts.server.clone(),
        model_file,
        underlay_netns: switched.then(|| layout.underlay_netns()),
        namespaces: model.namespaces.clone(),
        node_labels: model.nodes.map(|n| n.labels).unwrap_or_default(),
        host_ports,
        nodes,
        pods,
        vms,
        collector: None,
        firewalls: Vec::new(),
        kube: None,
    })
}

/// The nodes with the labels of a model that names them (then they are host endpoints, whose
/// hosts serve the model's host ports); a model naming other nodes than the testbed's is an
/// error.
fn name_nodes(mut nodes: Vec<NodeState>, model: &ClusterModel, object: &str) -> Result<(Vec<NodeState>, Vec<ContainerPort>), Error> {
    let named = model.named_nodes();
    if named.is_empty() {
        return Ok((nodes, Vec::new()));
    }
    let have: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    if !named.keys().map(String::as_str).eq(have.iter().copied()) {
        let want: Vec<&str> = named.keys().map(String::as_str).collect();
        let why = format!("names nodes {} but the testbed has {} (--nodes)", want.join(", "), have.join(", "));
        return Err(Error::invalid(object, "nodes.named", why));
    }
    for node in &mut nodes {
        node.labels = named[&node.name].clone();
    }
    Ok((nodes, model.host_endpoint_ports()))
}

/// What differs between a running testbed and a new plan (ignoring pids), if anything.
fn difference(existing: &State, plan: &State) -> Option<String> {
    let strip = |s: &State| {
        let mut s = s.clone();
        s.created_dir = false;
        s.nodes.iter_mut().for_each(|n| {
            n.agent = None;
            n.server = None;
        });
        s.pods.iter_mut().for_each(|p| p.server = None);
        s.vms.iter_mut().for_each(|v| {
            v.agent = None;
            v.server = None;
        });
        // Attached after `up` (collector, firewalls): not part of the plan.
        s.collector = None;
        s.firewalls.clear();
        s.kube = None;
        s
    };
    let (a, b) = (strip(existing), strip(plan));
    if a == b {
        return None;
    }
    Some(if a.prefix != b.prefix {
        format!("prefix ({} instead of {})", a.prefix, b.prefix)
    } else if a.nodes.len() != b.nodes.len() {
        format!("node count ({} instead of {})", a.nodes.len(), b.nodes.len())
    } else if a.tunnel != b.tunnel {
        format!("tunnel ({} instead of {})", a.tunnel.as_str(), b.tunnel.as_str())
    } else if a.pods != b.pods || a.namespaces != b.namespaces || a.nodes != b.nodes || a.host_ports != b.host_ports || a.vms != b.vms {
        format!("model ({} instead of {})", a.model_file.display(), b.model_file.display())
    } else {
        "agent or server command".to_string()
    })
}

fn link_exists(netns: &str, name: &str) -> bool {
    Netns::exists(netns) && run(Command::new("ip").args(["-n", netns, "link", "show", "dev", name])).is_ok()
}

/// Two nodes: one veth between them. More, or any VMs: a Linux bridge in the underlay netns
/// and a veth from each node to it. One node: nothing.
fn underlay(state: &State, layout: &Layout) -> Result<(), Error> {
    match (&state.underlay_netns, state.nodes.as_slice()) {
        (None, [] | [_]) => {}
        (None, [a, b]) => {
            let (ua, ub) = (layout.uplink(a.index), layout.uplink(b.index));
            if !link_exists(&a.netns, &ua) {
                run(Command::new("ip").args([
                    "link", "add", &ua, "netns", &a.netns, "type", "veth", "peer", "name", &ub, "netns", &b.netns,
                ]))?;
            }
        }
        (ul, nodes) => {
            let ul = ul.clone().unwrap_or_else(|| layout.underlay_netns());
            Netns::add(&ul)?.keep();
            if !link_exists(&ul, UNDERLAY_BRIDGE) {
                run(Command::new("ip").args(["-n", &ul, "link", "add", UNDERLAY_BRIDGE, "type", "bridge"]))?;
            }
            run(Command::new("ip").args(["-n", &ul, "link", "set", UNDERLAY_BRIDGE, "up"]))?;
            for node in nodes {
                let (up, peer) = (layout.uplink(node.index), layout.uplink_peer(node.index));
                if !link_exists(&node.netns, &up) {
                    run(Command::new("ip").args([
                        "link", "add", &up, "netns", &node.netns, "type", "veth", "peer", "name", &peer, "netns", &ul,
                    ]))?;
                }
                run(Command::new("ip").args(["-n", &ul, "link", "set", &peer, "master", UNDERLAY_BRIDGE, "up"]))?;
            }
        }
    }
    Ok(())
}

/// `br-phy` with the node IP on its LOCAL port and the uplink as its port (userspace native
/// tunnelling routes through it); `br-int` if the agent has not made it yet; tunnel neighbours
/// of every other node pre-seeded so the first tunnelled packet is not lost to ARP. With node
/// policy on OVS, no `br-phy`: the node IP on the uplink, which the agent moves onto `br-int`
/// (the tunnel then routes through the internal port that takes the uplink's place).
fn node_bridges(state: &State, node: &NodeState) -> Result<(), Error> {
    if state.node_policy == NodePolicy::Ovs {
        return uplink_on_int(state, node);
    }
    let sw = OvsSwitch::attach(&node.netns, &node.dir);
    let hwaddr = format!("other_config:hwaddr=\"{}\"", node.underlay_mac);
    let mut args = vec![
        "--", "--may-exist", "add-br", PHY_BRIDGE, "--", "set", "bridge", PHY_BRIDGE, "datapath_type=netdev",
        "fail_mode=standalone", &hwaddr,
    ];
    if let Some(uplink) = &node.uplink {
        args.extend(["--", "--may-exist", "add-port", PHY_BRIDGE, uplink]);
    }
    sw.vsctl(&args)?;
    let ip = |args: &[&str]| run(Command::new("ip").args(["-n", &node.netns]).args(args));
    if let Some(uplink) = &node.uplink {
        ip(&["link", "set", uplink, "up"])?;
    }
    let addr = format!("{}/{}", node.underlay_ip, Layout::UNDERLAY_PREFIX_LEN);
    ip(&["addr", "replace", &addr, "dev", PHY_BRIDGE])?;
    ip(&["link", "set", PHY_BRIDGE, "up"])?;
    if sw.vsctl(&["br-exists", INT_BRIDGE]).is_err() {
        // Secure from the start: until the agent programs it, br-int forwards nothing (a
        // standalone bridge would act as a learning switch).
        sw.vsctl(&["add-br", INT_BRIDGE, "--", "set", "bridge", INT_BRIDGE, "datapath_type=netdev", "fail_mode=secure"])?;
    }
    for other in state.nodes.iter().filter(|n| n.name != node.name) {
        sw.appctl(&["tnl/neigh/set", PHY_BRIDGE, &other.underlay_ip.to_string(), &other.underlay_mac])?;
    }
    Ok(())
}

/// [`node_bridges`] for node policy on OVS: the node's address, MAC and link on its uplink,
/// unless the agent has moved it already (the uplink is then `<uplink>~`, the internal port
/// that took its name has them).
fn uplink_on_int(state: &State, node: &NodeState) -> Result<(), Error> {
    let sw = OvsSwitch::attach(&node.netns, &node.dir);
    if sw.vsctl(&["br-exists", INT_BRIDGE]).is_err() {
        sw.vsctl(&["add-br", INT_BRIDGE, "--", "set", "bridge", INT_BRIDGE, "datapath_type=netdev", "fail_mode=secure"])?;
    }
    let ip = |args: &[&str]| run(Command::new("ip").args(["-n", &node.netns]).args(args));
    if let Some(uplink) = node.uplink.as_deref().filter(|u| !link_exists(&node.netns, &format!("{u}~"))) {
        let addr = format!("{}/{}", node.underlay_ip, Layout::UNDERLAY_PREFIX_LEN);
        ip(&["link", "set", uplink, "address", &node.underlay_mac])?;
        ip(&["addr", "replace", &addr, "dev", uplink])?;
        ip(&["link", "set", uplink, "up"])?;
    }
    for other in state.nodes.iter().filter(|n| n.name != node.name) {
        sw.appctl(&["tnl/neigh/set", INT_BRIDGE, &other.underlay_ip.to_string(), &other.underlay_mac])?;
    }
    Ok(())
}

/// The pod's netns, and its interface attached by `weir-cni` (ADD through the CNI protocol,
/// with the planned address). A pod whose node end exists is attached already; anything else
/// is first removed (DEL) so an interrupted attach starts over.
fn attach_pod(plugin: &Path, node: &NodeState, pod: &PodState) -> Result<(), Error> {
    let veth = pod.interface.as_deref().expect("only non-hostNetwork pods get an interface");
    Netns::add(&pod.netns)?.keep();
    if link_exists(&node.netns, veth) {
        return Ok(());
    }
    crate::cni::del(plugin, node, pod)?;
    crate::cni::add(plugin, node, pod)
}

/// The `--ports` argument of a probe server: `tcp:80,udp:80,sctp:80,...`.
pub fn server_ports(ports: &[ContainerPort]) -> String {
    ports.iter().map(|p| format!("{}:{}", p.protocol.as_str().to_ascii_lowercase(), p.port)).collect::<Vec<_>>().join(",")
}

/// Who runs a probe server: a pod, a node's host or a VM (the model's host ports).
#[derive(Clone, Copy)]
enum Server {
    Pod(usize),
    Host(usize),
    Vm(usize),
}

impl Server {
    fn record(self, state: &mut State) -> &mut Option<crate::process::ProcessRecord> {
        match self {
            Server::Pod(i) => &mut state.pods[i].server,
            Server::Host(i) => &mut state.nodes[i].server,
            Server::Vm(i) => &mut state.vms[i].server,
        }
    }

    /// Its namespace, ports and file name (without extension) in the pods directory.
    fn spec(self, state: &State) -> (String, Vec<ContainerPort>, String) {
        match self {
            Server::Pod(i) => {
                let pod = &state.pods[i];
                (pod.netns.clone(), pod.ports.clone(), format!("{}_{}", pod.namespace, pod.name))
            }
            Server::Host(i) => (state.nodes[i].netns.clone(), state.host_ports.clone(), format!("host_{}", state.nodes[i].name)),
            Server::Vm(i) => {
                let vm = &state.vms[i];
                (vm.netns.clone(), state.host_ports.clone(), format!("vm_{}_{}", vm.namespace, vm.name))
            }
        }
    }

    fn name(self, state: &State) -> String {
        match self {
            Server::Pod(i) => format!("pod {}", state.pods[i].key()),
            Server::Host(i) => format!("node {}'s host", state.nodes[i].name),
            Server::Vm(i) => format!("VM {}", state.vms[i].key()),
        }
    }
}

/// Starts a probe server in every pod (and, for a model naming its nodes, every node's host)
/// without a live one and waits until each has bound its sockets (it creates its ready file
/// then).
fn start_servers(state: &mut State) -> Result<(), Error> {
    let servers =
        (0..state.pods.len()).map(Server::Pod).chain((0..state.nodes.len()).map(Server::Host)).chain((0..state.vms.len()).map(Server::Vm));
    let mut started = Vec::new();
    for server in servers.collect::<Vec<_>>() {
        let (netns, ports, file) = server.spec(state);
        if server.record(state).is_some_and(|s| s.alive()) || ports.is_empty() {
            continue;
        }
        let ready = state.dir.join(PODS_DIR).join(format!("{file}.ready"));
        let _ = std::fs::remove_file(&ready);
        let log = state.dir.join(PODS_DIR).join(format!("{file}.log"));
        let args = vec!["--ports".to_string(), server_ports(&ports), "--ready-file".to_string(), ready.display().to_string()];
        let record = spawn_in_netns(&netns, &state.server_command, &args, &log)?;
        *server.record(state) = Some(record);
        state.save()?;
        started.push((server, ready, log));
    }
    for (server, ready, log) in started {
        let process = server.record(state).expect("just started");
        let ok = wait_until(SERVER_READY_TIMEOUT, || ready.exists() || !process.alive());
        if ok.is_err() || !ready.exists() {
            return Err(Error::Died { what: format!("the probe server of {}", server.name(state)), tail: crate::process::log_tail(&log, 10), log });
        }
    }
    Ok(())
}
