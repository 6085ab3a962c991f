//! File-mode source: a directory of Kubernetes YAML manifests, watched for changes.
//!
//! The directory is rescanned whole on every change notification (and on a slow timer, as
//! ConfigMap-mounted directories swap a `..data` symlink and lose file watches), and a
//! snapshot of every manifest's text is handed to the agent. A writer that needs to know when
//! its change is enforced writes a token into `.weir-sync` after writing the manifests: the
//! token is read before the manifests, and the agent reports the token of the snapshot it
//! realized in its status.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// The name of the sync-token file inside the manifests directory.
pub const SYNC_FILE: &str = ".weir-sync";

/// The manifests directory as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The contents of `.weir-sync`, read before the manifests.
    pub token: Option<String>,
    /// Every manifest file (`*.yaml`, `*.yml`, `*.json`, not hidden), sorted by path.
    pub files: Vec<(PathBuf, String)>,
}

/// Reads the directory once. A missing directory is an empty snapshot.
pub fn read_snapshot(dir: &Path) -> std::io::Result<Snapshot> {
    let token = match std::fs::read_to_string(dir.join(SYNC_FILE)) {
        Ok(t) => Some(t.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Snapshot { token, files }),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if !is_manifest(&path) {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((path, text)),
            // Removed between listing and reading: the next event rescans.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    files.sort();
    Ok(Snapshot { token, files })
}

fn is_manifest(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.')
        && path.is_file()
        && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Watches `dir` and sends a new snapshot whenever its contents change (coalescing bursts of
/// events over `settle`), plus a resync every `resync`. The first snapshot is sent at once.
pub fn watch(
    dir: PathBuf,
    settle: Duration,
    resync: Duration,
) -> notify::Result<(mpsc::Receiver<std::io::Result<Snapshot>>, notify::RecommendedWatcher)> {
    use notify::Watcher;
    std::fs::create_dir_all(&dir).map_err(notify::Error::io)?;
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading the manifests raises access events (open, close-nowrite); reacting to them
        // would make every rescan trigger the next one.
        if let Ok(e) = &event
            && matches!(e.kind, notify::EventKind::Access(_))
        {
            return;
        }
        let _ = event_tx.send(());
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut last: Option<Snapshot> = None;
        loop {
            let snapshot = read_snapshot(&dir);
            let changed = match (&snapshot, &last) {
                (Ok(s), Some(l)) => s != l,
                _ => true,
            };
            if changed {
                if let Ok(s) = &snapshot {
                    last = Some(s.clone());
                }
                if tx.send(snapshot).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                event = event_rx.recv() => {
                    if event.is_none() { return; }
                    // Coalesce the burst a writer makes (several files, then the token).
                    tokio::time::sleep(settle).await;
                    while event_rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(resync) => {}
            }
        }
    });
    Ok((rx, watcher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_manifests_sorted_and_skips_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "kind: B").unwrap();
        std::fs::write(dir.path().join("a.yml"), "kind: A").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "kind: H").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join(SYNC_FILE), "tok-1\n").unwrap();
        let s = read_snapshot(dir.path()).unwrap();
        assert_eq!(s.token.as_deref(), Some("tok-1"));
        let names: Vec<_> = s.files.iter().map(|(p, _)| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.yml", "b.yaml"]);
    }

    #[test]
    fn missing_directory_is_an_empty_snapshot() {
        let s = read_snapshot(Path::new("/nonexistent/weir-manifests")).unwrap();
        assert_eq!(s, Snapshot::default());
    }

    #[tokio::test]
    async fn watch_sends_a_new_snapshot_after_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (mut rx, _w) =
            watch(dir.path().to_path_buf(), Duration::from_millis(5), Duration::from_secs(60)).unwrap();
        assert!(rx.recv().await.unwrap().unwrap().files.is_empty());
        std::fs::write(dir.path().join("p.yaml"), "kind: Pod").unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap().unwrap();
        assert_eq!(next.files.len(), 1);
    }
}
