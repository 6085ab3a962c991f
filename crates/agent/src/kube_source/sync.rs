//! A sync token through the API server (`weir agent --sync-configmap NS/NAME`, which the testbed
//! in cluster mode uses): whoever changes the cluster writes a ConfigMap whose `token` names
//! the new state and whose `expect` lists the objects that state consists of, each with its
//! resourceVersion (or null: deleted). The source attaches the token to the first cluster view
//! that holds every expected object at that version or later: watches of different kinds are
//! not ordered with each other, so the ConfigMap's event may arrive before a policy's. Once
//! the agent has realized that view, it writes `realized.<node>: <token>` into the same
//! ConfigMap (server-side apply, a field manager per node), so the writer learns from the API
//! server alone that every agent enforces what it wrote.

use super::View;
use crate::status::Status;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;
use tokio::sync::watch;
use tracing::warn;

/// The ConfigMap's key holding the token.
pub const TOKEN_KEY: &str = "token";
/// The ConfigMap's key holding the expected objects (a JSON list of [`Expected`]).
pub const EXPECT_KEY: &str = "expect";

/// The key under which `node`'s agent reports the token it realized.
pub fn realized_key(node: &str) -> String {
    format!("realized.{node}")
}

/// The field manager of `node`'s agent for its key.
pub fn field_manager(node: &str) -> String {
    format!("weir-agent-sync-{node}")
}

/// The sync ConfigMap, `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncObject {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl FromStr for SyncObject {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(SyncObject { namespace: ns.into(), name: name.into() })
            }
            _ => Err(format!("{s:?} is not NAMESPACE/NAME")),
        }
    }
}

impl fmt::Display for SyncObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl SyncObject {
    fn api(&self, client: kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(client, &self.namespace, &config_map())
    }

    /// A watch of just this ConfigMap.
    pub fn watcher(
        &self,
        client: kube::Client,
    ) -> impl futures::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send + 'static {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        watcher(self.api(client), config)
    }
}

fn config_map() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    }
}

/// One object the token's state holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expected {
    /// Its kind, e.g. `NetworkPolicy`.
    pub kind: String,
    /// Its apiVersion, where two groups serve the kind (Antrea's kinds: `crd.antrea.io/...`
    /// or `weir.io/v1alpha1`); none: the first watched kind of that name.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Its namespace (none for cluster-scoped kinds).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The resourceVersion it must have at least; none: it must be gone.
    #[serde(default)]
    pub resource_version: Option<String>,
}

/// A token and the state it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub token: String,
    /// The objects the view must hold before the token is attached to it.
    pub expect: Vec<Expected>,
}

/// The token in the ConfigMap's data; `None` if it holds none; an error names the key at fault.
pub fn token_of(object: &DynamicObject) -> Result<Option<Token>, String> {
    let data = object.data.get("data");
    let key = |k: &str| data.and_then(|d| d.get(k)).and_then(|v| v.as_str());
    let Some(token) = key(TOKEN_KEY) else { return Ok(None) };
    let expect = match key(EXPECT_KEY) {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| format!("data.{EXPECT_KEY}: {e}"))?,
    };
    Ok(Some(Token { token: token.to_string(), expect }))
}

/// The newest token seen and the one in force (attached to the views sent).
#[derive(Debug, Default)]
pub struct SyncState {
    pending: Option<Token>,
    current: Option<String>,
}

impl SyncState {
    /// Takes what the ConfigMap's watcher reported.
    pub fn handle(&mut self, object: &SyncObject, event: Result<watcher::Event<DynamicObject>, watcher::Error>) {
        let seen = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
            Ok(_) => return,
            Err(e) => return warn!("sync object {object}: {e}; retrying"),
        };
        match token_of(&seen) {
            Ok(Some(t)) if Some(&t.token) != self.current.as_ref() => self.pending = Some(t),
            Ok(_) => {}
            Err(e) => warn!("sync object {object}: {e}; token ignored"),
        }
    }

    /// Puts the pending token in force once `view` holds what it expects; returns whether the
    /// token in force changed.
    pub fn advance(&mut self, view: &View) -> bool {
        match self.pending.take() {
            Some(t) if t.expect.iter().all(|e| view.holds(e)) => {
                self.current = Some(t.token);
                true
            }
            other => {
                self.pending = other;
                false
            }
        }
    }

    /// The token in force.
    pub fn current(&self) -> Option<String> {
        self.current.clone()
    }
}

/// Whether resourceVersion `have` is `want` or later. They are opaque to clients, but this
/// API server's are etcd revisions: numbers that only grow; anything else must be equal.
pub fn at_least(have: &str, want: &str) -> bool {
    match (have.parse::<u64>(), want.parse::<u64>()) {
        (Ok(h), Ok(w)) => h >= w,
        _ => have == want,
    }
}

/// Writes `realized.<node>` whenever the agent has realized a new token, until `statuses`
/// closes. A failed write is retried with the next status (at the latest the heartbeat's).
pub fn spawn_ack(client: kube::Client, node: &str, object: SyncObject, mut statuses: watch::Receiver<Status>) {
    let node = node.to_string();
    let api = object.api(client);
    tokio::spawn(async move {
        let mut written: Option<String> = None;
        while statuses.changed().await.is_ok() {
            let view = statuses.borrow_and_update().source_token.clone();
            let token = view.as_deref().and_then(super::generations::sync_token).map(str::to_string);
            let Some(token) = token.filter(|t| written.as_ref() != Some(t)) else { continue };
            let body = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": object.name, "namespace": object.namespace},
                "data": {realized_key(&node): token},
            });
            let params = PatchParams::apply(&field_manager(&node)).force();
            match api.patch(&object.name, &params, &Patch::Apply(body)).await {
                Ok(_) => written = Some(token),
                Err(e) => warn!("sync object {object}: reporting token {token}: {e}; retrying with the next status"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_compare_as_revisions_and_opaque_ones_only_by_equality() {
        assert!(at_least("120", "99"));
        assert!(at_least("99", "99"));
        assert!(!at_least("99", "120"));
        assert!(at_least("a1", "a1"));
        assert!(!at_least("a2", "a1"));
    }

    #[test]
    fn a_sync_object_is_namespace_slash_name() {
        assert_eq!(
            "kube-system/weir-sync".parse::<SyncObject>(),
            Ok(SyncObject { namespace: "kube-system".into(), name: "weir-sync".into() })
        );
        for bad in ["weir-sync", "/x", "x/", "a/b/c"] {
            assert!(bad.parse::<SyncObject>().unwrap_err().contains("NAMESPACE/NAME"), "{bad}");
        }
    }

    #[test]
    fn a_broken_expect_list_names_its_key() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"},
            "data": {"token": "t1", "expect": "[{\"kind\": 3}]"},
        }))
        .unwrap();
        assert!(token_of(&object).unwrap_err().starts_with("data.expect: "));
    }
}
