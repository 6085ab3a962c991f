//! Scraping an agent's metrics endpoint (the default 127.0.0.1:9810) inside a testbed node's
//! network namespace.

use super::Running;
use std::collections::BTreeMap;

/// `GET http://127.0.0.1:9810/PATH` inside `node`'s network namespace: (HTTP status, body).
pub fn get(r: &Running, node: &str, path: &str) -> (u16, String) {
    get_accepting(r, node, path, "*/*")
}

/// [`get`] with an `Accept` header.
pub fn get_accepting(r: &Running, node: &str, path: &str, accept: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:9810{path}");
    let out =
        r.tb.command(node, "curl")
            .unwrap()
            .args(["-s", "-H", &format!("Accept: {accept}"), "-w", "\n%{http_code}", &url])
            .output()
            .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Every sample of a scrape: `name{labels}` → value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
        .collect()
}

/// Every sample of `node`'s `/metrics`.
pub fn scrape(r: &Running, node: &str) -> BTreeMap<String, f64> {
    let (code, body) = get(r, node, "/metrics");
    assert_eq!(code, 200, "{body}");
    samples(&body)
}

/// The value of `series` in a scrape (0 when absent).
pub fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

/// Asserts that Prometheus's linter (`promtool check metrics`, `scripts/promtool.sh`) accepts
/// `text`, a scrape in Prometheus's text format.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool on PATH (PATH=\"$(bash scripts/promtool.sh)$PATH\")");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool: {}{}\n{text}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
