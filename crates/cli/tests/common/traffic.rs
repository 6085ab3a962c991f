//! Real traffic from pods of a [`Running`] testbed: code run inside a pod's network
//! namespace, UDP floods, and what the switch's meters dropped.

use super::Running;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Runs `f` on a thread inside the network namespace of pod `key`.
pub fn in_pod<T: Send + 'static>(r: &Running, key: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let netns = r.tb.pod(key).unwrap().netns.clone();
    std::thread::spawn(move || {
        testbed::netns::enter_on_this_thread(&netns).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// Sends UDP datagrams from `from` to `to`:`port` at about `per_second` for `how_long`, from
/// `sockets` source ports in turn (each its own connection); returns how many it sent.
pub fn flood(r: &Running, from: &str, to: &str, port: u16, per_second: u32, how_long: Duration, sockets: usize) -> u64 {
    let addr = SocketAddr::from((r.tb.pod(to).unwrap().ip, port));
    in_pod(r, from, move || {
        let socks: Vec<UdpSocket> = (0..sockets)
            .map(|_| {
                let s = UdpSocket::bind("0.0.0.0:0").unwrap();
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect();
        let (start, mut sent) = (Instant::now(), 0u64);
        while start.elapsed() < how_long {
            let due = (start.elapsed().as_secs_f64() * f64::from(per_second)) as u64;
            while sent < due {
                // ICMP errors coming back make some sends fail: they count as sent.
                let _ = socks[sent as usize % socks.len()].send_to(b"flood", addr);
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        sent
    })
}

/// How long `weir testbed apply` takes to see a new NetworkPolicy (named `name`, in z)
/// realized on every node.
pub fn apply_latency(r: &Running, name: &str) -> Duration {
    let path = r.tmp.path().join(format!("{name}.yaml"));
    let text = format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: z}}\nspec:\n  podSelector: {{matchLabels: {{pod: c}}}}\n  ingress: [{{from: [{{podSelector: {{}}}}]}}]\n"
    );
    std::fs::write(&path, text).unwrap();
    let t = Instant::now();
    r.tb.apply(&[path], Duration::from_secs(60)).unwrap();
    t.elapsed()
}

/// The packets the switch of `node` dropped over meter `meter_id`'s rate.
pub fn meter_drops(r: &Running, node: &str, meter_id: u32) -> u64 {
    meter_counts(r, node, meter_id).1
}

/// Meter `meter_id` of `node`'s switch: the packets that went into it and those its band
/// dropped.
pub fn meter_counts(r: &Running, node: &str, meter_id: u32) -> (u64, u64) {
    let stats = r.tb.switch(node).unwrap().ofctl("meter-stats", "br-int", &[&format!("meter={meter_id}")]).unwrap();
    let sum = |key: &str| -> u64 { stats.split(key).skip(1).filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok()).sum() };
    (sum("packet_in_count:"), sum(" packet_count:"))
}

/// Writes `text` as a manifest file `name.yaml` and applies it, waiting for every node.
pub fn apply(r: &Running, name: &str, text: &str) {
    let path = r.tmp.path().join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    r.tb.apply(&[path], Duration::from_secs(60)).unwrap();
}
