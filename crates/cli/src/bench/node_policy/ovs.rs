//! weir-OVS for the node-policy bench: the server's interface moved onto a `br-int` of an OVS
//! running in the server namespace, as `weir agent --node-policy ovs --external-interface eth0`
//! moves a node's uplink (the NIC becomes the uplink port `eth0~`, an internal port takes its
//! name, MAC and address), and the node's rules compiled by the agent's compiler
//! ([`pipeline::NodeCompiler`], the Node's port being the internal one) and installed in one
//! bundle. The move is made for each configuration and undone after it, so the other
//! realizations' traffic never crosses OVS; the 0-rule skeleton is the same bridge and
//! pipeline without rules.
use super::super::datapath::{in_netns, pipe, run_ok};
use super::{NODE, Realization, SERVER, Site, host_endpoint};
use agent::switch::Switch;
use openflow::{Flow, FlowMod, FlowModCommand, Mac};
use pipeline::{HostInterface, NodeCompiler, Topology};
use policy::rules::{PolicyRef, Rule, RuleSet};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The interface moved, as the agent names it: `IF`, its NIC `IF~`.
const IFACE: &str = "eth0";
const UPLINK: &str = "eth0~";
/// The server namespace's nftables table that keeps the NIC's packets for the bridge.
const NIC_TABLE: &str = "weir-bench-nic";

pub(crate) struct WeirOvs {
    /// The switch, running in the server namespace (started by `prepare`), and its directory.
    switch: Option<(testbed::OvsSwitch, PathBuf)>,
    /// The interface's MAC, kept by the internal port.
    mac: Option<Mac>,
    /// What each conj_id of the installed rules stands for.
    rules: BTreeMap<u32, Vec<pipeline::conjunction::RuleInfo>>,
}

impl WeirOvs {
    pub(crate) fn new() -> WeirOvs {
        WeirOvs { switch: None, mac: None, rules: BTreeMap::new() }
    }

    fn switch(&self) -> anyhow::Result<&testbed::OvsSwitch> {
        self.switch.as_ref().map(|(s, _)| s).ok_or_else(|| anyhow::anyhow!("weir-OVS: not prepared"))
    }

    /// The server's interface onto the bridge (the agent's move, see the module doc), with the
    /// client's transmit checksum offload off (OVS's userspace datapath takes no partial
    /// checksums from a veth, as the testbed's pods have it).
    fn move_onto_bridge(&self, site: &Site) -> anyhow::Result<()> {
        let mac = self.mac.ok_or_else(|| anyhow::anyhow!("weir-OVS: MAC unknown"))?;
        let ip = |args: &[&str]| testbed::run(site.server.command("ip").args(args));
        ip(&["link", "set", IFACE, "down"])?;
        ip(&["link", "set", IFACE, "name", UPLINK])?;
        // The address leaves the NIC, as the agent's move takes it off the uplink: left there,
        // its route wins and the host's replies leave by the NIC around the bridge, so the
        // userspace conntrack sees one direction only, fails its sequence checks and the
        // pipeline drops the client's packets as invalid.
        ip(&["addr", "flush", "dev", UPLINK])?;
        // The userspace datapath reads the NIC through a packet socket, which leaves the
        // kernel its own copy of every packet: the host would take each client packet twice,
        // once around the bridge (and its rules). The kernel datapath takes the NIC's packets
        // from the kernel; here its ingress hook drops the kernel's copies (packet sockets
        // see them before the hook).
        let nic_to_bridge_only = format!(
            "table netdev {NIC_TABLE} {{\n chain in {{\n  type filter hook ingress device \"{UPLINK}\" priority 0; policy drop;\n }}\n}}\n"
        );
        pipe(in_netns(site.server.name(), "nft").args(["-f", "-"]), &nic_to_bridge_only, "nft -f")?;
        ip(&["link", "set", UPLINK, "up"])?;
        let internal = format!("mac=\"{mac}\"");
        self.switch()?.vsctl(&[
            "add-port",
            "br-int",
            UPLINK,
            "--",
            "add-port",
            "br-int",
            IFACE,
            "--",
            "set",
            "interface",
            IFACE,
            "type=internal",
            &internal,
        ])?;
        testbed::ovs::wait_until(std::time::Duration::from_secs(10), || ip(&["link", "show", IFACE]).is_ok())
            .map_err(|_| anyhow::anyhow!("weir-OVS: the internal port {IFACE} did not appear"))?;
        ip(&["addr", "add", &format!("{SERVER}/24"), "dev", IFACE])?;
        ip(&["link", "set", IFACE, "up"])?;
        testbed::run(site.client.command("ethtool").args(["-K", "eth0", "tx", "off"]))?;
        Ok(())
    }

    /// The topology the agent has once the interface is moved: no pods, no tunnel, the moved
    /// interface the Node's.
    fn topology(&self) -> anyhow::Result<Topology> {
        let ofport = |name: &str| -> anyhow::Result<u32> {
            let out = self.switch()?.vsctl(&["get", "interface", name, "ofport"])?;
            out.trim().parse().map_err(|e| anyhow::anyhow!("ofport of {name}: {out:?}: {e}"))
        };
        let host = HostInterface {
            name: IFACE.into(),
            internal_ofport: ofport(IFACE)?,
            uplink_ofport: ofport(UPLINK)?,
            mac: self.mac.ok_or_else(|| anyhow::anyhow!("weir-OVS: MAC unknown"))?,
            ips: vec![SERVER],
            endpoint: Some(host_endpoint()),
        };
        let unspecified = std::net::Ipv4Addr::UNSPECIFIED;
        Ok(Topology {
            node: NODE.into(),
            gateway_ip: unspecified,
            gateway_mac: Topology::gateway_mac_for(unspecified),
            node_ips: vec![SERVER],
            tunnel_ofport: None,
            gateway_ofport: None,
            local_pods: BTreeMap::new(),
            remote_nodes: Vec::new(),
            ports: BTreeMap::new(),
            service_cidrs: Vec::new(),
            host_interfaces: vec![host],
            host_bypass: Vec::new(),
            node_policy: true,
            tunnel_udp_port: 6081,
        })
    }

    /// Replaces every flow of the bridge with `flows`, in one bundle.
    fn replace_flows(&self, flows: Vec<Flow>) -> anyhow::Result<()> {
        let target = format!("unix:{}", self.switch()?.mgmt_socket("br-int").display());
        let delete_all = FlowMod::new(FlowModCommand::Delete, Flow { table_id: 0xff, ..Flow::default() });
        let mods: Vec<FlowMod> = std::iter::once(delete_all).chain(flows.into_iter().map(FlowMod::add)).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let sw = Switch::connect(&target).await?;
            sw.bundle(&mods).await
        })?;
        Ok(())
    }
}

impl Drop for WeirOvs {
    /// Stops the switch (by pid), then removes its directory.
    fn drop(&mut self) {
        if let Some((sw, dir)) = self.switch.take() {
            drop(sw);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Realization for WeirOvs {
    fn name(&self) -> String {
        "weir-OVS".into()
    }

    fn prepare(&mut self, site: &Site) -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("weir-bench-node-ovs-{}", std::process::id()));
        let sw = testbed::OvsSwitch::start(&site.server, &dir)?;
        let pid_file = dir.join("ovs-vswitchd.pid");
        // Kept at once: whatever fails below, dropping the realization stops it and removes the
        // directory.
        self.switch = Some((sw, dir));
        let sw = self.switch()?;
        // The switch's threads on a core of their own, the measured exchanges on the other.
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > super::SWITCH_CPU {
            let pid = std::fs::read_to_string(&pid_file)?;
            testbed::run(std::process::Command::new("taskset").args(["-a", "-p", "-c", &super::SWITCH_CPU.to_string(), pid.trim()]))?;
        }
        sw.add_bridge("br-int")?;
        // Closed connections leave weir's conntrack zone within a second, as the kernel's do
        // for the other realizations (the site's sysctls): the client reuses its ports at once.
        let short = ["tcp_fin_wait=1", "tcp_time_wait=1", "tcp_close=1"];
        sw.vsctl(&[
            "--",
            "--id=@dp",
            "create",
            "Datapath",
            "datapath_version=0",
            "--",
            "set",
            "Open_vSwitch",
            ".",
            "datapaths:netdev=@dp",
        ])?;
        sw.vsctl(&[&["add-zone-tp", "netdev", &format!("zone={}", pipeline::reg::CT_ZONE)][..], &short].concat())?;
        let shown = testbed::run(site.server.command("cat").arg(format!("/sys/class/net/{IFACE}/address")))?;
        self.mac = Some(shown.trim().parse().map_err(|e| anyhow::anyhow!("MAC of {IFACE}: {shown:?}: {e:?}"))?);
        Ok(())
    }

    fn install(&mut self, site: &Site, rules: &RuleSet) -> anyhow::Result<()> {
        if testbed::run(site.server.command("ip").args(["link", "show", UPLINK])).is_err() {
            self.move_onto_bridge(site)?;
        }
        let mut tiered: BTreeMap<PolicyRef, Vec<Rule>> = BTreeMap::new();
        for rule in &rules.rules {
            tiered.entry(rule.origin.policy.clone()).or_default().push(rule.clone());
        }
        let compiler = NodeCompiler::with_tiered(&site.cluster, self.topology()?, tiered);
        self.rules = compiler.rules();
        self.replace_flows(compiler.flows().iter().cloned().collect())
    }

    /// Gives the interface back (the agent's `--restore`): both ports off the bridge, the NIC
    /// its name and address again, the client's checksum offload on.
    fn remove(&mut self, site: &Site) -> anyhow::Result<()> {
        if testbed::run(site.server.command("ip").args(["link", "show", UPLINK])).is_err() {
            return Ok(());
        }
        self.switch()?.vsctl(&["del-port", "br-int", IFACE, "--", "del-port", "br-int", UPLINK])?;
        let ip = |args: &[&str]| testbed::run(site.server.command("ip").args(args));
        testbed::ovs::wait_until(std::time::Duration::from_secs(10), || ip(&["link", "show", IFACE]).is_err())
            .map_err(|_| anyhow::anyhow!("weir-OVS: the internal port {IFACE} did not go"))?;
        run_ok(
            {
                let mut c = in_netns(site.server.name(), "nft");
                c.args(["delete", "table", "netdev", NIC_TABLE]);
                c
            },
            "nft delete table",
        )?;
        ip(&["link", "set", UPLINK, "down"])?;
        ip(&["link", "set", UPLINK, "name", IFACE])?;
        ip(&["addr", "replace", &format!("{SERVER}/24"), "dev", IFACE])?;
        ip(&["link", "set", IFACE, "up"])?;
        testbed::run(site.client.command("ethtool").args(["-K", "eth0", "tx", "on"]))?;
        Ok(())
    }

    /// The packets of the flow that decides `rule` (its conjunction's `conj_id` flow).
    fn matched(&mut self, _site: &Site, rule: &Rule) -> anyhow::Result<u64> {
        let id = self.rules.iter().find(|(_, infos)| infos.iter().any(|i| i.rule == rule.id)).map(|(id, _)| *id);
        let id = id.ok_or_else(|| anyhow::anyhow!("weir-OVS: rule {} has no conjunction", rule.id))?;
        let dump = self.switch()?.ofctl("dump-flows", "br-int", &[&format!("conj_id={id}")])?;
        Ok(packets_of(dump.lines()))
    }

    /// The packets of the pipeline's flows that drop `ct_state=+inv`.
    fn invalid_dropped(&mut self, _site: &Site) -> anyhow::Result<Option<u64>> {
        let dump = self.switch()?.ofctl("dump-flows", "br-int", &["ct_state=+inv+trk"])?;
        Ok(Some(packets_of(dump.lines().filter(|l| l.ends_with("actions=drop")))))
    }
}

/// The sum of the `n_packets` of flow dump lines.
fn packets_of<'a>(lines: impl Iterator<Item = &'a str>) -> u64 {
    lines.filter_map(|l| l.split("n_packets=").nth(1)?.split(',').next()?.parse::<u64>().ok()).sum()
}
