//! `weir-cni`: reads `CNI_*` and the configuration on stdin, prints the result or the spec's
//! error object on stdout (logs go to stderr), and exits non-zero on error.
use cni::protocol::{CniError, Code, Env, SUPPORTED_VERSIONS};
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin()
        .read_to_end(&mut stdin)
        .map_err(|e| CniError::new(Code::Io, "cannot read the configuration", format!("stdin: {e}")));
    // Errors carry the configuration's version when it can be read.
    let version = cni::config::version_of(&stdin)
        .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1].to_string());
    let outcome =
        read.and_then(|_| Env::from_vars(|k| std::env::var(k).ok())).and_then(|env| cni::commands::run(&env, &stdin));
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(result) => {
            if let Some(v) = result {
                let _ = writeln!(out, "{v}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir-cni: {e}");
            let _ = writeln!(out, "{}", e.to_json(&version));
            ExitCode::FAILURE
        }
    }
}
