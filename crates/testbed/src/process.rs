//! Long-running processes the testbed starts (agents, probe servers): started detached inside a
//! network namespace, recorded by pid *and* start time, and stopped only if both still match,
//! so a recycled pid is never signalled.
use crate::error::Error;
use crate::ovs::{process_alive, wait_until};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How to start a program: the executable and its leading arguments (e.g. the weir binary
/// and `["agent"]`); the testbed appends the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launcher {
    /// The executable.
    pub program: PathBuf,
    /// Arguments that come before the ones the testbed adds.
    pub args: Vec<String>,
}

impl Launcher {
    /// The weir binary running now, with `args` (e.g. `["agent"]`).
    pub fn current_exe(args: &[&str]) -> Result<Self, Error> {
        let program = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
        Ok(Launcher { program, args: args.iter().map(|a| a.to_string()).collect() })
    }
}

/// A process the testbed started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Its pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
    pub start_time: u64,
}

impl ProcessRecord {
    /// Whether the recorded process is still the one running under that pid.
    pub fn alive(&self) -> bool {
        process_alive(self.pid) && start_time(self.pid) == Some(self.start_time)
    }

    /// Stops the process: SIGTERM, then SIGKILL after `grace`. Does nothing if the pid now
    /// names another process (or none).
    pub fn stop(&self, grace: Duration) {
        if !self.alive() {
            return;
        }
        // SAFETY: kill(2) of a pid whose start time shows it is the process we started.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        if wait_until(grace, || !self.alive()).is_err() && self.alive() {
            // SAFETY: as above.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = wait_until(Duration::from_secs(2), || !self.alive());
        }
    }
}

/// The start time of `pid` from `/proc/<pid>/stat` (the fields after the command name).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces and parentheses; fields after the last ')' start at 3.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Starts `program args` inside network namespace `netns` (through `ip netns exec`, which
/// execs in place, so the pid is the program's), detached from the terminal's process group,
/// with stdin closed and stdout/stderr appended to `log`.
pub fn spawn_in_netns(netns: &str, launcher: &Launcher, args: &[String], log: &Path) -> Result<ProcessRecord, Error> {
    let program = &launcher.program;
    let out = OpenOptions::new().create(true).append(true).open(log).map_err(|e| Error::io(log, e))?;
    let err = out.try_clone().map_err(|e| Error::io(log, e))?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns])
        .arg(program)
        .args(&launcher.args)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Own process group: a Ctrl-C meant for `weir testbed up` does not reach it.
        .process_group(0);
    let child = cmd.spawn().map_err(|e| Error::io(program, e))?;
    let pid = child.id() as i32;
    let start_time = start_time(pid).ok_or_else(|| Error::Died {
        what: format!("{} in {netns}", program.display()),
        log: log.to_path_buf(),
        tail: log_tail(log, 10),
    })?;
    Ok(ProcessRecord { pid, start_time })
}

/// The last `lines` lines of a log file (empty if unreadable).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_of_this_process_is_stable() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("own stat readable");
        assert_eq!(start_time(me), Some(t));
        let rec = ProcessRecord { pid: me, start_time: t };
        assert!(rec.alive());
        assert!(!ProcessRecord { pid: me, start_time: t + 1 }.alive(), "a different start time is another process");
    }
}
