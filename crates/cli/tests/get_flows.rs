//! `weir get flows` and `weir get stats` on a live node: the flows of a policy are exactly
//! those a filter of `ovs-ofctl dump-flows` by the policy's conj_ids keeps, with the same
//! counters; a pod's flows are those that name its address; the per-rule counters are the
//! verdict flows' counters.
mod common;

use common::Running;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use testbed::Tunnel;

const ALLOW_Y: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: z}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}], ports: [{protocol: TCP, port: 80}]}]
";

const ADMIN_DENY: &str = "\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-x-to-z}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}, podSelector: {matchLabels: {pod: a}}}}
  ingress:
  - name: no-x
    action: Deny
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}]
";

/// `weir get ARGS... --cluster <node's manifests> --node NODE --openflow <its bridge>`.
fn weir_get(r: &Running, node: &str, args: &[&str]) -> String {
    let n = r.tb.node(node).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("get")
        .args(args)
        .arg("--cluster")
        .arg(testbed::manifests::manifests_dir(n))
        .args(["--node", node, "--openflow"])
        .arg(format!("unix:{}", n.dir.join("br-int.mgmt").display()))
        .args(if args[0] == "flows" { vec!["--ovsdb".to_string(), format!("unix:{}", n.dir.join("db.sock").display())] } else { vec![] })
        .output()
        .unwrap();
    assert!(out.status.success(), "weir get {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Flow lines without their timers (which move between two dumps), as a set.
fn without_timers(dump: &str) -> BTreeSet<String> {
    dump.lines()
        .filter(|l| l.starts_with(" cookie="))
        .map(|l| l.split(", ").filter(|f| !f.starts_with("duration=") && !f.starts_with("idle_age=") && !f.starts_with("hard_age=")).collect::<Vec<_>>().join(", "))
        .collect()
}

fn setup(letter: char) -> (Running, String) {
    let r = Running::up(letter, Tunnel::Geneve);
    let files: Vec<PathBuf> = [("allow.yaml", ALLOW_Y), ("deny.yaml", ADMIN_DENY)]
        .into_iter()
        .map(|(name, text)| {
            let path = r.tmp.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    r.tb.apply(&files, Duration::from_secs(30)).unwrap();
    assert!(r.tcp_allowed("y/b", "z/a"));
    assert!(r.tcp_allowed("y/c", "z/a"));
    assert!(!r.tcp_allowed("x/b", "z/a"));
    let node = r.tb.pod("z/a").unwrap().node.clone();
    (r, node)
}

#[test]
fn a_policys_flows_are_the_raw_dump_filtered_by_its_conj_ids_with_equal_counters() {
    let (r, node) = setup('g');
    let rule_table = format!("table={}", pipeline::Table::IngressRule.id());
    let raw = r.tb.switch(&node).unwrap().ofctl("dump-flows", "br-int", &[]).unwrap();
    let weir = weir_get(&r, &node, &["flows", "--policy", "z/from-y"]);

    // The policy's conj_ids: the only NetworkPolicy verdict flows are its rule's.
    let ids: BTreeSet<String> = raw
        .lines()
        .filter(|l| l.contains(&format!("{rule_table},")))
        .filter_map(|l| l.split([',', ' ']).find_map(|f| f.strip_prefix("conj_id=")).map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 1, "one rule, one conj_id: {raw}");
    let id = ids.iter().next().unwrap();
    let cookie = format!("cookie=0x57030000{:08x},", id.parse::<u32>().unwrap());
    let filtered: String = raw
        .lines()
        .filter(|l| l.contains(&format!("conj_id={id} ")) || l.contains(&format!("conjunction({id},")) || l.contains(&cookie))
        .map(|l| format!("{l}\n"))
        .collect();
    let (ours, theirs) = (without_timers(&weir), without_timers(&filtered));
    assert!(theirs.len() >= 4, "the verdict flow and its three clauses: {filtered}");
    assert_eq!(ours, theirs, "weir get flows --policy z/from-y\n{weir}\nfiltered dump\n{filtered}");
    assert!(ours.iter().any(|l| l.contains(&format!("conj_id={id} ")) && !l.contains("n_packets=0,")), "the allowed probes counted: {weir}");

    // With --names, table names as ovs-ofctl --names prints them.
    let named = weir_get(&r, &node, &["flows", "--policy", "z/from-y", "--names", "--no-stats"]);
    let raw_named = r.tb.switch(&node).unwrap().ofctl("dump-flows", "br-int", &["--names", "--no-stats"]).unwrap();
    let expected: BTreeSet<String> = without_timers(&raw_named)
        .into_iter()
        .filter(|l| l.contains(&format!("conj_id={id} ")) || l.contains(&format!("conjunction({id},")) || l.contains(&cookie))
        .collect();
    assert!(named.contains("table=IngressRule,"), "{named}");
    assert_eq!(without_timers(&named), expected);

    // --rule narrows to one rule; a rule the policy does not have is an error.
    assert_eq!(without_timers(&weir_get(&r, &node, &["flows", "--policy", "z/from-y", "--rule", "ingress[0]"])), ours);
    let n = r.tb.node(&node).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["get", "flows", "--policy", "z/from-y", "--rule", "egress[3]", "--node", &node, "--cluster"])
        .arg(testbed::manifests::manifests_dir(n))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no rule \"egress[3]\""), "{}", String::from_utf8_lossy(&out.stderr));

    // The admin policy's flows are its own.
    let admin = weir_get(&r, &node, &["flows", "--policy", "deny-x-to-z"]);
    assert!(!admin.is_empty() && without_timers(&admin).is_disjoint(&ours), "{admin}");
}

#[test]
fn per_rule_counters_are_the_verdict_flows_counters_and_a_pods_flows_name_it() {
    let (r, node) = setup('s');
    let json = weir_get(&r, &node, &["stats", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let find = |policy: &str| rows.as_array().unwrap().iter().find(|r| r["policy"] == policy).cloned().unwrap_or_else(|| panic!("{policy} in {json}"));
    let (allow, deny) = (find("z/from-y"), find("deny-x-to-z"));
    assert_eq!((allow["tier"].as_str(), allow["rule"].as_str()), (Some("networkpolicy"), Some("ingress[0]")));
    assert_eq!((deny["tier"].as_str(), deny["kind"].as_str(), deny["rule"].as_str()), (Some("admin"), Some("AdminNetworkPolicy"), Some("no-x")));
    assert!(allow["packets"].as_u64().unwrap() >= 2, "two allowed connections: {json}");
    assert!(deny["packets"].as_u64().unwrap() >= 1, "one denied SYN at least: {json}");

    // The verdict flow's counter in the raw dump is the rule's.
    let raw = r.tb.switch(&node).unwrap().ofctl("dump-flows", "br-int", &[&format!("table={}", pipeline::Table::IngressRule.id())]).unwrap();
    let verdict = raw.lines().find(|l| l.contains("conj_id=")).unwrap();
    let packets: u64 = verdict.split(", ").find_map(|f| f.strip_prefix("n_packets=")).unwrap().parse().unwrap();
    let table = weir_get(&r, &node, &["stats", "--policy", "z/from-y"]);
    assert!(table.lines().nth(1).unwrap().split_whitespace().any(|w| w == packets.to_string()), "{table}\n{verdict}");
    assert_eq!(table.lines().count(), 2, "a header and z/from-y's one rule: {table}");

    // A pod's flows: every flow of the raw dump that matches its address is among them.
    let ip = r.tb.pod("z/a").unwrap().ip;
    let pod = without_timers(&weir_get(&r, &node, &["flows", "--pod", "z/a", "--no-stats"]));
    let raw = r.tb.switch(&node).unwrap().ofctl("dump-flows", "br-int", &["--no-stats"]).unwrap();
    let naming: BTreeSet<String> = without_timers(&raw).into_iter().filter(|l| ["nw_src", "nw_dst"].iter().any(|f| [',', ' '].iter().any(|end| l.contains(&format!("{f}={ip}{end}"))))).collect();
    assert!(!naming.is_empty());
    assert!(naming.is_subset(&pod), "missing: {:?}", naming.difference(&pod).collect::<Vec<_>>());
    assert!(pod.len() < without_timers(&raw).len(), "not every flow");

    // `weir testbed pods` prints the same value as JSON and as YAML.
    let pods = |format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["testbed", "--dir"])
            .arg(r.tb.dir())
            .args(["pods", "-o", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&pods("json")).unwrap();
    let yaml: serde_json::Value = serde_saphyr::from_str(&pods("yaml")).unwrap();
    assert_eq!(json["pods"].as_array().map(Vec::len), Some(9));
    assert_eq!(yaml, json);
}
