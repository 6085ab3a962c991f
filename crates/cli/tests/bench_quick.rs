//! Every `weir bench` benchmark of issue 7 at its `--quick` size, as a smoke test: each must
//! run to the end on real switches and testbeds and write a JSON report with its table and
//! targets. No timing is asserted (CI machines are noisy); targets missed are reported, not
//! failed.

use std::path::PathBuf;
use std::process::Command;

fn quick(bench: &str) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("weir-bench-quick-{}-{bench}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json: PathBuf = dir.join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["bench", bench, "--quick", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weir bench {bench} --quick failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("## {bench}")), "no table printed:\n{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().any(|l| l.starts_with('[') && l.contains("s] ")), "no progress on stderr:\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(v["bench"], bench);
    assert_eq!(v["quick"], true);
    assert!(!v["rows"].as_array().unwrap().is_empty(), "{bench}: empty table");
    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    v
}

#[test]
fn compile_scale_quick_compares_every_size_with_its_cross_product() {
    let v = quick("compile-scale");
    for size in v["data"]["sizes"].as_array().unwrap() {
        assert!(size["flows"].as_u64().unwrap() > 0);
        assert!(size["cross_product_rule_flows"].as_u64().unwrap() >= size["conjunctions"].as_u64().unwrap());
        assert!(size["peak_rss_mib"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn install_quick_installs_the_same_flow_set_both_ways() {
    let v = quick("install");
    assert!(v["data"]["flows"].as_u64().unwrap() > 1000);
    assert!(v["data"]["ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn churn_quick_measures_every_event_kind_and_the_floor() {
    let v = quick("churn");
    assert!(!v["data"]["floor_ms"].as_array().unwrap().is_empty());
    assert_eq!(v["data"]["pod add (this node)"]["total_ms"].as_array().unwrap().len(), 5);
    assert_eq!(v["data"]["cluster policy add"]["total_ms"].as_array().unwrap().len(), 5);
    assert_eq!(v["data"]["cluster policy priority change"]["total_ms"].as_array().unwrap().len(), 10);
}

#[test]
fn enforcement_latency_quick_sees_deny_and_allow_enforced() {
    let v = quick("enforcement-latency");
    assert_eq!(v["data"]["deny_ms"].as_array().unwrap().len(), 5);
    assert_eq!(v["data"]["allow_ms"].as_array().unwrap().len(), 5);
}

#[test]
fn datapath_quick_measures_weir_and_iptables_configurations() {
    let v = quick("datapath");
    let rates = v["data"]["conn_per_s"].as_object().unwrap();
    assert!(rates.keys().any(|k| k.starts_with("iptables")), "{rates:?}");
    assert!(rates.values().all(|r| r[0].as_f64().unwrap() > 0.0), "{rates:?}");
}

#[test]
fn node_policy_quick_measures_both_weir_realizations_with_the_rules_in_the_path() {
    let v = quick("node-policy");
    let rates = v["data"]["conn_per_s"].as_object().unwrap();
    for realization in ["weir-nftables", "weir-OVS", "iptables+ipset"] {
        for rules in [0, 50, 100, 1000] {
            let rate = &rates[&format!("{realization} {rules}")];
            assert!(rate[0].as_f64().unwrap() > 0.0, "{realization} {rules}: {rate}");
        }
    }
    // Every measured connection met the last rule (its counter, its conjunction's flow).
    for (config, m) in v["data"]["last_rule"].as_object().unwrap() {
        assert!(m["packets_matched"].as_u64().unwrap() >= m["connections"].as_u64().unwrap(), "{config}: {m}");
    }
}

#[test]
fn restart_quick_keeps_the_denied_pod_denied() {
    let v = quick("restart");
    assert_eq!(v["data"]["denied_passed"], 0, "a denied probe passed during the restart");
    assert!(v["data"]["denied_probes"].as_u64().unwrap() > 0);
}

#[test]
fn kube_quick_realizes_the_same_flows_from_the_api_server_as_from_files() {
    if !testbed::kube::Binaries::available_for_tests() {
        return;
    }
    let v = quick("kube");
    let (file, kube) = (&v["data"]["file"], &v["data"]["kube"]);
    assert!(kube["flows"].as_u64().unwrap() > 1000);
    assert_eq!(kube["flows"], file["flows"]);
    for mode in [file, kube] {
        assert_eq!(mode["event_ms"].as_array().unwrap().len(), 10, "every pod event was realized");
        assert!(mode["peak_rss_mib"].as_f64().unwrap() > 0.0);
    }
}
