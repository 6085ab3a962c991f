//! The masquerade of what pods send out of the cluster, in nftables: one table of weir's own,
//!
//! ```text
//! table ip weir {
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat;
//!         ip saddr <this node's pod CIDR> ip daddr != { <every pod CIDR>, <every ExternalEntity address> } masquerade
//!     }
//! }
//! ```
//!
//! so a pod reaching an address outside the cluster (the internet, another node's own
//! address) does so with this node's address, and pod-to-pod traffic, Service traffic the
//! host DNATed to a pod included, keeps its source. So does traffic to an ExternalEntity's
//! address (a VM's interface under an ExternalNode): that host is inside the policy domain,
//! its own policy and the oracle judge the pod's address (an ipBlock or pod selector naming
//! the pod must match there), so it must see that address, not the node's; it routes the pod
//! CIDRs back through the nodes, as a host peering with the cluster's pod network does. The table is replaced whole in one `nft`
//! transaction (add, delete, add again: the first add makes the delete succeed when it is
//! missing), so applying it again, after a restart or with other CIDRs, never leaves a second
//! rule or half a table.
use ipnetwork::Ipv4Network;
use nftables::batch::Batch;
use nftables::expr::{Expression, NamedExpression, Payload, PayloadField, Prefix, SetItem};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainType, NfFamily, NfHook};
use std::borrow::Cow;

/// The nftables table weir owns.
pub const TABLE: &str = "weir";
/// Its NAT chain.
pub const CHAIN: &str = "postrouting";
/// `srcnat`: the priority of source NAT in the postrouting hook.
const SRCNAT_PRIORITY: i32 = 100;

/// The masquerade rule's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masquerade {
    /// What this node's pods send from.
    pub pod_cidr: Ipv4Network,
    /// Destinations that are not masqueraded: every node's pod CIDR.
    pub cluster_cidrs: Vec<Ipv4Network>,
    /// Hosts of the policy domain outside the pod CIDRs (every ExternalEntity's IPv4
    /// address): not masqueraded either.
    pub policy_hosts: Vec<std::net::Ipv4Addr>,
}

impl Masquerade {
    /// The transaction that replaces weir's table with this rule.
    pub fn ruleset(&self) -> Nftables<'static> {
        let table = || Table { family: NfFamily::IP, name: TABLE.into(), handle: None };
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(table()));
        batch.delete(NfListObject::Table(table()));
        batch.add(NfListObject::Table(table()));
        batch.add(NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: TABLE.into(),
            name: CHAIN.into(),
            _type: Some(NfChainType::NAT),
            hook: Some(NfHook::Postrouting),
            prio: Some(SRCNAT_PRIORITY),
            ..Chain::default()
        }));
        let ip = |field: &'static str| {
            Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField { protocol: "ip".into(), field: field.into() })))
        };
        let cluster: Vec<SetItem<'static>> = self.kept().iter().map(|c| SetItem::Element(prefix(c))).collect();
        let expr = vec![
            Statement::Match(Match { left: ip("saddr"), right: prefix(&self.pod_cidr), op: Operator::EQ }),
            Statement::Match(Match { left: ip("daddr"), right: Expression::Named(NamedExpression::Set(cluster)), op: Operator::NEQ }),
            Statement::Masquerade(None),
        ];
        batch.add(NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: TABLE.into(),
            chain: CHAIN.into(),
            expr: Cow::Owned(expr),
            comment: Some("weir: pods leaving the cluster's pod CIDRs".into()),
            ..Rule::default()
        }));
        batch.to_nftables()
    }

    /// The destinations kept unmasqueraded: the pod CIDRs and each policy host not inside
    /// one (an interval set refuses overlapping elements).
    fn kept(&self) -> Vec<Ipv4Network> {
        let outside = |ip: &&std::net::Ipv4Addr| !self.cluster_cidrs.iter().any(|c| c.contains(**ip));
        let mut hosts: Vec<Ipv4Network> = self.policy_hosts.iter().filter(outside).map(|ip| Ipv4Network::from(*ip)).collect();
        hosts.sort();
        hosts.dedup();
        self.cluster_cidrs.iter().copied().chain(hosts).collect()
    }

    /// Applies [`Masquerade::ruleset`] with `nft -j -f -` (one atomic transaction).
    pub async fn apply(&self) -> Result<(), String> {
        nftables::helper::apply_ruleset_async(&self.ruleset())
            .await
            .map_err(|e| format!("nft: replacing table ip {TABLE} (masquerade of {}): {e}", self.pod_cidr))
    }
}

fn prefix(c: &Ipv4Network) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(c.network().to_string().into())),
        len: u32::from(c.prefix()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transaction_replaces_the_whole_table_with_one_rule() {
        let m = Masquerade {
            pod_cidr: "10.244.1.0/24".parse().unwrap(),
            cluster_cidrs: vec!["10.244.1.0/24".parse().unwrap(), "10.244.2.0/24".parse().unwrap()],
            policy_hosts: vec![],
        };
        let json = serde_json::to_value(m.ruleset()).unwrap();
        let cmds: Vec<String> = json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let (verb, obj) = c.as_object().unwrap().iter().next().unwrap();
                format!("{verb} {}", obj.as_object().unwrap().keys().next().unwrap())
            })
            .collect();
        assert_eq!(cmds, ["add table", "delete table", "add table", "add chain", "add rule"]);
        let rule = json["nftables"][4]["add"]["rule"].to_string();
        assert!(rule.contains(r#""right":{"prefix":{"addr":"10.244.1.0","len":24}}"#), "{rule}");
        assert!(rule.contains(r#""op":"!=""#) && rule.contains(r#""addr":"10.244.2.0""#), "{rule}");
        assert!(rule.contains(r#"{"masquerade":null}"#), "{rule}");
    }

    #[test]
    fn external_entities_outside_the_pod_cidrs_keep_the_pods_address() {
        let m = Masquerade {
            pod_cidr: "10.244.1.0/24".parse().unwrap(),
            cluster_cidrs: vec!["10.244.1.0/24".parse().unwrap()],
            policy_hosts: vec!["192.168.77.101".parse().unwrap(), "10.244.1.9".parse().unwrap(), "192.168.77.101".parse().unwrap()],
        };
        let kept: Vec<String> = m.kept().iter().map(ToString::to_string).collect();
        assert_eq!(kept, ["10.244.1.0/24", "192.168.77.101/32"]);
    }
}
