//! The benchmarks of `weir bench`, one module each, and what they share: the report (a
//! table, the figures checked against their targets, JSON), statistics and the machine.
//!
//! Every benchmark measures its baseline in the same run on the same machine and reports
//! the ratio: absolute times on a small shared VM move by ±5–8 % between runs, ratios much
//! less.
pub(crate) mod bed;
pub(crate) mod churn;
#[cfg(feature = "kube")]
pub(crate) mod cluster_mode;
pub(crate) mod compile_scale;
pub(crate) mod datapath;
pub(crate) mod enforcement;
pub(crate) mod install;
pub(crate) mod node_policy;
pub(crate) mod restart;
pub(crate) mod scale;

use serde_json::{Value, json};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Prints where a benchmark is on stderr, with the seconds since it started: runs take from
/// seconds to minutes, and the table comes only at the end.
pub(crate) fn progress(what: impl std::fmt::Display) {
    static START: OnceLock<Instant> = OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[{t:6.1}s] {what}");
}

/// One figure against its target.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
    /// The target, e.g. `< 1000` or `>= 0.95`.
    pub target: String,
    pub met: bool,
}

impl Check {
    pub fn below(what: &str, value: f64, unit: &'static str, limit: f64) -> Check {
        Check { what: what.into(), value, unit, target: format!("< {limit}"), met: value < limit }
    }
    pub fn at_most(what: &str, value: f64, unit: &'static str, limit: f64) -> Check {
        Check { what: what.into(), value, unit, target: format!("<= {limit}"), met: value <= limit }
    }
    pub fn at_least(what: &str, value: f64, unit: &'static str, limit: f64) -> Check {
        Check { what: what.into(), value, unit, target: format!(">= {limit}"), met: value >= limit }
    }
}

/// What a benchmark hands back: a table for people, data for JSON, figures vs targets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
    pub data: Value,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(header: &[&str]) -> Report {
        Report { header: header.iter().map(|s| s.to_string()).collect(), data: json!({}), ..Report::default() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as aligned text, then notes, then each target.
    pub fn text(&self, name: &str) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(c.len());
                }
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
            format!("| {} |\n", parts.join(" | "))
        };
        let mut out = format!("## {name}\n\n");
        out.push_str(&line(&self.header));
        out.push_str(&format!("|{}|\n", widths.iter().map(|w| format!("{}:", "-".repeat(w + 1))).collect::<Vec<_>>().join("|")));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        for n in &self.notes {
            out.push_str(&format!("\n{n}\n"));
        }
        if !self.checks.is_empty() {
            out.push('\n');
        }
        for c in &self.checks {
            out.push_str(&format!(
                "- {}: {} {} (target {}) {}\n",
                c.what,
                fmt_num(c.value),
                c.unit,
                c.target,
                if c.met { "MET" } else { "MISSED" }
            ));
        }
        out
    }

    /// The JSON document: benchmark, size, machine, data and targets.
    pub fn json(&self, name: &str, quick: bool) -> Value {
        json!({
            "bench": name,
            "quick": quick,
            "machine": machine(),
            "header": self.header,
            "rows": self.rows,
            "notes": self.notes,
            "data": self.data,
            "targets": self.checks.iter().map(|c| json!({
                "what": c.what, "value": c.value, "unit": c.unit, "target": c.target, "met": c.met,
            })).collect::<Vec<_>>(),
        })
    }

    /// Prints the table and writes the JSON to `path` if given.
    pub fn emit(&self, name: &str, quick: bool, path: Option<&Path>) -> anyhow::Result<()> {
        println!("{}", self.text(name));
        if let Some(p) = path {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(p, serde_json::to_string_pretty(&self.json(name, quick))? + "\n")
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
        }
        Ok(())
    }
}

/// A number with a sensible number of decimals.
pub(crate) fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of `v` (mean of the middle two for even lengths); NaN when empty.
pub(crate) fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

/// The nearest-rank percentile `p` (0..=100) of `v`; NaN when empty.
pub(crate) fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// This machine: CPUs, CPU model, memory, kernel, OVS version.
pub(crate) fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()));
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").and_then(|r| r.trim().split(' ').next()?.parse::<u64>().ok())));
    let ovs = std::process::Command::new("ovs-vswitchd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string));
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "memory_gib": mem_kb.map(|k| (k as f64 / 1048576.0 * 10.0).round() / 10.0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
        "ovs": ovs,
    })
}

/// Peak resident set size of this process so far, in MiB (`VmHWM`).
pub(crate) fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") as f64 / 1024.0
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.trim().trim_end_matches(" kB").trim().parse().ok())))
        .unwrap_or(0)
}

/// A private scratch directory under the system temp dir, removed when dropped.
pub(crate) struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new(what: &str) -> anyhow::Result<Scratch> {
        let p = std::env::temp_dir().join(format!("weir-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Scratch(p))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn p99_of_a_hundred_values_is_the_99th_smallest() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn the_table_names_missed_targets() {
        let mut r = Report::new(&["a", "b"]);
        r.row(vec!["1".into(), "22".into()]);
        r.checks.push(Check::below("compile", 1.5, "s", 1.0));
        let t = r.text("x");
        assert!(t.contains("| 1 | 22 |"), "{t}");
        assert!(t.contains("compile: 1.50 s (target < 1) MISSED"), "{t}");
    }
}
