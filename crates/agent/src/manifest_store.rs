//! The manifest cache's persisted half: each manifest file's last good content, parsed, kept
//! across agent restarts, so that a restarted agent does not parse the YAML it parsed before
//! (parsing a 10k-pod cluster is most of a restart's cost) and a file that is broken at
//! restart keeps its last good version in force, exactly as it would have without the restart.
//!
//! # What is stored
//!
//! Under `STATE_DIR/manifest-cache/D/`, where `D` names the manifests directory (two agents
//! never share entries):
//!
//! - one entry per manifest file, written after the file's text was parsed and found good:
//!   the file's path, its text, and what the [`ManifestCache`] keeps in force for it (the
//!   parsed objects, after [`Manifests::keep_last_valid`]), as JSON, with a generation number
//!   that is new for every version. A file whose text is broken leaves its entry alone (the
//!   entry is its last good version); a deleted file loses its entry (deletion is
//!   intentional), also when it was deleted while the agent was not running;
//! - the *view*: the cluster view of all entries together (what the cache hands the agent),
//!   naming the generation of each entry it was built from, written once the cache has been
//!   quiet for [`VIEW_QUIET`] (and when the agent stops) while every file is good.
//!
//! # When it is used
//!
//! Never blindly. An entry or view is read only if its magic, format version and checksum
//! (over all of it) are right; an entry must name the file it is stored for. Anything else is
//! ignored (and removed), and the files concerned are parsed as if there were no entry. Parsed
//! content is used only if it was written by this very build of weir (version and executable),
//! and only for a file whose text is byte for byte the entry's text; a file whose text differs
//! is parsed again, with the entry as its last good version. An entry from another build keeps
//! its text: when that last good version is needed (the file changed) it is parsed again by
//! this build. The view is used only if it names exactly the entries read (paths and
//! generations) and every file's text is its entry's; it is checked for consistency (no two
//! objects with one key, no two pods with one address) as it is read. Nothing read from disk
//! can make the agent panic: every length is checked, and payloads are JSON read by serde.
//!
//! At start the entries and the view are read in the background while the agent connects to
//! OVSDB; when the view can be used, the entries' parsed content is read later (after
//! [`PARSE_DELAY`], or at once when the cache needs it: the next change).
//!
//! # Writing
//!
//! Entries are written by a background thread, atomically (a temporary file renamed over the
//! entry), coalescing repeated writes of one file; dropping the store (the agent stopping)
//! finishes the writes queued. An agent killed (`kill -9`) within milliseconds of a change
//! may restart with the previous good version as the file's last good one; with the file
//! also broken at that restart, that previous version is what stays in force.
//!
//! [`ManifestCache`]: crate::manifest_cache::ManifestCache
mod format;

pub(crate) use format::build_id;
pub use format::{RawEntry, decode, decode_payload, decode_view};
use format::{encode, encode_view, hash64};
use crate::state_file::write_atomic;
use policy::Cluster;
use policy::manifest::Manifests;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The view's file name (entries are named `<16 hex digits>.entry`).
const VIEW_FILE: &str = "cluster.view";
/// The subdirectory of the state directory that holds the entries.
pub const SUBDIR: &str = "manifest-cache";
/// Entries larger than this are not read (a manifest source is at most
/// [`policy::manifest::MAX_SOURCE_BYTES`]; its parsed form is about as big).
const MAX_ENTRY_BYTES: u64 = 8 * policy::manifest::MAX_SOURCE_BYTES as u64;
/// How long the cache must be quiet before the view is written.
pub const VIEW_QUIET: Duration = Duration::from_secs(1);
/// How long after start the entries' parsed content is read when the view was used and
/// nothing asked for it: after the agent's first realization, not competing with it.
pub const PARSE_DELAY: Duration = Duration::from_secs(2);

/// One file's last good version as read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The version's generation.
    pub generation: u64,
    /// The text that was parsed.
    pub text: Arc<str>,
    /// What the cache kept in force for that text.
    pub parsed: Parsed,
}

/// An entry's parsed content.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Read.
    Now(Arc<Manifests>),
    /// Written by this build, read later ([`ManifestStore::take_parsed`]).
    Later,
    /// Written by another build: parse the text again when it is needed.
    OtherBuild,
}

/// What was read from the store at open.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Each file's entry.
    pub entries: HashMap<PathBuf, Entry>,
    /// The cluster view of every entry's parsed content, in path order, as the cache would
    /// build it with every file unchanged; `None` if there is no such view (an entry was
    /// written by another build, or unusable, or the view was not written).
    pub view: Option<Cluster>,
}

impl Loaded {
    /// Whether [`Loaded::view`] is the view of exactly `files`, each unchanged.
    pub fn view_holds_for<'a>(&self, files: impl ExactSizeIterator<Item = (&'a PathBuf, Result<&'a str, &'a str>)>) -> bool {
        self.view.is_some()
            && files.len() == self.entries.len()
            && files.into_iter().all(|(p, read)| self.entries.get(p).is_some_and(|e| read == Ok(&*e.text)))
    }
}

/// The files of a view: each file's path, generation and content, in path order.
pub type ViewFiles = Vec<(PathBuf, u64, Arc<Manifests>)>;

/// The files a stored view names (path, generation), and its payload.
pub type StoredView<'a> = (Vec<(PathBuf, u64)>, &'a [u8]);

/// A write for the background thread.
enum Job {
    Put { path: PathBuf, generation: u64, text: Arc<str>, parsed: Arc<Manifests> },
    Remove { path: PathBuf },
    /// The files in force (path order) with their generations when every one is good, else
    /// `None` (no view).
    View(Option<ViewFiles>),
}

/// The background read started by [`ManifestStore::open`].
#[derive(Debug)]
struct Loading {
    /// The entries and the view.
    first: Option<mpsc::Receiver<Loaded>>,
    /// Asks for the entries' parsed content now.
    now: mpsc::Sender<()>,
    /// The entries' parsed content, when the view was used.
    later: Option<JoinHandle<HashMap<PathBuf, Arc<Manifests>>>>,
}

/// The persisted entries of one manifests directory.
#[derive(Debug)]
pub struct ManifestStore {
    dir: PathBuf,
    loading: Loading,
    writer: Option<(mpsc::Sender<Job>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Put { path, generation, .. } => write!(f, "Put({}, {generation})", path.display()),
            Job::Remove { path } => write!(f, "Remove({})", path.display()),
            Job::View(v) => write!(f, "View({:?})", v.as_ref().map(Vec::len)),
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory would be read as manifests.
    #[error("the state directory {state} is inside the manifests directory {manifests}")]
    InsideManifests {
        /// The state directory.
        state: PathBuf,
        /// The manifests directory.
        manifests: PathBuf,
    },
    /// The directory could not be created.
    #[error("creating {dir}: {source}")]
    Create {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ManifestStore {
    /// Opens (creating it if need be) the store of `manifests` (the manifests directory)
    /// under `state_dir`, and starts reading it in the background.
    pub fn open(state_dir: &Path, manifests: &Path) -> Result<ManifestStore, StoreError> {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let (state_abs, manifests_abs) = (abs(state_dir), abs(manifests));
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if state_abs.starts_with(&manifests_abs) || canonical(&state_abs).starts_with(canonical(&manifests_abs)) {
            return Err(StoreError::InsideManifests { state: state_abs, manifests: manifests_abs });
        }
        // The source names files by the absolute (not canonical) directory path.
        let dir = state_abs.join(SUBDIR).join(format!("{:016x}", hash64(manifests_abs.as_os_str().as_bytes())));
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Create { dir: dir.clone(), source })?;
        let (first_tx, first_rx) = mpsc::channel();
        let (now_tx, now_rx) = mpsc::channel();
        let later = {
            let dir = dir.clone();
            std::thread::Builder::new()
                .name("weir-cache-load".into())
                .spawn(move || load(&dir, first_tx, now_rx))
                .ok()
        };
        let loading = Loading { first: Some(first_rx), now: now_tx, later };
        let (tx, rx) = mpsc::channel();
        let writer = {
            let dir = dir.clone();
            std::thread::Builder::new().name("weir-cache-write".into()).spawn(move || write_loop(&dir, rx)).ok().map(|h| (tx, h))
        };
        Ok(ManifestStore { dir, loading, writer })
    }

    /// The directory holding this store's entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entries and the view read at open (waiting for the background read); empty after
    /// the first call.
    pub fn take_loaded(&mut self) -> Loaded {
        match self.loading.first.take().map(|rx| rx.recv()) {
            Some(Ok(loaded)) => loaded,
            Some(Err(_)) => {
                warn!(dir = %self.dir.display(), "reading the manifest cache failed; every file is parsed");
                Loaded::default()
            }
            None => Loaded::default(),
        }
    }

    /// The parsed content of the entries [`Loaded`] said [`Parsed::Later`] of (at once,
    /// waiting for it); empty after the first call. An entry missing from it could not be read.
    pub fn take_parsed(&mut self) -> HashMap<PathBuf, Arc<Manifests>> {
        let _ = self.loading.now.send(());
        match self.loading.later.take().map(JoinHandle::join) {
            Some(Ok(parsed)) => parsed,
            Some(Err(_)) => {
                warn!(dir = %self.dir.display(), "reading the manifest cache failed; the files are parsed");
                HashMap::new()
            }
            None => HashMap::new(),
        }
    }

    /// Records `parsed` as the last good version (generation `generation`) of `path`, whose
    /// text is `text` (written in the background).
    pub fn put(&self, path: &Path, generation: u64, text: Arc<str>, parsed: Arc<Manifests>) {
        self.send(Job::Put { path: path.to_path_buf(), generation, text, parsed });
    }

    /// Forgets `path`.
    pub fn remove(&self, path: &Path) {
        self.send(Job::Remove { path: path.to_path_buf() });
    }

    /// The files in force, in path order, with their generations, when every file is good
    /// (`None`: there is no view to store). Written once the store is quiet.
    pub fn set_view(&self, files: Option<ViewFiles>) {
        self.send(Job::View(files));
    }

    fn send(&self, job: Job) {
        if let Some((tx, _)) = &self.writer
            && tx.send(job).is_err()
        {
            warn!(dir = %self.dir.display(), "the manifest cache's writer stopped; the cache is not updated");
        }
    }
}

impl Drop for ManifestStore {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.writer.take() {
            drop(tx);
            let _ = handle.join();
        }
        // A loader still waiting to read parsed content stops (nobody will ask for it).
        self.loading.first.take();
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.loading.now, tx));
    }
}

/// The store the agent's [`ManifestCache`](crate::manifest_cache::ManifestCache) takes when it
/// is created with `Default` (set once by `weir agent` before the agent starts).
static INSTALLED: Mutex<Option<ManifestStore>> = Mutex::new(None);

/// Makes `store` the one the next `ManifestCache::default()` takes.
pub fn install(store: ManifestStore) {
    *INSTALLED.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
}

/// The installed store, if any; the next call returns `None`.
pub fn take_installed() -> Option<ManifestStore> {
    INSTALLED.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The file name of `path`'s entry.
fn entry_name(path: &Path) -> String {
    format!("{:016x}.entry", hash64(path.as_os_str().as_bytes()))
}

/// Reads a file of the store, refusing one over [`MAX_ENTRY_BYTES`].
fn read_file(file: &Path) -> Result<Vec<u8>, String> {
    match std::fs::metadata(file) {
        Ok(m) if m.len() > MAX_ENTRY_BYTES => Err(format!("{} bytes is over the limit", m.len())),
        Ok(_) => std::fs::read(file).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The background read: entries and view, sent on `first`; then, if the view is usable, the
/// entries' parsed content (after [`PARSE_DELAY`] or when `now` says so), returned.
fn load(dir: &Path, first: mpsc::Sender<Loaded>, now: mpsc::Receiver<()>) -> HashMap<PathBuf, Arc<Manifests>> {
    let started = Instant::now();
    // The view is read (and parsed) beside the entries, then checked against them.
    let (raw, view) = std::thread::scope(|scope| {
        let view = std::thread::Builder::new().name("weir-cache-view".into()).spawn_scoped(scope, || read_view(dir));
        let raw = load_entries(dir);
        let view = match view {
            Ok(handle) => handle.join().ok().flatten(),
            Err(_) => read_view(dir),
        };
        (raw, view)
    });
    let view = view.and_then(|(files, view)| {
        let matches = files.len() == raw.len()
            && files.iter().all(|(p, g)| raw.get(p).is_some_and(|e| e.generation == *g && e.payload.is_some()));
        // Not an error if not: the files changed after the view was written.
        matches.then_some(view)
    });
    let stale = raw.values().filter(|e| e.payload.is_none()).count();
    if let Some(view) = view {
        info!(entries = raw.len(), elapsed_ms = ms(started), "manifest cache read (view)");
        let entries = raw
            .iter()
            .map(|(p, e)| (p.clone(), Entry { generation: e.generation, text: e.text.clone(), parsed: Parsed::Later }))
            .collect();
        if first.send(Loaded { entries, view: Some(view) }).is_err() {
            return HashMap::new();
        }
        if let Err(mpsc::RecvTimeoutError::Disconnected) = now.recv_timeout(PARSE_DELAY) {
            return HashMap::new();
        }
        let started = Instant::now();
        let parsed = parse_payloads(dir, raw).into_iter().filter_map(|(p, (_, m))| Some((p, m?))).collect();
        info!(elapsed_ms = ms(started), "manifest cache's entries read");
        return parsed;
    }
    let parsed = parse_payloads(dir, raw);
    let entries: HashMap<PathBuf, Entry> = parsed
        .into_iter()
        .map(|(p, (e, m))| {
            let parsed = m.map_or(Parsed::OtherBuild, Parsed::Now);
            (p, Entry { generation: e.generation, text: e.text, parsed })
        })
        .collect();
    // Without a stored view, the view of the entries is built here, while the agent starts.
    let view = (stale == 0).then(|| {
        let mut parts: Vec<(&PathBuf, &Manifests)> =
            entries.iter().filter_map(|(p, e)| if let Parsed::Now(m) = &e.parsed { Some((p, &**m)) } else { None }).collect();
        parts.sort_by(|a, b| a.0.cmp(b.0));
        Cluster::from_parts(&parts.into_iter().map(|(_, m)| m).collect::<Vec<_>>())
    });
    info!(entries = entries.len(), from_another_build = stale, elapsed_ms = ms(started), "manifest cache read");
    let _ = first.send(Loaded { entries, view });
    HashMap::new()
}

/// Parses each entry's payload (`None` for another build's); an entry whose payload cannot
/// be parsed is removed (and said so), and left out.
fn parse_payloads(dir: &Path, raw: HashMap<PathBuf, RawEntry>) -> HashMap<PathBuf, (RawEntry, Option<Arc<Manifests>>)> {
    raw.into_iter()
        .filter_map(|(path, e)| {
            let parsed = match &e.payload {
                Some(p) => match decode_payload(p) {
                    Ok(m) => Some(Arc::new(m)),
                    Err(why) => {
                        let file = dir.join(entry_name(&path));
                        warn!(entry = %file.display(), "manifest cache entry ignored and removed: {why}");
                        let _ = std::fs::remove_file(&file);
                        return None;
                    }
                },
                None => None,
            };
            Some((path, (e, parsed)))
        })
        .collect()
}

/// Reads every entry of `dir` (not their payloads); unusable ones are removed (and said so).
fn load_entries(dir: &Path) -> HashMap<PathBuf, RawEntry> {
    let mut entries = HashMap::new();
    let Ok(listing) = std::fs::read_dir(dir) else { return entries };
    for item in listing.flatten() {
        let file = item.path();
        let name = item.file_name();
        // A temporary file is the writer's (being written, or left by a crash: the writer
        // removes those before its first write); removing it here could race a rename.
        if file.extension() == Some(OsStr::new("tmp")) || name == VIEW_FILE {
            continue;
        }
        let decoded = read_file(&file).and_then(|bytes| decode(&bytes)).and_then(|(path, entry)| {
            if entry_name(&path).as_str() == name.to_string_lossy() {
                Ok((path, entry))
            } else {
                Err(format!("names {}, whose entry this is not", path.display()))
            }
        });
        match decoded {
            Ok((path, entry)) => {
                entries.insert(path, entry);
            }
            Err(why) => {
                warn!(entry = %file.display(), "manifest cache entry ignored and removed: {why}");
                let _ = std::fs::remove_file(&file);
            }
        }
    }
    entries
}

/// The stored view, if this build wrote it and it reads back consistent, with the entries
/// (paths and generations) it was built from.
fn read_view(dir: &Path) -> Option<(Vec<(PathBuf, u64)>, Cluster)> {
    let file = dir.join(VIEW_FILE);
    let bytes = match read_file(&file) {
        Ok(b) => b,
        Err(_) if !file.exists() => return None,
        Err(why) => {
            warn!(view = %file.display(), "manifest cache view ignored: {why}");
            return None;
        }
    };
    let why = match decode_view(&bytes) {
        Ok(None) => "written by another build".to_string(),
        Ok(Some((files, payload))) => match Cluster::from_stored(payload) {
            Ok(view) => return Some((files, view)),
            Err(e) => e,
        },
        Err(e) => e,
    };
    warn!(view = %file.display(), "manifest cache view ignored and removed: {why}");
    let _ = std::fs::remove_file(&file);
    None
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The writer thread: applies entry jobs in order, keeping only the last job per file of each
/// batch received together, and writes the view once no job came for [`VIEW_QUIET`] (or the
/// store is dropped).
fn write_loop(dir: &Path, rx: mpsc::Receiver<Job>) {
    remove_temporary_files(dir);
    let mut view: Option<Option<ViewFiles>> = None;
    loop {
        let first = match view.is_some() {
            true => match rx.recv_timeout(VIEW_QUIET) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    write_view(dir, view.take().flatten());
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    write_view(dir, view.take().flatten());
                    return;
                }
            },
            false => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut batch: BTreeMap<PathBuf, Job> = BTreeMap::new();
        for job in std::iter::once(first).chain(rx.try_iter()) {
            match job {
                Job::View(v) => view = Some(v),
                Job::Put { ref path, .. } | Job::Remove { ref path } => {
                    batch.insert(path.clone(), job);
                }
            }
        }
        for (path, job) in batch {
            let file = dir.join(entry_name(&path));
            let result = match job {
                Job::Put { generation, text, parsed, .. } => {
                    encode(&path, generation, &text, &parsed).map_err(|e| e.to_string()).and_then(|b| write_atomic(&file, &b))
                }
                Job::Remove { .. } => remove(&file),
                Job::View(_) => Ok(()),
            };
            if let Err(e) = result {
                warn!(file = %path.display(), entry = %file.display(), "manifest cache not updated: {e}");
            }
        }
    }
}

/// Removes what a writer that crashed mid-write left behind.
fn remove_temporary_files(dir: &Path) {
    let Ok(listing) = std::fs::read_dir(dir) else { return };
    for file in listing.flatten().map(|item| item.path()) {
        if file.extension() == Some(OsStr::new("tmp")) {
            let _ = std::fs::remove_file(&file);
        }
    }
}

/// Writes the view of `files` (or removes the view).
fn write_view(dir: &Path, files: Option<ViewFiles>) {
    let file = dir.join(VIEW_FILE);
    let result = match files {
        None => remove(&file),
        Some(files) => {
            let parts: Vec<&Manifests> = files.iter().map(|(_, _, m)| &**m).collect();
            let view = Cluster::from_parts(&parts);
            let list: Vec<(PathBuf, u64)> = files.iter().map(|(p, g, _)| (p.clone(), *g)).collect();
            encode_view(&list, &view).map_err(|e| e.to_string()).and_then(|b| write_atomic(&file, &b))
        }
    };
    if let Err(e) = result {
        warn!(view = %file.display(), "manifest cache view not updated: {e}");
    }
}

fn remove(file: &Path) -> Result<(), String> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {}: {e}", file.display())),
        _ => Ok(()),
    }
}

/// Rewrites the entry or view `file` as if another build of weir had written it (tests).
#[cfg(test)]
pub(crate) fn as_if_from_another_build(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[format::MAGIC.len() + 4 + 8] ^= 0x20;
    let body = bytes.len() - 8;
    let sum = hash64(&bytes[..body]);
    bytes[body..].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(file, bytes).unwrap();
}

/// The entry file of `path` in `store` (tests).
#[cfg(test)]
pub(crate) fn entry_file(store: &ManifestStore, path: &Path) -> PathBuf {
    store.dir.join(entry_name(path))
}

/// The view file of `store` (tests).
#[cfg(test)]
pub(crate) fn view_file(store: &ManifestStore) -> PathBuf {
    store.dir.join(VIEW_FILE)
}

#[cfg(test)]
mod tests;
