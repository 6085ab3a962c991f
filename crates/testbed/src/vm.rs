//! A "VM" for ExternalNode tests: a network namespace with an `eth0` on an underlay, its
//! address from DHCP, a TCP service, and its own Open vSwitch (userspace datapath) for the
//! agent to move `eth0` onto.
//!
//! ```text
//!  <prefix>-net (the underlay)                     <prefix>-vm (the VM)
//!  ┌─────────────────────────────────────┐          ┌───────────────────────────────────────┐
//!  │ vm0 192.168.100.1/24 (router)       │──veth────│ eth0  DHCP 192.168.100.100-150, 2 min  │
//!  │ dnsmasq (DHCP only, bound to vm0)   │          │       + 192.168.101.5/24 permanent     │
//!  │ clients of the VM's service          │          │ dhclient, serve tcp:2222, OVS          │
//!  └─────────────────────────────────────┘          └───────────────────────────────────────┘
//! ```
//! `eth0` has an MTU of 1400 and, besides the DHCP default route, a static route in the main
//! table (metric 50, with a source address) and one in table 100, so a move that loses a
//! field, a table or a route shows.
//!
//! dhclient runs with the testbed's own script ([`DHCLIENT_SCRIPT`]), which applies a lease
//! as Debian's `dhclient-script` does but leaves `/etc/resolv.conf` and the hostname alone:
//! a namespace shares both with the machine. Every process is stopped by pid when the VM is
//! dropped, and both namespaces are deleted.
use crate::command::run;
use crate::error::Error;
use crate::netns::Netns;
use crate::ovs::{OvsSwitch, wait_until};
use crate::process::{Launcher, ProcessRecord, spawn_in_netns};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The VM's interface.
pub const VM_IFACE: &str = "eth0";
/// The underlay's end of the VM's link.
pub const UNDERLAY_IFACE: &str = "vm0";
/// The underlay's address (the VM's router and DHCP server).
pub const UNDERLAY_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 1);
/// The VM's static (permanent) second address, on its own subnet.
pub const STATIC_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 101, 5);
/// The VM's TCP service (an SSH-like port).
pub const SERVICE_PORT: u16 = 2222;
/// The VM's MTU.
pub const VM_MTU: u32 = 1400;
/// The DHCP lease time (dnsmasq's shortest).
pub const LEASE: Duration = Duration::from_secs(120);

/// dhclient's script: Debian's `dhclient-script` for addresses and routes, without
/// `resolv.conf` or the hostname; logs each reason and address to `$WEIR_DHCP_LOG`.
pub const DHCLIENT_SCRIPT: &str = r#"#!/bin/sh
echo "$reason $new_ip_address" >> "$(dirname "$0")/dhclient-events.log"
mask=${new_subnet_mask:+/$new_subnet_mask}
brd=${new_broadcast_address:+broadcast $new_broadcast_address}
case "$reason" in
  PREINIT) ip link set dev "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip -4 addr flush dev "$interface" label "$interface"
    fi
    if [ -z "$old_ip_address" ] || [ "$old_ip_address" != "$new_ip_address" ] || [ "$reason" = BOUND ] || [ "$reason" = REBOOT ]; then
      ip -4 addr add "$new_ip_address$mask" $brd valid_lft "$new_dhcp_lease_time" preferred_lft "$new_dhcp_lease_time" dev "$interface" label "$interface"
      for router in $new_routers; do ip -4 route add default via "$router" dev "$interface"; done
    else
      ip -4 addr change "$new_ip_address$mask" $brd valid_lft "$new_dhcp_lease_time" preferred_lft "$new_dhcp_lease_time" dev "$interface" label "$interface"
    fi
    ;;
  EXPIRE|FAIL|RELEASE|STOP)
    [ -n "$old_ip_address" ] && ip -4 addr flush dev "$interface" label "$interface"
    ;;
esac
exit 0
"#;

/// A running VM.
#[derive(Debug)]
pub struct Vm {
    /// The VM's switch (stopped first when dropped).
    pub ovs: OvsSwitch,
    /// The VM's namespace.
    pub netns: Netns,
    /// The underlay's namespace.
    pub underlay: Netns,
    dir: PathBuf,
    dnsmasq: ProcessRecord,
    server: ProcessRecord,
}

impl Vm {
    /// Starts a VM named `<prefix>-vm` on underlay `<prefix>-net`, with state under `dir`,
    /// and waits for its DHCP lease. `server` starts the TCP service (`weir testbed serve`).
    pub fn start(prefix: &str, dir: &Path, server: &Launcher) -> Result<Vm, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let underlay = Netns::add(&format!("{prefix}-net"))?;
        let netns = Netns::add(&format!("{prefix}-vm"))?;
        let (vm, ul) = (netns.name().to_string(), underlay.name().to_string());
        let ip = |ns: &str, args: &[&str]| run(Command::new("ip").args(["-n", ns]).args(args));
        ip(&ul, &["link", "add", UNDERLAY_IFACE, "type", "veth", "peer", "name", VM_IFACE, "netns", &vm])?;
        let mtu = VM_MTU.to_string();
        for (ns, dev) in [(&ul, UNDERLAY_IFACE), (&vm, VM_IFACE)] {
            ip(ns, &["link", "set", dev, "mtu", &mtu, "up"])?;
            // The userspace datapath passes frames as they are: no checksum left to offload.
            run(Command::new("ip").args(["netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"]))?;
        }
        ip(&ul, &["addr", "add", &format!("{UNDERLAY_IP}/24"), "dev", UNDERLAY_IFACE])?;
        ip(&ul, &["route", "add", &format!("{STATIC_IP}/32"), "dev", UNDERLAY_IFACE])?;
        let dnsmasq = start_dnsmasq(&ul, dir)?;
        let ovs = OvsSwitch::start(&netns, &dir.join("ovs"))?;
        let log = dir.join("serve.log");
        let ready = dir.join("serve.ready");
        let args = ["--ports".to_string(), format!("tcp:{SERVICE_PORT}"), "--ready-file".into(), ready.display().to_string()];
        let server = spawn_in_netns(&vm, server, &args, &log)?;
        let vm = Vm { ovs, netns, underlay, dir: dir.to_path_buf(), dnsmasq, server };
        wait_until(Duration::from_secs(10), || ready.exists()).map_err(|_| Error::Died {
            what: "the VM's TCP service".into(),
            log: log.clone(),
            tail: crate::process::log_tail(&log, 10),
        })?;
        std::fs::write(vm.script(), DHCLIENT_SCRIPT).map_err(|e| Error::io(vm.script(), e))?;
        std::fs::set_permissions(vm.script(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| Error::io(vm.script(), e))?;
        vm.dhclient()?;
        ip(vm.netns.name(), &["addr", "add", &format!("{STATIC_IP}/24"), "dev", VM_IFACE])?;
        let src = vm.dhcp_address()?.to_string();
        let main = ["route", "add", "10.20.0.0/16", "via", &UNDERLAY_IP.to_string(), "dev", VM_IFACE, "metric", "50", "src", &src];
        ip(vm.netns.name(), &main)?;
        ip(vm.netns.name(), &["route", "add", "10.30.0.0/16", "via", &UNDERLAY_IP.to_string(), "dev", VM_IFACE, "table", "100"])?;
        Ok(vm)
    }

    fn script(&self) -> PathBuf {
        self.dir.join("dhclient-script")
    }

    fn dhclient_pidfile(&self) -> PathBuf {
        self.dir.join("dhclient.pid")
    }

    /// Runs dhclient on `eth0` (whatever device has that name now) until it has a lease; it
    /// then stays in the background renewing it. Stops a dhclient this VM started before.
    pub fn dhclient(&self) -> Result<(), Error> {
        self.stop_dhclient();
        let (pf, lf) = (self.dhclient_pidfile(), self.dir.join("dhclient.leases"));
        let mut cmd = self.netns.command("dhclient");
        cmd.args(["-1", "-4", "-pf"]).arg(&pf).arg("-lf").arg(&lf).arg("-sf").arg(self.script()).arg(VM_IFACE);
        run(&mut cmd)?;
        Ok(())
    }

    /// The pid of the running dhclient.
    pub fn dhclient_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dhclient_pidfile()).ok()?.trim().parse().ok()?;
        crate::ovs::process_alive(pid).then_some(pid)
    }

    fn stop_dhclient(&self) {
        if let Some(pid) = self.dhclient_pid() {
            // SAFETY: kill(2) of the dhclient this VM started (its pidfile is the VM's own).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let _ = wait_until(Duration::from_secs(5), || !crate::ovs::process_alive(pid));
        }
    }

    /// What dhclient's script saw, one `REASON ADDRESS` line per call, oldest first.
    pub fn dhcp_events(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("dhclient-events.log")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// The VM's address from DHCP (the dynamic one on `eth0`).
    pub fn dhcp_address(&self) -> Result<Ipv4Addr, Error> {
        let state = self.interface(VM_IFACE)?;
        state
            .addresses
            .iter()
            .find(|a| a.get("dynamic").and_then(serde_json::Value::as_bool) == Some(true))
            .and_then(|a| a.get("local")?.as_str()?.parse().ok())
            .ok_or_else(|| Error::invalid(format!("VM {}", self.netns.name()), VM_IFACE, "has no DHCP address"))
    }

    /// The state of interface `name` in the VM, as `ip -j` shows it.
    pub fn interface(&self, name: &str) -> Result<InterfaceState, Error> {
        InterfaceState::read(self.netns.name(), name)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        self.netns.name()
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop_dhclient();
        self.server.stop(Duration::from_secs(2));
        self.dnsmasq.stop(Duration::from_secs(2));
        self.ovs.stop();
    }
}

/// dnsmasq as the underlay's DHCP server only (no DNS), bound to the VM's link.
fn start_dnsmasq(netns: &str, dir: &Path) -> Result<ProcessRecord, Error> {
    let range = "192.168.100.100,192.168.100.150,255.255.255.0,2m";
    let launcher = Launcher { program: PathBuf::from("dnsmasq"), args: vec![] };
    let args: Vec<String> = [
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--port=0",
        "--bind-interfaces",
        &format!("--interface={UNDERLAY_IFACE}"),
        "--except-interface=lo",
        &format!("--dhcp-range={range}"),
        &format!("--dhcp-option=option:router,{UNDERLAY_IP}"),
        &format!("--dhcp-leasefile={}", dir.join("dnsmasq.leases").display()),
        &format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
        "--dhcp-authoritative",
        "--log-dhcp",
        "--log-facility=-",
        "--user=root",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = dir.join("dnsmasq.log");
    let record = spawn_in_netns(netns, &launcher, &args, &log)?;
    std::thread::sleep(Duration::from_millis(200));
    if !record.alive() {
        return Err(Error::Died { what: format!("dnsmasq in {netns}"), tail: crate::process::log_tail(&log, 10), log });
    }
    Ok(record)
}

/// An interface as `ip -j` shows it: the link, its IPv4 addresses and the routes through it in
/// every table.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceState {
    /// Its name.
    pub name: String,
    /// Its MAC.
    pub mac: String,
    /// Its MTU.
    pub mtu: u64,
    /// Whether it is up (administratively).
    pub up: bool,
    /// `addr_info` entries of family `inet`.
    pub addresses: Vec<serde_json::Map<String, serde_json::Value>>,
    /// `ip -j route show table all dev NAME` entries.
    pub routes: Vec<serde_json::Value>,
}

impl InterfaceState {
    /// Reads interface `name` in namespace `netns`.
    pub fn read(netns: &str, name: &str) -> Result<InterfaceState, Error> {
        let json = |args: &[&str]| -> Result<serde_json::Value, Error> {
            let out = run(Command::new("ip").args(["-n", netns, "-j"]).args(args))?;
            serde_json::from_str(&out).map_err(|e| Error::invalid(format!("ip -j {}", args.join(" ")), "output", e.to_string()))
        };
        let link = json(&["addr", "show", "dev", name])?;
        let link = link.get(0).cloned().unwrap_or_default();
        let text = |k: &str| link.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let flags: Vec<&str> =
            link.get("flags").and_then(|f| f.as_array()).map_or(vec![], |f| f.iter().filter_map(|v| v.as_str()).collect());
        let addresses = link.get("addr_info").and_then(|a| a.as_array()).map_or(vec![], |a| {
            a.iter().filter_map(|v| v.as_object().cloned()).filter(|o| o.get("family").and_then(|f| f.as_str()) == Some("inet")).collect()
        });
        let mut routes = json(&["-4", "route", "show", "table", "all", "dev", name])?.as_array().cloned().unwrap_or_default();
        routes.sort_by_key(|r| r.to_string());
        Ok(InterfaceState {
            name: text("ifname"),
            mac: text("address"),
            mtu: link.get("mtu").and_then(|m| m.as_u64()).unwrap_or_default(),
            up: flags.contains(&"UP"),
            addresses,
            routes,
        })
    }

    /// The addresses without their lifetimes (which count down), for comparing.
    pub fn addresses_without_lifetimes(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.addresses
            .iter()
            .map(|a| {
                let mut a = a.clone();
                a.remove("valid_life_time");
                a.remove("preferred_life_time");
                a
            })
            .collect()
    }
}
