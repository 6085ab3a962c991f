use super::*;
use crate::status::{ObjectErrorReport, ObjectName, TrafficControlReport};

fn realized_status() -> Status {
    let mut s = Status { node: "n1".into(), generation: 1, realized: true, ..Status::default() };
    s.traffic_controls.insert("mirror-a".into(), TrafficControlReport { realized: true, ..Default::default() });
    s.cluster_policies.push(ObjectName { kind: "AdminNetworkPolicy".into(), name: "deny-x".into() });
    s
}

fn target(kind: &'static str, name: &str) -> Target {
    Target { kind, name: name.into() }
}

fn error(source: &str, object: &str, field: &str) -> ObjectErrorReport {
    ObjectErrorReport { object: object.into(), field: field.into(), message: "\"x\" is not an IP address".into(), source: source.into() }
}

#[test]
fn a_starting_agent_says_nothing() {
    let s = Status { node: "n1".into(), last_error: Some("starting".into()), ..realized_status() };
    assert!(verdicts(&Status { realized: false, generation: 0, ..s }).is_empty());
}

#[test]
fn realized_objects_are_true_and_a_switch_that_is_down_makes_them_false_with_why() {
    let v = verdicts(&realized_status());
    assert_eq!(v.len(), 2);
    assert!(v.values().all(|v| v.realized && v.reason == "Realized" && v.message == "realized on node n1"), "{v:?}");
    assert!(v.contains_key(&target("AdminNetworkPolicy", "deny-x")) && v.contains_key(&target("TrafficControl", "mirror-a")));

    let down = Status { realized: false, last_error: Some("connection refused".into()), ..realized_status() };
    let v = verdicts(&down);
    assert!(v.values().all(|v| !v.realized && v.reason == "NotRealized" && v.message == "connection refused"), "{v:?}");
}

#[test]
fn a_traffic_control_with_a_missing_port_is_not_realized_and_says_which() {
    let mut s = realized_status();
    s.traffic_controls.get_mut("mirror-a").unwrap().errors = vec!["port tap0 is not on the bridge".into()];
    let v = &verdicts(&s)[&target("TrafficControl", "mirror-a")];
    assert_eq!((v.realized, v.reason, v.message.as_str()), (false, "NotRealized", "port tap0 is not on the bridge"));
}

#[test]
fn a_rejected_object_shows_its_field_error_and_other_kinds_errors_are_not_reported_here() {
    let mut s = realized_status();
    s.errors.push(error("kube:TrafficControl/bad", "TrafficControl bad", "spec.targetPort.vxlan.remoteIP"));
    s.errors.push(error("kube:TrafficControl/mirror-a", "TrafficControl mirror-a", "spec.direction"));
    s.errors.push(error("kube:NetworkPolicy/x/np", "NetworkPolicy x/np", "spec.ingress[0]"));
    s.errors.push(error("manifests/a.yaml", "TrafficControl c", "spec"));
    let v = verdicts(&s);
    assert_eq!(v.len(), 3, "{v:?}");
    let bad = &v[&target("TrafficControl", "bad")];
    assert_eq!((bad.realized, bad.reason), (false, "Rejected"));
    assert_eq!(bad.message, "rejected: spec.targetPort.vxlan.remoteIP: \"x\" is not an IP address");
    let edited = &v[&target("TrafficControl", "mirror-a")];
    assert_eq!(edited.reason, "Rejected");
    assert!(edited.message.ends_with("the last valid version stays in force"), "{}", edited.message);
}

#[test]
fn each_node_has_its_own_condition_type_and_field_manager() {
    assert_eq!(realized_type("n1"), "realized.weir.io/n1");
    assert_ne!(field_manager("n1"), field_manager("n2"));
}

#[test]
fn a_long_message_is_cut_at_a_character_boundary_and_says_so() {
    let cut = bounded("é".repeat(3000));
    assert!(cut.len() < MAX_MESSAGE + 100 && cut.ends_with("see `weir status` on the node)"), "{}", cut.len());
    assert_eq!(bounded("short".into()), "short");
}
