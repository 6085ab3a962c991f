//! Where the cluster view comes from: a manifests directory (file mode) or the Kubernetes API.
//!
//! Both are started the same way and send the same [`SourceEvent`]s, so the agent's loop
//! handles them alike. Each sends a cluster view only when it differs from the last one sent
//! (a rescan or a relist that finds nothing new sends nothing, so nothing is re-realized), and
//! parses off the agent's loop.

use crate::manifest_cache::ManifestCache;
use crate::source;
use policy::Cluster;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::info;

/// Where to read the cluster from.
#[derive(Debug, Clone)]
pub enum ClusterSource {
    /// A directory of manifests, watched for changes.
    Files(PathBuf),
    /// The Kubernetes API.
    #[cfg(feature = "kube")]
    Kube {
        /// How to reach it.
        connection: crate::kube_source::KubeConnection,
        /// The ConfigMap carrying a sync token, if any (see [`crate::kube_source::sync`]).
        sync: Option<crate::kube_source::sync::SyncObject>,
    },
}

/// What a source reports.
#[derive(Debug)]
pub enum SourceEvent {
    /// A new cluster view, with its sync token (file mode's `.weir-sync`).
    Cluster {
        /// The view (boxed: it is far bigger than the other events).
        cluster: Box<Cluster>,
        /// The token the writer left with it, if any.
        token: Option<String>,
    },
    /// The source cannot be read at all (why); the last view stays in force.
    Unreadable(String),
    /// What is wrong with parts of the source while the rest works (a kind the API server
    /// does not serve, a watch that keeps failing): the whole list, replacing the last one.
    Warnings(Vec<String>),
}

/// Why a source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The manifests directory could not be watched.
    #[error("watching {dir}: {source}")]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: notify::Error,
    },
    /// No client for the API server (kubeconfig or in-cluster configuration).
    #[cfg(feature = "kube")]
    #[error("kubernetes: {0}")]
    Kube(#[from] crate::kube_source::ConnectError),
}

/// Keeps a source running; dropping it stops the source.
#[derive(Debug)]
pub struct SourceGuard(JoinHandle<()>);

impl Drop for SourceGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many events may wait for the agent: a source that is ahead coalesces instead.
const QUEUE: usize = 1;

impl ClusterSource {
    /// The connections to the source that the host's policy must never cut (see
    /// [`crate::kube_source::KubeConnection::api_server_bypass`]); none for files. A server that
    /// does not resolve is logged: the source itself reports it when it starts.
    pub async fn bypass(&self) -> Vec<pipeline::host_interface::Bypass> {
        match self {
            ClusterSource::Files(_) => Vec::new(),
            #[cfg(feature = "kube")]
            ClusterSource::Kube { connection, .. } => connection.api_server_bypass().await.unwrap_or_else(|e| {
                tracing::warn!("no bypass for the API server: {e}");
                Vec::new()
            }),
        }
    }

    /// Starts reading; the first cluster view is sent once the source was read whole.
    pub async fn start(self) -> Result<(mpsc::Receiver<SourceEvent>, SourceGuard), SourceError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = match self {
            ClusterSource::Files(dir) => files(dir, tx)?,
            #[cfg(feature = "kube")]
            ClusterSource::Kube { connection, sync } => {
                let client = connection.client().await?;
                tokio::spawn(crate::kube_source::run(client, sync, tx))
            }
        };
        Ok((rx, SourceGuard(task)))
    }
}

/// File mode: each snapshot of the directory through the [`ManifestCache`] (created here, so
/// it takes the store `weir agent` installed).
fn files(dir: PathBuf, tx: mpsc::Sender<SourceEvent>) -> Result<JoinHandle<()>, SourceError> {
    let (mut snapshots, watcher) = source::watch(dir.clone(), Duration::from_millis(2), Duration::from_secs(30))
        .map_err(|source| SourceError::Watch { dir, source })?;
    let mut manifests = ManifestCache::default();
    Ok(tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(snapshot) = snapshots.recv().await {
            let event = match snapshot {
                Ok(s) => {
                    let started = Instant::now();
                    let cluster = manifests.cluster(&s);
                    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
                    info!(
                        files = s.files.len(),
                        unreadable = s.unreadable.len(),
                        pods = cluster.pods.len(),
                        policies = cluster.policies.len(),
                        elapsed_ms,
                        "manifests read"
                    );
                    SourceEvent::Cluster { cluster: Box::new(cluster), token: s.token }
                }
                Err(e) => SourceEvent::Unreadable(e.to_string()),
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }))
}
