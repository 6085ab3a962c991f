//! `metadata` of every object, and the checks Kubernetes' `ValidateObjectMeta` makes on it.
use crate::objects::Labels;
use crate::selector::FieldError;
use crate::syntax;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The part of `ObjectMeta` weir reads; other fields (uid, ...) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its namespace (namespaced kinds; `default` when absent, as kubectl does).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Its labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// Its annotations (weir reads its own, e.g. [`AUDIT_LOG_ANNOTATION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The annotation that turns audit logging on for rules of the network-policy-api kinds
/// (which have no `enableLogging`): a comma-separated list of rule names, or `*` for every
/// rule.
pub const AUDIT_LOG_ANNOTATION: &str = "weir.io/audit-log";
/// The label of the lines of the rules [`AUDIT_LOG_ANNOTATION`] logs (Antrea's `logLabel`).
pub const AUDIT_LOG_LABEL_ANNOTATION: &str = "weir.io/audit-log-label";

/// How an object's name must look.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NameRule {
    /// DNS-1123 label (namespaces).
    Label,
    /// DNS-1123 subdomain (most objects).
    Subdomain,
}

impl ObjectMeta {
    /// The checked name.
    pub(crate) fn checked_name(&self, rule: NameRule) -> Result<String, FieldError> {
        let name = self.name.as_deref().ok_or_else(|| FieldError::new("metadata.name", "is required"))?;
        match rule {
            NameRule::Label => syntax::dns1123_label(name),
            NameRule::Subdomain => syntax::dns1123_subdomain(name),
        }
        .map_err(|m| FieldError::new("metadata.name", m))?;
        Ok(name.to_string())
    }

    /// The effective, checked namespace of a namespaced object.
    pub(crate) fn checked_namespace(&self) -> Result<String, FieldError> {
        let ns = self.namespace.as_deref().unwrap_or("default");
        syntax::dns1123_label(ns).map_err(|m| FieldError::new("metadata.namespace", m))?;
        Ok(ns.to_string())
    }

    /// The annotation `key`, if present.
    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The checked labels.
    pub(crate) fn checked_labels(&self) -> Result<Labels, FieldError> {
        let labels = self.labels.clone().unwrap_or_default();
        check_labels(&labels, "metadata.labels")?;
        Ok(labels)
    }
}

/// Checks a label map: size limit, then each key and value.
pub(crate) fn check_labels(labels: &Labels, field: &str) -> Result<(), FieldError> {
    if labels.len() > syntax::MAX_LABELS {
        return Err(FieldError::new(
            field,
            format!("has {} labels; at most {} are allowed", labels.len(), syntax::MAX_LABELS),
        ));
    }
    for (k, v) in labels {
        syntax::label_key(k).map_err(|m| FieldError::new(field, m))?;
        syntax::label_value(v).map_err(|m| FieldError::new(field, format!("key {k:?}: {m}")))?;
    }
    Ok(())
}
