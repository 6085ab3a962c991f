//! A client of an OVS daemon's control socket (what `ovs-appctl` talks to): JSON-RPC 1.0 over
//! a Unix socket, one command per connection, the same framing as OVSDB.
//!
//! [`socket_path`] finds the socket the way `ovs-appctl -t TARGET` does: a target containing
//! `/` is the socket itself; otherwise `<rundir>/<target>.pid` names the daemon's pid and the
//! socket is `<rundir>/<target>.<pid>.ctl`, with the rundir from `OVS_RUNDIR` or
//! `/var/run/openvswitch`.
use crate::framing::Framer;
use crate::jsonrpc::Message;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a control-socket command failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UnixctlError {
    /// The socket could not be located (no pidfile, or a bad one).
    #[error("locating the control socket: {0}")]
    Locate(String),
    /// Connecting, writing or reading failed.
    #[error("{socket}: {message}")]
    Io {
        /// The socket.
        socket: String,
        /// What failed.
        message: String,
    },
    /// The daemon's reply is not a unixctl reply.
    #[error("{socket}: bad reply: {message}")]
    Protocol {
        /// The socket.
        socket: String,
        /// What is wrong with it.
        message: String,
    },
    /// The daemon ran the command and reported an error.
    #[error("{command}: {message}")]
    Rejected {
        /// The command.
        command: String,
        /// The daemon's message.
        message: String,
    },
    /// No reply within the deadline.
    #[error("{socket}: no reply to {command} within {timeout:?}")]
    Timeout {
        /// The socket.
        socket: String,
        /// The command.
        command: String,
        /// The deadline.
        timeout: Duration,
    },
}

/// The rundir `ovs-appctl` uses when `OVS_RUNDIR` is not set.
pub const DEFAULT_RUNDIR: &str = "/var/run/openvswitch";

/// The control socket of `target` (a daemon name such as `ovs-vswitchd`, or a socket path).
pub fn socket_path(target: &str) -> Result<PathBuf, UnixctlError> {
    if target.contains('/') {
        return Ok(PathBuf::from(target));
    }
    let rundir = std::env::var_os("OVS_RUNDIR").map_or_else(|| PathBuf::from(DEFAULT_RUNDIR), PathBuf::from);
    socket_in(&rundir, target)
}

/// The control socket of daemon `name` whose pidfile is in `rundir`.
pub fn socket_in(rundir: &Path, name: &str) -> Result<PathBuf, UnixctlError> {
    let pidfile = rundir.join(format!("{name}.pid"));
    let text = std::fs::read_to_string(&pidfile)
        .map_err(|e| UnixctlError::Locate(format!("{}: {e} (is {name} running?)", pidfile.display())))?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| UnixctlError::Locate(format!("{}: not a pid: {:?}", pidfile.display(), text.trim())))?;
    Ok(rundir.join(format!("{name}.{pid}.ctl")))
}

/// Runs one command (`revalidator/purge`, `dpif/dump-flows br-int`, ...) and returns its
/// output. A command the daemon rejects is [`UnixctlError::Rejected`] with the daemon's message.
pub async fn call(socket: &Path, command: &str, args: &[&str], timeout: Duration) -> Result<String, UnixctlError> {
    let name = socket.display().to_string();
    let io = |e: std::io::Error| UnixctlError::Io { socket: name.clone(), message: e.to_string() };
    let protocol = |message: String| UnixctlError::Protocol { socket: name.clone(), message };
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await.map_err(io)?;
        let request = json!({ "id": 0, "method": command, "params": args });
        stream.write_all(request.to_string().as_bytes()).await.map_err(io)?;
        let reply = read_message(&mut stream).await.map_err(|e| match e {
            ReadError::Io(e) => io(e),
            ReadError::Framing(m) => protocol(m),
        })?;
        match Message::from_json(reply).map_err(protocol)? {
            Message::Response { result, error, .. } => reply_text(&name, command, result, error),
            other => Err(protocol(format!("expected the reply to {command}, got {other:?}"))),
        }
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or_else(|_| {
        Err(UnixctlError::Timeout { socket: name.clone(), command: command.to_string(), timeout })
    })
}

enum ReadError {
    Io(std::io::Error),
    Framing(String),
}

async fn read_message(stream: &mut tokio::net::UnixStream) -> Result<Value, ReadError> {
    let mut framer = Framer::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(v) = framer.next_message().map_err(|e| ReadError::Framing(e.to_string()))? {
            return Ok(v);
        }
        let n = stream.read(&mut buf).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Framing("the daemon closed the connection before replying".into()));
        }
        framer.push(&buf[..n]);
    }
}

/// A unixctl reply carries its text in `result`, or in `error` when the command failed.
fn reply_text(socket: &str, command: &str, result: Value, error: Value) -> Result<String, UnixctlError> {
    match (result, error) {
        (Value::String(s), Value::Null) => Ok(s),
        (Value::Null, Value::Null) => Ok(String::new()),
        (_, Value::String(e)) => {
            Err(UnixctlError::Rejected { command: command.to_string(), message: e.trim_end().to_string() })
        }
        (r, e) => Err(UnixctlError::Protocol {
            socket: socket.to_string(),
            message: format!("reply to {command}: result {r}, error {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_with_a_slash_is_the_socket_itself() {
        assert_eq!(socket_path("/run/x/ovs-vswitchd.ctl").unwrap(), PathBuf::from("/run/x/ovs-vswitchd.ctl"));
    }

    #[test]
    fn a_daemon_name_is_found_through_its_pidfile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ovs-vswitchd.pid"), "4242\n").unwrap();
        assert_eq!(socket_in(dir.path(), "ovs-vswitchd").unwrap(), dir.path().join("ovs-vswitchd.4242.ctl"));
    }

    #[test]
    fn a_missing_pidfile_says_which_file_and_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let e = socket_in(dir.path(), "ovs-vswitchd").unwrap_err().to_string();
        assert!(e.contains("ovs-vswitchd.pid") && e.contains("is ovs-vswitchd running"), "{e}");
    }

    #[tokio::test]
    async fn a_command_round_trips_and_a_rejected_one_carries_the_daemon_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.ctl");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            for reply in [r#"{"id":0,"result":"purged\n","error":null}"#, r#"{"id":0,"result":null,"error":"\"nope\" is not a valid command\n"}"#] {
                let (mut s, _) = listener.accept().await.unwrap();
                let request = read_message(&mut s).await.ok().unwrap();
                assert_eq!(request["params"], json!([]));
                // Split the reply to exercise the framing.
                let (a, b) = reply.split_at(7);
                s.write_all(a.as_bytes()).await.unwrap();
                s.write_all(b.as_bytes()).await.unwrap();
            }
        });
        let t = Duration::from_secs(5);
        assert_eq!(call(&path, "revalidator/purge", &[], t).await.unwrap(), "purged\n");
        let e = call(&path, "nope", &[], t).await.unwrap_err().to_string();
        assert!(e.contains("is not a valid command"), "{e}");
    }
}
