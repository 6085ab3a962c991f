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
