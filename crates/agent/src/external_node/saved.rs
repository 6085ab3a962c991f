//! What a host interface was before weir moved it onto the bridge, kept in the agent's state
//! directory (`external-node/<interface>.json`) before anything is touched: `weir agent
//! --restore` and an agent started again after being killed read it there. Nothing in it
//! depends on interface indexes, which change when devices are made again.
use super::ip_config::IpConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The saved state of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The interface's name (the internal port's, once moved).
    pub interface: String,
    /// The name of the uplink (the NIC, renamed).
    pub uplink: String,
    /// The NIC's MAC, `xx:xx:xx:xx:xx:xx`.
    pub mac: String,
    /// The NIC's MTU.
    pub mtu: u32,
    /// Whether the NIC was up.
    pub up: bool,
    /// Its IPv4 configuration: as it was before the move, and as it was on the internal port
    /// when a restore began (DHCP may have changed it since the move).
    pub config: IpConfig,
    /// Whether the kernel's copy of the uplink's packets is dropped (the userspace datapath,
    /// see [`super::kernel_copy`]): given back with the NIC.
    #[serde(default)]
    pub kernel_copy_dropped: bool,
}

/// The directory under the state directory that holds the saved interfaces.
pub const DIR: &str = "external-node";

/// Where the saved state of `interface` lives.
pub fn path(state_dir: &Path, interface: &str) -> PathBuf {
    state_dir.join(DIR).join(format!("{interface}.json"))
}

/// Reads the saved state at `file`; `None` when there is none.
pub fn read(file: &Path) -> Result<Option<Saved>, String> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{}: {e}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", file.display())),
    }
}

/// Writes the saved state to `file`, whole (see [`crate::state_file::write_atomic`]).
pub fn write(file: &Path, saved: &Saved) -> Result<(), String> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let bytes = serde_json::to_vec_pretty(saved).map_err(|e| e.to_string())?;
    crate::state_file::write_atomic(file, &bytes)
}

/// Removes the saved state (the interface is back as it was).
pub fn remove(file: &Path) -> Result<(), String> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: {e}", file.display())),
        _ => Ok(()),
    }
}

/// The interfaces that have saved state in `state_dir` (moved, or being moved or restored).
pub fn interfaces(state_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state_dir.join(DIR)) else { return vec![] };
    let mut names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_string)).collect();
    names.sort();
    names
}
