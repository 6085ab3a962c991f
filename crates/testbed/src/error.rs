//! The testbed's error type: every variant names the object it is about.
use crate::command::CommandError;
use std::path::PathBuf;

/// Something the testbed could not do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external tool failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Bad input (model, option, manifest file name), naming the object and field.
    #[error("{object}: {field}: {message}")]
    Invalid {
        /// What the input describes, e.g. `model testbed/standard.yaml`.
        object: String,
        /// The field at fault, e.g. `pods.x/a.node`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No testbed state in this directory.
    #[error("no testbed is up in {0} (no testbed.json); run `weir testbed up` first")]
    NotUp(PathBuf),
    /// A testbed is already up with a different configuration.
    #[error("a testbed is already up in {dir} with a different {what}; run `weir testbed down` first")]
    Conflict {
        /// Its state directory.
        dir: PathBuf,
        /// What differs.
        what: String,
    },
    /// No pod (or node) of that name.
    #[error("no pod or node {0:?} in this testbed (pods are named namespace/name)")]
    NoSuchTarget(String),
    /// A process the testbed started is not running.
    #[error("{what} is not running; its log {log} ends with:\n{tail}")]
    Died {
        /// Which process, e.g. `agent of node-1`.
        what: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// Waiting for something timed out.
    #[error("timed out after {seconds:.1} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        seconds: f64,
    },
    /// A socket operation of a probe or of the spoofing helper failed.
    #[error("{what}: {source}")]
    Socket {
        /// What was attempted, with the pod and address.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Bad input.
    pub fn invalid(object: impl Into<String>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { object: object.into(), field: field.into(), message: message.into() }
    }

    /// A failed socket operation.
    pub fn socket(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Socket { what: what.into(), source }
    }
}
