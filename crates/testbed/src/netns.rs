//! Named network namespaces (`ip netns`), deleted when dropped unless kept.
use crate::command::{CommandError, run};
use std::process::Command;

/// A named network namespace this process created.
#[derive(Debug)]
pub struct Netns {
    name: String,
    keep: bool,
}

impl Netns {
    /// Creates the namespace (or adopts it if it already exists), brings `lo` up, disables
    /// IPv6 and sets `arp_ignore=1` (the kernel sees frames on AF_PACKET ports too and must
    /// not answer ARP for addresses that live on another device).
    pub fn add(name: &str) -> Result<Self, CommandError> {
        if !Self::exists(name) {
            run(Command::new("ip").args(["netns", "add", name]))?;
        }
        let ns = Netns { name: name.to_string(), keep: false };
        run(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
        run(ns.command("sysctl").args([
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
            "net.ipv4.conf.all.arp_ignore=1",
        ]))?;
        Ok(ns)
    }

    /// Refers to an existing namespace without owning it (drop leaves it in place).
    pub fn existing(name: &str) -> Self {
        Netns { name: name.to_string(), keep: true }
    }

    /// Whether a namespace of that name exists.
    pub fn exists(name: &str) -> bool {
        std::path::Path::new("/run/netns").join(name).exists()
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Joins this namespace and `peer` with a veth pair: `name` here with address `addr`, and
    /// `peer_name` there with `peer_addr` (CIDR notation, e.g. `10.0.0.1/24`), both up.
    pub fn veth(&self, name: &str, addr: &str, peer: &Netns, peer_name: &str, peer_addr: &str) -> Result<(), CommandError> {
        run(Command::new("ip").args(["link", "add", name, "netns", &self.name, "type", "veth", "peer", "name", peer_name, "netns", &peer.name]))?;
        for (ns, dev, a) in [(self, name, addr), (peer, peer_name, peer_addr)] {
            run(Command::new("ip").args(["-n", &ns.name, "addr", "add", a, "dev", dev]))?;
            run(Command::new("ip").args(["-n", &ns.name, "link", "set", dev, "up"]))?;
        }
        Ok(())
    }

    /// Keeps the namespace after this value is dropped.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// Deletes the namespace now.
    pub fn delete(&mut self) -> Result<(), CommandError> {
        self.keep = true;
        if Self::exists(&self.name) {
            run(Command::new("ip").args(["netns", "del", &self.name]))?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.keep {
            let _ = self.delete();
        }
    }
}

/// Moves the calling thread (only it) into the named namespace. Sockets it creates from then
/// on belong to that namespace and keep it, whichever thread uses them later; so a probe
/// engine enters namespaces on dedicated threads, never on a shared pool's.
pub fn enter_on_this_thread(name: &str) -> std::io::Result<()> {
    let path = std::path::Path::new("/run/netns").join(name);
    let file = std::fs::File::open(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}
