//! Truth tables: who can reach whom, for one port and protocol, in the layout of the
//! conformance matrices (rows are clients, columns servers; `.` reaches, `X` does not).
use crate::cluster::Cluster;
use crate::evaluate::{Packet, evaluate};
use crate::objects::PodKey;
use crate::protocol::Protocol;
use crate::rules::RuleSet;
use serde::Serialize;
use std::fmt;

/// A square table over `pods`: `cells[from][to]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthTable {
    /// Row and column order.
    pub pods: Vec<PodKey>,
    /// `cells[i][j]`: whether `pods[i]` reaches `pods[j]`.
    pub cells: Vec<Vec<bool>>,
}

/// A matrix that does not have the conformance layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matrix line {line}: {message}")]
pub struct TableError {
    /// 0-based line of the matrix (0 is the header).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl TruthTable {
    /// Parses the lines of a conformance matrix: a header of pods, then one row per pod
    /// (the pod, then one `.` or `X` per column), split on whitespace.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<TruthTable, TableError> {
        let err = |line: usize, message: String| TableError { line, message };
        let header = lines.first().ok_or_else(|| err(0, "no header line".into()))?;
        let pods: Vec<PodKey> = header
            .as_ref()
            .split_whitespace()
            .map(|s| s.parse::<PodKey>().map_err(|e| err(0, e.to_string())))
            .collect::<Result<_, _>>()?;
        if lines.len() != pods.len() + 1 {
            return Err(err(lines.len(), format!("{} rows for {} columns", lines.len() - 1, pods.len())));
        }
        let mut cells = Vec::new();
        for (i, line) in lines[1..].iter().enumerate() {
            let tokens: Vec<&str> = line.as_ref().split_whitespace().collect();
            if tokens.first().copied() != Some(pods[i].to_string().as_str()) {
                return Err(err(i + 1, format!("row should start with {}", pods[i])));
            }
            if tokens.len() != pods.len() + 1 {
                return Err(err(i + 1, format!("{} cells for {} columns", tokens.len() - 1, pods.len())));
            }
            let row = tokens[1..]
                .iter()
                .map(|t| match *t {
                    "." => Ok(true),
                    "X" => Ok(false),
                    other => Err(err(i + 1, format!("cell {other:?} is neither '.' nor 'X'"))),
                })
                .collect::<Result<_, _>>()?;
            cells.push(row);
        }
        Ok(TruthTable { pods, cells })
    }

    /// The oracle's table over every non-hostNetwork pod with an address.
    pub fn of_cluster(cluster: &Cluster, rules: &RuleSet, port: u16, protocol: Protocol) -> TruthTable {
        let pods: Vec<PodKey> =
            cluster.policy_pods().filter(|p| !p.ips.is_empty()).map(|p| p.key.clone()).collect();
        let ip = |k: &PodKey| cluster.pods[k].ips[0];
        let cells = pods
            .iter()
            .map(|from| {
                pods.iter()
                    .map(|to| {
                        let packet = Packet { src: ip(from), dst: ip(to), protocol, dst_port: port };
                        evaluate(cluster, rules, &packet).allowed
                    })
                    .collect()
            })
            .collect();
        TruthTable { pods, cells }
    }

    /// A table filled by `f(from, to)`.
    pub fn build(pods: Vec<PodKey>, mut f: impl FnMut(&PodKey, &PodKey) -> bool) -> TruthTable {
        let cells = pods.iter().map(|a| pods.iter().map(|b| f(a, b)).collect()).collect();
        TruthTable { pods, cells }
    }

    /// The cell for a pair, if both pods are in the table.
    pub fn get(&self, from: &PodKey, to: &PodKey) -> Option<bool> {
        let i = self.pods.iter().position(|p| p == from)?;
        let j = self.pods.iter().position(|p| p == to)?;
        Some(self.cells[i][j])
    }

    /// Renders with `mark(i, j)` deciding whether a cell is flagged (drawn `!` after it).
    pub fn render_marked(&self, mark: impl Fn(usize, usize) -> bool) -> String {
        let names: Vec<String> = self.pods.iter().map(ToString::to_string).collect();
        let first = names.iter().map(String::len).max().unwrap_or(0) + 2;
        let mut out = format!("{:first$}", "");
        out.push_str(&names.join(" "));
        out.push('\n');
        for (i, row) in self.cells.iter().enumerate() {
            out.push_str(&format!("{:first$}", names[i]));
            for (j, &cell) in row.iter().enumerate() {
                let w = names[j].len();
                let c = format!("{}{}", if cell { "." } else { "X" }, if mark(i, j) { "!" } else { "" });
                // Centre the cell under its column name, as the case files do.
                let left = (w.saturating_sub(1)) / 2;
                let text = format!("{:left$}{c}", "");
                out.push_str(&format!("{text:w$}"));
                if j + 1 < row.len() {
                    out.push(' ');
                }
            }
            while out.ends_with(' ') {
                out.pop();
            }
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for TruthTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_marked(|_, _| false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render_round_trip_in_the_case_layout() {
        let lines = ["     x/a x/b", "x/a   X   .", "x/b   .   ."];
        let t = TruthTable::parse(&lines).unwrap();
        assert_eq!(t.cells, vec![vec![false, true], vec![true, true]]);
        let text = t.to_string();
        let rendered: Vec<&str> = text.lines().collect();
        assert_eq!(rendered, lines);
    }

    #[test]
    fn rows_out_of_order_are_rejected() {
        let e = TruthTable::parse(&["     x/a x/b", "x/b   X   .", "x/a   .   ."]).unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn unknown_cell_symbols_are_rejected() {
        let e = TruthTable::parse(&["     x/a", "x/a   ?"]).unwrap_err();
        assert!(e.message.contains("neither"));
    }
}
