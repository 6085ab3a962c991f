//! Label selectors: the Kubernetes `LabelSelector` shape (`matchLabels` + `matchExpressions`)
//! and its checked, matchable form [`Selector`].
//!
//! Semantics (`k8s.io/apimachinery/pkg/labels`): all requirements must hold; an empty
//! selector matches everything; `NotIn` and `DoesNotExist` match objects without the key.
use crate::objects::Labels;
use crate::syntax;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// `metav1.LabelSelector`, as written in manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "crd", schemars(extend("x-kubernetes-map-type" = "atomic")))]
pub struct LabelSelectorSpec {
    /// Key = value pairs, each an `In` requirement with one value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<RequirementSpec>>,
}

/// `metav1.LabelSelectorRequirement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct RequirementSpec {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[cfg_attr(feature = "crd", schemars(extend("enum" = ["In", "NotIn", "Exists", "DoesNotExist"])))]
    pub operator: String,
    /// Values for `In`/`NotIn`; must be absent or empty for `Exists`/`DoesNotExist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// One checked requirement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Requirement {
    /// The label is present with one of the values.
    In(String, BTreeSet<String>),
    /// The label is absent or has none of the values.
    NotIn(String, BTreeSet<String>),
    /// The label is present.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        match self {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A checked label selector; matches when every requirement holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Selector {
    /// The requirements, sorted and deduplicated.
    pub requirements: BTreeSet<Requirement>,
}

impl Selector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether this selector matches every object.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Checks a manifest selector; errors carry the field path below `at`
    /// (e.g. `spec.podSelector.matchExpressions[0].values`).
    pub fn from_spec(spec: &LabelSelectorSpec, at: &str) -> Result<Selector, FieldError> {
        let mut requirements = BTreeSet::new();
        let n_labels = spec.match_labels.as_ref().map_or(0, BTreeMap::len);
        let n_exprs = spec.match_expressions.as_ref().map_or(0, Vec::len);
        if n_labels + n_exprs > syntax::MAX_SELECTOR_TERMS {
            return Err(FieldError::new(
                at,
                format!("has {} requirements; at most {} are allowed", n_labels + n_exprs, syntax::MAX_SELECTOR_TERMS),
            ));
        }
        for (k, v) in spec.match_labels.iter().flatten() {
            let field = format!("{at}.matchLabels.{k}");
            syntax::label_key(k).map_err(|m| FieldError::new(&field, m))?;
            syntax::label_value(v).map_err(|m| FieldError::new(&field, m))?;
            requirements.insert(Requirement::In(k.clone(), BTreeSet::from([v.clone()])));
        }
        for (i, e) in spec.match_expressions.iter().flatten().enumerate() {
            let at = format!("{at}.matchExpressions[{i}]");
            syntax::label_key(&e.key).map_err(|m| FieldError::new(format!("{at}.key"), m))?;
            let values = e.values.clone().unwrap_or_default();
            if values.len() > syntax::MAX_SELECTOR_VALUES {
                return Err(FieldError::new(
                    format!("{at}.values"),
                    format!("has {} values; at most {} are allowed", values.len(), syntax::MAX_SELECTOR_VALUES),
                ));
            }
            for (j, v) in values.iter().enumerate() {
                syntax::label_value(v).map_err(|m| FieldError::new(format!("{at}.values[{j}]"), m))?;
            }
            let set: BTreeSet<String> = values.iter().cloned().collect();
            let r = match e.operator.as_str() {
                "In" | "NotIn" if set.is_empty() => {
                    return Err(FieldError::new(
                        format!("{at}.values"),
                        format!("must be specified when `operator` is '{}'", e.operator),
                    ));
                }
                "Exists" | "DoesNotExist" if !set.is_empty() => {
                    return Err(FieldError::new(
                        format!("{at}.values"),
                        format!("may not be specified when `operator` is '{}'", e.operator),
                    ));
                }
                "In" => Requirement::In(e.key.clone(), set),
                "NotIn" => Requirement::NotIn(e.key.clone(), set),
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                other => {
                    return Err(FieldError::new(
                        format!("{at}.operator"),
                        format!("unsupported operator {other:?}: expected In, NotIn, Exists or DoesNotExist"),
                    ));
                }
            };
            requirements.insert(r);
        }
        Ok(Selector { requirements })
    }
}

impl fmt::Display for Selector {
    /// The kubectl selector syntax (`pod=a,ns in (x,y),!team`); `{}` for everything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requirements.is_empty() {
            return f.write_str("{}");
        }
        let join = |vs: &BTreeSet<String>| vs.iter().cloned().collect::<Vec<_>>().join(",");
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::In(k, vs) if vs.len() == 1 => format!("{k}={}", join(vs)),
                Requirement::In(k, vs) => format!("{k} in ({})", join(vs)),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", join(vs)),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A field of an object that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field path, e.g. `spec.ingress[0].ports[1].endPort`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// An error at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(yaml: &str) -> Result<Selector, FieldError> {
        let spec: LabelSelectorSpec = serde_saphyr::from_str(yaml).unwrap();
        Selector::from_spec(&spec, "spec.podSelector")
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = selector("{}").unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_and_expressions_must_all_hold() {
        let s = selector("matchLabels: {pod: a}\nmatchExpressions: [{key: ns, operator: In, values: [x, y]}]").unwrap();
        assert!(s.matches(&labels(&[("pod", "a"), ("ns", "y")])));
        assert!(!s.matches(&labels(&[("pod", "a"), ("ns", "z")])));
        assert!(!s.matches(&labels(&[("pod", "b"), ("ns", "x")])));
    }

    #[test]
    fn not_in_and_does_not_exist_match_objects_without_the_key() {
        let s = selector("matchExpressions: [{key: pod, operator: NotIn, values: [a]}]").unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("pod", "b")])));
        assert!(!s.matches(&labels(&[("pod", "a")])));
        let s = selector("matchExpressions: [{key: pod, operator: DoesNotExist}]").unwrap();
        assert!(s.matches(&labels(&[("x", "y")])));
        assert!(!s.matches(&labels(&[("pod", "")])));
    }

    #[test]
    fn exists_matches_any_value() {
        let s = selector("matchExpressions: [{key: pod, operator: Exists}]").unwrap();
        assert!(s.matches(&labels(&[("pod", "")])));
        assert!(!s.matches(&labels(&[])));
    }

    #[test]
    fn in_without_values_names_the_values_field() {
        let e = selector("matchExpressions: [{key: pod, operator: In, values: []}]").unwrap_err();
        assert_eq!(e.field, "spec.podSelector.matchExpressions[0].values");
    }

    #[test]
    fn unknown_operator_names_the_operator_field() {
        let e = selector("matchExpressions: [{key: pod, operator: Equals, values: [a]}]").unwrap_err();
        assert_eq!(e.field, "spec.podSelector.matchExpressions[0].operator");
    }

    #[test]
    fn bad_label_key_names_the_match_labels_entry() {
        let e = selector("matchLabels: {'-bad': a}").unwrap_err();
        assert_eq!(e.field, "spec.podSelector.matchLabels.-bad");
    }

    #[test]
    fn display_uses_kubectl_syntax() {
        let s = selector("matchLabels: {pod: a}\nmatchExpressions: [{key: t, operator: DoesNotExist}]").unwrap();
        assert_eq!(s.to_string(), "pod=a,!t");
    }
}
