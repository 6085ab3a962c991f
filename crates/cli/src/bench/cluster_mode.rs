//! `kube`: weir in cluster mode at scale. The synthetic cluster (10k pods / 1000 policies; quick
//! 1k / 100) is written into a real kube-apiserver (`scripts/kube.sh`, on loopback); one agent
//! reads it with `--kubeconfig`, and, in the same run as the baseline, another reads the same
//! objects from a manifests directory, each on a fresh switch holding node syn-1's pods. For each:
//! the agent's peak RSS and the time from its start to realizing the whole cluster; then pod
//! events, each a new pod on another node with the labels of a pod the node's flows select, timed
//! from the write (the pod's `status.podIP` through the API, or the manifest file's rename) to
//! the agent's status reporting the changed flows: p50 and p99, API against file.
use super::scale::{self, NODE, Scale};
use super::{Report, Scratch, fmt_num, median, ms, percentile, progress};
use agent::kube_source::kinds::WATCHED;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use policy::synthetic::SynPod;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testbed::kube::KubeApi;

/// Requests in flight while the cluster is written.
const CONCURRENCY: usize = 16;
/// How long an agent may take to realize the whole cluster.
const REALIZE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one pod event may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the cluster view comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Files,
    Kube,
}

/// What one agent measured.
struct Measured {
    start_to_realized: Duration,
    peak_rss_mib: f64,
    flows: u64,
    event_ms: Vec<f64>,
}

pub(crate) async fn run(quick: bool, seed: u64, events: Option<usize>) -> anyhow::Result<Report> {
    let events = events.unwrap_or(if quick { 10 } else { 30 });
    let s = Scale::new(scale::spec(quick, seed))?;
    let scratch = Scratch::new("kube")?;
    progress("starting kube-apiserver and etcd");
    let api = tokio::task::block_in_place(|| KubeApi::start(&scratch.path().join("kube")))?;
    let client = agent::kube_source::KubeConnection::Kubeconfig(api.kubeconfig()).client().await?;
    let started = Instant::now();
    write_cluster(&client, &s.syn.objects()).await?;
    let written = started.elapsed();
    progress(format_args!("cluster written through the API server in {:.1} s", written.as_secs_f64()));
    let picks = Picks::new(&s);
    let files = measure(Mode::Files, &s, &picks, events, scratch.path(), &api, &client).await?;
    let kube = measure(Mode::Kube, &s, &picks, events, scratch.path(), &api, &client).await?;

    let mut report = Report::new(&["measure", "file mode", "cluster mode (API server)"]);
    let both = |f: &dyn Fn(&Measured) -> String| vec![f(&files), f(&kube)];
    let mut row = |what: &str, cells: Vec<String>| report.row([vec![what.to_string()], cells].concat());
    row("cluster", vec![format!("{} pods, {} policies", s.syn.pods.len(), s.syn.policies.len()); 2]);
    row("written into the API server (create, then pod and node status)", vec!["-".into(), format!("{:.1} s", written.as_secs_f64())]);
    row("agent start to whole cluster realized", both(&|m| format!("{} ms", fmt_num(ms(m.start_to_realized)))));
    row("agent peak RSS", both(&|m| format!("{:.0} MiB", m.peak_rss_mib)));
    row(&format!("flows on {NODE}"), both(&|m| m.flows.to_string()));
    row(&format!("pod event to realized, p50 ({events} events)"), both(&|m| format!("{} ms", fmt_num(median(&m.event_ms)))));
    row("pod event to realized, p99", both(&|m| format!("{} ms", fmt_num(percentile(&m.event_ms, 99.0)))));
    let ratio = percentile(&kube.event_ms, 99.0) / percentile(&files.event_ms, 99.0);
    row("p99, cluster / file mode", vec!["1".into(), format!("{ratio:.2}")]);
    let data = |m: &Measured| json!({"start_to_realized_ms": ms(m.start_to_realized), "peak_rss_mib": m.peak_rss_mib, "flows": m.flows, "event_ms": m.event_ms});
    report.data = json!({
        "pods": s.syn.pods.len(), "policies": s.syn.policies.len(), "written_s": written.as_secs_f64(),
        "file": data(&files), "kube": data(&kube), "p99_ratio": ratio,
    });
    anyhow::ensure!(files.flows == kube.flows, "the two agents realized different flow counts: {} and {}", files.flows, kube.flows);
    Ok(report)
}

/// Creates every object (namespaces and nodes first), then writes the pods' and nodes' status
/// (the API server drops a pod's status on create), `CONCURRENCY` requests at a time.
async fn write_cluster(client: &kube::Client, objects: &[Value]) -> anyhow::Result<()> {
    let (first, rest): (Vec<&Value>, Vec<&Value>) = objects.iter().partition(|o| matches!(o["kind"].as_str(), Some("Namespace" | "Node")));
    for batch in [first, rest] {
        futures::stream::iter(batch.iter().map(|o| create(client, o))).buffer_unordered(CONCURRENCY).try_collect::<Vec<()>>().await?;
    }
    let with_status = objects.iter().filter(|o| o.get("status").is_some() && matches!(o["kind"].as_str(), Some("Pod" | "Node")));
    futures::stream::iter(with_status.map(|o| write_status(client, o))).buffer_unordered(CONCURRENCY).try_collect::<Vec<()>>().await?;
    Ok(())
}

/// The API for `object`'s kind (one of the watched kinds) and namespace.
fn api_for(client: &kube::Client, object: &Value) -> anyhow::Result<Api<DynamicObject>> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let watched = WATCHED.iter().find(|k| k.kind == kind).ok_or_else(|| anyhow::anyhow!("{kind} is not a watched kind"))?;
    Ok(match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &watched.resource()),
        None => Api::all_with(client.clone(), &watched.resource()),
    })
}

async fn create(client: &kube::Client, object: &Value) -> anyhow::Result<()> {
    let dynamic: DynamicObject = serde_json::from_value(object.clone())?;
    api_for(client, object)?.create(&PostParams::default(), &dynamic).await?;
    Ok(())
}

async fn write_status(client: &kube::Client, object: &Value) -> anyhow::Result<()> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let patch = Patch::Merge(json!({"status": object["status"]}));
    api_for(client, object)?.patch_status(name, &PatchParams::default(), &patch).await?;
    Ok(())
}

/// The pods the events copy: on other nodes, and selected by the node's flows.
struct Picks {
    pods: Vec<SynPod>,
}

impl Picks {
    /// Every remote pod, in a fixed order; [`Picks::selected`] keeps those the flows name.
    fn new(s: &Scale) -> Picks {
        Picks { pods: s.syn.pods.iter().filter(|p| p.node != NODE).cloned().collect() }
    }

    /// Up to `n` remote pods whose address is in `flows` (an ovs-ofctl dump).
    fn selected(&self, flows: &str, n: usize) -> Vec<SynPod> {
        let named: BTreeSet<&str> =
            flows.split([',', ' ']).filter_map(|t| t.strip_prefix("nw_src=").or(t.strip_prefix("nw_dst="))).collect();
        self.pods.iter().filter(|p| named.contains(p.ip.to_string().as_str())).take(n).cloned().collect()
    }
}

/// The new pod of event `i`: `like`'s namespace, labels and node, a fresh name and address.
fn event_pod(like: &SynPod, i: usize, mode: Mode) -> Value {
    let mut pod = like.clone();
    pod.name = format!("bench-{}-{i}", if mode == Mode::Kube { "kube" } else { "file" });
    let net = pod.ip.octets();
    // Pods take host numbers from 2 up, at most a node's share of them: 200 and up are free.
    pod.ip = std::net::Ipv4Addr::new(net[0], net[1], net[2], 200 + (i % 50) as u8);
    policy::synthetic::pod_value(&pod)
}

/// Starts one agent on a fresh switch with syn-1's pods as ports, waits until it realized the
/// whole cluster, then times `events` pod events.
async fn measure(
    mode: Mode,
    s: &Scale,
    picks: &Picks,
    events: usize,
    scratch: &Path,
    api: &KubeApi,
    client: &kube::Client,
) -> anyhow::Result<Measured> {
    let name = if mode == Mode::Kube { "cluster mode" } else { "file mode" };
    let dir = scratch.join(if mode == Mode::Kube { "kube-agent" } else { "file-agent" });
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests)?;
    if mode == Mode::Files {
        std::fs::write(manifests.join("synthetic.yaml"), policy::synthetic::to_yaml(&s.syn.objects())?)?;
    }
    let sw = tokio::task::block_in_place(|| switch_with_local_pods(s))?;
    let status = dir.join("status.json");
    progress(format_args!("{name}: starting the agent"));
    let t = Instant::now();
    let mut agent = AgentProcess::spawn(&sw, &dir, &status, &manifests, mode, api)?;
    let realized = wait_status(&status, REALIZE_TIMEOUT, &mut agent, |st| {
        st.realized && st.objects.get("Pod") == Some(&s.syn.pods.len()) && st.objects.get("NetworkPolicy") == Some(&s.syn.policies.len())
    })
    .await?;
    let start_to_realized = t.elapsed();
    let peak_rss_mib = agent.peak_rss_mib();
    let flows: u64 = realized.flows.values().map(|&n| n as u64).sum();
    progress(format_args!("{name}: realized in {:.1} s, {flows} flows, {peak_rss_mib:.0} MiB", start_to_realized.as_secs_f64()));

    let dump = tokio::task::block_in_place(|| sw.ovs.ofctl("dump-flows", "br-int", &["--no-stats", "--no-names"]))?;
    let likes = picks.selected(&dump, events);
    anyhow::ensure!(likes.len() == events, "only {} remote pods are selected by {NODE}'s flows; {events} events asked", likes.len());
    let mut event_ms = Vec::new();
    for (i, like) in likes.iter().enumerate() {
        let pod = event_pod(like, i, mode);
        let before = read_status(&status).map_or(0, |st| st.generation);
        let t = match mode {
            Mode::Kube => {
                // Created first (no address: the flows stay), then kubelet's status write.
                create(client, &pod).await?;
                let t = Instant::now();
                write_status(client, &pod).await?;
                t
            }
            Mode::Files => {
                let t = Instant::now();
                testbed::manifests::write_atomic(
                    &manifests.join(format!("event-{i}.yaml")),
                    policy::synthetic::to_yaml(&[pod])?.as_bytes(),
                )?;
                t
            }
        };
        wait_status(&status, EVENT_TIMEOUT, &mut agent, |st| st.realized && st.generation > before).await?;
        event_ms.push(ms(t.elapsed()));
    }
    progress(format_args!("{name}: {events} pod events, p99 {} ms", fmt_num(percentile(&event_ms, 99.0))));
    agent.stop();
    Ok(Measured { start_to_realized, peak_rss_mib, flows, event_ms })
}

/// A fresh switch with syn-1's pods as internal ports (the CNI contract's external_ids).
fn switch_with_local_pods(s: &Scale) -> anyhow::Result<testbed::TestSwitch> {
    let sw = testbed::TestSwitch::start()?;
    let local: Vec<&SynPod> = s.syn.pods.iter().filter(|p| p.node == NODE).collect();
    let names: Vec<String> = (0..local.len()).map(|k| format!("kb{k}")).collect();
    let ips: Vec<[std::net::Ipv4Addr; 1]> = local.iter().map(|p| [p.ip]).collect();
    let macs: Vec<String> = local.iter().map(|p| testbed::layout::mac_for(p.ip)).collect();
    let mut args: Vec<String> = vec!["--timeout=300".into(), "--may-exist".into(), "add-br".into(), "br-int".into()];
    args.extend(["--".into(), "set".into(), "bridge".into(), "br-int".into(), "datapath_type=netdev".into()]);
    for (k, p) in local.iter().enumerate() {
        let port = testbed::cni::PodPort { interface: &names[k], namespace: &p.namespace, name: &p.name, ips: &ips[k], mac: &macs[k] };
        args.extend(port.vsctl_args());
        args.extend(["--".into(), "set".into(), "Interface".into(), names[k].clone(), "type=internal".into()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sw.ovs.vsctl(&refs)?;
    Ok(sw)
}

/// A `weir agent` this benchmark started; killed when dropped.
struct AgentProcess {
    child: Child,
    log: PathBuf,
}

impl AgentProcess {
    fn spawn(sw: &testbed::TestSwitch, dir: &Path, status: &Path, manifests: &Path, mode: Mode, api: &KubeApi) -> anyhow::Result<Self> {
        let d = sw.ovs.dir().display();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["agent", "--node", NODE, "--bridge", "br-int", "--datapath", "netdev", "--metrics-address", "off"])
            .arg(format!("--ovsdb=unix:{d}/db.sock"))
            .arg(format!("--openflow=unix:{d}/br-int.mgmt"))
            .arg(format!("--ovs-ctl={d}/ovs-vswitchd.ctl"))
            .arg("--status-file")
            .arg(status)
            .arg("--state-dir")
            .arg(dir.join("state"));
        match mode {
            Mode::Kube => cmd.arg("--kubeconfig").arg(api.kubeconfig()),
            Mode::Files => cmd.arg("--manifests").arg(manifests),
        };
        let log = dir.join("agent.log");
        let out = std::fs::File::create(&log)?;
        let child = cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).spawn()?;
        Ok(AgentProcess { child, log })
    }

    /// Its peak resident set size (`VmHWM`), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok());
        kib.unwrap_or(0.0) / 1024.0
    }

    fn exited(&mut self) -> anyhow::Result<()> {
        if let Some(code) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            anyhow::bail!(
                "the agent exited ({code}); {}: {}",
                self.log.display(),
                log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own unreaped child: its pid cannot have been reused.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_status(path: &Path) -> Option<agent::status::Status> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Polls the status file every millisecond until `done` holds.
async fn wait_status(
    path: &Path,
    timeout: Duration,
    agent: &mut AgentProcess,
    done: impl Fn(&agent::status::Status) -> bool,
) -> anyhow::Result<agent::status::Status> {
    let start = Instant::now();
    loop {
        if let Some(st) = read_status(path).filter(|st| done(st)) {
            return Ok(st);
        }
        agent.exited()?;
        anyhow::ensure!(start.elapsed() < timeout, "the agent did not get there within {timeout:?} ({})", path.display());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
