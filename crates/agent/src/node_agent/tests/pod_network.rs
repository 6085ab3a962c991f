//! The node's pod network goes to the CNI configuration only once the node is realized, and
//! again only when it changes.

use super::*;

fn publishing() -> World {
    World::with_settings(Switch::fixed(), |s| s.publish_pod_network = true)
}

fn published_since(w: &World, mark: usize) -> Vec<(Duration, String)> {
    w.since(mark)
        .iter()
        .filter_map(|(t, d)| match d {
            Done::PodNetwork(net) => Some((*t, format!("{} via {}", net.subnet, net.gateway))),
            _ => None,
        })
        .collect()
}

#[test]
fn the_pod_network_is_published_after_the_first_realization_and_not_before() {
    let mut w = publishing();
    w.switch.accepting = false;
    w.input(manifests(BASE, "t0"));
    w.input(bridge());
    w.advance(Duration::from_secs(2));
    assert!(published_since(&w, 0).is_empty(), "no pod may start while the switch cannot be programmed");
    w.switch_back();
    w.advance(Duration::from_secs(1));
    assert!(w.status().realized);
    let published = published_since(&w, 0);
    assert_eq!(published.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(), ["10.0.1.0/24 via 10.0.1.1"]);
    assert!(published[0].0 >= w.times_of(0, "flow-restore")[0], "after the flows are in force");
}

#[test]
fn it_is_published_again_only_when_the_nodes_pod_cidr_changes() {
    let mut w = publishing();
    w.input(manifests(BASE, "t0"));
    w.input(bridge());
    w.advance(ms(10));
    w.input(manifests(&format!("{BASE}{}", policy("p", 80)), "t1"));
    w.advance(ms(10));
    assert_eq!(published_since(&w, 0).len(), 1, "a policy change is not a new pod network");
    w.input(manifests(&BASE.replace("10.0.1.0/24", "10.0.7.0/24"), "t2"));
    w.advance(ms(10));
    let published: Vec<String> = published_since(&w, 0).into_iter().map(|(_, n)| n).collect();
    assert_eq!(published, ["10.0.1.0/24 via 10.0.1.1", "10.0.7.0/24 via 10.0.7.1"]);
}

#[test]
fn without_a_cni_configuration_directory_nothing_is_published() {
    let mut w = World::realized(Switch::fixed(), BASE);
    w.advance(Duration::from_secs(3));
    assert!(published_since(&w, 0).is_empty());
}
