//! `weir ovs`: the OVSDB client from the command line: `show`, `ensure-bridge`,
//! `add-port`, `del-port` and `monitor` (Interface changes as JSON lines).
use anyhow::Context;
use ovsdb::{BridgeSpec, Client, DatapathType, FailMode, InterfaceMonitor, Manager, Outcome, parse_port};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// OVSDB server: unix:PATH or tcp:HOST:PORT.
    #[arg(long, global = true, default_value = "unix:/var/run/openvswitch/db.sock")]
    db: String,
    #[command(subcommand)]
    command: OvsCommand,
}

#[derive(clap::Subcommand)]
enum OvsCommand {
    /// Print the bridges, ports and interfaces, like `ovs-vsctl show`.
    Show,
    /// Create the bridge or bring it to the given settings (one transaction, none if equal).
    EnsureBridge {
        /// Bridge name.
        name: String,
        /// Datapath: system or netdev.
        #[arg(long, default_value = "system")]
        datapath: DatapathType,
        /// Allowed OpenFlow versions.
        #[arg(long, value_delimiter = ',', default_value = "OpenFlow15")]
        protocols: Vec<String>,
        /// Fail mode: secure or standalone.
        #[arg(long, default_value = "secure")]
        fail_mode: FailMode,
        /// Controller target (repeatable), e.g. tcp:127.0.0.1:6653.
        #[arg(long = "controller")]
        controllers: Vec<String>,
        /// OpenFlow table name, ID=NAME (repeatable).
        #[arg(long = "table", value_parser = parse_table)]
        tables: Vec<(u8, String)>,
        /// other_config entry, KEY=VALUE (repeatable).
        #[arg(long = "other-config", value_parser = parse_kv)]
        other_config: Vec<(String, String)>,
        /// external_ids entry, KEY=VALUE (repeatable).
        #[arg(long = "external-id", value_parser = parse_kv)]
        external_ids: Vec<(String, String)>,
    },
    /// Create the port or bring it to the given settings.
    AddPort {
        /// Port (and interface) name.
        name: String,
        /// internal, system, patch, vxlan, geneve, gre or erspan.
        #[arg(long = "type")]
        kind: String,
        /// The bridge.
        #[arg(long, default_value = "br-int")]
        bridge: String,
        /// Options as ovs-vsctl spells them: remote_ip=IP|flow key=N|flow local_ip=IP
        /// dst_port=N csum=true tos=N|inherit ttl=N|inherit peer=NAME erspan_ver=1|2
        /// erspan_idx=HEX erspan_dir=0|1 erspan_hwid=HEX ofport_request=N mtu=N
        /// no_flood=true external_ids:KEY=VALUE.
        #[arg(value_parser = parse_kv)]
        options: Vec<(String, String)>,
    },
    /// Delete the port (nothing to do if it is absent).
    DelPort {
        /// Port name.
        name: String,
        /// The bridge.
        #[arg(long, default_value = "br-int")]
        bridge: String,
    },
    /// Stream Interface changes as JSON lines (the initial rows first, as "initial").
    Monitor,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn parse_table(s: &str) -> Result<(u8, String), String> {
    let (id, name) = parse_kv(s)?;
    Ok((id.parse().map_err(|_| format!("table id {id:?} is not 0..=254"))?, name))
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Unchanged => "unchanged",
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Deleted => "deleted",
        Outcome::Absent => "absent",
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::connect(&args.db).await.with_context(|| format!("connecting to {}", args.db))?;
    match args.command {
        OvsCommand::Show => {
            let mgr = Manager::new(&client).await?;
            print!("{}", mgr.with_view(ovsdb::show::show));
        }
        OvsCommand::EnsureBridge {
            name,
            datapath,
            protocols,
            fail_mode,
            controllers,
            tables,
            other_config,
            external_ids,
        } => {
            let mut spec = BridgeSpec::new(&name);
            spec.datapath_type = datapath;
            spec.protocols = protocols;
            spec.fail_mode = fail_mode;
            spec.controllers = controllers;
            spec.table_names = tables.into_iter().collect();
            spec.other_config.extend(other_config);
            spec.external_ids = external_ids.into_iter().collect::<BTreeMap<_, _>>();
            let mgr = Manager::new(&client).await?;
            println!("bridge {name}: {}", outcome_word(mgr.ensure_bridge(&spec).await?));
        }
        OvsCommand::AddPort { name, kind, bridge, options } => {
            let spec = parse_port(&name, &kind, &options)?;
            let mgr = Manager::new(&client).await?;
            println!("port {name}: {}", outcome_word(mgr.ensure_port(&bridge, &spec).await?));
        }
        OvsCommand::DelPort { name, bridge } => {
            let mgr = Manager::new(&client).await?;
            println!("port {name}: {}", outcome_word(mgr.delete_port(&bridge, &name).await?));
        }
        OvsCommand::Monitor => {
            let mut mon = InterfaceMonitor::start(&client).await?;
            let mut known: BTreeMap<String, serde_json::Value> = BTreeMap::new();
            let stdout = std::io::stdout();
            while let Some(set) = mon.next().await {
                let mut out = stdout.lock();
                for name in &set.changed {
                    let row = set.interfaces.get(name).map(|i| {
                        json!({
                            "name": i.name, "type": i.iface_type, "ofport": i.ofport, "mac_in_use": i.mac_in_use,
                            "options": i.options, "external_ids": i.external_ids, "error": i.error,
                        })
                    });
                    let change = match (&row, known.contains_key(name), set.resync) {
                        (Some(_), _, true) => "initial",
                        (Some(_), false, false) => "insert",
                        (Some(_), true, false) => "modify",
                        (None, _, _) => "delete",
                    };
                    match &row {
                        Some(r) => known.insert(name.clone(), r.clone()),
                        None => known.remove(name),
                    };
                    writeln!(out, "{}", json!({"change": change, "name": name, "row": row}))?;
                }
                out.flush()?;
            }
        }
    }
    Ok(())
}
