//! The slow path's decision per packet (fpga-virtio-flow: connection tracking, then the
//! tenant's ACL for a packet that opens a connection) with 10 000 ACL rules and 1 000 000
//! tracked TCP connections: a segment of an established connection (a lookup and the window
//! checks), a datagram of an established UDP flow, and a new connection (the ACL, an insert,
//! and its expiry 1000 packets later, so that the table stays at its size).
//! `cargo bench -p fpga-virtio-benches --bench slowpath`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fpga_virtio_benches::acl_rules;
use fpga_virtio_flow::conntrack::{tcp_flags::*, PROTO_TCP, PROTO_UDP};
use fpga_virtio_flow::{IpNet, Limits, Packet, Rule, SlowPath, TcpSeg, Verdict, L4};
use std::net::{IpAddr, Ipv4Addr};

const CONNS: u32 = 1_000_000;

/// Connection `i`'s client and server (100.64.0.0/10 to 198.18.0.0/15).
fn ends(i: u32) -> (IpAddr, IpAddr, u16) {
    let c = IpAddr::V4(Ipv4Addr::from(0x6440_0000 | (i >> 6)));
    let s = IpAddr::V4(Ipv4Addr::from(0xc612_0000 | (i & 0xffff)));
    (c, s, 1024 + (i & 63) as u16)
}

fn tcp(from_client: bool, i: u32, flags: u8, seq: u32, ack: u32, payload: u32) -> Packet {
    let (c, s, port) = ends(i);
    let (src, dst, sport, dport) = if from_client {
        (c, s, port, 443)
    } else {
        (s, c, 443, port)
    };
    Packet {
        zone: 1,
        src,
        dst,
        proto: PROTO_TCP,
        l4: L4::Tcp(TcpSeg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 502,
            wscale: (flags & SYN != 0).then_some(7),
            payload,
        }),
        len: 54 + payload,
    }
}

fn udp(from_client: bool, i: u32) -> Packet {
    let (c, s, port) = ends(i);
    let (src, dst, sport, dport) = if from_client {
        (c, s, port, 53)
    } else {
        (s, c, 53, port)
    };
    Packet {
        zone: 1,
        src,
        dst,
        proto: PROTO_UDP,
        l4: L4::Udp { sport, dport },
        len: 100,
    }
}

fn bench(c: &mut Criterion) {
    let mut rules = acl_rules(10_000);
    // The clients' subnet may open connections (behind 10 000 other rules).
    rules.push(Rule {
        src: Some(IpNet::V4(Ipv4Addr::new(100, 64, 0, 0), 10)),
        ..Rule::any(2000, Verdict::Allow)
    });
    let mut sp = SlowPath::new(Limits {
        total: 4 << 20,
        per_zone: 4 << 20,
    });
    sp.acl.set(1, rules, Verdict::Deny).expect("rules compile");
    let start = std::time::Instant::now();
    for i in 0..CONNS {
        let (a, b) = (i.wrapping_mul(2654435761), i.wrapping_mul(40503));
        assert!(sp.decide(&tcp(true, i, SYN, a, 0, 0), 0).accept);
        assert!(
            sp.decide(&tcp(false, i, SYN | ACK, b, a.wrapping_add(1), 0), 0)
                .accept
        );
        assert!(
            sp.decide(
                &tcp(true, i, ACK, a.wrapping_add(1), b.wrapping_add(1), 0),
                0
            )
            .accept
        );
    }
    let udp_flows = 65_536;
    for i in 0..udp_flows {
        assert!(sp.decide(&udp(true, i), 0).accept);
        assert!(sp.decide(&udp(false, i), 0).accept);
    }
    let installs = sp.conntrack.take_ops().len();
    sp.conntrack.take_events();
    eprintln!(
        "slowpath: {} connections set up in {:.2?} ({installs} offered to the flow table)",
        sp.conntrack.len(),
        start.elapsed()
    );
    // Segments of established connections (a retransmission: in window, as often as needed)
    // and datagrams of established flows, spread over the table.
    let segs: Vec<Packet> = (0..4096u32)
        .map(|k| {
            let i = k.wrapping_mul(244_140) % CONNS;
            let (a, b) = (i.wrapping_mul(2654435761), i.wrapping_mul(40503));
            tcp(
                true,
                i,
                ACK | PSH,
                a.wrapping_add(1),
                b.wrapping_add(1),
                100,
            )
        })
        .collect();
    let dgrams: Vec<Packet> = (0..4096u32)
        .map(|k| udp(k % 2 == 0, k * 13 % udp_flows))
        .collect();
    let mut g = c.benchmark_group("slowpath_10k_rules_1M_conns");
    let mut k = 0;
    g.bench_function("tcp_established_segment", |b| {
        b.iter(|| {
            k = (k + 1) & 4095;
            let d = sp.decide(black_box(&segs[k]), 1);
            debug_assert!(d.accept);
            d
        })
    });
    g.bench_function("udp_established", |b| {
        b.iter(|| {
            k = (k + 1) & 4095;
            sp.decide(black_box(&dgrams[k]), 1)
        })
    });
    // New connections: each expires (unanswered UDP, 30 s) 1000 packets later on a clock that
    // moves 30 ms per packet, so the table stays at its size and expiry is paid for.
    let mut n: u32 = 0;
    let mut now: u64 = 1;
    g.bench_function("new_connection_and_its_expiry", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            now += 30;
            let i = CONNS + (n % 4_000_000);
            let d = sp.decide(black_box(&udp(true, i)), now);
            sp.conntrack.expire(now);
            if n & 4095 == 0 {
                // The runtime drains the events (logs, statistics) as it goes.
                drop(sp.conntrack.take_events());
            }
            d
        })
    });
    g.finish();
    sp.conntrack.take_ops();
    let st = sp.conntrack.stats();
    eprintln!(
        "slowpath: {} live, {} new, {} expired, {} established packets",
        st.live, st.new, st.expired, st.established
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
