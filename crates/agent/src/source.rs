//! File-mode source: a directory of Kubernetes YAML manifests, watched for changes.
//!
//! The directory is rescanned whole on every change notification (and on a slow timer, the
//! backstop for anything inotify misses), and a snapshot of every manifest's text is handed to
//! the agent. A file that cannot be read is part of the snapshot with its error, so it affects
//! only itself. A directory that is missing or unreadable is not an empty cluster: the watcher
//! sends a [`DirError`] and the agent keeps its last snapshot in force.
//!
//! The directory's parent is watched too, so a directory that is deleted and recreated, or
//! replaced by a rename (config management, a ConfigMap volume), is watched again at once; a
//! directory that appears is read once it has been quiet for [`QUIET`], as its writer is
//! usually still filling it. A snapshot that lost files is confirmed the same way before it is
//! sent: a directory being deleted loses its files one by one before it goes, and sending the
//! half-emptied directory would remove its policies for a moment.
//!
//! A writer that needs to know when its change is enforced writes a token into `.weir-sync`
//! after writing the manifests: the token is read before the manifests, and the agent reports
//! the token of the snapshot it realized in its status.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// The name of the sync-token file inside the manifests directory.
pub const SYNC_FILE: &str = ".weir-sync";

/// How long a directory that appeared (or was swapped in) must be free of events before it
/// is read.
pub const QUIET: Duration = Duration::from_millis(50);
/// The longest wait for [`QUIET`]: a directory written to without pause is read anyway.
pub const MAX_QUIET: Duration = Duration::from_secs(1);

/// The manifests directory as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The contents of `.weir-sync`, read before the manifests.
    pub token: Option<String>,
    /// Every readable manifest file (`*.yaml`, `*.yml`, `*.json`, not hidden), sorted by path.
    pub files: Vec<(PathBuf, String)>,
    /// Every manifest file that could not be read (or is not UTF-8 text), with the reason,
    /// sorted by path.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Snapshot {
    /// Every manifest file, sorted by path: its text, or why it could not be read.
    pub fn entries(&self) -> Vec<(&PathBuf, Result<&str, &str>)> {
        let mut all: Vec<_> = self
            .files
            .iter()
            .map(|(p, t)| (p, Ok(t.as_str())))
            .chain(self.unreadable.iter().map(|(p, e)| (p, Err(e.as_str()))))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }
}

/// Why the directory itself could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// It does not exist (deleted, not yet created, or being replaced).
    #[error("manifests directory {0} does not exist")]
    Missing(PathBuf),
    /// It exists but cannot be listed.
    #[error("manifests directory {dir} cannot be read: {source}")]
    Unreadable {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads the directory once.
pub fn read_snapshot(dir: &Path) -> Result<Snapshot, DirError> {
    let mut snapshot = Snapshot::default();
    let token_path = dir.join(SYNC_FILE);
    match std::fs::read_to_string(&token_path) {
        Ok(t) => snapshot.token = Some(t.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => snapshot.unreadable.push((token_path, format!("cannot be read: {e}"))),
    }
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DirError::Missing(dir.to_path_buf()),
        _ => DirError::Unreadable { dir: dir.to_path_buf(), source: e },
    })?;
    for entry in entries {
        let path = entry.map_err(|e| DirError::Unreadable { dir: dir.to_path_buf(), source: e })?.path();
        if !is_manifest_name(&path) {
            continue;
        }
        match read_manifest(&path) {
            Some(Ok(text)) => snapshot.files.push((path, text)),
            Some(Err(why)) => snapshot.unreadable.push((path, why)),
            None => {}
        }
    }
    snapshot.files.sort();
    snapshot.unreadable.sort();
    Ok(snapshot)
}

fn is_manifest_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// A manifest's text, why it cannot be had, or `None` when it is not a file after all (a
/// directory, or removed since the listing: the next event rescans).
fn read_manifest(path: &Path) -> Option<Result<String, String>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8(bytes).map_err(|e| {
            format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to())
        })),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => None,
        // A symlink whose target is gone is a broken file, not a deleted one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::symlink_metadata(path).is_ok().then(|| Err("is a symlink to nothing".to_string()))
        }
        Err(e) => Some(Err(format!("cannot be read: {e}"))),
    }
}

/// What the watcher sends: a snapshot, or why the directory could not be read.
pub type SnapshotResult = Result<Snapshot, DirError>;

/// Keeps the watch running; dropping it stops the watcher.
#[derive(Debug)]
pub struct WatchGuard(tokio::task::JoinHandle<()>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches `dir` and sends a new snapshot (or directory error) whenever what it reads
/// changes, coalescing bursts of events over `settle`, plus a rescan every `resync`. The
/// first result is sent at once. The directory need not exist.
pub fn watch(dir: PathBuf, settle: Duration, resync: Duration) -> notify::Result<(mpsc::Receiver<SnapshotResult>, WatchGuard)> {
    let dir = std::path::absolute(&dir).map_err(notify::Error::io)?;
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<()>();
    let relevant = dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = &event {
            // Reading the manifests raises access events (open, close-nowrite); reacting to
            // them would make every rescan trigger the next one. The parent's other entries
            // (e.g. a status file beside the directory) are none of the agent's business.
            if matches!(e.kind, notify::EventKind::Access(_)) || !e.paths.iter().any(|p| p.starts_with(&relevant)) {
                return;
            }
        }
        let _ = event_tx.send(());
    })?;
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        let mut armed = Armed::default();
        let mut last: Option<Result<Snapshot, String>> = None;
        loop {
            if armed.arm(&mut watcher, &dir) {
                until_quiet(&mut event_rx).await;
            }
            let mut result = read_snapshot(&dir);
            if loses_files(&result, &last) {
                until_quiet(&mut event_rx).await;
                result = read_snapshot(&dir);
            }
            let seen = result.as_ref().map(Clone::clone).map_err(ToString::to_string);
            if last.as_ref() != Some(&seen) {
                last = Some(seen);
                if tx.send(result).await.is_err() {
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
    Ok((rx, WatchGuard(task)))
}

/// Whether `now` lacks a file that the last snapshot sent had.
fn loses_files(now: &SnapshotResult, last: &Option<Result<Snapshot, String>>) -> bool {
    let (Ok(now), Some(Ok(last))) = (now, last) else { return false };
    let present: std::collections::BTreeSet<&PathBuf> = now.entries().into_iter().map(|(p, _)| p).collect();
    last.entries().iter().any(|(p, _)| !present.contains(p))
}

/// A path's identity: a replaced directory has a new one.
type Identity = (u64, u64);

fn identity(path: &Path) -> Option<Identity> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Which directory and parent the watcher is armed on. inotify watches an inode, not a path:
/// once the directory is deleted or renamed away, a new one at the same path is unseen until
/// it is watched again.
#[derive(Debug, Default)]
struct Armed {
    dir: Option<Identity>,
    parent: Option<Identity>,
    started: bool,
}

impl Armed {
    /// Watches the directory and its parent again where they changed. Returns whether the
    /// directory appeared or was replaced since the last call (not on the first).
    fn arm(&mut self, watcher: &mut impl notify::Watcher, dir: &Path) -> bool {
        if let Some(parent) = dir.parent() {
            rearm(watcher, parent, &mut self.parent);
        }
        let before = self.dir;
        rearm(watcher, dir, &mut self.dir);
        let appeared = self.started && self.dir.is_some() && self.dir != before;
        self.started = true;
        appeared
    }
}

fn rearm(watcher: &mut impl notify::Watcher, path: &Path, armed: &mut Option<Identity>) {
    let now = identity(path);
    if now == *armed {
        return;
    }
    let _ = watcher.unwatch(path);
    *armed = None;
    if now.is_some() && watcher.watch(path, notify::RecursiveMode::NonRecursive).is_ok() {
        // Read after watching: a replacement in between is seen by the next call.
        *armed = identity(path);
    }
}

/// Waits until no event has arrived for [`QUIET`], at most [`MAX_QUIET`].
async fn until_quiet(events: &mut mpsc::UnboundedReceiver<()>) {
    let deadline = tokio::time::Instant::now() + MAX_QUIET;
    while let Ok(Some(())) = tokio::time::timeout(QUIET, events.recv()).await {
        if tokio::time::Instant::now() >= deadline {
            return;
        }
    }
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
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        std::fs::write(dir.path().join(SYNC_FILE), "tok-1\n").unwrap();
        let s = read_snapshot(dir.path()).unwrap();
        assert_eq!(s.token.as_deref(), Some("tok-1"));
        let names: Vec<_> = s.files.iter().map(|(p, _)| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.yml", "b.yaml"]);
        assert!(s.unreadable.is_empty());
    }

    #[test]
    fn a_missing_directory_is_an_error_not_an_empty_snapshot() {
        let e = read_snapshot(Path::new("/nonexistent/weir-manifests")).unwrap_err();
        assert!(matches!(e, DirError::Missing(_)));
        assert_eq!(e.to_string(), "manifests directory /nonexistent/weir-manifests does not exist");
    }

    #[test]
    fn an_unreadable_file_is_reported_with_its_reason_and_the_rest_still_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.yaml"), "kind: A").unwrap();
        std::fs::write(dir.path().join("binary.yaml"), [0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0]).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("dangling.yaml")).unwrap();
        let s = read_snapshot(dir.path()).unwrap();
        assert_eq!(s.files.len(), 1);
        let why: Vec<(&str, &str)> =
            s.unreadable.iter().map(|(p, w)| (p.file_name().unwrap().to_str().unwrap(), w.as_str())).collect();
        assert_eq!(
            why,
            [("binary.yaml", "not UTF-8 text (invalid byte at offset 4)"), ("dangling.yaml", "is a symlink to nothing")]
        );
        let order: Vec<_> = s.entries().iter().map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        assert_eq!(order, ["binary.yaml", "dangling.yaml", "good.yaml"]);
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_unreadable_with_the_systems_reason() {
        // A symlink loop: even root cannot open it (ELOOP), unlike a mode-000 file.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("loop.yaml"), dir.path().join("loop.yaml")).unwrap();
        let s = read_snapshot(dir.path()).unwrap();
        assert_eq!(s.unreadable.len(), 1);
        assert!(s.unreadable[0].1.starts_with("cannot be read: Too many levels of symbolic links"), "{:?}", s.unreadable);
    }

    async fn next(rx: &mut mpsc::Receiver<SnapshotResult>) -> SnapshotResult {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a result within 5 s").expect("watching")
    }

    #[tokio::test]
    async fn watch_sends_a_new_snapshot_after_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (mut rx, _w) = watch(dir.path().to_path_buf(), Duration::from_millis(5), Duration::from_secs(60)).unwrap();
        assert!(next(&mut rx).await.unwrap().files.is_empty());
        std::fs::write(dir.path().join("p.yaml"), "kind: Pod").unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 1);
    }

    #[tokio::test]
    async fn a_removed_file_is_sent_only_after_the_directory_is_quiet() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "kind: A").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "kind: B").unwrap();
        let (mut rx, _w) = watch(dir.path().to_path_buf(), Duration::from_millis(2), Duration::from_secs(3600)).unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 2);
        let removed = std::time::Instant::now();
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 1);
        assert!(removed.elapsed() >= QUIET, "sent {:?} after the removal", removed.elapsed());
    }

    // Multi-threaded: the watcher must run while this thread sleeps between removals.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_directory_emptied_file_by_file_then_removed_is_missing_not_half_empty() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        for name in ["a.yaml", "b.yaml", "c.yaml"] {
            std::fs::write(dir.join(name), "kind: A").unwrap();
        }
        let (mut rx, _w) = watch(dir.clone(), Duration::from_millis(2), Duration::from_secs(3600)).unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 3);
        // Slower than the 2 ms settle, faster than QUIET: what `rm -r` of a big directory does.
        for name in ["a.yaml", "b.yaml", "c.yaml"] {
            std::fs::remove_file(dir.join(name)).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::remove_dir(&dir).unwrap();
        assert!(matches!(next(&mut rx).await, Err(DirError::Missing(_))), "no half-empty snapshot is sent");
    }

    #[tokio::test]
    async fn a_deleted_and_recreated_directory_is_reported_missing_then_watched_again_at_once() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "kind: A").unwrap();
        // A resync far beyond the test's time: only the watches can make it pass.
        let (mut rx, _w) = watch(dir.clone(), Duration::from_millis(2), Duration::from_secs(3600)).unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 1);

        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(next(&mut rx).await, Err(DirError::Missing(_))));

        let started = std::time::Instant::now();
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("b.yaml"), "kind: B").unwrap();
        let s = next(&mut rx).await.unwrap();
        let names: Vec<_> = s.files.iter().map(|(p, _)| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["b.yaml"], "read once, after the writer's burst");
        assert!(started.elapsed() < QUIET * 10, "picked up in {:?}", started.elapsed());

        // And the new directory's own changes are seen.
        std::fs::write(dir.join("c.yaml"), "kind: C").unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 2);
    }

    #[tokio::test]
    async fn a_directory_swapped_in_by_rename_is_watched_again() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        let (mut rx, _w) = watch(dir.clone(), Duration::from_millis(2), Duration::from_secs(3600)).unwrap();
        assert!(next(&mut rx).await.unwrap().files.is_empty());

        let staged = parent.path().join("manifests.new");
        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("a.yaml"), "kind: A").unwrap();
        std::fs::rename(&dir, parent.path().join("manifests.old")).unwrap();
        std::fs::rename(&staged, &dir).unwrap();
        let mut s = next(&mut rx).await;
        if s.is_err() {
            // The moment between the two renames was seen: the directory was missing.
            s = next(&mut rx).await;
        }
        assert_eq!(s.unwrap().files.len(), 1);
        std::fs::write(dir.join("b.yaml"), "kind: B").unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 2, "the swapped-in directory is watched");
    }

    #[tokio::test]
    async fn a_directory_created_after_the_watch_started_is_picked_up() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("manifests");
        let (mut rx, _w) = watch(dir.clone(), Duration::from_millis(2), Duration::from_secs(3600)).unwrap();
        assert!(matches!(next(&mut rx).await, Err(DirError::Missing(_))));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "kind: A").unwrap();
        assert_eq!(next(&mut rx).await.unwrap().files.len(), 1);
    }
}
