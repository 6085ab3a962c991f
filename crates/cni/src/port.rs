//! The pod's port on the bridge, through `crates/ovsdb`: inserted with the CNI contract's
//! `external_ids` in the same transaction as the Port and Interface rows (the manager plans
//! one transaction per ensure), and found again by those keys.
use crate::config::NetConf;
use crate::protocol::{Attachment, CniError, Code, ContainerId, IfName, PodRef};
use ovsdb::cni::{CNI_CONTAINER_ID, CNI_IFNAME};
use ovsdb::tables::{Bridge, Interface, TableRow};
use ovsdb::{Client, Manager, ManagerOptions, PortKind, PortSpec};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// How long ovs-vswitchd may take to give a new port its OpenFlow number (many ADDs at once
/// on a busy node take longer than one).
const OFPORT_TIMEOUT: Duration = Duration::from_secs(30);

fn ovsdb_error(what: impl std::fmt::Display, e: impl std::fmt::Display) -> CniError {
    CniError::new(Code::Ovsdb, "OVSDB failure", format!("{what}: {e}"))
}

/// A port weir-cni made, as the database holds it.
#[derive(Debug, Clone)]
pub struct CniPort {
    /// Port and interface name (the host veth end).
    pub name: String,
    /// The attachment named in its `external_ids`.
    pub attachment: Option<Attachment>,
    /// All its `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// Its OpenFlow port, once assigned (`-1`: ovs-vswitchd could not open the device).
    pub ofport: Option<i64>,
}

/// The bridge of one network configuration.
pub struct Ovs {
    mgr: Manager,
    bridge: String,
}

impl Ovs {
    /// Connects to `conf.ovsdb`; unreachable is code 11 (try again later).
    pub async fn connect(conf: &NetConf) -> Result<Ovs, CniError> {
        let unreachable = |e: ovsdb::Error| {
            CniError::new(Code::TryAgainLater, "OVSDB unreachable", format!("ovsdb {}: {e}", conf.ovsdb))
        };
        let client = Client::connect(&conf.ovsdb).await.map_err(unreachable)?;
        let options = ManagerOptions { verify_timeout: Some(OFPORT_TIMEOUT) };
        let mgr = Manager::with_options(&client, options).await.map_err(unreachable)?;
        Ok(Ovs { mgr, bridge: conf.bridge.clone() })
    }

    /// Whether the bridge exists (weir's agent creates it).
    pub fn bridge_exists(&self) -> bool {
        self.mgr.with_view(|db| Bridge::named(db, &self.bridge).is_some())
    }

    /// Fails unless the bridge exists.
    pub fn require_bridge(&self, code: Code) -> Result<(), CniError> {
        if self.bridge_exists() {
            return Ok(());
        }
        Err(CniError::new(
            code,
            "bridge missing",
            format!("bridge: {:?} does not exist in OVSDB (the weir agent creates it)", self.bridge),
        ))
    }

    /// Adds `name` to the bridge with the contract's `external_ids` for `pod` and the
    /// attachment, in one transaction, and waits for its OpenFlow port.
    pub async fn attach(
        &self,
        name: &str,
        attachment: &Attachment,
        pod: &PodRef,
        ip: Ipv4Addr,
        mac: &str,
    ) -> Result<(), CniError> {
        let mut spec = PortSpec::new(name, PortKind::System);
        spec.external_ids = ovsdb::cni::pod_external_ids_map(&pod.namespace, &pod.name, &[ip], mac);
        spec.external_ids.insert(CNI_CONTAINER_ID.into(), attachment.container_id.as_str().into());
        spec.external_ids.insert(CNI_IFNAME.into(), attachment.ifname.as_str().into());
        self.mgr.ensure_port(&self.bridge, &spec).await.map_err(|e| ovsdb_error(format!("add port {name}"), e))?;
        Ok(())
    }

    /// Removes port `name` from the bridge; `Ok(false)` if it was not there.
    pub async fn detach(&self, name: &str) -> Result<bool, CniError> {
        let out = self
            .mgr
            .delete_port(&self.bridge, name)
            .await
            .map_err(|e| ovsdb_error(format!("delete port {name}"), e))?;
        Ok(out != ovsdb::Outcome::Unchanged)
    }

    /// Every port weir-cni made (interfaces carrying [`CNI_CONTAINER_ID`]).
    pub fn cni_ports(&self) -> Vec<CniPort> {
        self.mgr.with_view(|db| {
            Interface::all(db)
                .into_iter()
                .filter(|i| i.external_ids.contains_key(CNI_CONTAINER_ID))
                .map(|i| CniPort {
                    attachment: attachment_of(&i.external_ids),
                    name: i.name,
                    ofport: i.ofport,
                    external_ids: i.external_ids,
                })
                .collect()
        })
    }

    /// The port named `name`, if weir-cni made it.
    pub fn cni_port(&self, name: &str) -> Option<CniPort> {
        self.cni_ports().into_iter().find(|p| p.name == name)
    }
}

fn attachment_of(ids: &BTreeMap<String, String>) -> Option<Attachment> {
    let container_id = ContainerId::try_from(ids.get(CNI_CONTAINER_ID)?.clone()).ok()?;
    let ifname = IfName::try_from(ids.get(CNI_IFNAME)?.clone()).ok()?;
    Some(Attachment { container_id, ifname })
}
