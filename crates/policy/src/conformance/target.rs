//! What a conformance probe connects from and to: a pod, or a host endpoint of the model (a
//! Kubernetes Node, or an ExternalNode's interface).
//!
//! Written `ns/pod`, `node:NAME` or `externalnode:ns/NAME`; a pod key never contains `:`, so
//! the three never overlap.
use crate::objects::PodKey;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A probe's client or server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Target {
    /// A pod, `ns/name`.
    Pod(PodKey),
    /// A Kubernetes Node's own network stack, `node:NAME` (its InternalIP).
    Node(String),
    /// An ExternalNode, `externalnode:ns/NAME` (the address of its interface).
    ExternalNode {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl Target {
    /// The pod, if it is one.
    pub fn pod(&self) -> Option<&PodKey> {
        match self {
            Target::Pod(k) => Some(k),
            _ => None,
        }
    }
}

impl From<PodKey> for Target {
    fn from(k: PodKey) -> Self {
        Target::Pod(k)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pod(k) => write!(f, "{k}"),
            Target::Node(n) => write!(f, "node:{n}"),
            Target::ExternalNode { namespace, name } => write!(f, "externalnode:{namespace}/{name}"),
        }
    }
}

/// Text that names no probe target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a probe target: expected ns/pod, node:NAME or externalnode:ns/NAME")]
pub struct BadTarget(pub String);

impl FromStr for Target {
    type Err = BadTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadTarget(s.to_string());
        if let Some(name) = s.strip_prefix("node:") {
            return if name.is_empty() || name.contains(['/', ':']) { Err(bad()) } else { Ok(Target::Node(name.to_string())) };
        }
        if let Some(key) = s.strip_prefix("externalnode:") {
            let k: PodKey = key.parse().map_err(|_| bad())?;
            return Ok(Target::ExternalNode { namespace: k.namespace, name: k.name });
        }
        if s.contains(':') {
            return Err(bad());
        }
        s.parse().map(Target::Pod).map_err(|_| bad())
    }
}

impl TryFrom<String> for Target {
    type Error = BadTarget;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_back_from_its_text() {
        for text in ["x/a", "node:node-1", "externalnode:vms/vm1"] {
            assert_eq!(text.parse::<Target>().unwrap().to_string(), text);
        }
        assert_eq!("x/a".parse::<Target>().unwrap(), Target::Pod(PodKey::new("x", "a")));
        for bad in ["node:", "node:a/b", "externalnode:vm1", "vm:x/a", "a"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
