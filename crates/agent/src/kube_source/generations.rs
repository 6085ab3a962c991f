//! Which `metadata.generation` of each custom object a cluster view holds, by the view's token,
//! so the status writer can say which generation its node realized (`observedGeneration`).
//!
//! The Kubernetes source tags every view it sends with a token of its own, `v<N>` (and
//! ` sync=<token>` when a sync object's token is in force, see [`super::sync`]), and records the
//! view's generations here under it; the node agent reports the token of the view it realized,
//! and the writer looks it up. Tokens are unique in the process; the last [`KEEP`] are kept.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Generations by (kind, name) of the custom objects (all cluster-scoped).
pub type Generations = BTreeMap<(&'static str, String), i64>;

/// How many views' generations are kept: far more than can be sent while one is realized.
pub const KEEP: usize = 64;

const SYNC_PREFIX: &str = " sync=";

static SEQ: AtomicU64 = AtomicU64::new(1);
static VIEWS: Mutex<VecDeque<(String, Arc<Generations>)>> = Mutex::new(VecDeque::new());

/// A fresh token for a view with `generations`, carrying the sync token in force (if any).
pub fn tag(sync: Option<&str>, generations: Generations) -> String {
    let mut token = format!("v{}", SEQ.fetch_add(1, Ordering::Relaxed));
    if let Some(sync) = sync {
        token.push_str(SYNC_PREFIX);
        token.push_str(sync);
    }
    let mut views = VIEWS.lock().unwrap_or_else(|e| e.into_inner());
    if views.len() == KEEP {
        views.pop_front();
    }
    views.push_back((token.clone(), Arc::new(generations)));
    token
}

/// The generations of the view tagged `token`, while kept.
pub fn of(token: &str) -> Option<Arc<Generations>> {
    let views = VIEWS.lock().unwrap_or_else(|e| e.into_inner());
    views.iter().rev().find(|(t, _)| t == token).map(|(_, g)| g.clone())
}

/// The sync token a view's token carries.
pub fn sync_token(token: &str) -> Option<&str> {
    token.split_once(SYNC_PREFIX).map(|(_, sync)| sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_view_gets_its_own_token_with_its_generations_and_the_sync_token() {
        let one = tag(None, [(("TrafficControl", "m".to_string()), 1)].into());
        let two = tag(Some("t-7"), [(("TrafficControl", "m".to_string()), 2)].into());
        assert_ne!(one, two);
        assert_eq!(of(&one).unwrap()[&("TrafficControl", "m".to_string())], 1);
        assert_eq!(of(&two).unwrap()[&("TrafficControl", "m".to_string())], 2);
        assert_eq!((sync_token(&one), sync_token(&two)), (None, Some("t-7")));
        assert!(of("v0").is_none());
    }

    #[test]
    fn only_the_last_views_are_kept() {
        let first = tag(None, Generations::new());
        for _ in 0..KEEP {
            tag(None, Generations::new());
        }
        assert!(of(&first).is_none());
    }
}
