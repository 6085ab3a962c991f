//! Where a switch listens: `unix:PATH`, `tcp:HOST:PORT`, or a bridge name resolved like
//! ovs-ofctl does (`$OVS_RUNDIR/<bridge>.mgmt`, default /var/run/openvswitch).

use std::fmt;
use std::path::PathBuf;

use super::SwitchError;

/// A parsed connection target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(String),
}

impl Target {
    /// Parses a target string.
    pub fn parse(s: &str) -> Result<Target, SwitchError> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(SwitchError::BadTarget(s.to_string()));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            if !addr.contains(':') {
                return Err(SwitchError::BadTarget(s.to_string()));
            }
            return Ok(Target::Tcp(addr.to_string()));
        }
        if s.contains('/') {
            return Ok(Target::Unix(PathBuf::from(s)));
        }
        if s.is_empty() || s.contains(':') {
            return Err(SwitchError::BadTarget(s.to_string()));
        }
        let rundir = std::env::var("OVS_RUNDIR").unwrap_or_else(|_| "/var/run/openvswitch".to_string());
        Ok(Target::Unix(PathBuf::from(rundir).join(format!("{s}.mgmt"))))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_name_resolves_to_its_mgmt_socket_in_the_rundir() {
        // SAFETY-free: only this test reads OVS_RUNDIR in this process's test binary.
        let t = Target::parse("unix:/tmp/x.mgmt").unwrap();
        assert_eq!(t, Target::Unix("/tmp/x.mgmt".into()));
        assert_eq!(Target::parse("tcp:127.0.0.1:6653").unwrap(), Target::Tcp("127.0.0.1:6653".into()));
        assert!(matches!(Target::parse("br-int").unwrap(), Target::Unix(p) if p.ends_with("br-int.mgmt")));
        assert!(Target::parse("tcp:nohost").is_err());
    }
}
