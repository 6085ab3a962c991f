//! Files the agent keeps (the manifest store's entries, the realization record, the CNI
//! configuration), written whole: a reader (another agent start, the container runtime) sees
//! the old content or the new, never a part.

use std::path::Path;

/// Writes `bytes` to `file` through a temporary file beside it (`file` with the extension
/// `tmp`) renamed over it.
pub(crate) fn write_atomic(file: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file).map_err(|e| format!("renaming {} over {}: {e}", tmp.display(), file.display()))
}
