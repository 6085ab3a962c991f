//! The agent of an ExternalNode's host in the nftables realization (`weir agent --external-node
//! NAME --node-policy nftables`): the host's interfaces stay where they are, no switch and no
//! OVSDB are needed. The loop reads the cluster view, realizes the rules applied to the
//! ExternalNode's ExternalEntities (one per interface) in `table inet weir-node`
//! ([`crate::node_firewall`], [`ThisHost::ExternalNode`]) and writes the same status a node
//! agent writes: the sync token of the view realized once `nft` took it, the objects
//! rejected, the warnings, so `weir status`, the testbed and the cluster's sync read it alike.
//!
//! The table is applied on this loop, not on a task of its own as on a Kubernetes node: the
//! token may only be reported once the host enforces the view it came with, and there is no
//! switch realization for `nft` to hold up.
//!
//! Its metrics (`--metrics-address`) are a node agent's without the switch's families: the
//! view's objects, the rejected ones, `weir_realized`, the realizations and their latency, and
//! each rule's nftables counters (`weir_host_rule_*`); `/readyz` once a view was realized.
use crate::agent::{AgentError, Config, RuleStatsReader, serve_metrics, sleep_until};
use crate::cluster_source::SourceEvent;
use crate::metrics::Metrics;
use crate::node_agent::Realization;
use crate::node_firewall::{Applied, NodeFirewall, RETRY, ThisHost, plan_for};
use crate::status::{ObjectErrorReport, Status};
use policy::Cluster;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How often the status is written when nothing changes (its heartbeat).
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Runs the agent of `config.node`'s ExternalNode until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
    let mut status =
        Status { node: config.node.clone(), last_error: Some("starting: waiting for the cluster view".into()), ..Status::default() };
    status.publish(&config.status_file);
    let (mut sources, _source) = config.source.clone().start().await?;
    let status_out = crate::agent::status_writer(&config).await?;
    let metrics = Arc::new(Metrics::without_switch());
    let _server = serve_metrics(&config, &metrics).await?;
    let mut rule_stats = RuleStatsReader::new(config.metrics_address.is_some(), config.rule_stats_interval, true);
    let mut firewall = NodeFirewall::new();
    // The latest view, while it is not realized yet, and when the first view not realized yet arrived.
    let mut pending: Option<(Box<Cluster>, Option<String>)> = None;
    let mut pending_since: Option<Instant> = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    tokio::pin!(shutdown);
    loop {
        metrics.loop_turned(Instant::now());
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            event = sources.recv() => match event {
                Some(SourceEvent::Cluster { cluster, token }) => {
                    status.source_warning = None;
                    pending = Some((cluster, token));
                    pending_since.get_or_insert_with(Instant::now);
                    retry_at = None;
                }
                Some(SourceEvent::Unreadable(why)) => status.source_warning = Some(why),
                Some(SourceEvent::Warnings(warnings)) => status.source_warnings = warnings,
                None => return Ok(()),
            },
            _ = sleep_until(retry_at) => retry_at = None,
            _ = heartbeat.tick() => {}
            _ = rule_stats.due() => rule_stats.start(&None, &metrics),
        }
        // A view nftables refused is kept and tried again after RETRY (or replaced by a newer one).
        if retry_at.is_none()
            && let Some((cluster, token)) = pending.take()
        {
            if realize(&config, &mut firewall, &cluster, token.clone(), &mut status, &metrics).await {
                let realization = Realization { input_at: pending_since.take(), acked_at: Instant::now(), flow_mods: 0, rules: None };
                metrics.realization(&realization);
            } else {
                retry_at = Some(tokio::time::Instant::now() + RETRY);
                pending = Some((cluster, token));
            }
        }
        metrics.status(&status);
        status.publish(&config.status_file);
        if let Some(out) = &status_out {
            out.send_replace(status.clone());
        }
    }
}

/// Applies the plan of `cluster` and records the outcome in `status`; whether `nft` took it.
async fn realize(
    config: &Config,
    firewall: &mut NodeFirewall,
    cluster: &Cluster,
    token: Option<String>,
    status: &mut Status,
    metrics: &Metrics,
) -> bool {
    let plan = plan_for(cluster, ThisHost::ExternalNode(&config.node), &config.host_bypass);
    metrics.host_rules.set_plan(&plan);
    status.objects = crate::status::object_counts(cluster);
    status.errors = cluster.errors.iter().map(ObjectErrorReport::from).collect();
    status.warnings = cluster.warnings.iter().map(ToString::to_string).collect();
    if plan.endpoints.is_empty() {
        status.warnings.push(format!("no ExternalNode named {:?} in the cluster view: this host has no policy", config.node));
    }
    match firewall.apply(&plan).await {
        Ok(applied) => {
            if applied == Applied::Replaced {
                status.generation += 1;
                info!(endpoints = plan.endpoints.len(), "node firewall: table inet {} replaced", crate::node_firewall::TABLE);
            }
            status.realized = true;
            status.last_error = None;
            status.source_token = token;
            true
        }
        Err(e) => {
            warn!("node firewall: {e}; trying again in {} s", RETRY.as_secs());
            status.realized = false;
            status.last_error = Some(e);
            false
        }
    }
}
