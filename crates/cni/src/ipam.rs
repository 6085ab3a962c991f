//! Pod addresses from the node's pod CIDR, persistent in a state directory.
//!
//! `<dataDir>/<network>/` holds one file per allocated address, named by the address, holding
//! the attachment it belongs to (JSON), plus `last_reserved` (allocation continues after it, so
//! a just-released address is not handed out again at once) and `lock`. Every read-modify-write
//! happens under an exclusive `flock(2)` on `lock`, so concurrent plugin processes never give
//! an address twice; files are replaced by rename, so a crash leaves old or new, never half.
//!
//! An ADD marks its allocation *pending* with its pid (and the pid's start time, against pid
//! reuse) until the port is attached. A pending allocation whose process is gone is the trace
//! of a crashed ADD; [`Locked::crashed`] lists them for cleanup.
use crate::config::Pool;
use crate::protocol::{Attachment, CniError, Code};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "lock";
const LAST_RESERVED: &str = "last_reserved";

/// The process running an ADD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Its pid.
    pub pid: i32,
    /// Its start time (`/proc/<pid>/stat` field 22), so a reused pid is not taken for it.
    pub start_time: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id() as i32;
        Owner { pid, start_time: start_time(pid).unwrap_or(0) }
    }

    /// Whether the process still runs.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// One allocated address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The address.
    #[serde(skip)]
    pub ip: Option<Ipv4Addr>,
    /// Whose it is.
    #[serde(flatten)]
    pub attachment: Attachment,
    /// The ADD still running (or crashed), if the attachment is not complete.
    #[serde(default)]
    pub pending: Option<Owner>,
}

impl Allocation {
    /// The address (always set on allocations read from the store).
    pub fn address(&self) -> Ipv4Addr {
        self.ip.expect("allocations from the store carry their address")
    }
}

/// The address store of one network.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    pool: Pool,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> CniError {
    CniError::new(Code::Io, "state directory failure", format!("{what} {}: {e}", path.display()))
}

impl Store {
    /// The store of network `name` under `data_dir`.
    pub fn new(data_dir: &Path, name: &str, pool: Pool) -> Store {
        Store { dir: data_dir.join(name), pool }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the lock (waits for other plugin processes).
    pub fn lock(&self) -> Result<Locked<'_>, CniError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", &self.dir, e))?;
        let path = self.dir.join(LOCK_FILE);
        let file =
            File::options().create(true).truncate(false).write(true).open(&path).map_err(|e| io("open", &path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io("lock", &path, e))?;
        Ok(Locked { store: self, _lock: lock })
    }
}

/// The store while this process holds its lock.
pub struct Locked<'a> {
    store: &'a Store,
    _lock: Flock<File>,
}

impl Locked<'_> {
    fn path(&self, ip: Ipv4Addr) -> PathBuf {
        self.store.dir.join(ip.to_string())
    }

    /// Every allocation, in address order.
    pub fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        let dir = &self.store.dir;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io("read", dir, e))? {
            let entry = entry.map_err(|e| io("read", dir, e))?;
            let Some(ip) = entry.file_name().to_str().and_then(|n| n.parse::<Ipv4Addr>().ok()) else { continue };
            let path = entry.path();
            let text = std::fs::read(&path).map_err(|e| io("read", &path, e))?;
            let mut a: Allocation = serde_json::from_slice(&text).map_err(|e| io("decode", &path, e))?;
            a.ip = Some(ip);
            out.push(a);
        }
        out.sort_by_key(Allocation::address);
        Ok(out)
    }

    /// The allocation of `attachment`, if any.
    pub fn find(&self, attachment: &Attachment) -> Result<Option<Allocation>, CniError> {
        Ok(self.allocations()?.into_iter().find(|a| a.attachment == *attachment))
    }

    /// Pending allocations whose ADD process is gone.
    pub fn crashed(&self) -> Result<Vec<Allocation>, CniError> {
        Ok(self.allocations()?.into_iter().filter(|a| a.pending.is_some_and(|o| !o.alive())).collect())
    }

    /// Addresses still free.
    pub fn free(&self) -> Result<usize, CniError> {
        let used = self.allocations()?.len();
        Ok(self.store.pool.hosts().count().saturating_sub(used))
    }

    /// An address for `attachment`, pending under `owner`: the one it already has (an ADD
    /// retried after a crash), else `requested` if given, else the first free one after the
    /// last reserved.
    pub fn allocate(
        &self,
        attachment: &Attachment,
        owner: Owner,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, CniError> {
        let all = self.allocations()?;
        let mine = all.iter().find(|a| a.attachment == *attachment).map(Allocation::address);
        if let Some(ip) = mine.filter(|ip| requested.is_none_or(|r| r == *ip)) {
            self.write(ip, attachment, Some(owner))?;
            return Ok(ip);
        }
        if let Some(ip) = requested {
            return self.allocate_requested(attachment, owner, ip, &all);
        }
        let used: std::collections::BTreeSet<Ipv4Addr> = all.iter().map(Allocation::address).collect();
        let hosts: Vec<Ipv4Addr> = self.store.pool.hosts().collect();
        let last = self.last_reserved();
        let start = last.and_then(|l| hosts.iter().position(|h| *h == l)).map_or(0, |i| i + 1);
        let ip = (0..hosts.len()).map(|k| hosts[(start + k) % hosts.len()]).find(|h| !used.contains(h)).ok_or_else(
            || {
                CniError::new(
                    Code::AddressesExhausted,
                    "no free pod address",
                    format!("ipam.subnet {}: all {} addresses are allocated", self.store.pool.subnet, hosts.len()),
                )
            },
        )?;
        self.write(ip, attachment, Some(owner))?;
        self.replace(&self.store.dir.join(LAST_RESERVED), ip.to_string().as_bytes())?;
        Ok(ip)
    }

    fn allocate_requested(
        &self,
        attachment: &Attachment,
        owner: Owner,
        ip: Ipv4Addr,
        all: &[Allocation],
    ) -> Result<Ipv4Addr, CniError> {
        let refuse = |why: String| {
            CniError::new(Code::InvalidEnvironment, "requested address unavailable", format!("CNI_ARGS: IP={ip} {why}"))
        };
        if !self.store.pool.hosts().any(|h| h == ip) {
            return Err(refuse(format!("is not a pod address of {}", self.store.pool.subnet)));
        }
        if let Some(other) = all.iter().find(|a| a.address() == ip) {
            return Err(refuse(format!("is allocated to {}", other.attachment)));
        }
        if let Some(old) = all.iter().find(|a| a.attachment == *attachment) {
            return Err(refuse(format!("but {attachment} already holds {}", old.address())));
        }
        self.write(ip, attachment, Some(owner))?;
        Ok(ip)
    }

    /// Marks the allocation of `attachment` complete (its ADD finished).
    pub fn complete(&self, ip: Ipv4Addr, attachment: &Attachment) -> Result<(), CniError> {
        self.write(ip, attachment, None)
    }

    /// Frees `ip` (absent already: nothing to do).
    pub fn release(&self, ip: Ipv4Addr) -> Result<(), CniError> {
        let path = self.path(ip);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path, e)),
            _ => Ok(()),
        }
    }

    fn last_reserved(&self) -> Option<Ipv4Addr> {
        std::fs::read_to_string(self.store.dir.join(LAST_RESERVED)).ok()?.trim().parse().ok()
    }

    fn write(&self, ip: Ipv4Addr, attachment: &Attachment, pending: Option<Owner>) -> Result<(), CniError> {
        let a = Allocation { ip: None, attachment: attachment.clone(), pending };
        let bytes = serde_json::to_vec(&a).expect("an allocation serialises");
        self.replace(&self.path(ip), &bytes)
    }

    /// Writes `path` through a temporary file and a rename, synced, so it is whole or absent.
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), CniError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = self.store.dir.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
        f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("rename into", path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ContainerId, IfName};

    fn att(id: &str) -> Attachment {
        Attachment {
            container_id: ContainerId::try_from(id.to_string()).unwrap(),
            ifname: IfName::try_from("eth0".to_string()).unwrap(),
        }
    }

    fn store(dir: &Path, subnet: &str) -> Store {
        let subnet: ipnetwork::Ipv4Network = subnet.parse().unwrap();
        let gateway = ovsdb::cni::pod_gateway(subnet.network());
        Store::new(dir, "net", Pool { subnet, gateway })
    }

    #[test]
    fn addresses_are_distinct_persistent_and_released() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), "10.0.0.0/29"); // hosts .2 .. .6 (gateway .1)
        let l = s.lock().unwrap();
        let ips: Vec<Ipv4Addr> = (0..5).map(|k| l.allocate(&att(&format!("c{k}")), Owner::me(), None).unwrap()).collect();
        assert_eq!(ips, (2..=6).map(|h| Ipv4Addr::new(10, 0, 0, h)).collect::<Vec<_>>());
        let err = l.allocate(&att("c5"), Owner::me(), None).unwrap_err();
        assert_eq!(err.code, Code::AddressesExhausted);
        assert!(err.details.starts_with("ipam.subnet"), "{err}");
        // The same attachment again keeps its address.
        assert_eq!(l.allocate(&att("c3"), Owner::me(), None).unwrap(), ips[3]);
        l.release(ips[1]).unwrap();
        l.release(ips[1]).unwrap();
        drop(l);
        // A new store on the same directory (a restarted plugin) sees the same allocations.
        let again = store(tmp.path(), "10.0.0.0/29");
        let l = again.lock().unwrap();
        assert_eq!(l.free().unwrap(), 1);
        assert_eq!(l.allocate(&att("c9"), Owner::me(), None).unwrap(), ips[1]);
        assert_eq!(l.find(&att("c9")).unwrap().unwrap().address(), ips[1]);
    }

    #[test]
    fn a_requested_address_is_given_only_if_free_and_in_the_pool() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), "10.0.0.0/24");
        let l = s.lock().unwrap();
        let want = Ipv4Addr::new(10, 0, 0, 42);
        assert_eq!(l.allocate(&att("a"), Owner::me(), Some(want)).unwrap(), want);
        assert_eq!(l.allocate(&att("a"), Owner::me(), Some(want)).unwrap(), want, "again for the same attachment");
        for (id, ip) in [("b", want), ("c", Ipv4Addr::new(10, 0, 0, 1)), ("d", Ipv4Addr::new(10, 0, 1, 5))] {
            let err = l.allocate(&att(id), Owner::me(), Some(ip)).unwrap_err();
            assert_eq!(err.code, Code::InvalidEnvironment, "{ip}");
            assert!(err.details.starts_with(&format!("CNI_ARGS: IP={ip}")), "{err}");
        }
    }

    #[test]
    fn allocation_continues_after_the_last_reserved() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), "10.0.0.0/24");
        let l = s.lock().unwrap();
        let a = l.allocate(&att("a"), Owner::me(), None).unwrap();
        l.release(a).unwrap();
        let b = l.allocate(&att("b"), Owner::me(), None).unwrap();
        assert_ne!(a, b, "a just-released address is not handed out again at once");
    }

    #[test]
    fn a_pending_allocation_of_a_dead_process_is_crashed() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), "10.0.0.0/24");
        let l = s.lock().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = Owner { pid: child.id() as i32, start_time: start_time(child.id() as i32).unwrap_or(1) };
        child.wait().unwrap();
        l.allocate(&att("gone"), dead, None).unwrap();
        let live = l.allocate(&att("running"), Owner::me(), None).unwrap();
        let done = l.allocate(&att("done"), Owner::me(), None).unwrap();
        l.complete(done, &att("done")).unwrap();
        let crashed = l.crashed().unwrap();
        assert_eq!(crashed.iter().map(|a| a.attachment.clone()).collect::<Vec<_>>(), vec![att("gone")]);
        assert!(l.find(&att("running")).unwrap().unwrap().pending.is_some_and(|o| o.alive()), "{live}");
    }
}
