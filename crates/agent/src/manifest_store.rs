//! The manifest cache's persisted half: each manifest file's last good content, parsed, kept
//! across agent restarts, so that a restarted agent does not parse the YAML it parsed before
//! (parsing a 10k-pod cluster is most of a restart's cost) and a file that is broken at
//! restart keeps its last good version in force, exactly as it would have without the restart.
//!
//! # What is stored
//!
//! One entry per manifest file, under `STATE_DIR/manifest-cache/D/` where `D` names the
//! manifests directory (two agents never share entries), written after the file's text was
//! parsed and found good: the file's path, its text, and what the [`ManifestCache`] keeps in
//! force for it (the parsed objects, after [`Manifests::keep_last_valid`]), as JSON. A file
//! whose text is broken leaves its entry alone (the entry is its last good version); a deleted
//! file loses its entry (deletion is intentional), also when it was deleted while the agent
//! was not running.
//!
//! # When an entry is used
//!
//! Never blindly. An entry is read only if its magic, format version and checksum (over the
//! whole entry) are right and it names the file it is stored for; otherwise it is ignored
//! (and removed) and the file is parsed as if there were no entry. Its parsed objects are used
//! only if the entry was written by this very build of weir (version and executable), and
//! only when the file's text is byte for byte the entry's text; a file whose text differs is
//! parsed again, with the entry as its last good version. An entry from another build keeps
//! its text: when that last good version is needed (the file changed) it is parsed again by
//! this build. Nothing read from disk can make the agent panic: every length is checked, and
//! the payload is JSON read by serde.
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
use policy::Cluster;
use policy::manifest::Manifests;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use tracing::{info, warn};

/// The first bytes of every entry.
const MAGIC: &[u8; 20] = b"weir manifest cache\n";
/// Bumped whenever the entry layout or the meaning of its payload changes.
const FORMAT: u32 = 1;
/// The subdirectory of the state directory that holds the entries.
pub const SUBDIR: &str = "manifest-cache";
/// Entries larger than this are not read (a manifest source is at most
/// [`policy::manifest::MAX_SOURCE_BYTES`]; its parsed form is about as big).
const MAX_ENTRY_BYTES: u64 = 8 * policy::manifest::MAX_SOURCE_BYTES as u64;

/// One file's last good version as read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The text that was parsed.
    pub text: Arc<str>,
    /// What the cache kept in force for that text, if the entry was written by this build
    /// (`None`: parse `text` again when it is needed).
    pub parsed: Option<Arc<Manifests>>,
}

/// A write for the background thread.
enum Job {
    Put { path: PathBuf, text: Arc<str>, parsed: Arc<Manifests> },
    Remove { path: PathBuf },
}

/// The persisted entries of one manifests directory.
#[derive(Debug)]
pub struct ManifestStore {
    dir: PathBuf,
    /// Entries being read in the background since [`ManifestStore::open`].
    loading: Option<JoinHandle<Loaded>>,
    writer: Option<(mpsc::Sender<Job>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Put { path, .. } => write!(f, "Put({})", path.display()),
            Job::Remove { path } => write!(f, "Remove({})", path.display()),
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
    /// under `state_dir`, and starts reading its entries in the background.
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
        let loading = {
            let dir = dir.clone();
            std::thread::Builder::new().name("weir-cache-load".into()).spawn(move || load_all(&dir)).ok()
        };
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

    /// The entries read at open (waiting for the background read to finish); empty after the
    /// first call.
    pub fn take_loaded(&mut self) -> Loaded {
        match self.loading.take().map(JoinHandle::join) {
            Some(Ok(loaded)) => loaded,
            Some(Err(_)) => {
                warn!(dir = %self.dir.display(), "reading the manifest cache failed; every file is parsed");
                Loaded::default()
            }
            None => Loaded::default(),
        }
    }

    /// Records `parsed` as the last good version of `path`, whose text is `text` (written in
    /// the background).
    pub fn put(&self, path: &Path, text: Arc<str>, parsed: Arc<Manifests>) {
        self.send(Job::Put { path: path.to_path_buf(), text, parsed });
    }

    /// Forgets `path`.
    pub fn remove(&self, path: &Path) {
        self.send(Job::Remove { path: path.to_path_buf() });
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

/// This build's identity: an entry written by another build is not trusted to hold what this
/// build's parser would make of its text.
fn build_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let exe = std::env::current_exe().and_then(std::fs::metadata);
        let exe = exe.map_or_else(|e| format!("unknown executable ({e})"), |m| format!("{} {} {}.{}", m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
        format!("weir {} format {FORMAT} exe {exe}", env!("CARGO_PKG_VERSION"))
    })
}

/// A 64-bit hash of `bytes` (FxHash's step on 8-byte words, then a final mix): every change
/// of one word changes the result, as each step is a bijection of the state.
fn hash64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in words.by_ref() {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    // splitmix64's finalizer
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// An entry as bytes.
fn encode(path: &Path, text: &str, parsed: &Manifests) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(parsed)?;
    let (build, path) = (build_id().as_bytes(), path.as_os_str().as_bytes());
    let mut out = Vec::with_capacity(64 + build.len() + path.len() + text.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    for field in [build, path, text.as_bytes(), &payload] {
        out.extend_from_slice(&(field.len() as u64).to_le_bytes());
        out.extend_from_slice(field);
    }
    let sum = hash64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// Reads an entry's bytes: the path it is for and its content, or why it cannot be used.
/// Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<(PathBuf, Entry), String> {
    let body_len = bytes.len().checked_sub(8).ok_or("shorter than its checksum")?;
    let (body, sum) = bytes.split_at(body_len);
    let sum = u64::from_le_bytes(sum.try_into().map_err(|_| "no checksum")?);
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a manifest cache entry".into());
    }
    let format = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| "no format")?);
    if format != FORMAT {
        return Err(format!("format {format}, not {FORMAT}"));
    }
    if hash64(body) != sum {
        return Err("checksum mismatch (corrupt or truncated)".into());
    }
    let build = r.field()?;
    let path = PathBuf::from(OsStr::from_bytes(r.field()?));
    let text = std::str::from_utf8(r.field()?).map_err(|_| "text is not UTF-8")?;
    let payload = r.field()?;
    if !r.0.is_empty() {
        return Err("trailing bytes".into());
    }
    // Another build's parser may have made something else of the text: keep only the text.
    let parsed = if build == build_id().as_bytes() {
        match serde_json::from_slice::<Manifests>(payload) {
            Ok(m) => Some(Arc::new(m)),
            Err(e) => return Err(format!("payload: {e}")),
        }
    } else {
        None
    };
    Ok((path, Entry { text: Arc::from(text), parsed }))
}

/// A bounds-checked reader over an entry's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// A field: its length (u64, little endian), then its bytes.
    fn field(&mut self) -> Result<&'a [u8], String> {
        let len = u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "truncated")?);
        let len = usize::try_from(len).map_err(|_| "field length out of range")?;
        self.take(len)
    }
}

/// What was read from the store at open.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Each file's entry.
    pub entries: HashMap<PathBuf, Entry>,
    /// The cluster view of every entry's parsed content, in path order, as the cache would
    /// build it if every file is unchanged (`None` if an entry was written by another build).
    /// Built in the background while the agent starts.
    pub view: Option<Cluster>,
}

impl Loaded {
    /// Whether [`Loaded::view`] is the view of exactly `files` (in this order), each unchanged.
    pub fn view_holds_for<'a>(&self, files: impl ExactSizeIterator<Item = (&'a PathBuf, Result<&'a str, &'a str>)>) -> bool {
        self.view.is_some()
            && files.len() == self.entries.len()
            && files.into_iter().all(|(p, read)| self.entries.get(p).is_some_and(|e| read == Ok(&*e.text)))
    }
}

/// Reads every entry of `dir` (unusable ones are removed, and said so), then builds the
/// view they make together.
fn load_all(dir: &Path) -> Loaded {
    let entries = load_entries(dir);
    let started = std::time::Instant::now();
    let mut parts: Vec<(&PathBuf, &Manifests)> = Vec::with_capacity(entries.len());
    for (path, entry) in &entries {
        match &entry.parsed {
            Some(m) => parts.push((path, m)),
            None => return Loaded { entries, view: None },
        }
    }
    parts.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<&Manifests> = parts.into_iter().map(|(_, m)| m).collect();
    let view = Cluster::from_parts(&parts);
    info!(elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "manifest cache's view built");
    Loaded { entries, view: Some(view) }
}

fn load_entries(dir: &Path) -> HashMap<PathBuf, Entry> {
    let started = std::time::Instant::now();
    let mut entries = HashMap::new();
    let Ok(listing) = std::fs::read_dir(dir) else { return entries };
    let (mut stale, mut ignored) = (0usize, 0usize);
    for item in listing.flatten() {
        let file = item.path();
        let name = item.file_name();
        if file.extension() == Some(OsStr::new("tmp")) {
            let _ = std::fs::remove_file(&file);
            continue;
        }
        let read = match item.metadata() {
            Ok(m) if m.len() > MAX_ENTRY_BYTES => Err(format!("{} bytes is over the limit", m.len())),
            Ok(_) => std::fs::read(&file).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let decoded = read.and_then(|bytes| decode(&bytes)).and_then(|(path, entry)| {
            if entry_name(&path).as_str() == name.to_string_lossy() {
                Ok((path, entry))
            } else {
                Err(format!("names {}, whose entry this is not", path.display()))
            }
        });
        match decoded {
            Ok((path, entry)) => {
                stale += usize::from(entry.parsed.is_none());
                entries.insert(path, entry);
            }
            Err(why) => {
                ignored += 1;
                warn!(entry = %file.display(), "manifest cache entry ignored and removed: {why}");
                let _ = std::fs::remove_file(&file);
            }
        }
    }
    info!(entries = entries.len(), from_another_build = stale, ignored, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "manifest cache read");
    entries
}

/// The writer thread: applies jobs in order, keeping only the last job per file of each
/// batch received together.
fn write_loop(dir: &Path, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch: BTreeMap<PathBuf, Job> = BTreeMap::new();
        for job in std::iter::once(first).chain(rx.try_iter()) {
            let path = match &job {
                Job::Put { path, .. } | Job::Remove { path } => path.clone(),
            };
            batch.insert(path, job);
        }
        for (path, job) in batch {
            let file = dir.join(entry_name(&path));
            let result = match job {
                Job::Put { text, parsed, .. } => write_entry(&file, &path, &text, &parsed),
                Job::Remove { .. } => match std::fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                    _ => Ok(()),
                },
            };
            if let Err(e) = result {
                warn!(file = %path.display(), entry = %file.display(), "manifest cache not updated: {e}");
            }
        }
    }
}

fn write_entry(file: &Path, path: &Path, text: &str, parsed: &Manifests) -> Result<(), String> {
    let bytes = encode(path, text, parsed).map_err(|e| e.to_string())?;
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file).map_err(|e| format!("renaming {} over {}: {e}", tmp.display(), file.display()))
}

/// Rewrites the entry `file` as if another build of weir had written it (tests).
#[cfg(test)]
pub(crate) fn as_if_from_another_build(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[MAGIC.len() + 4 + 8] ^= 0x20;
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

#[cfg(test)]
mod tests {
    use super::*;
    use policy::manifest::file::parse_file;

    const PODS: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: a}}\n  ingress:\n  - from: [{podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [b, c]}]}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]\n    ports: [{port: http}, {port: 80, endPort: 90, protocol: UDP}]\n";

    fn parsed() -> Manifests {
        parse_file("/m/pods.yaml", PODS).unwrap()
    }

    #[test]
    fn an_entry_round_trips_with_everything_it_holds() {
        let m = parsed();
        let bytes = encode(Path::new("/m/pods.yaml"), PODS, &m).unwrap();
        let (path, entry) = decode(&bytes).unwrap();
        assert_eq!(path, Path::new("/m/pods.yaml"));
        assert_eq!(&*entry.text, PODS);
        assert_eq!(entry.parsed.as_deref(), Some(&m));
    }

    #[test]
    fn any_flipped_bit_or_truncation_is_caught() {
        let bytes = encode(Path::new("/m/pods.yaml"), PODS, &parsed()).unwrap();
        for i in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 1 << (i % 8);
            assert!(decode(&b).is_err(), "bit flip at {i} went unnoticed");
        }
        for n in (0..bytes.len()).step_by(13) {
            assert!(decode(&bytes[..n]).is_err(), "truncation to {n} went unnoticed");
        }
    }

    #[test]
    fn an_entry_of_another_build_keeps_only_its_text() {
        let m = parsed();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("e");
        std::fs::write(&file, encode(Path::new("/m/pods.yaml"), PODS, &m).unwrap()).unwrap();
        as_if_from_another_build(&file);
        let (_, entry) = decode(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(&*entry.text, PODS);
        assert_eq!(entry.parsed, None);
    }

    /// Random bytes, and valid entries with random changes behind a recomputed checksum
    /// (so that the reader past the checksum is exercised too), never panic.
    #[test]
    fn random_bytes_never_panic() {
        let mut rng = policy::synthetic::Rng::new(7);
        let valid = encode(Path::new("/m/pods.yaml"), PODS, &parsed()).unwrap();
        for round in 0..3000 {
            let mut b = if round % 3 == 0 {
                (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>()
            } else {
                let mut b = valid.clone();
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(b.len());
                    match rng.below(3) {
                        0 => b[i] = rng.next_u64() as u8,
                        1 => {
                            b.remove(i);
                        }
                        _ => b.insert(i, rng.next_u64() as u8),
                    }
                }
                b
            };
            if round % 3 == 2 && b.len() > 8 {
                let body = b.len() - 8;
                let sum = hash64(&b[..body]);
                b[body..].copy_from_slice(&sum.to_le_bytes());
            }
            let _ = decode(&b);
        }
    }

    #[test]
    fn entries_are_written_read_back_and_removed() {
        let state = tempfile::tempdir().unwrap();
        let m = Arc::new(parsed());
        let mut store = ManifestStore::open(state.path(), Path::new("/m")).unwrap();
        assert!(store.take_loaded().entries.is_empty());
        store.put(Path::new("/m/pods.yaml"), Arc::from(PODS), m.clone());
        store.put(Path::new("/m/other.yaml"), Arc::from(""), Arc::new(Manifests::default()));
        store.remove(Path::new("/m/other.yaml"));
        drop(store);
        let mut store = ManifestStore::open(state.path(), Path::new("/m")).unwrap();
        let loaded = store.take_loaded();
        assert_eq!(loaded.entries.len(), 1, "{loaded:?}");
        assert_eq!(loaded.entries[Path::new("/m/pods.yaml")], Entry { text: Arc::from(PODS), parsed: Some(m.clone()) });
        assert_eq!(loaded.view, Some(Cluster::from_manifests((*m).clone())));
        // Another manifests directory has its own entries.
        let mut other = ManifestStore::open(state.path(), Path::new("/n")).unwrap();
        assert!(other.take_loaded().entries.is_empty());
    }

    #[test]
    fn a_corrupt_entry_file_is_ignored_and_removed() {
        let state = tempfile::tempdir().unwrap();
        let store = ManifestStore::open(state.path(), Path::new("/m")).unwrap();
        let dir = store.dir().to_path_buf();
        store.put(Path::new("/m/pods.yaml"), Arc::from(PODS), Arc::new(parsed()));
        drop(store);
        let file = dir.join(entry_name(Path::new("/m/pods.yaml")));
        let mut bytes = std::fs::read(&file).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        // An entry stored under another file's name, and garbage.
        std::fs::copy(&file, dir.join(entry_name(Path::new("/m/x.yaml")))).unwrap();
        std::fs::write(dir.join("junk.entry"), b"\x00\x01garbage").unwrap();
        let mut store = ManifestStore::open(state.path(), Path::new("/m")).unwrap();
        assert!(store.take_loaded().entries.is_empty());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "unusable entries are removed");
    }

    #[test]
    fn the_state_directory_may_not_be_inside_the_manifests_directory() {
        let m = tempfile::tempdir().unwrap();
        let err = ManifestStore::open(&m.path().join("state"), m.path()).unwrap_err();
        assert!(matches!(err, StoreError::InsideManifests { .. }), "{err}");
    }
}
