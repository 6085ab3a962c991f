//! The metrics endpoint: HTTP/1.1 (hyper) serving `GET /metrics`, `/healthz` (the agent's loop turned within [`LOOP_STALE`]) and `/readyz` (realized at
//! least once, and the OpenFlow connection up when the agent has a switch). Anything else is 404.
//!
//! `/metrics` answers in the OpenMetrics text format (prometheus-client's encoding) when the
//! scraper accepts it (Prometheus asks for it), else in Prometheus's text format 0.0.4, which
//! `promtool check metrics` and older scrapers read ([`prometheus_text`]).

use super::Metrics;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long the loop may go without turning before `/healthz` fails. The loop wakes at least
/// every status heartbeat ([`crate::status::HEARTBEAT`], 2 s); an operation on the switch or
/// OVSDB can hold it for its timeout (5 s).
pub const LOOP_STALE: Duration = Duration::from_secs(15);

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of Prometheus's text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` and serves `metrics` on it until the task is aborted. Binding fails at once
/// (address in use, not local), so the agent can say so before it starts.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics endpoint: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = respond(&metrics, &req);
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!("metrics endpoint: connection: {e}");
                }
            });
        }
    }))
}

fn respond<B>(metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
            let (body, content_type) = if accept.contains("application/openmetrics-text") {
                (metrics.encode(), OPENMETRICS)
            } else {
                (prometheus_text(&metrics.encode()), PROMETHEUS_TEXT)
            };
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
            response
        }
        "/healthz" => {
            let since = metrics.since_last_turn();
            if since <= LOOP_STALE {
                text(StatusCode::OK, "ok\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the agent's loop has not turned for {:.1} s\n",
                        since.as_secs_f64()
                    ),
                )
            }
        }
        "/readyz" => match metrics.ready() {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Prometheus's text format 0.0.4 of prometheus-client's OpenMetrics text, for the families
/// weir exports (counters, gauges, histograms without units, exemplars or `_created`): the
/// formats differ only in that a counter family's HELP and TYPE lines carry its samples'
/// name (with `_total`), and that the text format has no `# EOF`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line.starts_with("# HELP ") {
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = if kind == "counter" { "_total" } else { "" };
            if let Some(h) = help.take() {
                let text = h["# HELP ".len()..].split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        if line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_format_names_counter_families_by_their_samples_and_has_no_eof() {
        let om = "# HELP a_things Things.\n# TYPE a_things counter\na_things_total{k=\"v\"} 3\n# HELP b Bees.\n# TYPE b gauge\nb 1\n# EOF\n";
        assert_eq!(
            super::prometheus_text(om),
            "# HELP a_things_total Things.\n# TYPE a_things_total counter\na_things_total{k=\"v\"} 3\n# HELP b Bees.\n# TYPE b gauge\nb 1\n"
        );
    }
}
