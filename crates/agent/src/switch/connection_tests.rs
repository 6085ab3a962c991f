//! The connection's liveness and deadlines, against a scripted switch on an in-memory stream,
//! in tokio's paused time: every duration asserted here is exact, and a minute of silence
//! takes no real time.

use std::time::Duration;

use openflow::wire::message::{Features, bundle_ctrl};
use openflow::wire::multipart::{MultipartReply, MultipartRequest};
use openflow::{Flow, FlowMod, Match};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::time::Instant;

use super::*;

/// The other end of the connection, playing the switch.
struct FakeSwitch {
    rd: ReadHalf<DuplexStream>,
    wr: WriteHalf<DuplexStream>,
    buf: Vec<u8>,
}

impl FakeSwitch {
    /// The next message from weir, `None` once weir closed the connection.
    async fn recv(&mut self) -> Option<(u32, Message)> {
        read_message(&mut self.rd, &mut self.buf).await.ok().flatten()
    }

    /// Sends a message; weir may have closed the connection already.
    async fn send(&mut self, xid: u32, msg: Message) {
        let _ = self.wr.write_all(&msg.to_bytes(xid)).await;
    }

    /// Answers HELLO and FEATURES_REQUEST as ovs-vswitchd does.
    async fn accept(stream: DuplexStream) -> FakeSwitch {
        let (rd, wr) = tokio::io::split(stream);
        let mut f = FakeSwitch { rd, wr, buf: Vec::new() };
        assert!(matches!(f.recv().await, Some((_, Message::Hello { .. }))));
        f.send(0, Message::Hello { versions: OF15_BITMAP }).await;
        let (xid, msg) = f.recv().await.expect("features request");
        assert_eq!(msg, Message::FeaturesRequest);
        let features = Features { datapath_id: 7, n_buffers: 0, n_tables: 254, auxiliary_id: 0, capabilities: 0 };
        f.send(xid, Message::FeaturesReply(features)).await;
        f
    }

    /// Answers echo requests, ignores everything else, until weir closes the connection;
    /// returns the requests it ignored.
    async fn answer_only_echoes(mut self) -> Vec<Message> {
        let mut ignored = Vec::new();
        while let Some((xid, msg)) = self.recv().await {
            match msg {
                Message::EchoRequest(d) => self.send(xid, Message::EchoReply(d)).await,
                other => ignored.push(other),
            }
        }
        ignored
    }
}

async fn connected() -> (Switch, FakeSwitch) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let fake = tokio::spawn(FakeSwitch::accept(theirs));
    let sw = Switch::handshake_with("fake".into(), ours, Timeouts::default()).await.expect("handshake");
    (sw, fake.await.expect("fake switch"))
}

fn down_of(e: SwitchError) -> Down {
    match e {
        SwitchError::Down(why) => why,
        other => panic!("expected the connection to be down, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_switch_gets_an_echo_after_1s_and_is_declared_down_after_3s() {
    let (sw, mut fake) = connected().await;
    let t0 = Instant::now();
    let (xid, msg) = fake.recv().await.expect("an echo request");
    assert_eq!(msg, Message::EchoRequest(vec![]));
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    // A request in flight fails with the silence (3 s), not with its own deadline (5 s).
    let barrier = sw.barrier();
    let (barrier, down) = tokio::join!(barrier, sw.down());
    assert_eq!(down, Down::Silent(Duration::from_secs(3)));
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    assert_eq!(down_of(barrier.unwrap_err()), Down::Silent(Duration::from_secs(3)));
    assert_eq!(sw.down_reason(), Some(Down::Silent(Duration::from_secs(3))));
    // Later requests fail at once, with the same reason.
    assert_eq!(down_of(sw.request(&Message::EchoRequest(vec![1])).await.unwrap_err()), Down::Silent(Duration::from_secs(3)));
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    // The connection is closed: the switch reads the barrier, then the end of the stream.
    assert_eq!(fake.recv().await.map(|(_, m)| m), Some(Message::BarrierRequest));
    assert_eq!(fake.recv().await, None, "xid {xid}: the connection should be closed");
}

#[tokio::test(start_paused = true)]
async fn a_switch_that_answers_echoes_stays_up_through_a_quiet_minute_with_one_echo_a_second() {
    let (sw, fake) = connected().await;
    let echoes = tokio::spawn(async move {
        let mut fake = fake;
        let mut n = 0;
        while let Some((xid, msg)) = fake.recv().await {
            if let Message::EchoRequest(d) = msg {
                n += 1;
                fake.send(xid, Message::EchoReply(d)).await;
            }
        }
        n
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(sw.down_reason(), None);
    sw.barrier().await.expect_err("the fake switch does not answer barriers");
    drop(sw);
    let n = echoes.await.unwrap();
    // One echo per second of silence (the last barrier's 5 s included).
    assert!((60..=66).contains(&n), "{n} echoes");
}

#[tokio::test(start_paused = true)]
async fn a_closed_connection_is_an_event_at_once_and_fails_the_request_in_flight() {
    let (sw, mut fake) = connected().await;
    let t0 = Instant::now();
    let closer = async move {
        let (_, msg) = fake.recv().await.expect("the barrier");
        assert_eq!(msg, Message::BarrierRequest);
        drop(fake); // ovs-vswitchd killed
    };
    let (barrier, (), down) = tokio::join!(sw.barrier(), closer, sw.down());
    assert_eq!(down, Down::Closed);
    assert_eq!(down_of(barrier.unwrap_err()), Down::Closed);
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_barrier_fails_at_its_5s_deadline_and_takes_the_connection_down() {
    let (sw, fake) = connected().await;
    let ignored = tokio::spawn(fake.answer_only_echoes());
    let t0 = Instant::now();
    let err = sw.barrier().await.unwrap_err();
    let want = Down::Unanswered { what: "OFPT_BARRIER_REQUEST".into(), after: Duration::from_secs(5) };
    assert_eq!(down_of(err), want);
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
    assert_eq!(sw.down().await, want);
    // The connection closed (the fake switch saw the end of the stream).
    assert_eq!(ignored.await.unwrap(), vec![Message::BarrierRequest]);
}

#[tokio::test(start_paused = true)]
async fn a_bundles_deadline_grows_with_its_adds() {
    let (sw, mut fake) = connected().await;
    let switch = tokio::spawn(async move {
        // Answer the open and the echoes; never the barrier behind the adds.
        while let Some((xid, msg)) = fake.recv().await {
            match msg {
                Message::BundleControl { bundle_id, ctrl_type: bundle_ctrl::OPEN_REQUEST, flags } => {
                    fake.send(xid, Message::BundleControl { bundle_id, ctrl_type: bundle_ctrl::OPEN_REPLY, flags }).await
                }
                Message::EchoRequest(d) => fake.send(xid, Message::EchoReply(d)).await,
                _ => {}
            }
        }
    });
    let mods: Vec<FlowMod> = (0..20_000).map(|i| FlowMod::add(Flow::new(0, i as u16, Match::new()))).collect();
    let t0 = Instant::now();
    let err = sw.bundle(&mods).await.unwrap_err();
    // 5 s + 20,000 × 100 µs.
    let after = Duration::from_secs(7);
    assert_eq!(down_of(err), Down::Unanswered { what: "the barrier after 20000 bundle adds".into(), after });
    assert_eq!(t0.elapsed(), after);
    drop(sw);
    switch.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_multipart_reply_still_arriving_part_by_part_may_outlast_one_deadline() {
    let (sw, mut fake) = connected().await;
    let switch = tokio::spawn(async move {
        let (xid, msg) = fake.recv().await.expect("the flow dump");
        assert!(matches!(msg, Message::MultipartRequest { body: MultipartRequest::FlowDesc(_), .. }));
        // Four parts, 4 s apart (16 s in all, each within 5 s of the last), echoes answered.
        for more in [true, true, true, false] {
            let part_at = Instant::now() + Duration::from_secs(4);
            loop {
                tokio::select! {
                    m = fake.recv() => if let Some((x, Message::EchoRequest(d))) = m {
                        fake.send(x, Message::EchoReply(d)).await;
                    },
                    _ = tokio::time::sleep_until(part_at) => break,
                }
            }
            fake.send(xid, Message::MultipartReply { more, body: MultipartReply::FlowDesc(vec![]) }).await;
        }
        fake
    });
    let t0 = Instant::now();
    assert_eq!(sw.dump_flows().await.expect("a slow dump is not a dead switch"), vec![]);
    assert_eq!(t0.elapsed(), Duration::from_secs(16));
    let _fake = switch.await.unwrap();
    assert_eq!(sw.down_reason(), None);
}

#[tokio::test(start_paused = true)]
async fn a_multipart_reply_that_stops_arriving_fails_at_the_deadline() {
    let (sw, mut fake) = connected().await;
    let switch = tokio::spawn(async move {
        let (xid, _) = fake.recv().await.expect("the flow dump");
        fake.send(xid, Message::MultipartReply { more: true, body: MultipartReply::FlowDesc(vec![]) }).await;
        fake.answer_only_echoes().await
    });
    let t0 = Instant::now();
    let err = sw.dump_flows().await.unwrap_err();
    assert_eq!(down_of(err), Down::Unanswered { what: "OFPMP_FLOW_DESC request".into(), after: Duration::from_secs(5) });
    // The first deadline saw a part arrive; the second saw none.
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    switch.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_accepts_but_never_says_hello_fails_the_handshake_after_5s() {
    let (ours, _theirs) = tokio::io::duplex(1 << 16);
    let t0 = Instant::now();
    let err = match Switch::handshake_with("stopped".into(), ours, Timeouts::default()).await {
        Err(e) => e,
        Ok(_) => panic!("a silent peer completed the handshake"),
    };
    assert_eq!(down_of(err), Down::Unanswered { what: "HELLO".into(), after: Duration::from_secs(5) });
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_switch_closes_the_connection() {
    let (sw, mut fake) = connected().await;
    drop(sw);
    assert_eq!(fake.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn keepalive_echoes_leave_the_request_xids_as_ovs_ofctl_numbers_them() {
    let (sw, mut fake) = connected().await;
    let (echo_xid, _) = fake.recv().await.expect("an echo after a second of silence");
    let replier = async move {
        fake.send(echo_xid, Message::EchoReply(vec![])).await;
        let (xid, msg) = fake.recv().await.expect("the barrier");
        assert_eq!(msg, Message::BarrierRequest);
        fake.send(xid, Message::BarrierReply).await;
        (xid, fake)
    };
    let (barrier, (barrier_xid, _fake)) = tokio::join!(sw.barrier(), replier);
    barrier.expect("barrier");
    // FEATURES_REQUEST was xid 1; the keepalive did not take 2.
    assert_eq!(barrier_xid, 2);
    assert_ne!(echo_xid, barrier_xid);
    assert_eq!(sw.down_reason(), None);
}
