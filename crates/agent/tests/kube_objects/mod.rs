//! The Kubernetes objects the tests against a real API server create, one constant per
//! object; [`yaml`] joins some into one multi-document text for `kubectl apply`.
#![allow(dead_code)]

/// Namespace `x`, labelled with its name as Kubernetes does.
pub const NAMESPACE_X: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {kubernetes.io/metadata.name: x}}
";

/// Node `n1` with its pod CIDR.
pub const NODE_N1: &str = "\
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.244.1.0/24}
";

/// Pod `x/a` (`app: web`) on `n1`.
pub const POD_X_A: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: web}}
spec:
  nodeName: n1
  containers: [{name: c, image: example.invalid/none:0}]
";

/// A NetworkPolicy isolating every pod of `x` for ingress.
pub const DENY_INGRESS_X: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
";

/// A TrafficControl mirroring what `app: web` pods send to the internal port `tap0`.
pub const MIRROR_A: &str = "\
apiVersion: weir.io/v1alpha1
kind: TrafficControl
metadata: {name: mirror-a}
spec:
  appliedTo: {podSelector: {matchLabels: {app: web}}}
  direction: Egress
  action: Mirror
  targetPort: {ovsInternal: {name: tap0}}
";

/// Valid for the schema (any string is a remoteIP there), not for weir.
pub const BAD_REMOTE: &str = "\
apiVersion: weir.io/v1alpha1
kind: TrafficControl
metadata: {name: bad-remote}
spec:
  appliedTo: {podSelector: {}}
  direction: Both
  action: Mirror
  targetPort: {vxlan: {remoteIP: not-an-address}}
";

/// An AdminNetworkPolicy denying namespace `x` all ingress.
pub const DENY_X: &str = "\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-x}
spec:
  priority: 3
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: x}}}
  ingress:
  - name: deny-all
    action: Deny
    from: [{namespaces: {}}]
";

/// `objects` as one multi-document YAML text.
pub fn yaml(objects: &[&str]) -> String {
    objects.join("---\n")
}

/// Stand-ins for Antrea's own CRDs (`crd.antrea.io`, which Antrea installs):
/// `testbed/antrea-crds/` (`policy::crd::antrea_stand_ins`), one multi-document text.
pub fn antrea_crds() -> String {
    policy::crd::antrea_stand_ins().into_iter().map(|(_, yaml)| yaml).collect::<Vec<_>>().join("---\n")
}
