//! A manifest file as a unit: used as a whole, or not at all.
//!
//! A document that cannot be identified (not YAML, not an object, no name, a kind weir neither
//! handles nor knowingly ignores) may be a cut-off or mistyped copy of objects the file
//! defined; using the rest of the file would drop those objects and open what they protected.
//! Such a file is *broken* and none of its text is used. Whoever keeps history (the agent's
//! manifest cache) keeps the file's last good version in force, as if the edit had not
//! happened ([`BrokenFile::over`]); without one, the file contributes only its errors, and the
//! policies its text names fail closed for the pods they select, as a rejected policy does
//! ([`BrokenFile::alone`]).
//!
//! The same rule per object: an object whose edited version is rejected keeps its last valid
//! version from the same file ([`Manifests::keep_last_valid`]).
use super::{Manifests, Object, ObjectError, RejectedPolicy, parse};
use crate::cluster_policy::{ClusterPolicy, RejectedClusterPolicy};
use crate::netpol::NetworkPolicy;

/// A file none of whose text can be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenFile {
    /// What makes it unusable (never empty).
    pub unusable: Vec<ObjectError>,
    /// The errors of the documents that could be identified.
    pub object_errors: Vec<ObjectError>,
    /// Every NetworkPolicy its text names, valid or not, reduced to what it selects.
    pub policies: Vec<RejectedPolicy>,
    /// Every cluster policy its text names, valid or not, reduced to what it applies to.
    pub cluster_policies: Vec<RejectedClusterPolicy>,
}

/// Parses one file as a unit: its objects, or why none of them can be used.
pub fn parse_file(source: &str, text: &str) -> Result<Manifests, BrokenFile> {
    let mut m = parse(source, text);
    if m.unusable.is_empty() {
        return Ok(m);
    }
    let mut policies = std::mem::take(&mut m.rejected_policies);
    policies.extend(m.objects.iter().filter_map(|(_, o)| match o {
        Object::NetworkPolicy(p) => Some(selected_by(p)),
        _ => None,
    }));
    let mut cluster_policies = std::mem::take(&mut m.rejected_cluster_policies);
    cluster_policies.extend(m.objects.iter().filter_map(|(_, o)| match o {
        Object::ClusterPolicy(p) => Some(applied_by(p)),
        _ => None,
    }));
    Err(BrokenFile { unusable: m.unusable, object_errors: m.errors, policies, cluster_policies })
}

/// What a valid cluster policy applies to, as a rejected one's remnant: deny all, at its tier
/// and priority, in the directions it has rules for.
pub(crate) fn applied_by(p: &ClusterPolicy) -> RejectedClusterPolicy {
    use crate::netpol::Direction;
    RejectedClusterPolicy {
        object: format!("{} {}", p.kind, p.name),
        kind: p.kind,
        name: p.name.clone(),
        tier: p.tier,
        priority: p.priority,
        // Antrea rules may name their own pods: the remnant covers them all.
        subject: Some(match p.ingress.iter().chain(&p.egress).filter_map(|r| r.applied_to.clone()).collect::<Vec<_>>() {
            own if own.is_empty() => p.subject.clone(),
            own => crate::cluster_policy::Subject::AnyOf(own),
        }),
        directions: [Direction::Ingress, Direction::Egress].into_iter().filter(|d| !p.rules(*d).is_empty()).collect(),
    }
}

/// What a valid policy selects, as a rejected policy's remnant: isolation without allows.
fn selected_by(p: &NetworkPolicy) -> RejectedPolicy {
    RejectedPolicy {
        object: format!("NetworkPolicy {}/{}", p.namespace, p.name),
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        selector: Some(p.pod_selector.clone()),
        directions: p.policy_types.clone(),
    }
}

impl BrokenFile {
    /// A file that could not be read (or is not text); `why` says so.
    pub fn unreadable(source: &str, why: impl Into<String>) -> BrokenFile {
        let error = ObjectError { object: String::new(), field: "-".into(), message: why.into(), source: source.to_string() };
        BrokenFile { unusable: vec![error], object_errors: Vec::new(), policies: Vec::new(), cluster_policies: Vec::new() }
    }

    /// What the file contributes when no earlier version of it is in force: its errors, and
    /// isolation for the pods its NetworkPolicies select.
    pub fn alone(self) -> Manifests {
        let consequence = if self.policies.is_empty() && self.cluster_policies.is_empty() {
            "nothing in this file is used until it is fixed"
        } else {
            "nothing in this file is used until it is fixed; its policies fail closed for the pods they select"
        };
        let mut errors = with_consequence(self.unusable, consequence);
        errors.extend(self.object_errors);
        Manifests {
            errors,
            rejected_policies: self.policies,
            rejected_cluster_policies: self.cluster_policies,
            ..Manifests::default()
        }
    }

    /// What the file contributes over `last_good`, its last usable content: that content, as
    /// if the edit had not happened, with this text's reasons first.
    pub fn over(self, last_good: &Manifests) -> Manifests {
        let mut kept = last_good.clone();
        let mut errors = with_consequence(self.unusable, "its last good version stays in force until it is fixed");
        errors.append(&mut kept.errors);
        kept.errors = errors;
        kept
    }
}

fn with_consequence(errors: Vec<ObjectError>, consequence: &str) -> Vec<ObjectError> {
    errors.into_iter().map(|e| ObjectError { message: format!("{}; {consequence}", e.message), ..e }).collect()
}

impl Manifests {
    /// After an edit of a file: every object whose new version is rejected, and that
    /// `previous` (the file's content in force until now) held, keeps that version, and its
    /// error says so. A rejected NetworkPolicy kept this way loses its fail-closed remnant:
    /// its last valid version decides, as if the edit had not happened.
    pub fn keep_last_valid(&mut self, previous: &Manifests) {
        let mut kept = Vec::new();
        for e in &mut self.errors {
            let valid_now = self.objects.iter().any(|(_, o)| o.describe() == e.object);
            let last = previous.objects.iter().find(|(_, o)| o.describe() == e.object);
            let (Some(last), false) = (last, valid_now) else { continue };
            if kept.iter().any(|(_, o): &(String, Object)| o.describe() == e.object) {
                continue;
            }
            e.message.push_str("; its last valid version stays in force");
            kept.push(last.clone());
        }
        let stale: Vec<String> = kept.iter().map(|(_, o)| o.describe()).collect();
        self.rejected_policies.retain(|r| !stale.contains(&r.object));
        self.rejected_cluster_policies.retain(|r| !stale.contains(&r.object));
        self.objects.extend(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cluster;

    const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: a}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}]}]\n";
    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n";

    fn two_docs() -> String {
        format!("{POD}---\n{POLICY}")
    }

    #[test]
    fn a_file_whose_documents_all_parse_is_used() {
        let m = parse_file("f.yaml", &two_docs()).unwrap();
        assert_eq!(m.objects.len(), 2);
    }

    #[test]
    fn a_cut_off_document_makes_the_whole_file_unusable_and_names_file_document_and_line() {
        let text = two_docs();
        let cut = &text[..text.find("ingress").unwrap() + 30];
        let broken = parse_file("manifests/p.yaml", cut).unwrap_err();
        let e = &broken.unusable[0];
        assert_eq!((e.source.as_str(), e.object.as_str()), ("manifests/p.yaml", "document 2 (line 11)"), "{e}");
        assert!(e.to_string().starts_with("manifests/p.yaml: document 2 (line 11): not valid YAML: "), "{e}");
        // The Pod of document 1 parsed, but is not used: the cut may have removed others.
        assert!(broken.object_errors.is_empty());
        assert_eq!(broken.policies.len(), 0, "document 2 cannot be identified, so it names no policy");
    }

    #[test]
    fn a_yaml_error_in_a_later_document_is_located_in_the_file_not_the_document() {
        let text = format!("{POD}---\na: 1\nb: [x\n");
        let e = &parse_file("f.yaml", &text).unwrap_err().unusable[0];
        assert_eq!(e.object, "document 2 (line 7)", "{e}");
    }

    #[test]
    fn binary_bytes_that_are_utf8_are_not_yaml() {
        let broken = parse_file("bin.yaml", "\u{0}\u{1}\u{2}garbage\u{7f}").unwrap_err();
        assert!(broken.unusable[0].message.starts_with("not valid YAML"), "{:?}", broken.unusable);
    }

    #[test]
    fn an_unknown_kind_is_named_with_file_and_object_and_makes_the_file_unusable() {
        let typo = POLICY.replace("kind: NetworkPolicy", "kind: NetworkPolicyy");
        let broken = parse_file("p.yaml", &format!("{POD}---\n{typo}")).unwrap_err();
        let e = &broken.unusable[0];
        assert_eq!((e.object.as_str(), e.field.as_str()), ("NetworkPolicyy x/p", "kind"));
        assert!(e.message.contains("unknown kind \"NetworkPolicyy\""), "{}", e.message);
    }

    #[test]
    fn an_unknown_apiversion_of_a_policy_rejects_it_and_fails_closed() {
        let typo = POLICY.replace("networking.k8s.io/v1", "networking.k8s.io/v11");
        let m = parse_file("p.yaml", &typo).unwrap();
        assert_eq!((m.errors[0].object.as_str(), m.errors[0].field.as_str()), ("NetworkPolicy x/p", "apiVersion"));
        assert_eq!(m.rejected_policies.len(), 1, "its pods are isolated");
    }

    #[test]
    fn ignored_kinds_are_notes_and_unsupported_policy_kinds_are_errors() {
        let text = format!(
            "{POD}---\napiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: x}}\n---\napiVersion: crd.antrea.io/v1beta1\nkind: Group\nmetadata: {{name: t}}\n"
        );
        let m = parse_file("f.yaml", &text).unwrap();
        assert_eq!(m.objects.len(), 1);
        assert!(m.notes.iter().any(|n| n.contains("skipped Service x/s")), "{:?}", m.notes);
        assert_eq!((m.errors[0].object.as_str(), m.errors[0].field.as_str()), ("Group t", "kind"));
        assert!(m.errors[0].message.contains("not enforced"));
    }

    #[test]
    fn a_document_without_a_name_cannot_be_identified() {
        let text = POLICY.replace("name: p, ", "");
        let broken = parse_file("p.yaml", &text).unwrap_err();
        assert_eq!(broken.unusable[0].field, "metadata.name");
    }

    #[test]
    fn a_broken_file_alone_contributes_its_errors_and_isolates_for_its_policies() {
        let text = format!("{POLICY}---\nthis: [is not, valid\n");
        let alone = parse_file("p.yaml", &text).unwrap_err().alone();
        assert!(alone.objects.is_empty());
        assert_eq!(alone.rejected_policies.len(), 1);
        assert_eq!(alone.rejected_policies[0].object, "NetworkPolicy x/p");
        assert!(alone.errors[0].message.ends_with("nothing in this file is used until it is fixed; its policies fail closed for the pods they select"));
        let cluster = Cluster::from_manifests(alone);
        assert!(cluster.policies.is_empty());
    }

    #[test]
    fn a_broken_file_over_its_last_good_version_keeps_that_version_as_if_unedited() {
        let good = parse_file("p.yaml", &two_docs()).unwrap();
        let over = parse_file("p.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [").unwrap_err().over(&good);
        assert_eq!(over.objects, good.objects);
        assert_eq!(over.rejected_policies, good.rejected_policies);
        assert_eq!(over.errors.len(), 1);
        assert!(over.errors[0].message.ends_with("its last good version stays in force until it is fixed"));
    }

    #[test]
    fn an_unreadable_file_names_only_the_file() {
        let e = BrokenFile::unreadable("m/p.yaml", "not UTF-8 text (invalid byte at offset 3)").alone().errors.remove(0);
        assert_eq!(e.to_string(), "m/p.yaml: not UTF-8 text (invalid byte at offset 3); nothing in this file is used until it is fixed");
    }

    #[test]
    fn an_edit_that_makes_a_policy_invalid_keeps_its_last_valid_version_without_a_remnant() {
        let previous = parse_file("p.yaml", &two_docs()).unwrap();
        let edited = two_docs().replace("app: b", "'bad key': b");
        let mut m = parse_file("p.yaml", &edited).unwrap();
        assert_eq!(m.rejected_policies.len(), 1, "on its own the edit fails closed");
        m.keep_last_valid(&previous);
        assert!(m.rejected_policies.is_empty(), "the last valid version decides");
        assert_eq!(m.objects, previous.objects);
        assert_eq!(m.errors.len(), 1);
        assert!(m.errors[0].message.ends_with("; its last valid version stays in force"), "{}", m.errors[0]);
    }

    #[test]
    fn a_new_invalid_policy_has_no_last_version_and_fails_closed() {
        let previous = parse_file("p.yaml", POD).unwrap();
        let mut m = parse_file("p.yaml", &two_docs().replace("app: b", "'bad key': b")).unwrap();
        m.keep_last_valid(&previous);
        assert_eq!(m.rejected_policies.len(), 1);
        assert_eq!(m.objects.len(), 1);
        assert!(!m.errors[0].message.contains("last valid version"));
    }
}
