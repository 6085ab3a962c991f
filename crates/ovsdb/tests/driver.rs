//! The connection task against a scripted server: behaviours a local ovsdb-server does not
//! trigger on its own (it sends no echo over unix sockets, keeps answering, and has no
//! transaction history to resume from).
use ovsdb::framing::Framer;
use ovsdb::{Client, MonitorEvent, MonitorMethod, MonitorRequest, Options};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

struct Peer {
    stream: UnixStream,
    framer: Framer,
}

impl Peer {
    async fn recv(&mut self) -> Value {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(v) = self.framer.next_message().unwrap() {
                return v;
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf))
                .await
                .expect("client silent")
                .unwrap();
            assert!(n > 0, "client closed");
            self.framer.push(&buf[..n]);
        }
    }

    async fn send(&mut self, v: Value) {
        self.stream.write_all(v.to_string().as_bytes()).await.unwrap();
    }
}

fn socket_path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("weir-ovsdb-{tag}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

async fn accept(l: &UnixListener) -> Peer {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), l.accept()).await.expect("no connection").unwrap();
    Peer { stream, framer: Framer::new() }
}

#[tokio::test]
async fn server_echo_is_answered_and_an_unanswered_probe_reconnects() {
    let path = socket_path("echo");
    let l = UnixListener::bind(&path).unwrap();
    let opts = Options {
        probe_interval: Some(Duration::from_millis(100)),
        backoff_min: Duration::from_millis(10),
        ..Options::default()
    };
    let client = Client::connect_with(&format!("unix:{}", path.display()), opts).await.unwrap();
    let mut peer = accept(&l).await;
    peer.send(json!({"id": "e1", "method": "echo", "params": ["x", 1]})).await;
    assert_eq!(peer.recv().await, json!({"id": "e1", "result": ["x", 1], "error": null}));
    // Idle: the client probes with its own echo.
    let probe = peer.recv().await;
    assert_eq!(probe["method"], json!("echo"));
    peer.send(json!({"id": probe["id"], "result": [], "error": null})).await;
    // Not answering the next probe makes the client give up on this connection.
    assert_eq!(peer.recv().await["method"], json!("echo"));
    let _second = accept(&l).await;
    let mut state = client.state();
    state.wait_for(|s| s.connections == 2).await.unwrap();
    assert!(state.borrow().last_error.as_deref().unwrap_or_default().contains("echo"));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_dropped_call_is_cancelled_on_the_server() {
    let path = socket_path("cancel");
    let l = UnixListener::bind(&path).unwrap();
    let client = Client::connect(&format!("unix:{}", path.display())).await.unwrap();
    let mut peer = accept(&l).await;
    let call = tokio::time::timeout(Duration::from_millis(50), client.transact("Open_vSwitch", &[]));
    assert!(call.await.is_err(), "the server never answers");
    let req = peer.recv().await;
    assert_eq!(req["method"], json!("transact"));
    let cancel = peer.recv().await;
    assert_eq!(cancel, json!({"id": null, "method": "cancel", "params": [req["id"]]}));
    // A late answer to the cancelled call is ignored and the connection keeps working.
    peer.send(json!({"id": req["id"], "result": null, "error": "canceled"})).await;
    let echo = tokio::spawn({
        let c = client.clone();
        async move { c.echo().await }
    });
    let e = peer.recv().await;
    peer.send(json!({"id": e["id"], "result": e["params"], "error": null})).await;
    assert!(echo.await.unwrap().is_ok());
    assert_eq!(client.transactions(), 1);
    let _ = std::fs::remove_file(&path);
}

const U1: &str = "11111111-1111-1111-1111-111111111111";
const U2: &str = "22222222-2222-2222-2222-222222222222";
const T2: &str = "00000000-0000-0000-0000-0000000000t2";

fn schema() -> Value {
    json!({"name": "Open_vSwitch", "version": "1", "tables": {"Interface": {"columns": {
        "name": {"type": "string"},
        "ofport": {"type": {"key": "integer", "min": 0, "max": 1}},
    }}}})
}

#[tokio::test]
async fn monitor_cond_since_resumes_from_the_last_transaction_and_delivers_a_whole_view() {
    let t2 = T2.replace("t2", "02");
    let path = socket_path("since");
    let l = UnixListener::bind(&path).unwrap();
    let opts = Options { backoff_min: Duration::from_millis(10), ..Options::default() };
    let client = Client::connect_with(&format!("unix:{}", path.display()), opts).await.unwrap();
    let mut peer = accept(&l).await;
    let requests = BTreeMap::from([("Interface".to_string(), MonitorRequest::all())]);
    let mon = tokio::spawn({
        let c = client.clone();
        async move { c.monitor("Open_vSwitch", requests, MonitorMethod::CondSince).await }
    });
    let get_schema = peer.recv().await;
    assert_eq!(get_schema["method"], json!("get_schema"));
    peer.send(json!({"id": get_schema["id"], "result": schema(), "error": null})).await;
    let m = peer.recv().await;
    assert_eq!(m["method"], json!("monitor_cond_since"));
    assert_eq!(m["params"][3], json!("00000000-0000-0000-0000-000000000000"));
    let key = m["params"][1].clone();
    peer.send(json!({"id": m["id"], "error": null, "result":
        [false, "00000000-0000-0000-0000-000000000001", {"Interface": {U1: {"initial": {"name": "a"}}}}]}))
        .await;
    let mon = mon.await.unwrap().unwrap();
    let mut events = mon.subscribe();
    assert!(matches!(events.recv().await, Some(MonitorEvent::Snapshot(_))));
    peer.send(
        json!({"id": null, "method": "update3", "params": [key, t2, {"Interface": {U1: {"modify": {"ofport": 5}}}}]}),
    )
    .await;
    let Some(MonitorEvent::Update(changes)) = events.recv().await else { panic!() };
    assert_eq!(changes[0].new.as_ref().unwrap().opt_integer("ofport"), Some(5));

    // The server goes away; the new connection asks only for what followed t2.
    drop(peer);
    let mut peer = accept(&l).await;
    let get_schema = peer.recv().await;
    peer.send(json!({"id": get_schema["id"], "result": schema(), "error": null})).await;
    let m = peer.recv().await;
    assert_eq!((m["method"].as_str(), m["params"][3].as_str()), (Some("monitor_cond_since"), Some(t2.as_str())));
    peer.send(json!({"id": m["id"], "error": null, "result":
        [true, "00000000-0000-0000-0000-000000000003", {"Interface": {U2: {"insert": {"name": "b"}}}}]}))
        .await;
    let Some(MonitorEvent::Snapshot(view)) = events.recv().await else { panic!() };
    let names: Vec<(&str, Option<i64>)> =
        view.rows("Interface").map(|(_, r)| (r.str("name"), r.opt_integer("ofport"))).collect();
    assert_eq!(names, vec![("a", Some(5)), ("b", None)]);
    assert_eq!(mon.snapshots(), 2);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn garbage_from_the_server_drops_the_connection_and_reconnects() {
    let path = socket_path("garbage");
    let l = UnixListener::bind(&path).unwrap();
    let opts = Options { backoff_min: Duration::from_millis(10), ..Options::default() };
    let client = Client::connect_with(&format!("unix:{}", path.display()), opts).await.unwrap();
    let mut peer = accept(&l).await;
    peer.stream.write_all(b"not json at all").await.unwrap();
    let _second = accept(&l).await;
    let st = client.state().borrow().clone();
    assert!(st.last_error.unwrap().contains("unexpected byte"), "reason recorded");
    let _ = std::fs::remove_file(&path);
}
