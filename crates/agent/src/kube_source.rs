//! The Kubernetes source: kube-rs watchers of every kind the cluster view is made of (Nodes,
//! Namespaces, Pods, NetworkPolicies, the network-policy-api CRDs, TrafficControl, and Antrea's
//! ClusterNetworkPolicy, Tier, ClusterGroup, ExternalNode and ExternalEntity under both
//! `crd.antrea.io` and `weir.io`: [`kinds::WATCHED`]), feeding the same parsing and the same
//! [`SourceEvent`]s as file mode.
//!
//! kube-rs's watcher resumes a broken watch from its last resourceVersion (bookmarks keep that
//! recent), relists after `410 Gone`, and backs off on errors ([`retry`]); the [`View`] turns what it
//! reports into the cluster view and tells whether anything changed, so a relist or an API
//! server restart that changes nothing sends nothing. Events are coalesced for [`SETTLE`]
//! (at most [`MAX_SETTLE`]), so a burst (a relist, a deployment's pods) is one new view.
//! The first view is sent once every kind was listed or found not served: a kind whose CRD
//! is missing does not hold up the others, is reported, and its watcher keeps retrying.

pub mod events;
pub mod generations;
pub mod kinds;
pub mod retry;
pub mod status_writer;
pub mod sync;
pub mod view;

use crate::cluster_source::SourceEvent;
use futures::StreamExt;
use kinds::WATCHED;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use pipeline::host_interface::Bypass;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};
pub use view::View;

/// How long the watchers must be quiet before a changed view is sent.
pub const SETTLE: Duration = Duration::from_millis(20);
/// The longest a changed view waits for quiet: a steady stream of events still gets through.
pub const MAX_SETTLE: Duration = Duration::from_millis(500);

/// How to reach the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeConnection {
    /// With this kubeconfig file (its current context).
    Kubeconfig(PathBuf),
    /// As a pod: the ServiceAccount token and `KUBERNETES_SERVICE_HOST`/`_PORT`.
    InCluster,
}

/// Why there is no client.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster configuration is missing or broken.
    #[error("in-cluster configuration: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    /// The client could not be built from the configuration.
    #[error("client: {0}")]
    Client(#[from] kube::Error),
    /// The API server's host name does not resolve.
    #[error("API server {url}: {source}")]
    Resolve {
        /// The server's URL.
        url: String,
        /// Why.
        source: std::io::Error,
    },
}

impl KubeConnection {
    /// A client for the API server (nothing is sent yet).
    pub async fn client(&self) -> Result<kube::Client, ConnectError> {
        Ok(kube::Client::try_from(self.config().await?)?)
    }

    async fn config(&self) -> Result<kube::Config, ConnectError> {
        Ok(match self {
            KubeConnection::Kubeconfig(path) => {
                let error = |source| ConnectError::Kubeconfig { path: path.clone(), source };
                let file = kube::config::Kubeconfig::read_from(path).map_err(error)?;
                kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default()).await.map_err(error)?
            }
            KubeConnection::InCluster => kube::Config::incluster()?,
        })
    }

    /// The host's connections to the API server (each IPv4 address its URL resolves to, its
    /// port), to be kept out of the host's own policy: a node policy must never cut the agent
    /// off from the source that could lift it (Antrea #5221 lost the API server this way).
    pub async fn api_server_bypass(&self) -> Result<Vec<Bypass>, ConnectError> {
        let url = self.config().await?.cluster_url;
        let port = url.port_u16().unwrap_or(if url.scheme_str() == Some("http") { 80 } else { 443 });
        // An IPv6 literal comes bracketed ("[::1]").
        let host = url.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let resolved = tokio::net::lookup_host((host, port)).await;
        let addrs = resolved.map_err(|source| ConnectError::Resolve { url: url.to_string(), source })?;
        let ips: std::collections::BTreeSet<_> = addrs.map(|a| a.ip()).collect();
        Ok(ips
            .into_iter()
            .map(|ip| Bypass { direction: policy::Direction::Egress, protocol: policy::Protocol::Tcp, peer: ip.into(), port })
            .collect())
    }
}

/// One watcher's report, with the index of its kind in [`WATCHED`].
type Report = (usize, Result<watcher::Event<DynamicObject>, watcher::Error>);

/// The index the sync object's reports carry (after those of [`WATCHED`]).
const SYNC: usize = WATCHED.len();

/// Watches every kind (and the sync object, if any) and sends a cluster view whenever it
/// changes or a new sync token is in force, until `tx` is closed.
pub async fn run(client: kube::Client, sync_object: Option<sync::SyncObject>, tx: mpsc::Sender<SourceEvent>) {
    let mut streams: Vec<_> = WATCHED
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let api = Api::<DynamicObject>::all_with(client.clone(), &kind.resource());
            watcher(api, watcher::Config::default()).backoff(retry::Retry::default()).map(move |event| (i, event)).boxed()
        })
        .collect();
    if let Some(object) = &sync_object {
        streams.push(object.watcher(client.clone()).backoff(retry::Retry::default()).map(|event| (SYNC, event)).boxed());
    }
    let mut reports = futures::stream::select_all(streams);
    let mut inputs = Inputs { view: View::default(), sync: sync::SyncState::default(), sync_object };
    let (mut sent, mut warned) = (false, Vec::<String>::new());
    while let Some(first) = reports.next().await {
        let changed = take_burst(&mut inputs, first, &mut reports).await;
        let changed = inputs.sync.advance(&inputs.view) | changed;
        let view = &inputs.view;
        let warnings = view.warnings();
        if warnings != warned {
            for w in warnings.iter().filter(|w| !warned.contains(w)) {
                warn!("kubernetes source: {w}");
            }
            warned = warnings.clone();
            if tx.send(SourceEvent::Warnings(warnings)).await.is_err() {
                return;
            }
        }
        if view.complete() && (changed || !sent) {
            let started = Instant::now();
            let cluster = view.cluster();
            let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            info!(
                pods = cluster.pods.len(),
                policies = cluster.policies.len(),
                errors = cluster.errors.len(),
                elapsed_ms,
                "cluster view from the API server"
            );
            sent = true;
            let token = generations::tag(inputs.sync.current().as_deref(), view.generations());
            if tx.send(SourceEvent::Cluster { cluster: Box::new(cluster), token: Some(token) }).await.is_err() {
                return;
            }
        }
    }
}

/// What the watchers have reported: the objects and the sync token.
struct Inputs {
    view: View,
    sync: sync::SyncState,
    sync_object: Option<sync::SyncObject>,
}

impl Inputs {
    /// Takes one report; returns whether the view changed.
    fn handle(&mut self, (index, event): Report) -> bool {
        match &self.sync_object {
            Some(object) if index == SYNC => {
                self.sync.handle(object, event);
                false
            }
            _ => self.view.handle(index, event),
        }
    }
}

/// Takes `first` and every report that follows within [`SETTLE`] of the last (for at most
/// [`MAX_SETTLE`]); returns whether the view changed.
async fn take_burst(inputs: &mut Inputs, first: Report, reports: &mut (impl futures::Stream<Item = Report> + Unpin)) -> bool {
    let deadline = tokio::time::Instant::now() + MAX_SETTLE;
    let mut changed = inputs.handle(first);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(SETTLE, reports.next()).await {
            Ok(Some(report)) => changed |= inputs.handle(report),
            Ok(None) | Err(_) => break,
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bypass_of(server: &str) -> Vec<Bypass> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        );
        std::fs::write(&path, kubeconfig).unwrap();
        KubeConnection::Kubeconfig(path).api_server_bypass().await.unwrap()
    }

    #[tokio::test]
    async fn the_api_server_of_the_kubeconfig_is_an_egress_bypass_by_address_and_port() {
        assert_eq!(bypass_of("https://127.0.0.1:6443").await, ["egress:tcp:127.0.0.1/32:6443".parse().unwrap()]);
        // A name is resolved; https without a port is 443.
        assert!(bypass_of("https://localhost").await.contains(&"egress:tcp:127.0.0.1/32:443".parse().unwrap()));
        // An IPv6 server too (the node firewall takes it; the switch judges IPv4 only).
        assert_eq!(bypass_of("https://[::1]:6443").await, ["egress:tcp:[::1/128]:6443".parse().unwrap()]);
    }
}
