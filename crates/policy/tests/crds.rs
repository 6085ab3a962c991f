//! The CRDs in `deploy/crds/` (and the stand-ins for Antrea's in `testbed/antrea-crds/`) are the
//! ones weir's types make (`policy::crd::files`, `antrea_stand_ins`): a type changed without
//! regenerating them fails here. `WEIR_WRITE_CRDS=1` rewrites them instead.
//! (That the real API server accepts them and enforces their schema is tested in
//! crates/agent/tests/kube_status.rs.)
use std::path::Path;

#[test]
fn the_checked_in_crds_are_the_ones_the_types_make() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let write = std::env::var_os("WEIR_WRITE_CRDS").is_some();
    let deploy = policy::crd::files().into_iter().map(|f| ("deploy/crds", f));
    let stand_ins = policy::crd::antrea_stand_ins().into_iter().map(|f| ("testbed/antrea-crds", f));
    for (dir, (name, generated)) in deploy.chain(stand_ins) {
        let path = root.join(dir).join(&name);
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

/// Every node of a schema has a type, or is marked as open (`x-kubernetes-preserve-unknown-fields`)
/// or int-or-string: the API server's rule for a structural schema. Returns the open fields.
fn open_fields(schema: &serde_json::Value, at: &str, open: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&true.into()) {
        open.push(at.to_string());
        return;
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&true.into()) {
        return;
    }
    assert!(schema["type"].is_string(), "{at}: no type in {schema}");
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        open_fields(property, &format!("{at}.{name}"), open);
    }
    if let Some(items) = schema.get("items") {
        open_fields(items, &format!("{at}[]"), open);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        open_fields(values, &format!("{at}{{}}"), open);
    }
}

#[test]
fn the_antrea_kinds_schemas_are_structural_and_open_only_where_weir_rejects_by_name() {
    let expected: [(&str, &str, &[&str]); 5] = [
        (
            "weir.io_clusternetworkpolicies.yaml",
            "Cluster",
            &[
                "spec.appliedTo[].service",
                "spec.appliedTo[].serviceAccount",
                "spec.egress[].appliedTo[].service",
                "spec.egress[].appliedTo[].serviceAccount",
                "spec.egress[].from[].namespaces",
                "spec.egress[].from[].serviceAccount",
                "spec.egress[].l7Protocols",
                "spec.egress[].to[].namespaces",
                "spec.egress[].to[].serviceAccount",
                "spec.egress[].toServices",
                "spec.ingress[].appliedTo[].service",
                "spec.ingress[].appliedTo[].serviceAccount",
                "spec.ingress[].from[].namespaces",
                "spec.ingress[].from[].serviceAccount",
                "spec.ingress[].l7Protocols",
                "spec.ingress[].to[].namespaces",
                "spec.ingress[].to[].serviceAccount",
                "spec.ingress[].toServices",
            ],
        ),
        ("weir.io_tiers.yaml", "Cluster", &[]),
        ("weir.io_clustergroups.yaml", "Cluster", &["spec.externalEntitySelector", "spec.serviceReference"]),
        ("weir.io_externalnodes.yaml", "Namespaced", &[]),
        ("weir.io_externalentities.yaml", "Namespaced", &["spec.ports"]),
    ];
    let files = policy::crd::files();
    for (name, scope, open) in expected {
        let (_, yaml) = files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
        let crd: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(crd["spec"]["scope"], scope, "{name}");
        let version = &crd["spec"]["versions"][0];
        assert_eq!((&version["name"], &version["served"], &version["storage"]), (&"v1alpha1".into(), &true.into(), &true.into()));
        let schema = &version["schema"]["openAPIV3Schema"];
        assert!(schema["properties"].get("status").is_none() && version.get("subresources").is_none(), "{name}: no status of weir's");
        let mut found = Vec::new();
        open_fields(&schema["properties"]["spec"], "spec", &mut found);
        found.sort();
        let mut open = open.to_vec();
        open.sort();
        assert_eq!(found, open, "{name}");
        assert!(!yaml.contains("$ref") && !yaml.contains("anyOf"), "{name}");
    }
}
