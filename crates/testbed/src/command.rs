//! Running the external tools the testbed drives (`ip`, `ovs-vsctl`, ...), with errors that
//! carry the command line and its stderr.
use std::process::Command;

/// A command that could not be run or exited non-zero.
#[derive(Debug, thiserror::Error)]
#[error("`{cmdline}` failed: {detail}")]
pub struct CommandError {
    /// The command line, for the reader of the error.
    pub cmdline: String,
    /// Exit status and stderr, or the spawn error.
    pub detail: String,
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an error.
pub fn run(cmd: &mut Command) -> Result<String, CommandError> {
    let cmdline = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .output()
        .map_err(|e| CommandError { cmdline: cmdline.clone(), detail: e.to_string() })?;
    if !out.status.success() {
        return Err(CommandError {
            cmdline,
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with `input` on its stdin and returns its stdout; a non-zero exit is an error.
pub fn run_with_input(cmd: &mut Command, input: &str) -> Result<String, CommandError> {
    use std::io::Write;
    use std::process::Stdio;
    let cmdline = format!("{cmd:?}").replace('"', "");
    let fail = |detail: String| CommandError { cmdline: cmdline.clone(), detail };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(input.as_bytes()).map_err(|e| fail(e.to_string()))?;
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
