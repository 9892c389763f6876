//! Connection tracking through its public API: the TCP handshake, windows and closing, UDP,
//! ICMP echo and errors, zones, limits, timeouts, and the offload protocol (install, remove,
//! late installs, hardware counters, expiry through a hardware read).

use fpga_virtio_flow::conntrack::{tcp_flags::*, Inner, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use fpga_virtio_flow::{
    Acl, ConnId, Conntrack, CtState, Dir, Event, HwCounters, HwOp, Limits, Packet, PortRange,
    Reject, Rule, SlowPath, TcpSeg, TcpState, Verdict, L4,
};
use std::net::{IpAddr, Ipv4Addr};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const R: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254));

fn tcp(zone: u32, from_a: bool, flags: u8, seq: u32, ack: u32, payload: u32) -> Packet {
    let (src, dst, sport, dport) = if from_a {
        (A, B, 40000, 80)
    } else {
        (B, A, 80, 40000)
    };
    Packet {
        zone,
        src,
        dst,
        proto: PROTO_TCP,
        l4: L4::Tcp(TcpSeg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 65535,
            wscale: None,
            payload,
        }),
        len: 54 + payload,
    }
}

fn udp(zone: u32, from_a: bool) -> Packet {
    let (src, dst, sport, dport) = if from_a {
        (A, B, 5000, 53)
    } else {
        (B, A, 53, 5000)
    };
    Packet {
        zone,
        src,
        dst,
        proto: PROTO_UDP,
        l4: L4::Udp { sport, dport },
        len: 100,
    }
}

const ISN_A: u32 = 1000;
const ISN_B: u32 = 0xffff_fff0; // the reply's sequence wraps during the test

fn allow(_: &Packet) -> bool {
    true
}

/// SYN, SYN-ACK, ACK at t=0; returns the connection.
fn handshake(ct: &mut Conntrack, zone: u32) -> ConnId {
    let d = ct.process(&tcp(zone, true, SYN, ISN_A, 0, 0), 0, allow);
    assert_eq!(d.state, CtState::New);
    assert!(d.accept);
    let id = d.conn.unwrap();
    assert_eq!(ct.tcp_state(id), Some(TcpState::SynSent));
    let d = ct.process(&tcp(zone, false, SYN | ACK, ISN_B, ISN_A + 1, 0), 0, allow);
    assert_eq!(
        (d.state, d.dir, d.accept),
        (CtState::Established, Dir::Reply, true)
    );
    assert_eq!(ct.tcp_state(id), Some(TcpState::SynRecv));
    let d = ct.process(
        &tcp(zone, true, ACK, ISN_A + 1, ISN_B.wrapping_add(1), 0),
        0,
        allow,
    );
    assert_eq!(d.state, CtState::Established);
    assert_eq!(ct.tcp_state(id), Some(TcpState::Established));
    id
}

#[test]
fn handshake_offloads_once_established() {
    let mut ct = Conntrack::default();
    let d = ct.process(&tcp(0, true, SYN, ISN_A, 0, 0), 0, allow);
    let id = d.conn.unwrap();
    assert!(ct.take_ops().is_empty(), "nothing offloaded before a reply");
    ct.process(&tcp(0, false, SYN | ACK, ISN_B, ISN_A + 1, 0), 0, allow);
    assert!(ct.take_ops().is_empty(), "nor in SYN_RECV");
    ct.process(
        &tcp(0, true, ACK, ISN_A + 1, ISN_B.wrapping_add(1), 0),
        0,
        allow,
    );
    let ops = ct.take_ops();
    assert_eq!(ops.len(), 1);
    let HwOp::Install { conn, orig, reply } = ops[0] else {
        panic!("{ops:?}")
    };
    assert_eq!(conn, id);
    assert_eq!(
        (orig.src, orig.sport, reply.src, reply.sport),
        (A, 40000, B, 80)
    );
    assert!(ct.offloaded(id));
    // Further packets (the CPU may still see some before the entry lands) ask nothing more.
    ct.process(
        &tcp(0, true, ACK, ISN_A + 1, ISN_B.wrapping_add(1), 100),
        1,
        allow,
    );
    assert!(ct.take_ops().is_empty());
    assert!(matches!(ct.take_events()[0], Event::New { conn, .. } if conn == id));
}

#[test]
fn only_a_syn_opens_a_tcp_connection() {
    let mut ct = Conntrack::default();
    for (flags, why) in [
        (ACK, Reject::NotSyn),
        (SYN | ACK, Reject::NotSyn),
        (FIN | ACK, Reject::NotSyn),
        (RST, Reject::NotSyn),
        (SYN | FIN, Reject::BadFlags),
        (SYN | RST, Reject::BadFlags),
    ] {
        let d = ct.process(&tcp(0, true, flags, 1, 1, 0), 0, allow);
        assert_eq!(
            (d.state, d.accept, d.reject),
            (CtState::Invalid, false, Some(why))
        );
    }
    assert!(ct.is_empty());
    assert_eq!(ct.stats().invalid, 6);
}

#[test]
fn handshake_errors_are_invalid() {
    let mut ct = Conntrack::default();
    ct.process(&tcp(0, true, SYN, ISN_A, 0, 0), 0, allow);
    // A SYN-ACK acknowledging something else than the SYN.
    let d = ct.process(&tcp(0, false, SYN | ACK, ISN_B, ISN_A + 7, 0), 0, allow);
    assert_eq!(
        (d.state, d.reject),
        (CtState::Invalid, Some(Reject::Window))
    );
    // An ACK from the originator before any SYN-ACK.
    let d = ct.process(&tcp(0, true, ACK, ISN_A + 1, 5, 0), 0, allow);
    assert_eq!(d.reject, Some(Reject::State));
    // A refusal: RST+ACK acknowledging the SYN passes and ends it at once (there never was a
    // connection, as Linux sees it).
    let d = ct.process(&tcp(0, false, RST | ACK, 0, ISN_A + 1, 0), 0, allow);
    assert_eq!((d.state, d.accept), (CtState::Established, true));
    assert_eq!(ct.tcp_state(d.conn.unwrap()), None);
    assert!(ct.is_empty());
    let ev = ct.take_events();
    assert!(
        matches!(
            ev[..],
            [
                Event::New { .. },
                Event::Destroy {
                    packets: [1, 1],
                    ..
                }
            ]
        ),
        "{ev:?}"
    );
    // A plain ACK from the responder in SYN_SENT may be a half-open connection's answer: it
    // passes without changing anything (the originator's RST will follow).
    let mut ct = Conntrack::default();
    let id = ct
        .process(&tcp(0, true, SYN, ISN_A, 0, 0), 0, allow)
        .conn
        .unwrap();
    let d = ct.process(&tcp(0, false, ACK, ISN_B, ISN_A + 1, 0), 0, allow);
    assert_eq!((d.state, d.accept), (CtState::Established, true));
    assert_eq!(ct.tcp_state(id), Some(TcpState::SynSent));
}

#[test]
fn segments_out_of_window_are_invalid_and_change_nothing() {
    let mut ct = Conntrack::default();
    ct.set_offload(false); // offloaded, its windows would go liberal
    let id = handshake(&mut ct, 0);
    let b1 = ISN_B.wrapping_add(1);
    // Data within the window, both ways (the reply's sequence wraps through 0).
    for i in 0..4u32 {
        let d = ct.process(&tcp(0, true, ACK, ISN_A + 1 + i * 1000, b1, 1000), 1, allow);
        assert!(d.accept, "{i}: {d:?}");
        let d = ct.process(
            &tcp(
                0,
                false,
                ACK,
                b1.wrapping_add(i * 100),
                ISN_A + 1 + (i + 1) * 1000,
                100,
            ),
            1,
            allow,
        );
        assert!(d.accept, "{i}: {d:?}");
    }
    // Far beyond what the peer's window allows.
    let d = ct.process(&tcp(0, true, ACK, ISN_A + 10_000_000, b1, 10), 1, allow);
    assert_eq!(
        (d.state, d.reject),
        (CtState::Invalid, Some(Reject::Window))
    );
    // Long before anything the peer could still want (a late retransmission): passes as
    // Linux lets it, without moving the state.
    let d = ct.process(
        &tcp(0, true, ACK, ISN_A.wrapping_sub(5_000_000), b1, 10),
        1,
        allow,
    );
    assert_eq!((d.state, d.accept), (CtState::Established, true));
    // Acknowledging data never sent.
    let d = ct.process(
        &tcp(0, true, ACK, ISN_A + 4001, b1.wrapping_add(90_000), 0),
        1,
        allow,
    );
    assert_eq!(d.reject, Some(Reject::Window));
    // A retransmission (old but in window) passes.
    let d = ct.process(&tcp(0, true, ACK, ISN_A + 1001, b1, 1000), 1, allow);
    assert!(d.accept);
    // An RST out of window does not close; in window but not at the sequence the peer
    // acknowledged, it keeps the connection (the endpoint answers with a challenge ACK,
    // RFC 5961); at that sequence it closes.
    let d = ct.process(
        &tcp(0, false, RST, b1.wrapping_add(50_000_000), 0, 0),
        1,
        allow,
    );
    assert_eq!(d.reject, Some(Reject::Window));
    assert_eq!(ct.tcp_state(id), Some(TcpState::Established));
    let d = ct.process(&tcp(0, false, RST, b1.wrapping_add(400), 0, 0), 1, allow);
    assert!(d.accept);
    assert_eq!(ct.tcp_state(id), Some(TcpState::Established));
    let d = ct.process(&tcp(0, false, RST, b1, 0, 0), 1, allow);
    assert!(d.accept);
    assert_eq!(ct.tcp_state(id), Some(TcpState::Close));
}

#[test]
fn window_scaling_only_when_both_offer_it() {
    let mut ct = Conntrack::default();
    let mut syn = tcp(0, true, SYN, ISN_A, 0, 0);
    let mut synack = tcp(0, false, SYN | ACK, ISN_B, ISN_A + 1, 0);
    if let (L4::Tcp(a), L4::Tcp(b)) = (&mut syn.l4, &mut synack.l4) {
        a.wscale = Some(7);
        b.wscale = Some(7);
        b.window = 512; // unscaled in the SYN-ACK
    }
    ct.process(&syn, 0, allow);
    ct.process(&synack, 0, allow);
    let b1 = ISN_B.wrapping_add(1);
    let mut ack = tcp(0, true, ACK, ISN_A + 1, b1, 0);
    if let L4::Tcp(a) = &mut ack.l4 {
        a.window = 2048; // x128: 256 KiB
    }
    assert!(ct.process(&ack, 0, allow).accept);
    // The SYN-ACK's window is never scaled: until B's first ACK, A may send only 512 bytes.
    let d = ct.process(&tcp(0, true, ACK, ISN_A + 1 + 60_000, b1, 1000), 0, allow);
    assert_eq!(d.reject, Some(Reject::Window));
    let mut update = tcp(0, false, ACK, b1, ISN_A + 1, 0);
    if let L4::Tcp(b) = &mut update.l4 {
        b.window = 512;
    }
    assert!(ct.process(&update, 0, allow).accept);
    // B's window is 512 << 7 = 64 KiB: A may send 60 KiB ahead.
    let d = ct.process(&tcp(0, true, ACK, ISN_A + 1 + 60_000, b1, 1000), 0, allow);
    assert!(d.accept, "{d:?}");
    // A's window 2048 << 7 = 256 KiB: B may send 200 KiB ahead; unscaled it would not.
    let d = ct.process(
        &tcp(0, false, ACK, b1.wrapping_add(200_000), ISN_A + 1, 1000),
        0,
        allow,
    );
    assert!(d.accept, "{d:?}");
}

#[test]
fn fin_or_rst_removes_the_entry_and_it_never_comes_back() {
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 0);
    assert!(matches!(ct.take_ops()[..], [HwOp::Install { .. }]));
    ct.hw_installed(id, true);
    let b1 = ISN_B.wrapping_add(1);
    // The FIN (the FPGA punts it even on a hit).
    let d = ct.process(&tcp(0, true, FIN | ACK, ISN_A + 1, b1, 0), 5, allow);
    assert!(d.accept);
    assert_eq!(ct.tcp_state(id), Some(TcpState::FinWait));
    assert!(matches!(ct.take_ops()[..], [HwOp::Remove { conn, .. }] if conn == id));
    assert!(!ct.offloaded(id));
    // The rest of the close: no install asked again, whatever passes.
    ct.process(&tcp(0, false, ACK, b1, ISN_A + 2, 0), 5, allow);
    assert_eq!(ct.tcp_state(id), Some(TcpState::CloseWait));
    ct.process(&tcp(0, false, ACK, b1, ISN_A + 2, 300), 5, allow);
    ct.process(
        &tcp(0, false, FIN | ACK, b1.wrapping_add(300), ISN_A + 2, 0),
        5,
        allow,
    );
    assert_eq!(ct.tcp_state(id), Some(TcpState::LastAck));
    ct.process(
        &tcp(0, true, ACK, ISN_A + 2, b1.wrapping_add(301), 0),
        5,
        allow,
    );
    assert_eq!(ct.tcp_state(id), Some(TcpState::TimeWait));
    assert!(ct.take_ops().is_empty());
    ct.hw_removed(id, HwCounters::default());
    assert!(ct.take_ops().is_empty());
}

#[test]
fn a_late_install_confirmation_is_answered_with_a_remove() {
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 0);
    ct.take_ops();
    // The FIN arrives while the install is still queued.
    ct.process(
        &tcp(0, false, FIN | ACK, ISN_B.wrapping_add(1), ISN_A + 1, 0),
        5,
        allow,
    );
    assert!(matches!(ct.take_ops()[..], [HwOp::Remove { .. }]));
    // In order: the install lands, then the remove takes it out. Nothing more to do.
    ct.hw_installed(id, true);
    assert!(ct.take_ops().is_empty());
    ct.hw_removed(id, HwCounters::default());
    // Out of order (an install confirmed after its remove was done): remove again.
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 0);
    ct.take_ops();
    ct.process(&tcp(0, false, RST, ISN_B.wrapping_add(1), 0, 0), 5, allow);
    assert!(matches!(ct.take_ops()[..], [HwOp::Remove { .. }]));
    ct.hw_removed(id, HwCounters::default());
    ct.hw_installed(id, true);
    assert!(matches!(ct.take_ops()[..], [HwOp::Remove { conn, .. }] if conn == id));
    assert_eq!(ct.stats().late_installs, 1);
    // A refused install (a full bucket) keeps the connection on the CPU path for good.
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 0);
    ct.take_ops();
    ct.hw_installed(id, false);
    assert!(!ct.offloaded(id));
    ct.process(
        &tcp(0, true, ACK, ISN_A + 1, ISN_B.wrapping_add(1), 10),
        5,
        allow,
    );
    assert!(ct.take_ops().is_empty());
}

#[test]
fn counters_stay_exact_across_offload() {
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 0);
    ct.take_ops();
    ct.hw_installed(id, true);
    let (p, b) = ct.counters(id).unwrap();
    assert_eq!(p, [2, 1]);
    assert_eq!(b, [108, 54]);
    let hw = HwCounters {
        packets: [1000, 500],
        bytes: [1_000_000, 50_000],
        last_seen: 50_000,
        tcp_flags: ACK,
    };
    ct.hw_seen(id, hw);
    assert_eq!(ct.counters(id).unwrap().0, [1002, 501]);
    // A later read is cumulative, not added twice.
    ct.hw_seen(
        id,
        HwCounters {
            packets: [1100, 550],
            ..hw
        },
    );
    assert_eq!(ct.counters(id).unwrap().0, [1102, 551]);
    // The FIN removes the entry; its final counters come with the remove.
    ct.process(
        &tcp(0, true, FIN | ACK, ISN_A + 1, ISN_B.wrapping_add(1), 0),
        60_000,
        allow,
    );
    ct.hw_removed(
        id,
        HwCounters {
            packets: [1200, 600],
            bytes: [1_200_000, 60_000],
            ..hw
        },
    );
    let (p, b) = ct.counters(id).unwrap();
    assert_eq!(p, [1203, 601]);
    assert_eq!(b, [1_200_000 + 108 + 54, 60_054]);
    // Expiry reports the same totals.
    ct.expire(60_000 + TcpState::FinWait.timeout());
    let ev = ct.take_events();
    let Some(Event::Destroy { packets, bytes, .. }) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!((*packets, *bytes), (p, b));
    assert!(ct.is_empty());
}

#[test]
fn idle_offloaded_connections_are_asked_about_before_expiry() {
    let mut ct = Conntrack::default();
    // UDP: offloaded once the reply is seen.
    let id = ct.process(&udp(0, true), 0, allow).conn.unwrap();
    assert!(ct.take_ops().is_empty());
    ct.process(&udp(0, false), 10, allow);
    assert!(matches!(ct.take_ops()[..], [HwOp::Install { .. }]));
    ct.hw_installed(id, true);
    let t = 10 + 120_000;
    assert_eq!(ct.expire(t - 1), 0);
    // Its deadline: a read of the hardware first, not an expiry.
    assert_eq!(ct.expire(t), 0);
    assert!(matches!(ct.take_ops()[..], [HwOp::Query { conn, .. }] if conn == id));
    // The hardware forwarded packets meanwhile: it lives on from their last-seen time.
    ct.hw_seen(
        id,
        HwCounters {
            packets: [5, 5],
            bytes: [500, 500],
            last_seen: t - 100,
            tcp_flags: 0,
        },
    );
    assert_eq!(ct.expire(t + 60_000), 0);
    assert!(ct.take_ops().is_empty());
    // Idle since: asked again, the answer shows nothing new, so it goes (entry removed first).
    let t2 = t - 100 + 120_000;
    assert_eq!(ct.expire(t2), 0);
    assert!(matches!(ct.take_ops()[..], [HwOp::Query { .. }]));
    ct.hw_seen(
        id,
        HwCounters {
            packets: [5, 5],
            bytes: [500, 500],
            last_seen: t - 100,
            tcp_flags: 0,
        },
    );
    assert_eq!(ct.expire(t2 + 1), 0); // the grace is not over yet
    assert_eq!(ct.expire(t2 + 2_000), 1);
    assert!(matches!(ct.take_ops()[..], [HwOp::Remove { conn, .. }] if conn == id));
    assert!(
        ct.is_empty(),
        "out of the index at once: the key may open a new connection"
    );
    assert!(ct
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::Destroy { .. })));
    ct.hw_removed(
        id,
        HwCounters {
            packets: [6, 5],
            bytes: [600, 500],
            ..Default::default()
        },
    );
    let ev = ct.take_events();
    assert!(
        matches!(
            ev[..],
            [Event::Destroy {
                packets: [7, 6],
                ..
            }]
        ),
        "{ev:?}"
    );
    // No answer at all to a query: expired after the grace.
    let t0 = t2 + 10_000;
    let id = ct.process(&udp(0, true), t0, allow).conn.unwrap();
    ct.process(&udp(0, false), t0, allow);
    ct.hw_installed(id, true);
    let ops = ct.take_ops();
    assert_eq!(ct.expire(t0 + 120_000), 0, "{ops:?} {ct:?}");
    let ops = ct.take_ops();
    assert_eq!(ct.expire(t0 + 122_000), 1, "{ops:?} {ct:?}");
}

#[test]
fn timeouts_follow_the_state() {
    let mut ct = Conntrack::default();
    // Unreplied UDP: 30 s.
    ct.process(&udp(0, true), 0, allow);
    assert_eq!(ct.expire(29_999), 0);
    assert_eq!(ct.expire(30_000), 1);
    // A later packet pushes the deadline back (the timer is re-armed lazily).
    ct.process(&udp(0, true), 40_000, allow);
    ct.process(&udp(0, true), 60_000, allow);
    assert_eq!(ct.expire(89_999), 0);
    assert_eq!(ct.expire(90_000), 1);
    // A SYN unanswered: 120 s, and retransmitting it does not prolong it (port reuse would
    // keep it alive for ever).
    let t = 100_000;
    let id = ct
        .process(&tcp(0, true, SYN, ISN_A, 0, 0), t, allow)
        .conn
        .unwrap();
    ct.process(&tcp(0, true, SYN, ISN_A, 0, 0), t + 100_000, allow);
    assert_eq!(ct.expire(t + 119_999), 0);
    assert_eq!(ct.tcp_state(id), Some(TcpState::SynSent));
    assert_eq!(ct.expire(t + 120_000), 1);
    // An established connection that gets reset: CLOSE's 10 s, not ESTABLISHED's 5 days.
    let t = 300_000;
    ct.process(&tcp(0, true, SYN, ISN_A, 0, 0), t, allow);
    ct.process(&tcp(0, false, SYN | ACK, ISN_B, ISN_A + 1, 0), t, allow);
    let id = ct
        .process(
            &tcp(0, true, ACK, ISN_A + 1, ISN_B.wrapping_add(1), 0),
            t,
            allow,
        )
        .conn
        .unwrap();
    ct.process(&tcp(0, true, RST, ISN_A + 1, 0, 0), t + 1_000, allow);
    assert_eq!(ct.tcp_state(id), Some(TcpState::Close));
    assert_eq!(ct.expire(t + 10_999), 0);
    assert_eq!(ct.expire(t + 11_000), 1);
    assert_eq!(ct.stats().expired, 4);
}

#[test]
fn a_syn_reopens_a_closed_connection() {
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 0);
    ct.process(&tcp(0, true, RST, ISN_A + 1, 0, 0), 0, allow);
    let d = ct.process(&tcp(0, true, SYN, ISN_A + 5000, 0, 0), 1, allow);
    assert_eq!(d.state, CtState::New);
    let new = d.conn.unwrap();
    assert_ne!(new, id);
    assert_eq!(ct.tcp_state(new), Some(TcpState::SynSent));
    assert_eq!(ct.tcp_state(id), None, "the old one is gone");
    assert_eq!(ct.len(), 1);
    // A SYN in ESTABLISHED does not: it passes without changing anything (the firewall may
    // be out of sync; the server's answer, a SYN-ACK or an RST, tells).
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 0);
    let d = ct.process(&tcp(0, true, SYN, ISN_A + 5000, 0, 0), 1, allow);
    assert_eq!((d.state, d.accept), (CtState::Established, true));
    assert_eq!(ct.tcp_state(id), Some(TcpState::Established));
    // A SYN from the server's side there is invalid.
    let d = ct.process(&tcp(0, false, SYN, ISN_B, 0, 0), 1, allow);
    assert_eq!((d.state, d.reject), (CtState::Invalid, Some(Reject::State)));
}

#[test]
fn simultaneous_open() {
    let mut ct = Conntrack::default();
    let id = ct
        .process(&tcp(0, true, SYN, ISN_A, 0, 0), 0, allow)
        .conn
        .unwrap();
    ct.process(&tcp(0, false, SYN, ISN_B, 0, 0), 0, allow);
    assert_eq!(ct.tcp_state(id), Some(TcpState::SynSent2));
    ct.process(
        &tcp(0, true, SYN | ACK, ISN_A, ISN_B.wrapping_add(1), 0),
        0,
        allow,
    );
    assert_eq!(ct.tcp_state(id), Some(TcpState::SynRecv));
    ct.process(&tcp(0, false, SYN | ACK, ISN_B, ISN_A + 1, 0), 0, allow);
    let d = ct.process(
        &tcp(0, true, ACK, ISN_A + 1, ISN_B.wrapping_add(1), 0),
        0,
        allow,
    );
    assert!(d.accept);
    assert_eq!(ct.tcp_state(id), Some(TcpState::Established));
}

#[test]
fn icmp_echo_and_errors() {
    let mut ct = Conntrack::default();
    let echo = |from_a: bool, reply: bool| Packet {
        zone: 0,
        src: if from_a { A } else { B },
        dst: if from_a { B } else { A },
        proto: PROTO_ICMP,
        l4: L4::Echo { id: 77, reply },
        len: 98,
    };
    // A reply nobody asked for cannot open anything.
    let d = ct.process(&echo(false, true), 0, allow);
    assert_eq!(d.reject, Some(Reject::NotOpening));
    let id = ct.process(&echo(true, false), 0, allow).conn.unwrap();
    let d = ct.process(&echo(false, true), 0, allow);
    assert_eq!((d.state, d.conn), (CtState::Established, Some(id)));
    // A request from the other side is not this echo's reply.
    assert_eq!(
        ct.process(&echo(false, false), 0, allow).state,
        CtState::Invalid
    );
    assert!(ct.take_ops().is_empty(), "ICMP is never offloaded");
    assert_eq!(ct.expire(30_000), 1);

    // An error from a router about a tracked UDP flow is related; about anything else, invalid.
    let udp_id = ct.process(&udp(0, true), 0, allow).conn.unwrap();
    let err = |inner: Inner, dst: IpAddr| Packet {
        zone: 0,
        src: R,
        dst,
        proto: PROTO_ICMP,
        l4: L4::IcmpError(inner),
        len: 70,
    };
    let inner = Inner {
        src: A,
        dst: B,
        proto: PROTO_UDP,
        sport: 5000,
        dport: 53,
    };
    let d = ct.process(&err(inner, A), 1, allow);
    assert_eq!(
        (d.state, d.conn, d.accept),
        (CtState::Related, Some(udp_id), true)
    );
    let d = ct.process(&err(Inner { dport: 54, ..inner }, A), 1, allow);
    assert_eq!(
        (d.state, d.reject),
        (CtState::Invalid, Some(Reject::IcmpOrphan))
    );
    // Sent to someone else than the offending packet's sender.
    let d = ct.process(&err(inner, B), 1, allow);
    assert_eq!(d.reject, Some(Reject::IcmpOrphan));
    // From another zone: not related.
    let d = ct.process(
        &Packet {
            zone: 9,
            ..err(inner, A)
        },
        1,
        allow,
    );
    assert_eq!(d.state, CtState::Invalid);
    assert_eq!(ct.stats().related, 1);
}

#[test]
fn zones_keep_tenants_apart() {
    let mut ct = Conntrack::default();
    let a = handshake(&mut ct, 1);
    // The same addresses in zone 2: a packet of "the same" connection is not established
    // there: a mid-stream ACK is invalid, a SYN opens a second connection.
    let d = ct.process(
        &tcp(2, true, ACK, ISN_A + 1, ISN_B.wrapping_add(1), 0),
        0,
        allow,
    );
    assert_eq!(d.reject, Some(Reject::NotSyn));
    let b = handshake(&mut ct, 2);
    assert_ne!(a, b);
    assert_eq!(ct.len(), 2);
    assert_eq!(ct.flush_zone(1), 1);
    assert_eq!(ct.tcp_state(a), None);
    assert_eq!(ct.tcp_state(b), Some(TcpState::Established));
}

#[test]
fn limits_per_zone_and_in_all() {
    let mut ct = Conntrack::new(Limits {
        total: 5,
        per_zone: 3,
    });
    let flow = |zone: u32, port: u16| Packet {
        l4: L4::Udp {
            sport: port,
            dport: 53,
        },
        ..udp(zone, true)
    };
    for p in 0..3 {
        assert!(ct.process(&flow(1, p), 0, allow).accept);
    }
    let d = ct.process(&flow(1, 99), 0, allow);
    assert_eq!((d.accept, d.reject), (false, Some(Reject::Full)));
    // Zone 1 full does not stop zone 2, until the table is.
    assert!(ct.process(&flow(2, 0), 0, allow).accept);
    assert!(ct.process(&flow(2, 1), 0, allow).accept);
    assert_eq!(ct.process(&flow(3, 0), 0, allow).reject, Some(Reject::Full));
    // Known connections go on.
    assert!(ct.process(&flow(1, 0), 0, allow).accept);
    assert_eq!(ct.stats().rejected(Reject::Full), 2);
}

#[test]
fn the_acl_decides_new_connections_only() {
    let mut sp = SlowPath::new(Limits::default());
    let mut acl = Acl::new();
    // Tenant 0 allows TCP to port 80 only.
    acl.set(
        0,
        vec![Rule {
            proto: Some(PROTO_TCP),
            dst_ports: PortRange::one(80),
            ..Rule::any(10, Verdict::Allow)
        }],
        Verdict::Deny,
    )
    .unwrap();
    sp.acl = acl;
    let d = sp.decide(&udp(0, true), 0);
    assert_eq!(
        (d.state, d.accept, d.reject),
        (CtState::New, false, Some(Reject::Acl))
    );
    let d = sp.decide(&tcp(0, true, SYN, ISN_A, 0, 0), 0);
    assert!(d.accept);
    // The reply comes from port 80 to an ephemeral port the ACL does not allow: it passes as
    // established, and an unsolicited packet from B's port 80 would not.
    let d = sp.decide(&tcp(0, false, SYN | ACK, ISN_B, ISN_A + 1, 0), 0);
    assert_eq!((d.state, d.accept), (CtState::Established, true));
    let mut unsolicited = tcp(0, false, SYN, 5, 0, 0);
    if let L4::Tcp(t) = &mut unsolicited.l4 {
        t.dport = 40001;
    }
    let d = sp.decide(&unsolicited, 0);
    assert_eq!(d.reject, Some(Reject::Acl));
    // A tenant without rules passes nothing.
    assert_eq!(
        sp.decide(&tcp(5, true, SYN, 1, 0, 0), 0).reject,
        Some(Reject::Acl)
    );
}

#[test]
fn an_install_landing_after_its_connection_is_gone_is_removed() {
    let mut ct = Conntrack::default();
    let id = handshake(&mut ct, 3);
    assert!(matches!(ct.take_ops()[..], [HwOp::Install { .. }]));
    // The tenant goes while the install is on its way; the hardware runs the remove first.
    ct.flush_zone(3);
    assert!(matches!(ct.take_ops()[..], [HwOp::Remove { .. }]));
    ct.hw_removed(id, HwCounters::default());
    assert!(ct.is_empty());
    // Not destroyed yet: the install may still land...
    assert!(!ct
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::Destroy { .. })));
    ct.check();
    // ...and it does: taken out again, and only then is the connection gone.
    ct.hw_installed(id, true);
    assert!(matches!(ct.take_ops()[..], [HwOp::Remove { conn, .. }] if conn == id));
    ct.hw_removed(id, HwCounters::default());
    let ev = ct.take_events();
    assert!(
        matches!(ev[..], [Event::Destroy { conn, .. }] if conn == id),
        "{ev:?}"
    );
    assert_eq!(ct.stats().late_installs, 1);
    ct.check();
    // A report for a connection (or an install) nobody asked about changes nothing.
    ct.hw_installed(id, true);
    assert!(ct.take_ops().is_empty());
}

#[test]
fn a_connection_to_itself() {
    // Same address and port both ways: one key, every packet of the original direction.
    let mut ct = Conntrack::default();
    let p = Packet {
        zone: 0,
        src: A,
        dst: A,
        proto: PROTO_UDP,
        l4: L4::Udp { sport: 7, dport: 7 },
        len: 60,
    };
    let id = ct.process(&p, 0, allow).conn.unwrap();
    let d = ct.process(&p, 1, allow);
    assert_eq!(
        (d.conn, d.dir, d.state),
        (Some(id), Dir::Orig, CtState::New)
    );
    assert_eq!(ct.len(), 1);
    ct.check();
    assert_eq!(ct.expire(100_000), 1);
    assert!(ct.is_empty());
    ct.check();
}
