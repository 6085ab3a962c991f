//! How long a failing watcher waits before it tries again.
//!
//! kube-rs's default doubles up to 30 s and only resets on success, so a watcher that failed
//! through an API server restart of 15 s can wait half a minute more after the server is back,
//! with its kind's changes held up meanwhile. A node agent wants its view back within seconds;
//! [`MAX`] keeps a cluster of many nodes from hammering a server that is down, and the jitter
//! keeps their retries apart.

use kube::runtime::utils::Backoff;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// The first wait.
pub const MIN: Duration = Duration::from_millis(250);
/// The longest wait.
pub const MAX: Duration = Duration::from_secs(8);

/// Doubling waits from [`MIN`] to [`MAX`], each shortened by up to a quarter at random;
/// back to [`MIN`] after any success.
#[derive(Debug, Clone)]
pub struct Retry {
    next: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { next: MIN }
    }
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        // A fresh RandomState is randomly keyed: a random number without a random crate.
        let quarter = RandomState::new().hash_one(0u8) % 1000;
        Some(wait - wait / 4 * quarter as u32 / 1000)
    }
}

impl Backoff for Retry {
    fn reset(&mut self) {
        self.next = MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_maximum_and_start_over_after_a_success() {
        let mut r = Retry::default();
        let waits: Vec<Duration> = r.by_ref().take(8).collect();
        for (wait, full) in waits.iter().zip([250, 500, 1000, 2000, 4000, 8000, 8000, 8000]) {
            let full = Duration::from_millis(full);
            assert!(*wait <= full && *wait >= full * 3 / 4, "{wait:?} for {full:?}");
        }
        r.reset();
        assert!(r.next().unwrap() <= MIN);
    }
}
