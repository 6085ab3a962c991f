//! One Open vSwitch instance (`ovsdb-server` + userspace `ovs-vswitchd`) running inside a
//! network namespace, with every socket, pidfile, log and database under one state directory.
//!
//! Every tool call names its socket explicitly, so no other OVS on the machine is touched.
use crate::command::{CommandError, run};
use crate::netns::Netns;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running OVS instance. Stopped (by pid) when dropped unless [`OvsSwitch::keep`] was called.
#[derive(Debug)]
pub struct OvsSwitch {
    netns: String,
    dir: PathBuf,
    keep: bool,
}

const DAEMONS: [&str; 2] = ["ovs-vswitchd", "ovsdb-server"];

impl OvsSwitch {
    /// Starts ovsdb-server and ovs-vswitchd inside `netns`, with state under `dir`. If both
    /// daemons already run there (their pidfiles name live processes), adopts them.
    pub fn start(netns: &Netns, dir: &Path) -> Result<Self, CommandError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create state dir", dir, e))?;
        let sw = OvsSwitch { netns: netns.name().to_string(), dir: dir.to_path_buf(), keep: false };
        if DAEMONS.iter().all(|d| sw.pid(d).is_some()) {
            return Ok(sw);
        }
        let db = dir.join("conf.db");
        if !db.exists() {
            run(Command::new("ovsdb-tool").arg("create").arg(&db))?;
        }
        let d = dir.display();
        if sw.pid("ovsdb-server").is_none() {
            run(sw.in_netns("ovsdb-server").args([
                db.to_str().unwrap(),
                &format!("--remote=punix:{d}/db.sock"),
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                &format!("--pidfile={d}/ovsdb-server.pid"),
                &format!("--unixctl={d}/ovsdb-server.ctl"),
                &format!("--log-file={d}/ovsdb-server.log"),
                "-vconsole:off",
                "--detach",
                "--no-chdir",
            ]))?;
            // `init`, and the version as `ovs-ctl start` records it.
            let version = run(Command::new("ovs-vswitchd").arg("--version"))?;
            let version = version.lines().next().and_then(|l| l.split_whitespace().last()).unwrap_or_default();
            run(Command::new("ovs-vsctl").arg(format!("--db=unix:{d}/db.sock")).args([
                "--no-wait",
                "init",
                "--",
                "set",
                "Open_vSwitch",
                ".",
                &format!("ovs_version={version:?}"),
            ]))?;
        }
        if sw.pid("ovs-vswitchd").is_none() {
            run(sw.in_netns("ovs-vswitchd").args([
                &format!("unix:{d}/db.sock"),
                &format!("--pidfile={d}/ovs-vswitchd.pid"),
                &format!("--unixctl={d}/ovs-vswitchd.ctl"),
                &format!("--log-file={d}/ovs-vswitchd.log"),
                "-vconsole:off",
                "--detach",
                "--no-chdir",
            ]))?;
        }
        Ok(sw)
    }

    /// Refers to the daemons of an instance already started in `netns` with state under `dir`,
    /// without starting anything; dropping it leaves them running (call [`OvsSwitch::stop`]).
    pub fn attach(netns: &str, dir: &Path) -> Self {
        OvsSwitch { netns: netns.to_string(), dir: dir.to_path_buf(), keep: true }
    }

    fn in_netns(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns, "env"]);
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            c.arg(format!("{var}={}", self.dir.display()));
        }
        c.arg(program);
        c
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace the daemons run in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// `unix:` path of the database socket.
    pub fn db_socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// The OpenFlow management socket of `bridge` (created by ovs-vswitchd in its rundir).
    pub fn mgmt_socket(&self, bridge: &str) -> PathBuf {
        self.dir.join(format!("{bridge}.mgmt"))
    }

    /// The pid of a daemon of this instance, if its pidfile names a live process.
    pub fn pid(&self, daemon: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join(format!("{daemon}.pid"))).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    /// Runs `ovs-vsctl` against this instance's database.
    pub fn vsctl(&self, args: &[&str]) -> Result<String, CommandError> {
        run(Command::new("ovs-vsctl").arg(format!("--db=unix:{}", self.db_socket().display())).args(args))
    }

    /// Runs `ovs-ofctl -O OpenFlow15 CMD unix:<bridge>.mgmt ARGS...`.
    pub fn ofctl(&self, cmd: &str, bridge: &str, args: &[&str]) -> Result<String, CommandError> {
        run(Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow15", cmd])
            .arg(format!("unix:{}", self.mgmt_socket(bridge).display()))
            .args(args))
    }

    /// Runs `ovs-appctl` against ovs-vswitchd.
    pub fn appctl(&self, args: &[&str]) -> Result<String, CommandError> {
        run(Command::new("ovs-appctl").arg("-t").arg(self.dir.join("ovs-vswitchd.ctl")).args(args))
    }

    /// Waits for a complete revalidation pass of the datapath's cached flows that started
    /// after this call. `revalidator/wait` answers when the pass running when it arrives ends,
    /// and that pass may have begun before a flow change (and checked some flows against the
    /// old tables); the second wait covers a whole pass that began after the first returned.
    pub fn wait_revalidated(&self) -> Result<(), CommandError> {
        for _ in 0..2 {
            self.appctl(&["revalidator/wait"])?;
        }
        Ok(())
    }

    /// Waits until ovs-vswitchd has seen `iface` up. The userspace datapath drops what it
    /// would send to a tap device it still believes down (the kernel would refuse it), and it
    /// learns of `ip link set up` from a netlink notification some time later.
    pub fn wait_interface_up(&self, iface: &str) -> Result<(), CommandError> {
        let up = || self.vsctl(&["get", "interface", iface, "admin_state"]).is_ok_and(|s| s.trim() == "up");
        wait_until(Duration::from_secs(10), up)
            .map_err(|_| io_err("wait for admin_state=up of", Path::new(iface), std::io::ErrorKind::TimedOut.into()))
    }

    /// Adds a netdev bridge with OpenFlow 1.5 only and `fail_mode=secure` (the agent normally
    /// does this; tests of lower layers use it directly) and waits for its management socket.
    pub fn add_bridge(&self, bridge: &str) -> Result<(), CommandError> {
        self.vsctl(&[
            "--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
            "fail_mode=secure", "protocols=OpenFlow15", "other_config:disable-in-band=true",
        ])?;
        let sock = self.mgmt_socket(bridge);
        wait_until(Duration::from_secs(10), || sock.exists())
            .map_err(|_| io_err("wait for", &sock, std::io::ErrorKind::TimedOut.into()))
    }

    /// Stops both daemons: a clean `exit --cleanup`, then SIGKILL by pid if still alive.
    pub fn stop(&mut self) {
        self.keep = true;
        for daemon in DAEMONS {
            let Some(pid) = self.pid(daemon) else { continue };
            let ctl = self.dir.join(format!("{daemon}.ctl"));
            let mut exit = Command::new("ovs-appctl");
            exit.arg("-T").arg("5").arg("-t").arg(&ctl).arg("exit");
            if daemon == "ovs-vswitchd" {
                exit.arg("--cleanup");
            }
            let _ = run(&mut exit);
            let gone = wait_until(Duration::from_secs(5), || !process_alive(pid));
            if gone.is_err() {
                // SAFETY: plain kill(2) of a pid this instance started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = wait_until(Duration::from_secs(2), || !process_alive(pid));
            }
        }
    }

    /// Kills one daemon abruptly by pid (for failure tests) and returns whether it was running.
    pub fn kill(&self, daemon: &str) -> bool {
        let Some(pid) = self.pid(daemon) else { return false };
        // SAFETY: plain kill(2) of a pid this instance started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait_until(Duration::from_secs(5), || !process_alive(pid));
        let _ = std::fs::remove_file(self.dir.join(format!("{daemon}.pid")));
        true
    }

    /// Starts the daemons that are not running (after [`OvsSwitch::kill`]).
    pub fn restart_missing(&mut self) -> Result<(), CommandError> {
        let netns = Netns::existing(&self.netns);
        let again = OvsSwitch::start(&netns, &self.dir)?.keep();
        drop(again);
        Ok(())
    }

    /// Leaves the daemons running when this value is dropped.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }
}

impl Drop for OvsSwitch {
    fn drop(&mut self) {
        if !self.keep {
            self.stop();
        }
    }
}

/// Whether `pid` names a live (non-zombie) process.
pub fn process_alive(pid: i32) -> bool {
    // A zombie still answers kill(0); reap it if it is our child, then look at /proc.
    // SAFETY: waitpid with WNOHANG on a specific pid never blocks.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A condition did not hold within its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("condition still false after {0:?}")]
pub struct TimedOut(pub Duration);

/// Polls `cond` every millisecond (backing off to 20 ms) until it holds or `deadline` passes.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> Result<(), TimedOut> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() > deadline {
            return Err(TimedOut(deadline));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> CommandError {
    CommandError { cmdline: format!("{what} {}", path.display()), detail: e.to_string() }
}

/// An OVS instance for one test: its own namespace (`wt<pid>-<n>`) and temp state dir,
/// both removed when dropped.
#[derive(Debug)]
pub struct TestSwitch {
    /// The running switch (dropped first: daemons stop before the namespace goes).
    pub ovs: OvsSwitch,
    /// The namespace the daemons run in.
    pub netns: Netns,
    /// Kept so the directory lives as long as the switch.
    pub tmp: tempfile::TempDir,
}

impl TestSwitch {
    /// Starts a fresh instance in a new namespace.
    pub fn start() -> Result<Self, CommandError> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!("wt{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let netns = Netns::add(&name)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .map_err(|e| io_err("create temp dir for", Path::new(&name), e))?;
        let ovs = OvsSwitch::start(&netns, tmp.path())?;
        Ok(TestSwitch { ovs, netns, tmp })
    }

    /// Starts an instance and adds a netdev OpenFlow 1.5 bridge `br-int`.
    pub fn with_bridge() -> Result<Self, CommandError> {
        let sw = Self::start()?;
        sw.ovs.add_bridge("br-int")?;
        Ok(sw)
    }
}
