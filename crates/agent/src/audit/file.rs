//! The audit log file: lines appended, rotated by size. When a line would take the file past
//! its bound, `PATH` becomes `PATH.1` (`PATH.1` becomes `PATH.2`, ...; the oldest beyond the
//! kept number is removed) and a new `PATH` is begun, so the log never takes more than
//! `max_bytes × (backups + 1)` on disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where and how big the audit log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The file lines go to.
    pub path: PathBuf,
    /// The most bytes one file holds.
    pub max_bytes: u64,
    /// How many rotated files are kept.
    pub backups: usize,
}

/// The open log file and its size.
#[derive(Debug)]
pub struct LogFile {
    rotation: Rotation,
    file: Option<(File, u64)>,
}

impl LogFile {
    /// A log at `rotation.path`, opened (and its directory created) at the first line.
    pub fn new(rotation: Rotation) -> LogFile {
        LogFile { rotation, file: None }
    }

    /// Appends `line` (a newline is added), rotating first if it would not fit.
    pub fn append(&mut self, line: &str) -> std::io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.file.as_ref().is_some_and(|(_, size)| *size > 0 && size + len > self.rotation.max_bytes) {
            self.file = None;
            self.rotate()?;
        }
        let (file, size) = match &mut self.file {
            Some(open) => open,
            None => self.file.insert(open(&self.rotation.path)?),
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let written = file.write_all(&buf);
        if written.is_err() {
            // Opened again (and its size read again) at the next line.
            self.file = None;
        } else {
            *size += len;
        }
        written
    }

    /// Shifts `PATH.n` to `PATH.n+1` (dropping the last) and `PATH` to `PATH.1`.
    fn rotate(&self) -> std::io::Result<()> {
        let Rotation { path, backups, .. } = &self.rotation;
        if *backups == 0 {
            return remove_if_present(path);
        }
        remove_if_present(&numbered(path, *backups))?;
        for n in (1..*backups).rev() {
            rename_if_present(&numbered(path, n), &numbered(path, n + 1))?;
        }
        rename_if_present(path, &numbered(path, 1))
    }
}

fn open(path: &Path) -> std::io::Result<(File, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// `PATH.n`.
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_rotates_and_only_the_kept_number_of_old_files_remain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let mut log = LogFile::new(Rotation { path: path.clone(), max_bytes: 20, backups: 2 });
        for i in 0..10 {
            log.append(&format!("line {i:04}")).unwrap(); // 10 bytes with the newline
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "line 0008\nline 0009\n");
        assert_eq!(read(&numbered(&path, 1)), "line 0006\nline 0007\n");
        assert_eq!(read(&numbered(&path, 2)), "line 0004\nline 0005\n");
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn an_existing_file_is_appended_to_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "old line\n").unwrap();
        let mut log = LogFile::new(Rotation { path: path.clone(), max_bytes: 15, backups: 1 });
        log.append("new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old line\nnew\n");
        log.append("newer").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "newer\n");
        assert_eq!(std::fs::read_to_string(numbered(&path, 1)).unwrap(), "old line\nnew\n");
    }

    #[test]
    fn an_unwritable_place_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let mut log = LogFile::new(Rotation { path: blocker.join("audit.log"), max_bytes: 100, backups: 1 });
        assert!(log.append("x").is_err());
    }
}
