//! Probe results as the truth tables of the conformance README: one table per port and
//! protocol, clients as rows, servers as columns, `.` for a connection and `X` for none.
//!
//! ```text
//! TCP/80
//!      x/a x/b
//! x/a   .   X
//! x/b   .   .
//! ```
use crate::probe::ProbeResult;
use policy::Protocol;
use std::collections::{BTreeMap, BTreeSet};

/// Verdicts of one table, by (from, to).
type Table<'a> = BTreeMap<(&'a str, &'a str), bool>;

/// Renders every (protocol, port) of `results` as a table, in protocol then port order; pods
/// appear in the order they first occur.
pub fn render(results: &[ProbeResult]) -> String {
    let mut pods: Vec<&str> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cells: BTreeMap<(Protocol, u16), Table> = BTreeMap::new();
    for r in results {
        for p in [r.from.as_str(), r.to.as_str()] {
            if seen.insert(p) {
                pods.push(p);
            }
        }
        cells.entry((r.protocol, r.port)).or_default().insert((&r.from, &r.to), r.allowed);
    }
    let width = pods.iter().map(|p| p.len()).max().unwrap_or(1);
    let mut out = String::new();
    for ((protocol, port), table) in &cells {
        let allowed = table.values().filter(|&&a| a).count();
        out.push_str(&format!("{protocol}/{port}  ({allowed} of {} allowed)\n", table.len()));
        let header: Vec<String> = pods.iter().map(|p| format!("{p:>width$}")).collect();
        out.push_str(format!("{:width$}  {}", "", header.join(" ")).trim_end());
        out.push('\n');
        for from in &pods {
            let row: Vec<String> = pods
                .iter()
                .map(|to| {
                    let mark = match table.get(&(*from, *to)) {
                        Some(true) => ".",
                        Some(false) => "X",
                        None => "?",
                    };
                    format!("{mark:^width$}")
                })
                .collect();
            out.push_str(format!("{from:width$}  {}", row.join(" ")).trim_end());
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: &str, to: &str, allowed: bool) -> ProbeResult {
        ProbeResult { from: from.into(), to: to.into(), port: 80, protocol: Protocol::Tcp, allowed }
    }

    #[test]
    fn a_table_has_the_conformance_readme_layout() {
        let results = [r("x/a", "x/a", true), r("x/a", "y/b", false), r("y/b", "x/a", true), r("y/b", "y/b", true)];
        let text = render(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "TCP/80  (3 of 4 allowed)");
        assert_eq!(lines[1], "     x/a y/b");
        assert_eq!(lines[2], "x/a   .   X");
        assert_eq!(lines[3], "y/b   .   .");
    }

    #[test]
    fn each_port_and_protocol_gets_its_own_table() {
        let mut udp = r("x/a", "x/a", false);
        udp.protocol = Protocol::Udp;
        let mut p81 = r("x/a", "x/a", true);
        p81.port = 81;
        let text = render(&[r("x/a", "x/a", true), p81, udp]);
        let titles: Vec<&str> = text.lines().filter(|l| l.contains("allowed")).collect();
        assert_eq!(titles, ["TCP/80  (1 of 1 allowed)", "TCP/81  (1 of 1 allowed)", "UDP/80  (0 of 1 allowed)"]);
    }
}
