//! Open vSwitch bugs that break weir's promises on some switches, as data: which datapath and
//! versions each affects, and what the agent does about it.
//!
//! The agent reads the running ovs-vswitchd's version (its control socket's `version`
//! command, or `Open_vSwitch.ovs_version` in OVSDB, which `ovs-ctl` sets at start) and the
//! bridge's `datapath_type`, reports every bug that applies in its status, and applies the
//! mitigation. On a fixed OVS or another datapath it does nothing extra.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An OVS release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OvsVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl OvsVersion {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        OvsVersion { major, minor, patch }
    }

    /// Reads a version from `3.1.0`, `3.1.0-2+deb12u1` or a `--version` line such as
    /// `ovs-vswitchd (Open vSwitch) 3.1.0`: the last word, up to the first character that is
    /// neither a digit nor a dot.
    pub fn parse(text: &str) -> Option<Self> {
        let word = text.split_whitespace().last()?;
        let end = word.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(word.len());
        let mut parts = word[..end].split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor) = (parts.next()??, parts.next()??);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(OvsVersion { major, minor, patch })
    }
}

impl fmt::Display for OvsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What the agent does about a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mitigation {
    /// After every bundle it installs, purge the datapath's cached flows
    /// (`revalidator/purge`), so every packet is classified again by the new tables.
    PurgeAfterChange,
}

impl Mitigation {
    /// One line for status and logs.
    pub fn describe(self) -> &'static str {
        match self {
            Mitigation::PurgeAfterChange => {
                "the agent purges the datapath's cached flows (revalidator/purge) after every flow change"
            }
        }
    }
}

/// One known bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownBug {
    /// Upstream's name for the fix.
    pub fix: &'static str,
    /// The upstream commit of the fix.
    pub commit: &'static str,
    /// The datapath type it affects (`netdev`: the userspace datapath).
    pub datapath_type: &'static str,
    /// The first fixed release of each series, ascending; a release of a listed series
    /// below its entry is affected, and so is every release older than the first entry.
    pub fixed_in: &'static [OvsVersion],
    /// What goes wrong, for the status.
    pub effect: &'static str,
    /// What the agent does about it.
    pub mitigation: Mitigation,
}

/// Every bug the agent knows.
pub const KNOWN_BUGS: &[KnownBug] = &[KnownBug {
    fix: "dpif-netdev: Fix dpif_netdev_flow_put",
    commit: "9c600710b",
    datapath_type: "netdev",
    fixed_in: &[OvsVersion::new(2, 17, 8), OvsVersion::new(3, 0, 5), OvsVersion::new(3, 1, 3), OvsVersion::new(3, 2, 0)],
    effect: "after a flow change the revalidator can update the wrong one of two overlapping cached \
             datapath flows and leave the other stale, so a denied packet can pass (or an allowed one \
             be dropped) until the stale flow idles out",
    mitigation: Mitigation::PurgeAfterChange,
}];

impl KnownBug {
    /// Whether a switch of `version` running `datapath_type` has this bug. An empty
    /// datapath type is OVS's default, `system`.
    pub fn affects(&self, version: OvsVersion, datapath_type: &str) -> bool {
        let datapath_type = if datapath_type.is_empty() { "system" } else { datapath_type };
        if datapath_type != self.datapath_type {
            return false;
        }
        match self.fixed_in.iter().find(|f| (f.major, f.minor) == (version.major, version.minor)) {
            Some(fixed) => version.patch < fixed.patch,
            None => self.fixed_in.first().is_some_and(|first| version < *first),
        }
    }

    /// The fixed releases, e.g. `2.17.8, 3.0.5, 3.1.3, 3.2.0 and later`.
    pub fn fixed_releases(&self) -> String {
        let list: Vec<String> = self.fixed_in.iter().map(ToString::to_string).collect();
        format!("{} and later", list.join(", "))
    }
}

/// A bug that applies to this node's switch, as the status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BugReport {
    /// Upstream's name for the fix, and its commit.
    pub bug: String,
    /// What goes wrong.
    pub effect: String,
    /// The releases that have the fix.
    pub fixed_in: String,
    /// What the agent does about it (or that it was told not to).
    pub mitigation: String,
}

/// When the agent purges the datapath's cached flows after installing a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CachePurge {
    /// When a known bug of the switch calls for it.
    #[default]
    Auto,
    /// After every change (e.g. for a switch whose version says fixed but is not).
    Always,
    /// Never (to reproduce a bug, or when its cost is unacceptable and the risk is known).
    Never,
}

/// The switch as the agent found it, and what applies to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchReport {
    /// The running ovs-vswitchd's version, when known.
    pub ovs_version: Option<String>,
    /// Where the version came from (`ovs-vswitchd` control socket or `ovsdb`).
    pub version_source: Option<String>,
    /// The bridge's datapath type (`netdev`: userspace; `system`: kernel).
    pub datapath_type: String,
    /// Known OVS bugs that affect this switch.
    pub known_bugs: Vec<BugReport>,
    /// Whether the agent purges the datapath's cached flows after every change.
    pub purges_after_change: bool,
}

impl SwitchReport {
    /// The report for a switch, and the purge policy `mode` applied to it. An unknown version
    /// is reported as such; `Auto` then purges (no fix can be assumed).
    pub fn new(version: Option<(OvsVersion, &str)>, datapath_type: &str, mode: CachePurge) -> Self {
        let bugs: Vec<&KnownBug> = match version {
            Some((v, _)) => bugs_affecting(v, datapath_type),
            None => KNOWN_BUGS.iter().filter(|b| b.datapath_type == datapath_type).collect(),
        };
        let purges_after_change = match mode {
            CachePurge::Always => true,
            CachePurge::Never => false,
            CachePurge::Auto => bugs.iter().any(|b| b.mitigation == Mitigation::PurgeAfterChange),
        };
        let known_bugs = bugs
            .iter()
            .map(|b| BugReport {
                bug: format!("OVS bug fixed by \"{}\" (commit {})", b.fix, b.commit),
                effect: b.effect.to_string(),
                fixed_in: b.fixed_releases(),
                mitigation: match (mode, purges_after_change) {
                    (_, true) => b.mitigation.describe().to_string(),
                    (CachePurge::Never, false) => "none: --datapath-cache-purge never".to_string(),
                    _ => "none".to_string(),
                },
            })
            .collect();
        SwitchReport {
            ovs_version: version.map(|(v, _)| v.to_string()),
            version_source: version.map(|(_, source)| source.to_string()),
            datapath_type: datapath_type.to_string(),
            known_bugs,
            purges_after_change,
        }
    }

    /// One warning line per bug, for `weir status` and the log.
    pub fn warnings(&self) -> Vec<String> {
        let version = self.ovs_version.as_deref().unwrap_or("of unknown version");
        self.known_bugs
            .iter()
            .map(|b| {
                format!(
                    "OVS {version} ({} datapath) has the {}: {}. Fixed in {}. Mitigation: {}.",
                    self.datapath_type, b.bug, b.effect, b.fixed_in, b.mitigation
                )
            })
            .collect()
    }
}

/// The bugs that apply to `version` and `datapath_type`.
pub fn bugs_affecting(version: OvsVersion, datapath_type: &str) -> Vec<&'static KnownBug> {
    KNOWN_BUGS.iter().filter(|b| b.affects(version, datapath_type)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> OvsVersion {
        OvsVersion::parse(s).unwrap()
    }

    #[test]
    fn versions_are_read_from_ovsdb_and_version_lines() {
        assert_eq!(v("3.1.0"), OvsVersion::new(3, 1, 0));
        assert_eq!(v("ovs-vswitchd (Open vSwitch) 3.5.0\n"), OvsVersion::new(3, 5, 0));
        assert_eq!(v("3.1.0-2+deb12u1"), OvsVersion::new(3, 1, 0));
        assert_eq!(v("2.17"), OvsVersion::new(2, 17, 0));
        assert_eq!(OvsVersion::parse(""), None);
        assert_eq!(OvsVersion::parse("unknown"), None);
    }

    #[test]
    fn the_flow_put_bug_affects_userspace_datapaths_before_each_series_fix() {
        let bug = &KNOWN_BUGS[0];
        for affected in ["3.1.0", "3.1.2", "3.0.4", "2.17.7", "2.13.11", "2.16.0"] {
            assert!(bug.affects(v(affected), "netdev"), "{affected} has the bug");
        }
        for fixed in ["3.1.3", "3.0.5", "2.17.8", "3.2.0", "3.5.0", "4.0.1"] {
            assert!(!bug.affects(v(fixed), "netdev"), "{fixed} has the fix");
        }
    }

    #[test]
    fn the_kernel_datapath_is_never_affected() {
        assert!(bugs_affecting(v("3.1.0"), "system").is_empty());
        assert!(bugs_affecting(v("3.1.0"), "").is_empty());
        assert_eq!(bugs_affecting(v("3.1.0"), "netdev").len(), 1);
    }

    #[test]
    fn fixed_releases_are_listed_for_the_status() {
        assert_eq!(KNOWN_BUGS[0].fixed_releases(), "2.17.8, 3.0.5, 3.1.3, 3.2.0 and later");
    }
    #[test]
    fn an_affected_switch_is_reported_with_its_mitigation_and_a_fixed_one_not_at_all() {
        let affected = SwitchReport::new(Some((v("3.1.0"), "ovsdb")), "netdev", CachePurge::Auto);
        assert!(affected.purges_after_change);
        let warning = &affected.warnings()[0];
        for needle in ["OVS 3.1.0", "netdev", "dpif_netdev_flow_put", "9c600710b", "3.1.3", "revalidator/purge"] {
            assert!(warning.contains(needle), "{needle:?} missing from {warning}");
        }
        let fixed = SwitchReport::new(Some((v("3.5.0"), "ovs-vswitchd")), "netdev", CachePurge::Auto);
        assert!(!fixed.purges_after_change);
        assert!(fixed.warnings().is_empty());
        let kernel = SwitchReport::new(Some((v("3.1.0"), "ovsdb")), "system", CachePurge::Auto);
        assert!(!kernel.purges_after_change && kernel.warnings().is_empty());
    }

    #[test]
    fn the_purge_policy_can_be_forced_either_way() {
        let off = SwitchReport::new(Some((v("3.1.0"), "ovsdb")), "netdev", CachePurge::Never);
        assert!(!off.purges_after_change);
        assert!(off.warnings()[0].contains("Mitigation: none: --datapath-cache-purge never"), "{:?}", off.warnings());
        assert!(SwitchReport::new(Some((v("3.5.0"), "ovsdb")), "netdev", CachePurge::Always).purges_after_change);
    }

    #[test]
    fn an_unknown_version_on_the_userspace_datapath_is_treated_as_affected() {
        let unknown = SwitchReport::new(None, "netdev", CachePurge::Auto);
        assert!(unknown.purges_after_change);
        assert!(unknown.warnings()[0].contains("OVS of unknown version"), "{:?}", unknown.warnings());
    }
}
