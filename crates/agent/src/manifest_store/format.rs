//! The store's files as bytes: a magic, the format, the build that wrote it, length-prefixed
//! fields and a checksum over all of it. Reading never panics, whatever the bytes.
use super::StoredView;
use policy::Cluster;
use policy::manifest::Manifests;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first bytes of every entry.
pub(super) const MAGIC: &[u8; 20] = b"weir manifest cache\n";
/// The first bytes of the view.
pub(super) const VIEW_MAGIC: &[u8; 20] = b"weir manifest view\n\n";
/// Bumped whenever the layout or the meaning of a payload changes.
pub(super) const FORMAT: u32 = 3;

/// This build's identity: an entry written by another build is not trusted to hold what this
/// build's parser would make of its text.
pub(crate) fn build_id() -> &'static str {
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
pub(super) fn hash64(bytes: &[u8]) -> u64 {
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

/// Frames `fields` after `magic`, the format and the build, with a checksum.
fn frame(magic: &[u8; 20], fields: &[&[u8]]) -> Vec<u8> {
    let build = build_id().as_bytes();
    let mut out = Vec::with_capacity(64 + build.len() + fields.iter().map(|f| f.len() + 8).sum::<usize>());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    for field in std::iter::once(build).chain(fields.iter().copied()) {
        out.extend_from_slice(&(field.len() as u64).to_le_bytes());
        out.extend_from_slice(field);
    }
    let sum = hash64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Checks the frame of `bytes` (magic, format, checksum) and returns whether this build wrote
/// it, and a reader at its first field.
fn unframe<'a>(magic: &[u8; 20], bytes: &'a [u8]) -> Result<(bool, Reader<'a>), String> {
    let body_len = bytes.len().checked_sub(8).ok_or("shorter than its checksum")?;
    let (body, sum) = bytes.split_at(body_len);
    let sum = u64::from_le_bytes(sum.try_into().map_err(|_| "no checksum")?);
    let mut r = Reader(body);
    if r.take(magic.len())? != magic {
        return Err("not a manifest cache file of this kind".into());
    }
    let format = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| "no format")?);
    if format != FORMAT {
        return Err(format!("format {format}, not {FORMAT}"));
    }
    if hash64(body) != sum {
        return Err("checksum mismatch (corrupt or truncated)".into());
    }
    let build = r.field()?;
    Ok((build == build_id().as_bytes(), r))
}

/// An entry as bytes.
pub(super) fn encode(path: &Path, generation: u64, text: &str, parsed: &Manifests) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(parsed)?;
    Ok(frame(MAGIC, &[path.as_os_str().as_bytes(), &generation.to_le_bytes(), text.as_bytes(), &payload]))
}

/// An entry read from disk, its payload not parsed yet.
#[derive(Debug)]
pub struct RawEntry {
    /// The version's generation.
    pub generation: u64,
    /// The text.
    pub text: Arc<str>,
    /// The parsed content as JSON, if this build wrote it.
    pub payload: Option<Vec<u8>>,
}

/// Reads an entry's bytes: the path it is for and its content, or why it cannot be used.
/// Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<(PathBuf, RawEntry), String> {
    let (this_build, mut r) = unframe(MAGIC, bytes)?;
    let path = PathBuf::from(OsStr::from_bytes(r.field()?));
    let generation = u64::from_le_bytes(r.field()?.try_into().map_err(|_| "generation is not 8 bytes")?);
    let text = std::str::from_utf8(r.field()?).map_err(|_| "text is not UTF-8")?;
    let payload = r.field()?;
    r.end()?;
    // Another build's parser may have made something else of the text: keep only the text.
    Ok((path, RawEntry { generation, text: Arc::from(text), payload: this_build.then(|| payload.to_vec()) }))
}

/// An entry's parsed content.
pub fn decode_payload(payload: &[u8]) -> Result<Manifests, String> {
    serde_json::from_slice::<Manifests>(payload).map_err(|e| format!("payload: {e}"))
}

/// The view as bytes: the files it was built from, with their generations, and the view.
pub(super) fn encode_view(files: &[(PathBuf, u64)], view: &Cluster) -> Result<Vec<u8>, serde_json::Error> {
    let payload = view.to_stored()?;
    let mut list = Vec::new();
    for (path, generation) in files {
        let p = path.as_os_str().as_bytes();
        list.extend_from_slice(&(p.len() as u64).to_le_bytes());
        list.extend_from_slice(p);
        list.extend_from_slice(&generation.to_le_bytes());
    }
    Ok(frame(VIEW_MAGIC, &[&list, &payload]))
}

/// Reads the view's bytes: the files it was built from and its payload, if this build wrote
/// it. Never panics, whatever the bytes.
pub fn decode_view(bytes: &[u8]) -> Result<Option<StoredView<'_>>, String> {
    let (this_build, mut r) = unframe(VIEW_MAGIC, bytes)?;
    let mut list = Reader(r.field()?);
    let payload = r.field()?;
    r.end()?;
    let mut files = Vec::new();
    while !list.0.is_empty() {
        let path = PathBuf::from(OsStr::from_bytes(list.field()?));
        files.push((path, list.u64_field()?));
    }
    Ok(this_build.then_some((files, payload)))
}

/// A bounds-checked reader over a file's bytes.
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

    fn u64_field(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "truncated")?))
    }

    /// A field: its length (u64, little endian), then its bytes.
    fn field(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.u64_field()?).map_err(|_| "field length out of range")?;
        self.take(len)
    }

    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() { Ok(()) } else { Err("trailing bytes".into()) }
    }
}

