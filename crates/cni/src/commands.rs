//! Dispatch of the CNI commands, and the commands that remove things: DEL, GC and the
//! cleanup of crashed ADDs that ADD, DEL and GC all run first; STATUS and VERSION.
use crate::config::{self, NetConf};
use crate::ipam::{Allocation, Locked, Store};
use crate::link::{self, VethNames};
use crate::port::Ovs;
use crate::protocol::{Attachment, CniError, Code, Command, Env, SUPPORTED_VERSIONS};
use rtnetlink::Handle;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Runs one invocation: `Ok(Some(result))` is printed on stdout, `Ok(None)` prints nothing.
pub fn run(env: &Env, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    if env.command == Command::Version {
        return version(stdin).map(Some);
    }
    let conf = config::parse(stdin)?;
    if matches!(env.command, Command::Gc | Command::Status) && conf.cni_version == "1.0.0" {
        return Err(CniError::new(
            Code::IncompatibleVersion,
            "incompatible CNI version",
            format!("cniVersion: {:?} has no {:?} command (CNI 1.1.0 defines it)", conf.cni_version, env.command),
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::new(Code::Io, "cannot start", e.to_string()))?;
    rt.block_on(async {
        match env.command {
            Command::Add => crate::add::add(env, &conf).await.map(Some),
            Command::Del => del(env, &conf).await.map(|()| None),
            Command::Check => crate::check::check(env, &conf).await.map(|()| None),
            Command::Gc => gc(&conf).await.map(|()| None),
            Command::Status => status(&conf).await.map(|()| None),
            Command::Version => unreachable!("answered above"),
        }
    })
}

/// VERSION: the versions this plugin speaks (stdin may hold `{"cniVersion": ...}` or nothing).
fn version(stdin: &[u8]) -> Result<Value, CniError> {
    let asked = if stdin.iter().all(u8::is_ascii_whitespace) {
        SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1].to_string()
    } else {
        let v: Value = serde_json::from_slice(stdin)
            .map_err(|e| CniError::new(Code::Decode, "the VERSION input is not JSON", e.to_string()))?;
        match v.get("cniVersion") {
            Some(Value::String(s)) => s.clone(),
            None => SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1].to_string(),
            Some(other) => {
                return Err(CniError::new(
                    Code::InvalidConfig,
                    "invalid VERSION input",
                    format!("cniVersion: {other} is not a string"),
                ));
            }
        }
    };
    Ok(json!({ "cniVersion": asked, "supportedVersions": SUPPORTED_VERSIONS }))
}

/// The store of a configuration.
pub(crate) fn store(conf: &NetConf) -> Store {
    Store::new(&conf.data_dir, &conf.name, conf.pool.clone())
}

/// Removes an attachment's port and veth (absent ones are fine).
pub(crate) async fn teardown(ovs: &Ovs, host: &Handle, attachment: &Attachment) -> Result<(), CniError> {
    let names = VethNames::of(attachment);
    ovs.detach(&names.host).await?;
    link::delete(host, &names.host).await?;
    link::delete(host, &names.peer).await?;
    Ok(())
}

/// Tears down and releases allocations whose ADD crashed midway (killed, node rebooted):
/// what a crashed ADD leaves (an address, a veth, a port) goes before anything else runs.
pub(crate) async fn clean_crashed(locked: &Locked<'_>, ovs: &Ovs, host: &Handle) -> Result<(), CniError> {
    for a in locked.crashed()? {
        release(locked, ovs, host, &a).await?;
        eprintln!("weir-cni: cleaned up the crashed ADD of {} ({})", a.attachment, a.address());
    }
    Ok(())
}

async fn release(locked: &Locked<'_>, ovs: &Ovs, host: &Handle, a: &Allocation) -> Result<(), CniError> {
    // The address goes only once nothing (no port claiming it) is left behind.
    teardown(ovs, host, &a.attachment).await?;
    locked.release(a.address())
}

/// DEL: idempotent; an attachment that does not exist is success.
async fn del(env: &Env, conf: &NetConf) -> Result<(), CniError> {
    let attachment = env.attachment()?;
    let ovs = Ovs::connect(conf).await?;
    let host = link::connect()?;
    let store = store(conf);
    let found = {
        let locked = store.lock()?;
        clean_crashed(&locked, &ovs, &host).await?;
        locked.find(&attachment)?
    };
    // Outside the lock, so concurrent DELs tear down in parallel; the address goes after.
    teardown(&ovs, &host, &attachment).await?;
    match found {
        Some(a) => store.lock()?.release(a.address()),
        None => Ok(()),
    }
}

/// GC: cleans up crashed ADDs (even of listed attachments: their ADD never finished), then
/// removes every allocation and port whose attachment is not in `cni.dev/valid-attachments`
/// (ADDs still running are left alone); carries on past errors and reports them together.
async fn gc(conf: &NetConf) -> Result<(), CniError> {
    let valid: BTreeSet<Attachment> = conf.valid_attachments.clone().unwrap_or_default().into_iter().collect();
    let ovs = Ovs::connect(conf).await?;
    let host = link::connect()?;
    let store = store(conf);
    let locked = store.lock()?;
    clean_crashed(&locked, &ovs, &host).await?;
    let mut errors = Vec::new();
    let allocations = locked.allocations()?;
    let running: BTreeSet<&Attachment> =
        allocations.iter().filter(|a| a.pending.is_some_and(|o| o.alive())).map(|a| &a.attachment).collect();
    let keep = |att: &Attachment| valid.contains(att) || running.contains(att);
    for a in allocations.iter().filter(|a| !keep(&a.attachment)) {
        if let Err(e) = release(&locked, &ovs, &host, a).await {
            errors.push(format!("{}: {}", a.attachment, e.details));
        }
    }
    for port in ovs.cni_ports() {
        let stale = port.attachment.as_ref().is_none_or(|a| !keep(a));
        if !stale {
            continue;
        }
        let gone = async {
            ovs.detach(&port.name).await?;
            link::delete(&host, &port.name).await
        };
        if let Err(e) = gone.await {
            errors.push(format!("port {}: {}", port.name, e.details));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(Code::Ovsdb, "GC left stale resources", errors.join("; ")))
    }
}

/// STATUS: ready when OVSDB answers, the bridge exists and the pod CIDR has a free address.
async fn status(conf: &NetConf) -> Result<(), CniError> {
    let ovs =
        Ovs::connect(conf).await.map_err(|e| CniError::new(Code::NotAvailable, "plugin not available", e.details))?;
    ovs.require_bridge(Code::NotAvailable)?;
    let store = store(conf);
    if store.lock()?.free()? == 0 {
        return Err(CniError::new(
            Code::NotAvailable,
            "plugin not available",
            format!("ipam.subnet {}: no free address", conf.pool.subnet),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_answers_with_the_asked_version_and_the_supported_ones() {
        let v = version(br#"{"cniVersion":"1.0.0"}"#).unwrap();
        assert_eq!(v, json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0", "1.1.0"]}));
        assert_eq!(version(b"").unwrap()["cniVersion"], "1.1.0");
        assert_eq!(version(b"{").unwrap_err().code, Code::Decode);
    }
}
