//! The flow-offload loop's setup rate (driver/src/net/offload.rs): a whole TCP connection
//! through punt → decide → install → reinject, as a connections-per-second test runs it —
//! SYN, SYN-ACK and ACK punted and decided (the ACK installs both directions' entries), two
//! data segments forwarded by the flow table, FIN, FIN and ACK punted (the FIN removes the
//! entries). Measured twice: the CPU's share (the six punted packets, as a worker takes them
//! from the punt ring) and the whole loop with the flow stage's software model in front. With 10 000 ACL rules, 100 000 other connections offloaded (200 000 entries in
//! a 262 144-entry table) and the clock moving 1 ms per connection, so that TIME_WAIT
//! connections expire (120 s) and the tracker stays at its size.
//! `cargo bench -p fpga-virtio-benches --bench flow_setup`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use fpga_virtio_benches::acl_rules;
use fpga_virtio_driver::net::fastpath::{Punt, UPLINK};
use fpga_virtio_driver::net::offload::{FlowOffload, OffloadConfig, Out};
use fpga_virtio_flow::forward::Egress;
use fpga_virtio_flow::{IpNet, Limits, Rule, Verdict};
use fpga_virtio_workload::flow::{tcp, Ep, Place};
use std::net::Ipv4Addr;

const VM_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const OTHERS: u32 = 100_000;

/// The eight frames of connection `i` (client 100.64.x.y behind the uplink, server the VM),
/// and whether each comes from the uplink.
fn connection(i: u32) -> Vec<(bool, Vec<u8>)> {
    let client = Ipv4Addr::from(0x6440_0000 | (i & 0x3f_ffff)).octets();
    let server = [10, 0, 0, 1];
    let port = 1024 + (i >> 22) as u16;
    let (cs, ss) = (i.wrapping_mul(2_654_435_761), i.wrapping_mul(40_503));
    let ep = |mac, ip| Ep {
        zone: 1,
        mac,
        ip: Ipv4Addr::from(ip),
        at: Place::Remote,
    };
    let (c, s) = (ep(GW_MAC, client), ep(VM_MAC, server));
    let seg = |up: bool, seq: u32, ack: Option<u32>, flags: &str, n: usize| {
        let f = if up {
            tcp(&c, &s, (port, 443), seq, ack, flags, n)
        } else {
            tcp(&s, &c, (443, port), seq, ack, flags, n)
        };
        (up, f)
    };
    let (c1, s1) = (cs.wrapping_add(1), ss.wrapping_add(1));
    vec![
        seg(true, cs, None, "S", 0),
        seg(false, ss, Some(c1), "S", 0),
        seg(true, c1, Some(s1), "", 0),
        seg(true, c1, Some(s1), "", 100),
        seg(false, s1, Some(c1 + 100), "", 100),
        seg(true, c1 + 100, Some(s1 + 100), "F", 0),
        seg(false, s1 + 100, Some(c1 + 101), "F", 0),
        seg(true, c1 + 101, Some(s1 + 101), "", 0),
    ]
}

fn bench(c: &mut Criterion) {
    let mut card = FlowOffload::new(OffloadConfig {
        entries: 1 << 18,
        uplink_zone: Some(1),
        limits: Limits {
            total: 1 << 20,
            per_zone: 1 << 20,
        },
        ..Default::default()
    });
    card.add_vport(1, 1, VM_MAC);
    card.fwd.set_default(1, Egress::Uplink);
    let mut rules = acl_rules(10_000);
    rules.push(Rule {
        dst: Some(IpNet::V4(Ipv4Addr::new(10, 0, 0, 1), 32)),
        ..Rule::any(2000, Verdict::Allow)
    });
    card.slow
        .acl
        .set(1, rules, Verdict::Deny)
        .expect("rules compile");
    let mut out: Vec<Out> = Vec::new();
    let feed = |card: &mut FlowOffload, frames: &[(bool, Vec<u8>)], now: u64| {
        let mut out = Vec::new();
        for (up, f) in frames {
            out.clear();
            card.receive(if *up { UPLINK } else { 1 }, f, now, &mut out);
            debug_assert_eq!(out.len(), 1);
        }
    };
    // The other connections: set up, offloaded, left open.
    let start = std::time::Instant::now();
    for i in 0..OTHERS {
        feed(&mut card, &connection(i)[..4], 0);
    }
    drop(card.take_events());
    eprintln!(
        "flow_setup: {} connections offloaded ({} entries) in {:.2?}",
        card.stats().installed,
        card.hw_entries(),
        start.elapsed()
    );
    // Each measured connection's frames built beforehand (a ring of 4096, each used once
    // per 4096 iterations with a new client port, so no tuple repeats within TIME_WAIT).
    let ring: Vec<Vec<(bool, Vec<u8>)>> = (0..4096u32).map(|k| connection(OTHERS + k)).collect();
    let mut n: u32 = 0;
    let mut now: u64 = 1;
    // A new client port each round of the ring.
    let next = |n: &mut u32, now: &mut u64| {
        *n = n.wrapping_add(1);
        *now += 1;
        let k = (*n & 4095) as usize;
        let round = (*n >> 12) as u16;
        let mut frames = ring[k].clone();
        for (up, f) in frames.iter_mut() {
            let at = if *up { 34 } else { 36 };
            f[at..at + 2].copy_from_slice(&(1024 + round % 60_000).to_be_bytes());
        }
        frames
    };
    let mut g = c.benchmark_group("flow_offload_loop");
    g.throughput(Throughput::Elements(1));
    // The CPU's share of a connection: the six packets the flow stage punts (SYN, SYN-ACK and
    // the ACK that installs; FIN, FIN and the last ACK, after the FIN removed the entries),
    // each decided, its updates written, reinjected. The two data segments are the
    // hardware's.
    g.bench_function("cpu_per_connection_6_punts", |b| {
        b.iter(|| {
            let frames = next(&mut n, &mut now);
            for (i, (up, f)) in frames.iter().enumerate() {
                if i == 3 || i == 4 {
                    continue;
                }
                let why = if i == 2 || i == 7 {
                    Punt::Miss
                } else {
                    Punt::TcpControl
                };
                out.clear();
                card.punted(if *up { UPLINK } else { 1 }, f, why, now, &mut out);
                debug_assert_eq!(out.len(), 1);
            }
            if n.is_multiple_of(256) {
                card.tick(now);
                drop(card.take_events());
            }
        })
    });
    // The same connections with the data segments, every packet through the flow stage's
    // software model first (what the simulated card costs the host, hardware included).
    g.bench_function("whole_loop_with_the_hw_model", |b| {
        b.iter(|| {
            let frames = next(&mut n, &mut now);
            for (up, f) in &frames {
                out.clear();
                card.receive(if *up { UPLINK } else { 1 }, black_box(f), now, &mut out);
                debug_assert_eq!(out.len(), 1);
            }
            if n.is_multiple_of(256) {
                card.tick(now);
                drop(card.take_events());
            }
        })
    });
    g.finish();
    let s = card.stats();
    eprintln!(
        "flow_setup: {} installed, {} refused, {} removed, {} hits, {} punted, {} dropped, {} live, {} entries",
        s.installed,
        s.refused,
        s.removed,
        s.hits,
        s.punts.iter().sum::<u64>(),
        s.dropped,
        card.slow.conntrack.len(),
        card.hw_entries()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
