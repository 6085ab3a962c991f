//! The pipeline's tables, declared once.
//!
//! Each table's id is its position in [`Table::ALL`]; its name, stage, purpose, miss behaviour
//! and the tables it may continue to are declared here and nowhere else. Flows
//! ([`crate::flow::FlowBuilder`]), the OVSDB `Flow_Table` names, `pipeline-docs/` and
//! `weir trace` all read this declaration.
//!
//! Policy runs in three layers per direction, each a table, in the order the oracle
//! (`policy::evaluate`) consults them: admin tiers ([`Table::EgressAdmin`]), NetworkPolicy
//! ([`Table::EgressRule`] allows, [`Table::EgressDefault`] isolation drops), baseline tier
//! ([`Table::EgressBaseline`]); the same for ingress. The layering does the tier logic
//! without registers: an admin Allow jumps past the other two layers, Pass lands in the
//! NetworkPolicy table, and only endpoints NetworkPolicy does not isolate get past the
//! isolation drops to the baseline table. One admin table holds every admin tier (priorities
//! order them, see `crate::placement`), so adding a tier needs no new table.

use std::fmt;

/// What a table does with a packet no flow matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// Drop it (the table only lets through what it recognizes).
    Drop,
    /// Continue to the given table.
    Goto(Table),
    /// Output to the port chosen earlier (reg1): the last table's job.
    OutputToReg1,
}

/// The part of the pipeline a table belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Where did the packet come from, and may it send what it sends.
    Validation,
    /// Connection tracking: replies of allowed connections skip policy.
    Conntrack,
    /// Policy applied to traffic a local endpoint sends.
    EgressSecurity,
    /// Where the packet goes: MAC rewrite, tunnel destination, output port.
    Forwarding,
    /// Policy applied to traffic a local endpoint receives.
    IngressSecurity,
    /// Committing allowed connections and sending the packet out.
    Output,
}

/// Static facts about one table.
#[derive(Debug, Clone, Copy)]
pub struct TableDef {
    /// The table.
    pub table: Table,
    /// The name OVS shows (`ovs-ofctl dump-flows --names`) and `weir trace` prints.
    pub name: &'static str,
    /// Pipeline stage.
    pub stage: Stage,
    /// One sentence: what the table decides.
    pub purpose: &'static str,
    /// What happens on a miss.
    pub miss: Miss,
    /// Tables a flow of this table may continue to (goto, or ct(table=)).
    pub next: &'static [Table],
}

macro_rules! tables {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $stage:ident, $miss:expr, [$($next:ident),*], $purpose:literal; )*) => {
        /// A table of the pipeline. Its OpenFlow table id is its declaration index.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Table { $( $(#[$doc])* $variant, )* }

        impl Table {
            /// Every table, in pipeline order.
            pub const ALL: &'static [Table] = &[ $( Table::$variant, )* ];

            /// This table's declaration.
            pub fn def(self) -> &'static TableDef {
                const DEFS: &[TableDef] = &[ $( TableDef {
                    table: Table::$variant,
                    name: $name,
                    stage: Stage::$stage,
                    purpose: $purpose,
                    miss: $miss,
                    next: &[$(Table::$next),*],
                }, )* ];
                &DEFS[self as usize]
            }
        }
    };
}

use Miss::{Drop, Goto};
use Table::*;

tables! {
    /// Tags the packet with its source (local pod, tunnel) and sends ARP to the responder.
    Classifier = "Classifier", Validation, Drop, [SpoofGuard, Conntrack, ArpResponder, L3Forwarding],
        "Tags each packet with where it came from (local pod, tunnel, host gateway, a host interface moved onto the bridge or its uplink, or a TrafficControl return port, which re-enters at L3Forwarding); the host's ARP goes to the responder; a moved interface's non-IP traffic, DHCP and, on a node, the tunnel to the other nodes pass straight between its two ports; unknown ports are dropped.";
    /// A local pod may only send from its own MAC and IP.
    SpoofGuard = "SpoofGuard", Validation, Drop, [Conntrack, ArpResponder],
        "Lets a pod send IPv4 and ARP only from its own MAC and IP address.";
    /// Answers every ARP request of a local pod with the gateway MAC (all traffic is routed).
    ArpResponder = "ArpResponder", Validation, Drop, [],
        "Answers pods' ARP requests with the gateway MAC, and the host's (through the gateway port) with one MAC for every pod address, so every packet is routed by L3Forwarding.";
    /// Sends IP packets through conntrack in the weir zone; SCTP through the learned replies.
    Conntrack = "Conntrack", Conntrack, Drop, [SctpConnections, ConntrackState],
        "Looks the packet up in connection tracking (zone 65520); SCTP, which OVS's userspace conntrack tracks by address pair only, in SctpConnections instead.";
    /// Learned flows that recognize replies of allowed SCTP associations.
    SctpConnections = "SctpConnections", Conntrack, Drop, [],
        "Holds a learned flow per allowed SCTP association that marks its replies as established (resubmitted to from Conntrack).";
    /// Drops invalid packets; lets replies skip policy and established packets skip all but the admin tiers.
    ConntrackState = "ConntrackState", Conntrack, Goto(EgressAdmin), [EgressAdmin, L3Forwarding],
        "Drops invalid packets; replies (and packets from tunnels or the host gateway) skip egress policy, except what the host gateway forwards from a local pod's address (a Service connection after the host's DNAT), which meets that pod's egress policy on its real destination (reg3), while the pod's own packets to Service addresses go to the host unjudged; with the node's policy on OVS (--node-policy ovs), what the host sends through the gateway from one of its own addresses meets the Node's egress policy (reg3 = the gateway port); established packets of a local pod's own connections meet only the admin tiers again (reg0 marks both); replies of connections that came from the host gateway are marked to go back to it.";
    /// Admin-tier egress rules (AdminNetworkPolicy, tiered ClusterNetworkPolicy): first match decides.
    EgressAdmin = "EgressAdmin", EgressSecurity, Goto(EgressRule), [EgressRule, L3Forwarding],
        "Admin tiers' egress rules, first match by priority: Allow continues to L3Forwarding (skipping NetworkPolicy and baseline), Deny drops, Reject answers the client with a TCP RST or ICMP unreachable (sent by the agent), Pass goes on to EgressRule. Established packets meet these rules too, so a new Deny stops a connection that began before it.";
    /// Kubernetes NetworkPolicy egress rules: conjunctions of applied-to, peer and service.
    EgressRule = "EgressRule", EgressSecurity, Goto(EgressDefault), [EgressDefault, L3Forwarding],
        "NetworkPolicy egress rules: a packet allowed by a rule, or established, continues to L3Forwarding.";
    /// Drops new connections from pods isolated for egress that no rule allowed.
    EgressDefault = "EgressDefault", EgressSecurity, Goto(EgressBaseline), [EgressBaseline],
        "Drops what a pod isolated for egress sends unless an egress rule allowed it; what a pod NetworkPolicy does not isolate goes on to EgressBaseline.";
    /// Baseline-tier egress rules, for pods NetworkPolicy does not isolate.
    EgressBaseline = "EgressBaseline", EgressSecurity, Goto(L3Forwarding), [L3Forwarding],
        "Baseline tier's egress rules (BaselineAdminNetworkPolicy), reached only by pods NetworkPolicy does not isolate for egress: first match decides, Allow continues, Deny drops, Reject answers the client with a TCP RST or ICMP unreachable (sent by the agent); no match allows.";
    /// Rewrites MACs for the destination pod, or sets the tunnel destination for a remote node.
    L3Forwarding = "L3Forwarding", Forwarding, Drop, [L2Forwarding],
        "Routes by destination IP: to a local pod (MAC rewrite), to another node's pod CIDR or address (tunnel: that node's host sees the pod's own address), to this node's address from the tunnel (host gateway), or anything else a local pod sends to the host gateway (the host routes it: itself, Services, the outside masqueraded).";
    /// Chooses the output port from the destination MAC.
    L2Forwarding = "L2Forwarding", Forwarding, Drop, [IngressAdmin, ConntrackCommit],
        "Picks the output port (reg1) from the destination MAC; traffic leaving through a tunnel or to the host gateway skips ingress policy here, except, with the node's policy on OVS (--node-policy ovs), what goes to the host gateway addressed to one of the node's own addresses: it meets the Node's ingress policy (reg1 = the gateway port).";
    /// Admin-tier ingress rules.
    IngressAdmin = "IngressAdmin", IngressSecurity, Goto(IngressRule), [IngressRule, ConntrackCommit],
        "Admin tiers' ingress rules, first match by priority: Allow continues to ConntrackCommit, Deny drops, Reject answers the client with a TCP RST or ICMP unreachable (sent by the agent), Pass goes on to IngressRule. Replies and the node's own connections (from the host gateway with the gateway's address: kubelet probes) skip them; established packets do not.";
    /// Kubernetes NetworkPolicy ingress rules.
    IngressRule = "IngressRule", IngressSecurity, Goto(IngressDefault), [IngressDefault, ConntrackCommit],
        "NetworkPolicy ingress rules: established packets and packets a rule allows continue to ConntrackCommit.";
    /// Drops new connections to pods isolated for ingress that no rule allowed.
    IngressDefault = "IngressDefault", IngressSecurity, Goto(IngressBaseline), [IngressBaseline],
        "Drops what a pod isolated for ingress receives unless an ingress rule allowed it; what a pod NetworkPolicy does not isolate goes on to IngressBaseline.";
    /// Baseline-tier ingress rules, for pods NetworkPolicy does not isolate.
    IngressBaseline = "IngressBaseline", IngressSecurity, Goto(ConntrackCommit), [ConntrackCommit],
        "Baseline tier's ingress rules, reached only by pods NetworkPolicy does not isolate for ingress: first match decides; no match allows.";
    /// Commits new allowed connections so their replies skip policy.
    ConntrackCommit = "ConntrackCommit", Output, Goto(TrafficControlEgress), [TrafficControlEgress],
        "Commits new connections that policy allowed (SCTP: learns a flow for its replies), so replies skip policy; those from the host gateway with ct_mark 0x1, so their replies go back to it.";
    /// TrafficControl of what a local pod sends: mirror copies, redirect.
    TrafficControlEgress = "TrafficControlEgress", Output, Goto(TrafficControlIngress), [TrafficControlIngress, Output],
        "Mirrors (copies to each target) or redirects (sends only to the target) what a selected pod sends; packets back from a return port skip TrafficControl.";
    /// TrafficControl of what a local pod receives.
    TrafficControlIngress = "TrafficControlIngress", Output, Goto(Output), [Output],
        "Mirrors or redirects what a selected pod receives.";
    /// Sends the packet to the port chosen by L2Forwarding.
    Output = "Output", Output, Miss::OutputToReg1, [],
        "Outputs the packet to the port in reg1.";
}

impl Table {
    /// The OpenFlow table id.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The table's name as OVS shows it.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The table with OpenFlow id `id`, if it is declared.
    pub fn from_id(id: u8) -> Option<Table> {
        Table::ALL.get(usize::from(id)).copied()
    }

    /// Whether a flow of this table may continue to (or resubmit to) `next`.
    pub fn may_continue_to(self, next: Table) -> bool {
        self.def().next.contains(&next) || self.def().miss == Miss::Goto(next)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_declaration_order() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(usize::from(t.id()), i);
            assert_eq!(Table::from_id(t.id()), Some(*t));
            assert_eq!(t.def().table, *t);
        }
    }

    #[test]
    fn every_continuation_goes_forward() {
        for t in Table::ALL {
            for n in t.def().next {
                assert!(n > t, "{t} continues backwards to {n}");
            }
            if let Miss::Goto(n) = t.def().miss {
                assert!(n > *t, "{t} misses backwards to {n}");
            }
        }
    }

    #[test]
    fn names_are_unique_identifiers() {
        let mut names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Table::ALL.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_alphanumeric())));
    }
}
