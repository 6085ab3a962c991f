//! Admin and baseline policies are incremental: adding, removing or re-prioritizing one among
//! a thousand sends flow_mods for that policy's own flows and nothing else.

use pipeline::{FlowSet, NodeCompiler, Table, diff, offline_topology};
use policy::{
    Action, Cluster, Direction, Endpoint, IpBlock, Origin, Peers, PodKey, PolicyKind, PolicyRef, PortMatch, Protocol, Rule, RuleId,
    Service, Services, Tier,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const POLICIES: u32 = 1000;

/// One node with `pods` pods in namespace `x`, pod `p<i>` at 10.0.0.(i + 2).
fn cluster(pods: u8) -> Cluster {
    cluster_at(&(2..pods + 2).collect::<Vec<_>>())
}

/// One node with pod `p<i>` at 10.0.0.`last_octets[i]`.
fn cluster_at(last_octets: &[u8]) -> Cluster {
    let mut y = String::from(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.0.0.0/16}\nstatus: {addresses: [{type: InternalIP, address: 192.168.1.1}]}\n",
    );
    for (p, octet) in last_octets.iter().enumerate() {
        writeln!(
            y,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{p}, namespace: x}}\nspec: {{nodeName: n1}}\nstatus: {{podIP: 10.0.0.{octet}}}"
        )
        .unwrap();
    }
    Cluster::from_sources([("cluster.yaml", y.as_str())])
}

fn policy_ref(i: u32) -> PolicyRef {
    PolicyRef { kind: PolicyKind::AdminNetworkPolicy, namespace: None, name: format!("anp{i}") }
}

/// Policy `i`: an ingress Deny and an egress Pass, each to a peer and a port of its own (so
/// it shares no conjunction), applied to two of the pods; at `priority`; baseline for odd `i`.
fn policy(i: u32, priority: u32) -> Vec<Rule> {
    let tier = if i.is_multiple_of(2) { Tier::ADMIN } else { Tier::BASELINE };
    let applied: BTreeSet<Endpoint> =
        [i % 5, (i + 1) % 5].iter().map(|p| Endpoint::Pod(PodKey { namespace: "x".into(), name: format!("p{p}") })).collect();
    let peer = IpBlock::host(std::net::Ipv4Addr::new(172, 16, (i / 250) as u8, (i % 250) as u8).into());
    let rule = |index: usize, direction: Direction, action: Action| Rule {
        id: RuleId(format!("AdminNetworkPolicy/anp{i}/{}/{index}", direction.lower())),
        origin: Origin { policy: policy_ref(i), rule: format!("{}[{index}]", direction.lower()) },
        direction,
        tier,
        priority: priority * policy::cluster_policy::MAX_RULES + index as u32,
        action,
        applied_to: applied.clone(),
        peers: Peers::Set { pods: BTreeSet::new(), blocks: vec![peer.clone()] },
        services: Services::List(vec![Service { protocol: Protocol::Tcp, port: PortMatch::Range(1000 + i as u16, 1000 + i as u16) }]),
        audit: None,
    };
    let egress = if tier == Tier::ADMIN { Action::Pass } else { Action::Allow };
    vec![rule(0, Direction::Ingress, Action::Deny), rule(1, Direction::Egress, egress)]
}

fn many(cluster: &Cluster) -> NodeCompiler {
    let topo = offline_topology(cluster, "n1").expect("node n1");
    let tiered: BTreeMap<PolicyRef, Vec<Rule>> = (0..POLICIES).map(|i| (policy_ref(i), policy(i, i % 900))).collect();
    NodeCompiler::with_tiered(cluster, topo, tiered)
}

/// The flows `rules` alone add to a node with no tiered policy.
fn own_flows(cluster: &Cluster, i: u32, rules: Vec<Rule>) -> FlowSet {
    let topo = offline_topology(cluster, "n1").expect("node n1");
    let empty = NodeCompiler::new(cluster, topo.clone());
    let alone = NodeCompiler::with_tiered(cluster, topo, [(policy_ref(i), rules)].into());
    alone.flows().iter().filter(|f| empty.flows().get(&pipeline::flow::key(f)) != Some(*f)).cloned().collect()
}

/// Changes the compiler with `change`, and returns the flow_mods from before to after,
/// checking the compiler's changed keys cover them.
fn flow_mods(c: &mut NodeCompiler, change: impl FnOnce(&mut NodeCompiler)) -> usize {
    let before = c.flows().clone();
    c.take_changed();
    change(c);
    let mods = diff(c.flows(), &before);
    let changed = c.take_changed();
    for m in &mods {
        assert!(changed.contains(&pipeline::flow::key(&m.flow)), "a changed flow is not reported: {:?}", m.flow);
    }
    mods.len()
}

#[test]
fn adding_one_admin_policy_among_a_thousand_sends_only_its_own_flows() {
    let cluster = cluster(5);
    let mut c = many(&cluster);
    let own = own_flows(&cluster, POLICIES, policy(POLICIES, 950));
    assert!(own.len() >= 8, "the policy compiles to flows: {}", own.len());
    let n = flow_mods(&mut c, |c| c.set_tiered_policy(&cluster, policy_ref(POLICIES), policy(POLICIES, 950)));
    assert_eq!(n, own.len());
}

#[test]
fn removing_one_admin_policy_among_a_thousand_sends_only_its_own_flows() {
    let cluster = cluster(5);
    let mut c = many(&cluster);
    let own = own_flows(&cluster, 7, policy(7, 7));
    let n = flow_mods(&mut c, |c| c.set_tiered_policy(&cluster, policy_ref(7), Vec::new()));
    assert_eq!(n, own.len());
}

#[test]
fn reprioritizing_one_admin_policy_among_a_thousand_moves_only_its_own_flows() {
    let cluster = cluster(5);
    let mut c = many(&cluster);
    let (old, new) = (own_flows(&cluster, 8, policy(8, 8)), own_flows(&cluster, 8, policy(8, 3)));
    let n = flow_mods(&mut c, |c| c.set_tiered_policy(&cluster, policy_ref(8), policy(8, 3)));
    // Every flow of the policy moves to another priority: deleted there, added here.
    assert_eq!(n, old.len() + new.len());
}

#[test]
fn incremental_tiered_compile_equals_a_compile_from_scratch() {
    let cluster = cluster(5);
    let mut c = many(&cluster);
    c.set_tiered_policy(&cluster, policy_ref(3), policy(3, 1));
    c.set_tiered_policy(&cluster, policy_ref(4), Vec::new());
    let topo = offline_topology(&cluster, "n1").expect("node n1");
    let mut tiered: BTreeMap<PolicyRef, Vec<Rule>> = (0..POLICIES).map(|i| (policy_ref(i), policy(i, i % 900))).collect();
    tiered.insert(policy_ref(3), policy(3, 1));
    tiered.remove(&policy_ref(4));
    let scratch = NodeCompiler::with_tiered(&cluster, topo, tiered);
    assert!(c.flows() == scratch.flows(), "incremental and scratch compiles differ");
}

#[test]
fn admin_rules_land_in_the_admin_tables_and_baseline_rules_in_the_baseline_tables() {
    let cluster = cluster(5);
    let counts = many(&cluster).flows().counts();
    for t in [Table::EgressAdmin, Table::IngressAdmin, Table::EgressBaseline, Table::IngressBaseline] {
        assert!(counts.get(&t).copied().unwrap_or(0) > POLICIES as usize, "{t}: {:?}", counts.get(&t));
    }
}

/// Policy `i` of a pod-peered kind: an ingress Allow from pod p3 to every pod at `i`.
fn from_p3(i: u32) -> Vec<Rule> {
    let pods: BTreeSet<Endpoint> = (0..5).map(|p| Endpoint::Pod(PodKey { namespace: "x".into(), name: format!("p{p}") })).collect();
    vec![Rule {
        id: RuleId(format!("AdminNetworkPolicy/from-p3-{i}/ingress/0")),
        origin: Origin { policy: policy_ref(i), rule: "ingress[0]".into() },
        direction: Direction::Ingress,
        tier: Tier::ADMIN,
        priority: i * 16,
        action: Action::Allow,
        applied_to: pods,
        peers: Peers::Set { pods: [PodKey { namespace: "x".into(), name: "p3".into() }].into(), blocks: Vec::new() },
        services: Services::Any,
        audit: None,
    }]
}

#[test]
fn pods_leaving_or_moving_recompile_the_admin_policies_that_name_them() {
    let before = cluster(5);
    // p4 is gone, p3 has a new address.
    let after = cluster_at(&[2, 3, 4, 99]);
    let tiered: BTreeMap<PolicyRef, Vec<Rule>> =
        (0..20).map(|i| (policy_ref(i), if i % 4 == 0 { from_p3(i) } else { policy(i, i) })).collect();
    let topo = |c: &Cluster| offline_topology(c, "n1").expect("node n1");
    let mut c = NodeCompiler::with_tiered(&before, topo(&before), tiered.clone());
    c.update(&before, &after, topo(&after));
    let scratch = NodeCompiler::with_tiered(&after, topo(&after), tiered);
    assert!(c.flows() == scratch.flows(), "incremental and scratch compiles differ");
}

#[test]
fn setting_every_tiered_policy_at_once_recompiles_only_the_changed_ones() {
    let cluster = cluster(5);
    let mut c = many(&cluster);
    let mut tiered: BTreeMap<PolicyRef, Vec<Rule>> = (0..POLICIES).map(|i| (policy_ref(i), policy(i, i % 900))).collect();
    tiered.insert(policy_ref(8), policy(8, 3));
    let own = own_flows(&cluster, 8, policy(8, 8)).len() + own_flows(&cluster, 8, policy(8, 3)).len();
    let n = flow_mods(&mut c, |c| c.set_tiered(&cluster, tiered));
    assert_eq!(n, own);
    assert!(c.order_conflicts().is_empty());
}

#[test]
fn priorities_the_fixed_mapping_would_misorder_are_ranked_and_incremental_still_equals_scratch() {
    let cluster = cluster(5);
    let topo = offline_topology(&cluster, "n1").expect("node n1");
    let mut c = many(&cluster);
    let fixed = c.flows().clone();
    // Two admin policies past the fixed mapping's 1,023 priorities: it would give them one slot.
    let (a, b) = ((POLICIES, 1500), (POLICIES + 2, 1600));
    c.set_tiered_policy(&cluster, policy_ref(a.0), policy(a.0, a.1));
    c.set_tiered_policy(&cluster, policy_ref(b.0), policy(b.0, b.1));
    assert!(c.order_conflicts().is_empty(), "ranked: {:?}", c.order_conflicts());
    let mut tiered: BTreeMap<PolicyRef, Vec<Rule>> = (0..POLICIES).map(|i| (policy_ref(i), policy(i, i % 900))).collect();
    tiered.insert(policy_ref(a.0), policy(a.0, a.1));
    tiered.insert(policy_ref(b.0), policy(b.0, b.1));
    let scratch = NodeCompiler::with_tiered(&cluster, topo, tiered);
    assert!(c.flows() == scratch.flows(), "incremental and scratch compiles differ in ranked mode");
    let priority_of = |c: &NodeCompiler, i: u32| {
        let port = 1000 + i as u16;
        let f = c
            .flows()
            .iter()
            .find(|f| f.table_id == Table::IngressAdmin.id() && f.matches.exact(openflow::Field::TcpDst) == Some(port.into()));
        f.map(|f| f.priority).expect("the policy's port flow")
    };
    assert!(priority_of(&c, a.0) > priority_of(&c, b.0), "1,500 before 1,600");
    c.set_tiered_policy(&cluster, policy_ref(b.0), Vec::new());
    c.set_tiered_policy(&cluster, policy_ref(a.0), Vec::new());
    assert!(c.flows() == &fixed, "back to the fixed mapping's flows");
}
