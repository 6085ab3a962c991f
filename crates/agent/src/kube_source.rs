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
}

impl KubeConnection {
    /// A client for the API server (nothing is sent yet).
    pub async fn client(&self) -> Result<kube::Client, ConnectError> {
        let config = match self {
            KubeConnection::Kubeconfig(path) => {
                let error = |source| ConnectError::Kubeconfig { path: path.clone(), source };
                let file = kube::config::Kubeconfig::read_from(path).map_err(error)?;
                kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default()).await.map_err(error)?
            }
            KubeConnection::InCluster => kube::Config::incluster()?,
        };
        Ok(kube::Client::try_from(config)?)
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
            info!(pods = cluster.pods.len(), policies = cluster.policies.len(), errors = cluster.errors.len(), elapsed_ms, "cluster view from the API server");
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
