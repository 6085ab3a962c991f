//! A realization pass, one step at a time: the TrafficControl ports, the compile, the connection
//! and the read of the switch, the bundle of the difference, the purge, flow-restore-wait, and
//! how the pass ends.

use super::{Action, BACKOFF, Event, Failure, NodeAgent, RECONNECT, RECORD_QUIET};
use crate::cni_conf::PodNetwork;
use crate::ovs_bugs::SwitchReport;
use crate::realization_record::Digest;
use crate::tc_ports::Reconciled;
use pipeline::{FlowKey, FlowSet, NodeCompiler, diff, diff_keys};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tracing::warn;

/// The step of a realization pass whose result is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    TcPorts,
    Connect,
    ReadSwitch,
    Bundle,
    Purge,
    FlowRestore,
}

/// A realization pass in progress.
#[derive(Debug)]
pub(super) struct Pass {
    /// The sync token of the snapshot this pass realizes.
    token: Option<String>,
    /// The step whose result is awaited.
    step: Step,
    /// The flow keys the compiler update may have changed; `None`: compare everything.
    pub(super) changed: Option<BTreeSet<FlowKey>>,
    /// flow_mods sent by this pass.
    pub(super) flow_mods: usize,
    /// When the first snapshot this pass realizes arrived.
    pub(super) input_at: Option<Instant>,
    /// When the switch acknowledged the bundle.
    pub(super) acked_at: Option<Instant>,
    /// The compile was skipped because the inputs are those of the start's [`Record`]: the
    /// installed flows must have its flow digest, or the pass compiles after all.
    ///
    /// [`Record`]: crate::realization_record::Record
    verify: Option<Digest>,
    /// A bootstrap pass (see [`super::bootstrap`]): the flows it installs instead of the
    /// compiler's.
    bootstrap: Option<FlowSet>,
}

impl Pass {
    pub(super) fn new(token: Option<String>, input_at: Option<Instant>, bootstrap: Option<FlowSet>) -> Pass {
        Pass { token, step: Step::TcPorts, changed: None, flow_mods: 0, input_at, acked_at: None, verify: None, bootstrap }
    }

    /// The flows the switch should hold once this pass is done: the bootstrap's, or the
    /// compiler's ([`desired_flows`]).
    fn desired<'a>(pass: &'a Option<Pass>, compiler: &'a Option<NodeCompiler>) -> std::borrow::Cow<'a, FlowSet> {
        match pass.as_ref().and_then(|p| p.bootstrap.as_ref()) {
            Some(flows) => std::borrow::Cow::Borrowed(flows),
            None => desired_flows(compiler),
        }
    }
}

/// Why a realization pass failed.
#[derive(Debug)]
pub(super) enum PassError {
    /// The switch failed or refused: retry.
    Switch(Failure),
    /// The compiler failed: keep what is installed until the input changes.
    Compile(String),
}

impl NodeAgent {
    pub(super) fn start_pass(&mut self, now: Instant) {
        self.dirty = false;
        self.realize_at = None;
        // This pass is the retry.
        self.retry_at = None;
        let input_at = self.input_at.take();
        self.pass = Some(Pass::new(self.token.clone(), input_at, None));
        let local = self.ports.pods.keys().cloned().collect();
        let wanted = crate::tc_ports::wanted_ports(&self.cluster, &local);
        let ours =
            self.interfaces.values().any(|i| i.external_ids.get(crate::tc_ports::OWNER_KEY).is_some_and(|v| v == crate::tc_ports::OWNER));
        if wanted.is_empty() && !ours {
            // Nothing to ensure and nothing to remove.
            self.tc_ports_done(now, Reconciled::default());
        } else {
            self.actions.push_back(Action::ReconcileTcPorts { wanted, interfaces: self.interfaces.clone() });
        }
    }

    /// Routes the result of a pass step; a result the pass does not wait for (the pass was
    /// abandoned when the connection was lost) is ignored.
    pub(super) fn pass_result(&mut self, now: Instant, event: Event) {
        let awaited = self.pass.as_ref().map(|p| p.step);
        let step = match &event {
            Event::TcPortsReconciled(_) => Step::TcPorts,
            Event::Connected | Event::ConnectFailed(_) => Step::Connect,
            Event::SwitchRead { .. } => Step::ReadSwitch,
            Event::BundleDone(_) => Step::Bundle,
            Event::Purged(_) => Step::Purge,
            Event::FlowRestoreDone(_) => Step::FlowRestore,
            _ => unreachable!("not a pass result: {event:?}"),
        };
        if awaited != Some(step) {
            warn!(?step, ?awaited, "a result nobody waits for: ignored");
            return;
        }
        match event {
            Event::TcPortsReconciled(done) => self.tc_ports_done(now, done),
            Event::Connected => {
                self.connected = true;
                self.installed = None; // a new connection: read back what is there
                self.restore_pending = true;
                self.install(now);
            }
            Event::ConnectFailed(e) => {
                self.finish(now, Err(PassError::Switch(Failure::down(format!("connecting to {}: {e}", self.settings.openflow)))))
            }
            Event::SwitchRead { facts, flows } => {
                // A new connection may be a new (upgraded or downgraded) ovs-vswitchd.
                let report = SwitchReport::new(facts.version, &facts.datapath_type, self.settings.datapath_cache_purge);
                for w in report.warnings() {
                    warn!("{w}");
                }
                self.status.switch = Some(report);
                match flows {
                    Ok(flows) => {
                        self.installed = Some(flows);
                        self.pass_mut().changed = None;
                        self.send_difference(now);
                    }
                    Err(f) => {
                        self.finish(now, Err(PassError::Switch(Failure { error: format!("reading installed flows: {}", f.error), ..f })))
                    }
                }
            }
            Event::BundleDone(Ok(())) => {
                self.pass_mut().acked_at = Some(now);
                self.status.generation += 1;
                self.purge_pending |= self.status.switch.as_ref().is_some_and(|s| s.purges_after_change);
                self.installed_now(now);
            }
            Event::BundleDone(Err(f)) => {
                // The switch rejected the bundle: nothing of it was applied, but re-read to
                // be sure the next diff starts from the truth.
                self.installed = None;
                let n = self.pass_mut().flow_mods;
                let error = format!("installing {n} flow_mods: {}", f.error);
                self.finish(now, Err(PassError::Switch(Failure { error, ..f })));
            }
            Event::Purged(Ok(())) => {
                self.purge_pending = false;
                self.status.datapath_cache_purges += 1;
                self.restore_flows(now);
            }
            Event::Purged(Err(f)) => {
                let error = format!("purging the datapath's cached flows: {}", f.error);
                self.finish(now, Err(PassError::Switch(Failure { error, ..f })));
            }
            Event::FlowRestoreDone(Ok(())) => {
                self.restore_pending = false;
                self.finish(now, Ok(()));
            }
            // Installed, but a waiting ovs-vswitchd may not forward yet: not realized.
            Event::FlowRestoreDone(Err(f)) => self.finish(now, Err(PassError::Switch(f))),
            _ => unreachable!("matched above"),
        }
    }

    fn pass_mut(&mut self) -> &mut Pass {
        self.pass.as_mut().expect("a pass in progress")
    }

    fn await_step(&mut self, step: Step, action: Action) {
        self.pass_mut().step = step;
        self.actions.push_back(action);
    }

    fn tc_ports_done(&mut self, now: Instant, done: Reconciled) {
        self.tc_port_errors = done.errors;
        self.ports_by_name.extend(done.ofports);
        self.refresh_status();
        self.compile(now);
    }

    /// Compiles before connecting: the compile needs no switch, and a starting agent's
    /// connection and flow read (begun by the driver at start) run meanwhile.
    pub(super) fn compile(&mut self, now: Instant) {
        if let Some(flows) = self.recalled_flows() {
            self.pass_mut().verify = Some(flows);
            self.install(now);
            return;
        }
        match self.update_compiler() {
            Err(e) => self.finish(now, Err(e)),
            Ok(changed) => {
                self.pass_mut().changed = changed;
                self.install(now);
            }
        }
    }

    /// Brings the compiled flows to the switch: connects, reads back what it holds if that
    /// is not known, and sends the difference.
    pub(super) fn install(&mut self, now: Instant) {
        if !self.connected {
            self.await_step(Step::Connect, Action::Connect);
        } else if self.installed.is_none() {
            self.await_step(Step::ReadSwitch, Action::ReadSwitch);
        } else {
            self.send_difference(now);
        }
    }

    fn send_difference(&mut self, now: Instant) {
        if let Some(expected) = self.pass_mut().verify.take() {
            return self.verify_installed(now, expected);
        }
        let bootstrap = self.pass_mut().bootstrap.is_some();
        if bootstrap && !self.bootstrap_may_replace() {
            return self.finish(now, Ok(()));
        }
        if !bootstrap {
            self.report_traffic_controls();
        }
        let desired = Pass::desired(&self.pass, &self.compiler);
        let changed = self.pass.as_ref().and_then(|p| p.changed.as_ref());
        let installed = self.installed.as_mut().expect("read before diffing");
        let mods = match changed {
            Some(keys) => diff_keys(&desired, installed, keys),
            None => diff(&desired, installed),
        };
        self.pass_mut().flow_mods = mods.len();
        if mods.is_empty() {
            self.installed_now(now);
        } else {
            self.await_step(Step::Bundle, Action::SendBundle(mods));
        }
    }

    /// The switch holds the desired flows ([`desired_flows`]).
    fn installed_now(&mut self, now: Instant) {
        let desired = Pass::desired(&self.pass, &self.compiler);
        // A full diff that found nothing to send leaves the installed set equal to the
        // desired one already (a restart: 20k flows not cloned).
        if self.pass.as_ref().is_some_and(|p| p.changed.is_none() && p.flow_mods > 0) {
            self.installed = Some(desired.as_ref().clone());
        }
        let counts = desired.counts();
        self.holds(now, counts);
    }

    /// The switch holds the flows `counts` counts per table: the datapath's cache and
    /// flow-restore-wait follow, as owed.
    pub(super) fn holds(&mut self, now: Instant, counts: BTreeMap<pipeline::Table, usize>) {
        self.status.flows = counts.into_iter().map(|(t, n)| (t.name().to_string(), n)).collect();
        if self.purge_pending {
            self.await_step(Step::Purge, Action::PurgeDatapathCache);
        } else {
            self.restore_flows(now);
        }
    }

    fn restore_flows(&mut self, now: Instant) {
        if self.restore_pending {
            self.await_step(Step::FlowRestore, Action::FinishFlowRestore);
        } else {
            self.finish(now, Ok(()));
        }
    }

    /// Ends the pass: the status says how it went, and a failure on the switch is retried.
    pub(super) fn finish(&mut self, now: Instant, result: Result<(), PassError>) {
        let pass = self.pass.take().expect("a pass in progress");
        if result.is_err() {
            self.keep_input_time(pass.input_at);
        }
        match result {
            Ok(()) if pass.bootstrap.is_some() => {
                self.failures = 0;
                self.bootstrapped();
            }
            Ok(()) => {
                self.report_realization(now, &pass);
                if self.settings.keep_record && self.compiler.is_some() {
                    self.record_at = Some(now + RECORD_QUIET);
                }
                self.publish_pod_network();
                self.failures = 0;
                self.status.realized = true;
                self.status.last_error = None;
                self.status.last_flow_mods = pass.flow_mods;
                self.status.source_token = pass.token;
            }
            Err(PassError::Switch(Failure { error, connection_down })) => {
                // A connection that is down is retried soon; a switch that refused a bundle or
                // a flow-restore-wait that would not clear, with the longer backoff.
                let delays: &[Duration] = if connection_down { &RECONNECT } else { &BACKOFF };
                // Reconnecting: one line per streak and then one about every ten seconds.
                if !connection_down || self.failures.is_multiple_of(50) {
                    warn!(attempt = self.failures + 1, "{error}");
                }
                if connection_down && self.connected {
                    self.connected = false;
                    self.actions.push_back(Action::Disconnect);
                }
                self.status.realized = false;
                self.status.last_error = Some(error);
                self.retry_at = Some(now + delays[self.failures.min(delays.len() - 1)]);
                self.failures += 1;
            }
            Err(PassError::Compile(e)) => {
                warn!("{e}");
                self.status.realized = false;
                self.status.last_error = Some(e);
            }
        }
        self.write_status();
    }

    /// Once the node is realized, its pod network goes to the CNI plugin's configuration (pods
    /// start only where their policy is in force), and again whenever it changes.
    fn publish_pod_network(&mut self) {
        let net = self.cluster.nodes.get(&self.settings.node).and_then(PodNetwork::of);
        if self.settings.publish_pod_network && net.is_some() && net != self.published {
            self.published = net;
            self.actions.extend(net.map(Action::PublishPodNetwork));
        }
    }

    /// A pass that did not realize its snapshot leaves its arrival time to the next.
    pub(super) fn keep_input_time(&mut self, at: Option<Instant>) {
        self.input_at = [self.input_at, at].into_iter().flatten().min();
    }
}

/// The flows the switch should hold: the compiler's, or (without a compiler: no Node object
/// for this node) only the table-miss flows, so everything drops.
pub(super) fn desired_flows(compiler: &Option<NodeCompiler>) -> std::borrow::Cow<'_, FlowSet> {
    match compiler {
        Some(c) => std::borrow::Cow::Borrowed(c.flows()),
        None => std::borrow::Cow::Owned(miss_flows()),
    }
}

pub(super) fn miss_flows() -> FlowSet {
    pipeline::forwarding::miss_flows().into_iter().collect()
}
