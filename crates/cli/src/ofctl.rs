//! `weir ofctl`: an OpenFlow 1.5 client with ovs-ofctl's commands, options and output formats,
//! over the agent's [`agent::switch::Switch`] connection and the `openflow` crate's text syntax.
//!
//! Reply headers carry the xids ovs-ofctl's own requests get on a fresh connection (e.g.
//! `(xid=0x2)` for the first request after the handshake), so the output is the same text.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::Instant;

use agent::switch::Switch;
use anyhow::{Context, bail};
use openflow::text::print_switch::{format_features, format_port_descs, format_switch_config, format_table_stats};
use openflow::text::{Names, format_flow, format_flow_stats, parse_flow_mod, parse_flow_mod_line};
use openflow::text::meter::{MeterText, parse_meter};
use openflow::wire::{DecodeErrorKind, Message};
use openflow::wire::meter::{MeterMod, meter_command, meter_id};
use openflow::wire::multipart::{FlowStatsRequest, MP_TABLE_FEATURES, MultipartReply, MultipartRequest, decode_table_feature_names};
use openflow::{Flow, FlowMod, FlowModCommand};

/// OFPG_ALL: every group, in group stats and description requests.
const GROUP_ALL: u32 = 0xffff_fffc;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// OpenFlow versions; only OpenFlow15 is spoken (accepted for ovs-ofctl compatibility).
    #[arg(short = 'O', long = "protocols", global = true, default_value = "OpenFlow15")]
    protocols: String,
    /// Apply flow changes as one atomic, ordered bundle.
    #[arg(long, global = true)]
    bundle: bool,
    /// Strict matching for mod-flows and del-flows (priority and match must be exact).
    #[arg(long, global = true)]
    strict: bool,
    /// Show port and table names instead of numbers (the default on a terminal).
    #[arg(long, global = true)]
    names: bool,
    /// Show numbers (the default when not on a terminal).
    #[arg(long, global = true)]
    no_names: bool,
    /// dump-flows: omit statistics.
    #[arg(long, global = true)]
    no_stats: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Features, ports and configuration of the switch.
    Show {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
    },
    /// Flows, optionally only those matching FLOW.
    DumpFlows {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// Only the flows matching this, in ovs-ofctl's syntax (e.g. `table=0,ip,nw_dst=10.0.0.1`).
        flow: Option<String>,
    },
    /// Add one flow.
    AddFlow {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The flow in ovs-ofctl's syntax (e.g. `table=0,ip,nw_dst=10.0.0.1,actions=drop`).
        flow: String,
    },
    /// Add (or modify/delete, per line prefix) the flows in FILE (`-` for stdin).
    AddFlows {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The file, one entry a line (`-` for stdin).
        file: String,
    },
    /// Modify the actions of matching flows.
    ModFlows {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The flow in ovs-ofctl's syntax (e.g. `table=0,ip,nw_dst=10.0.0.1,actions=drop`).
        flow: String,
    },
    /// Delete matching flows (all flows without FLOW).
    DelFlows {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// Only the flows matching this, in ovs-ofctl's syntax (e.g. `table=0,ip,nw_dst=10.0.0.1`).
        flow: Option<String>,
    },
    /// Make the switch's flows equal to FILE with the fewest changes.
    ReplaceFlows {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The file, one entry a line (`-` for stdin).
        file: String,
    },
    /// Port descriptions.
    DumpPortsDesc {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
    },
    /// Table statistics.
    DumpTables {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
    },
    /// Groups.
    DumpGroups {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
    },
    /// Add the groups in FILE (`-` for stdin); with `--bundle`, all or none.
    AddGroups {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The file, one entry a line (`-` for stdin).
        file: String,
    },
    /// Add a meter: `meter=N kbps|pktps [burst] [stats] bands=type=drop rate=R [burst_size=B]...`.
    AddMeter {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The meter in ovs-ofctl's syntax (`meter=N kbps band=type=drop rate=R`).
        meter: String,
    },
    /// Add the meters in FILE, one per line (`-` for stdin); a weir extension.
    AddMeters {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The file, one entry a line (`-` for stdin).
        file: String,
    },
    /// Change a meter.
    ModMeter {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// The meter in ovs-ofctl's syntax (`meter=N kbps band=type=drop rate=R`).
        meter: String,
    },
    /// Delete a meter (`meter=N`), or all meters.
    #[command(alias = "del-meter")]
    DelMeters {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// One meter (`meter=N`); all without it.
        meter: Option<String>,
    },
    /// Meter configurations: one meter (`meter=N`) or all.
    #[command(alias = "dump-meter")]
    DumpMeters {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// One meter (`meter=N`); all without it.
        meter: Option<String>,
    },
    /// Meter statistics: one meter (`meter=N`) or all.
    MeterStats {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
        /// One meter (`meter=N`); all without it.
        meter: Option<String>,
    },
    /// What the switch's meters can do: most meters and bands, band types, capabilities.
    MeterFeatures {
        /// The switch: unix:PATH, tcp:HOST:PORT, or a bridge name in $OVS_RUNDIR.
        switch: String,
    },
    /// Decode hex action bytes (from stdin, one set per line) to text.
    ParseActions {
        /// The version the bytes are in (only OpenFlow15).
        version: Option<String>,
    },
}

impl Args {
    /// Whether to print names: `--names`, `--no-names`, else as ovs-ofctl does, when the
    /// output is a terminal.
    fn show_names(&self) -> bool {
        use std::io::IsTerminal;
        show_names(self.names, self.no_names, std::io::stdout().is_terminal())
    }
}

fn show_names(names: bool, no_names: bool, terminal: bool) -> bool {
    !no_names && (names || terminal)
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if !args.protocols.split(',').any(|p| p.eq_ignore_ascii_case("OpenFlow15")) {
        bail!("-O {}: weir ofctl speaks OpenFlow15 only", args.protocols);
    }
    let mut out = String::new();
    match &args.command {
        Cmd::Show { switch } => show(&connect(switch).await?, &mut out).await?,
        Cmd::DumpFlows { switch, flow } => dump_flows(&args, switch, flow.as_deref(), &mut out).await?,
        Cmd::AddFlow { switch, flow } => {
            let sw = connect(switch).await?;
            let names = accept_names(&sw, flow).await?;
            let fm = parse_flow_mod(flow, FlowModCommand::Add, names.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            apply(&sw, &[fm], args.bundle).await?;
        }
        Cmd::AddFlows { switch, file } => {
            let text = read_input(file)?;
            let sw = connect(switch).await?;
            let names = accept_names(&sw, &text).await?;
            let mods = parse_file(file, &text, names.as_ref())?;
            apply(&sw, &mods, args.bundle).await?;
        }
        Cmd::ModFlows { switch, flow } => {
            let cmd = if args.strict { FlowModCommand::ModifyStrict } else { FlowModCommand::Modify };
            let sw = connect(switch).await?;
            let names = accept_names(&sw, flow).await?;
            let fm = parse_flow_mod(flow, cmd, names.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            apply(&sw, &[fm], args.bundle).await?;
        }
        Cmd::DelFlows { switch, flow } => {
            let cmd = if args.strict { FlowModCommand::DeleteStrict } else { FlowModCommand::Delete };
            let sw = connect(switch).await?;
            let text = flow.as_deref().unwrap_or("");
            let names = accept_names(&sw, text).await?;
            let fm = parse_flow_mod(text, cmd, names.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            apply(&sw, &[fm], args.bundle).await?;
        }
        Cmd::ReplaceFlows { switch, file } => {
            let text = read_input(file)?;
            let sw = connect(switch).await?;
            let names = accept_names(&sw, &text).await?;
            let wanted = parse_file(file, &text, names.as_ref())?;
            let installed = sw.dump_flows().await?;
            let mods = replace_diff(&installed, &wanted)?;
            apply(&sw, &mods, args.bundle).await?;
        }
        Cmd::DumpPortsDesc { switch } => {
            let sw = connect(switch).await?;
            out.push_str("OFPST_PORT_DESC reply (OF1.5) (xid=0x2):\n");
            format_port_descs(&mut out, &sw.port_desc().await?);
        }
        Cmd::DumpTables { switch } => {
            let sw = connect(switch).await?;
            let mut stats = Vec::new();
            for part in sw.multipart(MultipartRequest::TableStats).await? {
                if let MultipartReply::TableStats(t) = part {
                    stats.extend(t);
                }
            }
            out.push_str("OFPST_TABLE reply (OF1.5) (xid=0x2):\n");
            format_table_stats(&mut out, &stats, &HashMap::new());
        }
        Cmd::DumpGroups { switch } => {
            let sw = connect(switch).await?;
            let names = if args.show_names() { Some(fetch_names(&sw).await?) } else { None };
            out.push_str("OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n");
            for part in sw.multipart(MultipartRequest::GroupDesc(GROUP_ALL)).await? {
                if let MultipartReply::GroupDesc(groups) = part {
                    for g in groups {
                        out.push(' ');
                        openflow::text::group::format_group(&mut out, &g, names.as_ref());
                        out.push('\n');
                    }
                }
            }
        }
        Cmd::AddGroups { switch, file } => {
            let text = read_input(file)?;
            let sw = connect(switch).await?;
            let names = accept_names(&sw, &text).await?;
            let groups = openflow::text::flow_file_lines(&text)
                .into_iter()
                .map(|(n, line)| {
                    openflow::text::group::parse_group(&line, names.as_ref()).map_err(|e| anyhow::anyhow!("{file}:{n}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if args.bundle {
                sw.bundle_messages(&groups.into_iter().map(Message::GroupMod).collect::<Vec<_>>()).await?;
            } else {
                for g in groups {
                    sw.send(&Message::GroupMod(g))?;
                }
                sw.barrier().await?;
            }
        }
        Cmd::AddMeter { switch, meter } => meter_mods(switch, &[(0, meter.clone())], meter_command::ADD, "add-meter").await?,
        Cmd::AddMeters { switch, file } => {
            let text = read_input(file)?;
            meter_mods(switch, &openflow::text::flow_file_lines(&text), meter_command::ADD, file).await?;
        }
        Cmd::ModMeter { switch, meter } => meter_mods(switch, &[(0, meter.clone())], meter_command::MODIFY, "mod-meter").await?,
        Cmd::DelMeters { switch, meter } => {
            let id = select_meter(meter.as_deref())?;
            let sw = connect(switch).await?;
            sw.send(&Message::MeterMod(MeterMod { command: meter_command::DELETE, flags: 0, meter_id: id, bands: Vec::new() }))?;
            sw.barrier().await?;
        }
        Cmd::DumpMeters { switch, meter } => {
            let id = select_meter(meter.as_deref())?;
            let sw = connect(switch).await?;
            let parts = sw.multipart(MultipartRequest::MeterDesc(id)).await?;
            let meters = parts.into_iter().flat_map(|p| if let MultipartReply::MeterDesc(m) = p { m } else { Vec::new() });
            meter_reply(&mut out, "OFPST_METER_CONFIG", meters, openflow::text::meter::format_meter);
        }
        Cmd::MeterStats { switch, meter } => {
            let id = select_meter(meter.as_deref())?;
            let sw = connect(switch).await?;
            let parts = sw.multipart(MultipartRequest::MeterStats(id)).await?;
            let stats = parts.into_iter().flat_map(|p| if let MultipartReply::MeterStats(m) = p { m } else { Vec::new() });
            meter_reply(&mut out, "OFPST_METER", stats, openflow::text::meter::format_meter_stats);
        }
        Cmd::MeterFeatures { switch } => {
            let sw = connect(switch).await?;
            let parts = sw.multipart(MultipartRequest::MeterFeatures).await?;
            let features = parts.into_iter().filter_map(|p| if let MultipartReply::MeterFeatures(f) = p { Some(f) } else { None });
            meter_reply(&mut out, "OFPST_METER_FEATURES", features, openflow::text::meter::format_meter_features);
        }
        Cmd::ParseActions { version } => parse_actions(version.as_deref(), &mut out)?,
    }
    print!("{out}");
    Ok(())
}

/// The meter a del/dump selects: `meter=N` (or `meter=all`), all meters without one.
fn select_meter(text: Option<&str>) -> anyhow::Result<u32> {
    match text {
        None => Ok(meter_id::ALL),
        Some(t) => Ok(parse_meter(t, MeterText::Select).map_err(|e| anyhow::anyhow!("{e}"))?.meter_id),
    }
}

/// Sends one METER_MOD per numbered line (parsed first, so a bad line sends nothing), then a
/// barrier that reports the switch's first error.
async fn meter_mods(switch: &str, lines: &[(usize, String)], command: u16, source: &str) -> anyhow::Result<()> {
    let meters = lines
        .iter()
        .map(|(n, line)| {
            let at = if *n == 0 { source.to_string() } else { format!("{source}:{n}") };
            parse_meter(line, MeterText::Mod(command)).map_err(|e| anyhow::anyhow!("{at}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sw = connect(switch).await?;
    for m in meters {
        sw.send(&Message::MeterMod(m))?;
    }
    sw.barrier().await?;
    Ok(())
}

/// A meter reply as ovs-ofctl prints it: each entry starts on a new line, so the first one
/// ends the header's.
fn meter_reply<T>(out: &mut String, kind: &str, entries: impl Iterator<Item = T>, format: fn(&mut String, &T)) {
    out.push_str(&format!("{kind} reply (OF1.5) (xid=0x2):"));
    for e in entries {
        out.push('\n');
        format(out, &e);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

async fn connect(switch: &str) -> anyhow::Result<Switch> {
    Switch::connect(switch).await.with_context(|| format!("{switch}: connecting"))
}

fn read_input(file: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("{file}: open failed"))?;
    }
    Ok(text)
}

fn parse_file(file: &str, text: &str, names: Option<&Names>) -> anyhow::Result<Vec<FlowMod>> {
    openflow::text::flow_file_lines(text)
        .into_iter()
        .map(|(n, line)| parse_flow_mod_line(&line, names).map_err(|e| anyhow::anyhow!("{file}:{n}: {e}")))
        .collect()
}

/// Sends flow-mods, as one atomic bundle with `--bundle`, else pipelined with a barrier.
async fn apply(sw: &Switch, mods: &[FlowMod], bundle: bool) -> anyhow::Result<()> {
    if mods.is_empty() {
        return Ok(());
    }
    if bundle { sw.bundle(mods).await? } else { sw.flow_mods(mods).await? }
    Ok(())
}

/// Names to accept in input: fetched only when the text could name a port or table (the
/// fetch costs two round trips).
async fn accept_names(sw: &Switch, text: &str) -> anyhow::Result<Option<Names>> {
    let may_name = text.split(['=', ':', ',', '(', ' ']).any(|w| {
        !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') && !w.bytes().all(|b| b.is_ascii_digit())
    });
    if !may_name || !text.contains("in_port") && !text.contains("output") && !text.contains("table") && !text.contains("resubmit") {
        return Ok(None);
    }
    fetch_names(sw).await.map(Some)
}

/// Port names (from the port descriptions) and table names (from the table features; OVS
/// reports unnamed tables as `table<N>` or empty, which are not names).
pub(crate) async fn fetch_names(sw: &Switch) -> anyhow::Result<Names> {
    let mut names = Names::default();
    for p in sw.port_desc().await? {
        if p.port_no.reserved_name().is_none() {
            names.ports.insert(p.port_no.0, p.name);
        }
    }
    for part in sw.multipart(MultipartRequest::Other { mp_type: MP_TABLE_FEATURES, body: Vec::new() }).await? {
        if let MultipartReply::Other { body, .. } = part {
            for (id, name) in decode_table_feature_names(&body)? {
                if !name.is_empty() && name != format!("table{id}") {
                    names.tables.insert(id, name);
                }
            }
        }
    }
    Ok(names)
}

async fn show(sw: &Switch, out: &mut String) -> anyhow::Result<()> {
    out.push_str("OFPT_FEATURES_REPLY (OF1.5) (xid=0x2): ");
    format_features(out, &sw.features());
    out.push_str("OFPST_PORT_DESC reply (OF1.5) (xid=0x3):\n");
    format_port_descs(out, &sw.port_desc().await?);
    match sw.request(&Message::GetConfigRequest).await?.pop() {
        Some(Message::GetConfigReply(c)) => {
            out.push_str("OFPT_GET_CONFIG_REPLY (OF1.5) (xid=0x5): ");
            format_switch_config(out, &c);
        }
        other => bail!("unexpected reply to GET_CONFIG_REQUEST: {other:?}"),
    }
    Ok(())
}

async fn dump_flows(args: &Args, switch: &str, flow: Option<&str>, out: &mut String) -> anyhow::Result<()> {
    let sw = connect(switch).await?;
    let names = if args.show_names() { Some(fetch_names(&sw).await?) } else { None };
    let mut req = FlowStatsRequest::default();
    if let Some(text) = flow {
        let accept = match &names {
            Some(n) => Some(n.clone()),
            None => accept_names(&sw, text).await?,
        };
        let fm = parse_flow_mod(text, FlowModCommand::Delete, accept.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
        req = FlowStatsRequest {
            table_id: fm.flow.table_id,
            out_port: fm.out_port,
            out_group: fm.out_group,
            cookie: fm.flow.cookie,
            cookie_mask: fm.cookie_mask,
            matches: fm.flow.matches,
        };
    }
    let stats = sw.dump_flow_stats(req).await?;
    if !args.no_stats {
        out.push_str("OFPST_FLOW reply (OF1.5) (xid=0x2):\n");
    }
    for fs in &stats {
        out.push(' ');
        if args.no_stats {
            format_flow(out, &fs.flow, names.as_ref());
        } else {
            format_flow_stats(out, fs, names.as_ref());
        }
        out.push('\n');
    }
    Ok(())
}

/// The flow-mods that turn `installed` into `wanted` (ovs-ofctl's replace-flows): an add for
/// every wanted flow that is missing or differs (an add replaces a flow with the same table,
/// priority and match), a strict delete for every installed flow not wanted.
fn replace_diff(installed: &[Flow], wanted: &[FlowMod]) -> anyhow::Result<Vec<FlowMod>> {
    type Key = (u8, u16, openflow::Match);
    let key = |f: &Flow| -> Key { (f.table_id, f.priority, f.matches.clone()) };
    let mut want: BTreeMap<Key, &Flow> = BTreeMap::new();
    for fm in wanted {
        if fm.command != FlowModCommand::Add {
            bail!("replace-flows: the file may only add flows ({:?} found)", fm.command);
        }
        want.insert(key(&fm.flow), &fm.flow);
    }
    let have: BTreeMap<Key, &Flow> = installed.iter().map(|f| (key(f), f)).collect();
    let mut mods = Vec::new();
    for (k, f) in &have {
        if !want.contains_key(k) {
            mods.push(FlowMod::delete_strict((*f).clone()));
        }
    }
    for (k, f) in &want {
        if have.get(k).is_none_or(|h| h != f) {
            mods.push(FlowMod::add((*f).clone()));
        }
    }
    Ok(mods)
}

/// `parse-actions`: each stdin line is hex bytes (spaces allowed; `#` lines and blank lines are
/// skipped); prints `actions=...` and a blank line per set, as ovs-ofctl does. Bytes OVS would
/// refuse print `bad OpenFlow15 actions: ` and OVS's error name, as ovs-ofctl does, and the
/// details go to stderr (`bad action at offset N (NAME): ...`, like ovs-ofctl's log line).
/// Actions OVS decodes but weir does not support print `unsupported OpenFlow15 actions: `
/// and why; other bytes weir refuses without knowing OVS's error name print weir's reason.
fn parse_actions(version: Option<&str>, out: &mut String) -> anyhow::Result<()> {
    if let Some(v) = version.filter(|v| !v.eq_ignore_ascii_case("OpenFlow15")) {
        bail!("parse-actions {v}: only OpenFlow15 is supported");
    }
    let text = read_input("-")?;
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let hex: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if hex.is_empty() {
            continue;
        }
        let bytes = decode_hex(&hex).with_context(|| format!("{line}: not hex"))?;
        match openflow::wire::action::decode_actions(&mut openflow::wire::Reader::new(&bytes, "actions")) {
            Ok(actions) => {
                out.push_str("actions=");
                openflow::text::format_actions(out, &actions, None);
                out.push_str("\n\n");
            }
            Err(e) => match e.ofp_error() {
                Some(name) => {
                    eprintln!("bad action at offset {} ({name}): {e}", e.offset);
                    out.push_str(&format!("bad OpenFlow15 actions: {name}\n\n"));
                }
                // A type or subtype OVS decodes and weir does not.
                None if matches!(e.kind, DecodeErrorKind::Unknown { .. }) => {
                    out.push_str(&format!("unsupported OpenFlow15 actions: {e}\n\n"));
                }
                None => out.push_str(&format!("bad OpenFlow15 actions: {e}\n\n")),
            },
        }
    }
    Ok(())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn delete_all() -> FlowMod {
    FlowMod::new(FlowModCommand::Delete, Flow { table_id: openflow::flow::ALL_TABLES, ..Flow::default() })
}

/// Seconds for weir to install `file` on an emptied switch: read, parse, connect, one bundle
/// (what `weir ofctl add-flows --bundle` does).
async fn weir_install(target: &str, file: &std::path::Path) -> anyhow::Result<f64> {
    connect(target).await?.flow_mods(&[delete_all()]).await?;
    let t = Instant::now();
    let text = std::fs::read_to_string(file)?;
    let mods = parse_file(&file.display().to_string(), &text, None)?;
    connect(target).await?.bundle(&mods).await?;
    Ok(t.elapsed().as_secs_f64())
}

/// Seconds for `ovs-ofctl -O OpenFlow15 --bundle add-flows` of `file` on an emptied switch.
async fn ovs_install(target: &str, file: &std::path::Path) -> anyhow::Result<f64> {
    connect(target).await?.flow_mods(&[delete_all()]).await?;
    let t = Instant::now();
    let st = tokio::process::Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow15", "--bundle", "add-flows", target])
        .arg(file)
        .status()
        .await?;
    if !st.success() {
        bail!("ovs-ofctl add-flows failed: {st}");
    }
    Ok(t.elapsed().as_secs_f64())
}

/// A flow file of `n` distinct flows shaped like a policy pipeline's (conjunction clauses,
/// address sets, service ports, ct and forwarding flows) over several tables.
pub(crate) fn bench_flow_file(n: usize) -> String {
    let mut s = String::with_capacity(n * 100);
    for i in 0..n {
        let (a, b, c) = ((i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        let line = match i % 5 {
            0 => format!("table=10,priority=200,ip,nw_src=10.{a}.{b}.{c} actions=conjunction({},1/3)\n", i / 5 + 1),
            1 => format!("table=10,priority=200,tcp,nw_dst=172.{a}.{b}.{c}/32,tp_dst={} actions=conjunction({},2/3)\n", 1 + i % 60000, i / 5 + 1),
            2 => format!("table=11,priority=190,reg1=0x{i:x},ip actions=set_field:0x{:x}->reg3,goto_table:12\n", i + 1),
            3 => format!("table=12,priority=100,ct_state=+trk+est,ip,reg0=0x{i:x} actions=ct(commit,zone=NXM_NX_REG0[0..15],exec(set_field:0x{:x}->ct_mark)),resubmit(,13)\n", i & 0xffff),
            _ => format!("table=13,priority=50,dl_dst=02:00:{a:02x}:{b:02x}:{c:02x}:01 actions=set_field:0x{i:x}->tun_id,output:{}\n", 1 + i % 100),
        };
        s.push_str(&line);
    }
    s
}

/// `weir bench ofctl-install`.
pub(crate) async fn bench_ofctl_install(flows: usize, rounds: usize) -> anyhow::Result<()> {
    let sw = tokio::task::spawn_blocking(testbed::TestSwitch::with_bridge).await??;
    let target = format!("unix:{}", sw.ovs.mgmt_socket("br-int").display());
    let file = sw.tmp.path().join("bench.flows");
    std::fs::write(&file, bench_flow_file(flows))?;
    let (mut wsum, mut osum) = (0.0, 0.0);
    for round in 0..rounds.max(1) {
        let (w, o) = if round % 2 == 0 {
            let w = weir_install(&target, &file).await?;
            (w, ovs_install(&target, &file).await?)
        } else {
            let o = ovs_install(&target, &file).await?;
            (weir_install(&target, &file).await?, o)
        };
        println!("round {round}: weir {w:.3} s, ovs-ofctl {o:.3} s, ratio {:.2}", w / o);
        wsum += w;
        osum += o;
    }
    println!("ofctl-install {flows} flows: weir {wsum:.3} s, ovs-ofctl {osum:.3} s, weir/ovs-ofctl {:.2}", wsum / osum);
    Ok(())
}
