//! The CRDs in `deploy/crds/` are the ones weir's types make (`policy::crd::files`): a type
//! changed without regenerating them fails here. `WEIR_WRITE_CRDS=1` rewrites them instead.
//! (That the real API server accepts them and enforces their schema is tested in
//! crates/agent/tests/kube_status.rs.)
use std::path::Path;

#[test]
fn the_checked_in_crds_are_the_ones_the_types_make() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let write = std::env::var_os("WEIR_WRITE_CRDS").is_some();
    for (name, generated) in policy::crd::files() {
        let path = dir.join(&name);
        if write {
            std::fs::write(&path, &generated).unwrap();
            eprintln!("wrote {}", path.display());
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            checked_in == generated,
            "{} differs from what the types make; regenerate it with \
             WEIR_WRITE_CRDS=1 cargo test -p policy --features crd --test crds",
            path.display()
        );
    }
}

#[test]
fn the_trafficcontrol_schema_is_structural_and_keeps_the_rules_the_server_can_check() {
    let (_, yaml) = policy::crd::files().into_iter().find(|(n, _)| n == "weir.io_trafficcontrols.yaml").unwrap();
    let crd: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    let version = &crd["spec"]["versions"][0];
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(version["subresources"]["status"], serde_json::json!({}), "status is a subresource");
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["properties"]["action"]["enum"], serde_json::json!(["Mirror", "Redirect"]));
    let port = &spec["properties"]["targetPort"];
    assert_eq!((&port["minProperties"], &port["maxProperties"]), (&1.into(), &1.into()));
    assert_eq!(port["properties"]["vxlan"]["properties"]["vni"]["maximum"], 16777215);
    // No reference left for the API server to resolve: a structural schema is inline.
    assert!(!yaml.contains("$ref") && !yaml.contains("anyOf"), "{yaml}");
    let conditions = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], serde_json::json!(["type"]));
}
