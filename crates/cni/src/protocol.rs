//! The CNI execution protocol (CNI spec 1.0.0 and 1.1.0, SPEC.md sections 2 and 5): the
//! command and its parameters from `CNI_*` environment variables, typed identities, and the
//! error result with the spec's codes.
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The spec versions this plugin speaks (results are shaped per version).
pub const SUPPORTED_VERSIONS: [&str; 2] = ["1.0.0", "1.1.0"];

/// Error codes of the spec (0-99 are reserved for it), and weir-cni's own (100+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    /// 1: incompatible CNI version.
    IncompatibleVersion = 1,
    /// 2: unsupported field in the network configuration (the message names key and value).
    UnsupportedField = 2,
    /// 3: container unknown or does not exist.
    UnknownContainer = 3,
    /// 4: invalid necessary environment variables (the message names them).
    InvalidEnvironment = 4,
    /// 5: I/O failure (reading stdin, the state directory).
    Io = 5,
    /// 6: failed to decode content (the configuration is not JSON).
    Decode = 6,
    /// 7: invalid network configuration (the message names the field).
    InvalidConfig = 7,
    /// 11: try again later (OVSDB unreachable: a transient condition).
    TryAgainLater = 11,
    /// 50: STATUS: the plugin cannot service ADD.
    NotAvailable = 50,
    /// 100: the pod's interface could not be made or is not as ADD made it (netlink).
    Interface = 100,
    /// 101: OVSDB refused or failed the port change.
    Ovsdb = 101,
    /// 102: the pod CIDR has no free address.
    AddressesExhausted = 102,
}

/// A failed command: the spec's error result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    /// The code.
    pub code: Code,
    /// A short message.
    pub msg: String,
    /// The longer story (names the field, variable or object at fault).
    pub details: String,
}

impl CniError {
    /// An error of `code`.
    pub fn new(code: Code, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError { code, msg: msg.into(), details: details.into() }
    }

    /// The spec's JSON error object for `version`.
    pub fn to_json(&self, version: &str) -> serde_json::Value {
        serde_json::json!({ "cniVersion": version, "code": self.code as u32, "msg": self.msg, "details": self.details })
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {}): {}", self.msg, self.code as u32, self.details)
    }
}

fn env_error(var: &str, why: impl fmt::Display) -> CniError {
    CniError::new(Code::InvalidEnvironment, format!("invalid {var}"), format!("{var}: {why}"))
}

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach.
    Add,
    /// Detach (idempotent).
    Del,
    /// Verify an attachment.
    Check,
    /// Remove attachments not in `cni.dev/valid-attachments` (1.1).
    Gc,
    /// Readiness (1.1).
    Status,
    /// Supported versions.
    Version,
}

impl Command {
    fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            other => {
                return Err(env_error(
                    "CNI_COMMAND",
                    format!("{other:?} is not ADD, DEL, CHECK, GC, STATUS or VERSION"),
                ));
            }
        })
    }
}

/// `CNI_CONTAINERID`: an alphanumeric character, then alphanumerics, `_`, `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl TryFrom<String> for ContainerId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut chars = s.chars();
        match chars.next() {
            None => Err("is empty".into()),
            Some(c) if !c.is_ascii_alphanumeric() => Err(format!("{s:?} does not start with a letter or digit")),
            _ if !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) => {
                Err(format!("{s:?} has a character other than letters, digits, '_', '.', '-'"))
            }
            _ => Ok(ContainerId(s)),
        }
    }
}

impl From<ContainerId> for String {
    fn from(c: ContainerId) -> String {
        c.0
    }
}

impl ContainerId {
    /// The ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `CNI_IFNAME`: a Linux interface name (1 to 15 bytes, no `/`, `:` or whitespace).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

impl TryFrom<String> for IfName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.len() > 15 {
            return Err(format!("{s:?} is not 1 to 15 bytes long"));
        }
        if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
            return Err(format!("{s:?} is not an interface name"));
        }
        Ok(IfName(s))
    }
}

impl From<IfName> for String {
    fn from(i: IfName) -> String {
        i.0
    }
}

impl IfName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One attachment, `(CNI_CONTAINERID, CNI_IFNAME)`: the unit the runtime adds and deletes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct Attachment {
    /// `CNI_CONTAINERID`.
    #[serde(rename = "containerID")]
    pub container_id: ContainerId,
    /// `CNI_IFNAME`.
    pub ifname: IfName,
}

impl fmt::Display for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.container_id.as_str(), self.ifname.as_str())
    }
}

/// The pod an attachment belongs to, from `CNI_ARGS` `K8S_POD_NAMESPACE` / `K8S_POD_NAME`
/// (what kubelet's runtimes pass), for the contract's `iface-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// The parameters of one invocation.
#[derive(Debug, Clone)]
pub struct Env {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<ContainerId>,
    /// `CNI_NETNS`.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`.
    pub ifname: Option<IfName>,
    /// `CNI_ARGS`, parsed.
    pub args: BTreeMap<String, String>,
}

impl Env {
    /// Reads the parameters through `var` (the process environment in `main`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let command = Command::parse(&var("CNI_COMMAND").ok_or_else(|| env_error("CNI_COMMAND", "not set"))?)?;
        let nonempty = |name: &str| var(name).filter(|v| !v.is_empty());
        let container_id = nonempty("CNI_CONTAINERID")
            .map(|v| ContainerId::try_from(v).map_err(|e| env_error("CNI_CONTAINERID", e)))
            .transpose()?;
        let ifname =
            nonempty("CNI_IFNAME").map(|v| IfName::try_from(v).map_err(|e| env_error("CNI_IFNAME", e))).transpose()?;
        let args = parse_args(&var("CNI_ARGS").unwrap_or_default())?;
        Ok(Env { command, container_id, netns: nonempty("CNI_NETNS").map(PathBuf::from), ifname, args })
    }

    /// The attachment, for commands that require `CNI_CONTAINERID` and `CNI_IFNAME`.
    pub fn attachment(&self) -> Result<Attachment, CniError> {
        let container_id = self.container_id.clone().ok_or_else(|| env_error("CNI_CONTAINERID", "not set"))?;
        let ifname = self.ifname.clone().ok_or_else(|| env_error("CNI_IFNAME", "not set"))?;
        Ok(Attachment { container_id, ifname })
    }

    /// `CNI_NETNS`, for commands that require it; it must exist.
    pub fn netns(&self) -> Result<PathBuf, CniError> {
        let path = self.netns.clone().ok_or_else(|| env_error("CNI_NETNS", "not set"))?;
        if !path.exists() {
            return Err(env_error("CNI_NETNS", format!("{} does not exist", path.display())));
        }
        Ok(path)
    }

    /// The address asked for with `CNI_ARGS` `IP=<IPv4>` (the convention host-local follows),
    /// if any.
    pub fn requested_ip(&self) -> Result<Option<std::net::Ipv4Addr>, CniError> {
        let Some(text) = self.args.get("IP") else { return Ok(None) };
        text.parse().map(Some).map_err(|e| env_error("CNI_ARGS", format!("IP={text:?}: {e}")))
    }

    /// The pod, from `CNI_ARGS`.
    pub fn pod(&self) -> Result<PodRef, CniError> {
        let get =
            |key: &str| {
                self.args.get(key).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
                    env_error("CNI_ARGS", format!("{key} is missing (weir's CNI contract names the pod)"))
                })
            };
        Ok(PodRef { namespace: get("K8S_POD_NAMESPACE")?, name: get("K8S_POD_NAME")? })
    }
}

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`.
fn parse_args(text: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut out = BTreeMap::new();
    for pair in text.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| env_error("CNI_ARGS", format!("{pair:?} is not KEY=VALUE")))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Env, CniError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn parameters_come_from_cni_variables() {
        let e = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc-1.x_y"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/p"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a"),
        ])
        .unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.attachment().unwrap().to_string(), "abc-1.x_y/eth0");
        assert_eq!(e.pod().unwrap(), PodRef { namespace: "x".into(), name: "a".into() });
    }

    #[test]
    fn bad_variables_are_code_4_and_named() {
        for (vars, name) in [
            (vec![], "CNI_COMMAND"),
            (vec![("CNI_COMMAND", "ATTACH")], "CNI_COMMAND"),
            (vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "-x")], "CNI_CONTAINERID"),
            (vec![("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "a/b")], "CNI_IFNAME"),
            (vec![("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "sixteen-chars-xx")], "CNI_IFNAME"),
            (vec![("CNI_COMMAND", "ADD"), ("CNI_ARGS", "novalue")], "CNI_ARGS"),
        ] {
            let err = env(&vars).unwrap_err();
            assert_eq!(err.code, Code::InvalidEnvironment, "{vars:?}");
            assert!(err.details.starts_with(name), "{vars:?}: {err}");
        }
    }

    #[test]
    fn add_without_the_pod_names_the_missing_argument() {
        let e = env(&[("CNI_COMMAND", "ADD"), ("CNI_ARGS", "K8S_POD_NAMESPACE=x")]).unwrap();
        let err = e.pod().unwrap_err();
        assert_eq!(err.code, Code::InvalidEnvironment);
        assert!(err.details.contains("K8S_POD_NAME"), "{err}");
        let err = e.attachment().unwrap_err();
        assert!(err.details.starts_with("CNI_CONTAINERID"), "{err}");
    }

    #[test]
    fn errors_are_the_spec_json() {
        let e = CniError::new(Code::InvalidConfig, "invalid network configuration", "ipam.subnet: missing");
        assert_eq!(
            e.to_json("1.1.0"),
            serde_json::json!({"cniVersion": "1.1.0", "code": 7, "msg": "invalid network configuration", "details": "ipam.subnet: missing"})
        );
    }
}
