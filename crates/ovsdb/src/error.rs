//! The crate's one error type.
use serde_json::Value;

/// What went wrong talking to OVSDB or validating a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The connection target is not `unix:PATH` or `tcp:HOST:PORT`.
    #[error("invalid OVSDB target {0:?}: expected unix:PATH or tcp:HOST:PORT")]
    Target(String),
    /// Connecting, reading or writing failed.
    #[error("OVSDB I/O error: {0}")]
    Io(String),
    /// The connection closed while the call was in flight; whether it took effect is unknown.
    #[error("OVSDB connection lost while {0} was in flight")]
    Disconnected(String),
    /// The server sent something this client cannot interpret.
    #[error("OVSDB protocol error: {0}")]
    Protocol(String),
    /// The server answered a call with an error.
    #[error("OVSDB {method} failed: {error}")]
    Rpc {
        /// The method called.
        method: String,
        /// The server's error value.
        error: Value,
    },
    /// A transaction was rejected (RFC 7047 §5.2: the first failing operation's error).
    #[error("{0}")]
    Transaction(#[from] TransactionError),
    /// Bad input: the object and field are named.
    #[error("{object}: field `{field}`: {reason}")]
    Invalid {
        /// The object, e.g. `port "vx0"`.
        object: String,
        /// The field of that object, e.g. `remote_ip`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A deadline passed.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The client's connection task has stopped.
    #[error("OVSDB client is closed")]
    Closed,
}

impl Error {
    /// A bad-input error.
    pub fn invalid(object: impl Into<String>, field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid { object: object.into(), field: field.into(), reason: reason.into() }
    }

    /// The field named by a bad-input error.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A failed transaction: which operation failed and the server's error and details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transaction failed at operation {index} ({op}): {error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct TransactionError {
    /// Index of the failing operation (== the number of operations for a commit failure).
    pub index: usize,
    /// The failing operation's `op`, or `commit`.
    pub op: String,
    /// The RFC 7047 error kind (`constraint violation`, `referential integrity violation`...).
    pub error: String,
    /// The server's explanation.
    pub details: Option<String>,
}
