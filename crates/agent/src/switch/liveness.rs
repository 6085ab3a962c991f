//! When the switch counts as alive: the keepalive timing and its state machine, pure (no
//! I/O, time passed in), so the driver's reader task only feeds it and obeys it.
//!
//! The switch proves it is alive by sending anything. After [`Timeouts::echo_after`] of
//! silence the driver sends one echo request; if [`Timeouts::dead_after`] passes since the
//! last byte heard, the connection is dead. A killed ovs-vswitchd closes the socket and is
//! noticed at once by the read; this catches the switch that keeps the socket open but no
//! longer runs (stopped, deadlocked, an unplugged TCP peer).

use std::time::Duration;
use tokio::time::Instant;

/// The connection's deadlines.
///
/// Defaults: echo after 1 s of silence, dead after 3 s of it. ovs-vswitchd answers echoes
/// from its main loop, which OVS itself calls "unreasonably long" past 1 s per iteration;
/// on a 2-core VM its echo latency stayed under 0.3 s while it installed a 100k-flow bundle,
/// so 3 s is a 10× margin against declaring a busy switch dead, and still bounds how long
/// a hung switch is believed. Requests get 5 s plus 100 µs per message sent before their
/// reply (a barrier waits for every flow-mod before it; OVS took about 33 µs per flow-mod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Silence after which an echo request is sent.
    pub echo_after: Duration,
    /// Silence after which the connection is dead.
    pub dead_after: Duration,
    /// How long a request may wait for its reply.
    pub request: Duration,
    /// Added to a request's deadline per message it waits behind (bundle adds).
    pub per_message: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            echo_after: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            request: Duration::from_secs(5),
            per_message: Duration::from_micros(100),
        }
    }
}

impl Timeouts {
    /// The deadline of a reply that waits behind `messages` other messages.
    pub fn reply_within(&self, messages: usize) -> Duration {
        self.request + self.per_message * u32::try_from(messages).unwrap_or(u32::MAX)
    }
}

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing until this instant (call [`Liveness::step`] again then, or when bytes arrive).
    WaitUntil(Instant),
    /// Send an echo request now.
    SendEcho,
    /// The switch has been silent this long: the connection is dead.
    Dead(Duration),
}

/// Tracks when the switch was last heard and whether an echo is outstanding.
#[derive(Debug, Clone)]
pub struct Liveness {
    timeouts: Timeouts,
    last_heard: Instant,
    echo_sent: bool,
}

impl Liveness {
    /// Starts counting silence from `now`.
    pub fn new(timeouts: Timeouts, now: Instant) -> Liveness {
        Liveness { timeouts, last_heard: now, echo_sent: false }
    }

    /// The switch sent something at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.echo_sent = false;
    }

    /// What to do at `now`.
    pub fn step(&mut self, now: Instant) -> Step {
        let silent = now.saturating_duration_since(self.last_heard);
        if silent >= self.timeouts.dead_after {
            return Step::Dead(silent);
        }
        if !self.echo_sent && silent >= self.timeouts.echo_after {
            self.echo_sent = true;
            return Step::SendEcho;
        }
        let next = if self.echo_sent { self.timeouts.dead_after } else { self.timeouts.echo_after };
        Step::WaitUntil(self.last_heard + next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn a_silent_switch_gets_one_echo_after_one_second_and_is_dead_after_three() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Timeouts::default(), t0);
        assert_eq!(l.step(at(t0, 0)), Step::WaitUntil(at(t0, 1000)));
        assert_eq!(l.step(at(t0, 999)), Step::WaitUntil(at(t0, 1000)));
        assert_eq!(l.step(at(t0, 1000)), Step::SendEcho);
        // One echo per silence, not one per wake-up.
        assert_eq!(l.step(at(t0, 1001)), Step::WaitUntil(at(t0, 3000)));
        assert_eq!(l.step(at(t0, 2999)), Step::WaitUntil(at(t0, 3000)));
        assert_eq!(l.step(at(t0, 3000)), Step::Dead(Duration::from_secs(3)));
    }

    #[test]
    fn anything_heard_restarts_the_count_and_allows_the_next_echo() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Timeouts::default(), t0);
        assert_eq!(l.step(at(t0, 1000)), Step::SendEcho);
        l.heard(at(t0, 1200)); // the echo reply
        assert_eq!(l.step(at(t0, 2199)), Step::WaitUntil(at(t0, 2200)));
        assert_eq!(l.step(at(t0, 2200)), Step::SendEcho);
        l.heard(at(t0, 2300));
        // Alive for as long as it keeps answering.
        assert_eq!(l.step(at(t0, 5000)), Step::SendEcho);
        assert_eq!(l.step(at(t0, 5299)), Step::WaitUntil(at(t0, 5300)));
        assert_eq!(l.step(at(t0, 5300)), Step::Dead(Duration::from_secs(3)));
    }

    #[test]
    fn a_wake_up_late_past_the_dead_line_is_dead_without_an_echo_first() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Timeouts::default(), t0);
        assert_eq!(l.step(at(t0, 7000)), Step::Dead(Duration::from_secs(7)));
    }

    #[test]
    fn a_reply_deadline_grows_with_the_messages_before_it() {
        let t = Timeouts::default();
        assert_eq!(t.reply_within(0), Duration::from_secs(5));
        assert_eq!(t.reply_within(100_000), Duration::from_secs(15));
    }
}
