//! The flow-offload loop (driver/src/net/offload.rs) against the oracle of
//! `fpga_virtio_workload::flow`: two tenants' seeded TCP/UDP/VxLAN traffic learning, all-CPU
//! and with a full table, the same frames as the traffic says and as each other, counters
//! exact, nothing left; aging through hardware reads; the card's switch in offload mode.

use fpga_virtio_driver::net::offload::{FlowOffload, OffloadConfig};
use fpga_virtio_flow::conntrack::Event;
use fpga_virtio_flow::forward::Egress;
use fpga_virtio_flow::{PortRange, Rule, Verdict};
use fpga_virtio_workload::flow::*;
use std::net::Ipv4Addr;

#[test]
fn learning_all_cpu_and_a_full_table_forward_the_same_frames_as_the_oracle() {
    for seed in 1..=4u64 {
        let r = run_modes(seed, 300);
        for m in &r.modes {
            assert_eq!(m.verified, Ok(()), "seed {seed}, {:?}", m.mode);
        }
        assert!(
            r.modes_agree,
            "seed {seed}: the modes put different frames out"
        );
        let [s, c, f] = [&r.modes[0], &r.modes[1], &r.modes[2]];
        // The modes did what they say.
        assert!(s.hits > r.packets as u64 / 4, "seed {seed}: {s:?}");
        assert!(s.installed > 20 && s.removed == s.installed, "{s:?}");
        assert_eq!((c.hits, c.installed), (0, 0), "{c:?}");
        assert!(f.refused > 0 && f.hits > 0, "{f:?}");
        assert_eq!(s.hits + s.punts.values().sum::<u64>(), r.packets as u64);
        assert!(s.punts["flow_tcp_control"] > 0 && s.punts["flow_miss"] > 0);
        assert!(s.dropped > 0, "denied sessions were in the traffic");
    }
}

/// An offloaded UDP flow outlives the tracker's timeout while the hardware forwards it (the
/// aging reads the hardware's last-seen time), and goes once idle, with exact counters.
#[test]
fn aging_reads_the_hardware_and_keeps_a_busy_flow() {
    let eps = endpoints();
    let (a, b) = (eps[0], eps[1]);
    let mut card = card(OffloadConfig::default());
    let mut now = 1000;
    let mut out = Vec::new();
    let ports = (5353, 53);
    card.receive(1, &udp(&a, &b, ports, 10, 0), now, &mut out);
    card.receive(2, &udp(&b, &a, (53, 5353), 10, 1), now + 1, &mut out);
    assert_eq!(card.stats().installed, 1);
    // Ten minutes of a packet every 10 s each way: all by the hardware (the UDP timeout
    // is 120 s).
    for i in 0..60u64 {
        now += 10_000;
        card.receive(1, &udp(&a, &b, ports, 20, i as u8), now, &mut out);
        card.receive(2, &udp(&b, &a, (53, 5353), 30, i as u8), now, &mut out);
        card.tick(now);
    }
    let s = card.stats();
    assert_eq!(s.hits, 120, "{s:?}");
    assert!(s.queries > 0, "the tracker asked the hardware: {s:?}");
    assert_eq!(card.hw_entries(), 2);
    assert_eq!(out.len(), 122);
    // Idle: gone from both within the timeout and a read.
    for _ in 0..125 {
        now += 1000;
        card.tick(now);
    }
    assert_eq!(card.hw_entries(), 0);
    let gone: Vec<_> = card
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Destroy { packets, .. } => Some(packets),
            _ => None,
        })
        .collect();
    assert_eq!(gone, vec![[61, 61]]);
}

/// The card's switch (the CPU path's) with flow offload: frames from vports and the uplink go
/// through the loop, what it lets through lands in the right vport's RX backlog or on the
/// uplink, a tenant without rules reaches nothing, and a connection's data is forwarded by
/// the flow table once its handshake is done.
#[test]
fn the_switch_delivers_through_the_loop() {
    use fpga_virtio_driver::net::Switch;
    use fpga_virtio_wire::Wire;
    use std::sync::Arc;
    let wire = Arc::new(Wire::default());
    wire.set_capture(true);
    let mut flow = FlowOffload::new(OffloadConfig {
        uplink_zone: Some(7),
        ..Default::default()
    });
    flow.fwd.set_default(7, Egress::Uplink);
    let web = Rule {
        proto: Some(6),
        dst_ports: PortRange::one(80),
        ..Rule::any(10, Verdict::Allow)
    };
    flow.slow.acl.set(7, vec![web], Verdict::Deny).unwrap();
    let sw = Switch::with_offload(wire.clone(), flow);
    let ep = |m: u8, ip: [u8; 4]| Ep {
        zone: 7,
        mac: [2, 0, 0, 0, 7, m],
        ip: Ipv4Addr::from(ip),
        at: Place::Vport(u16::from(m)),
    };
    let (a, b) = (ep(1, [10, 7, 0, 1]), ep(2, [10, 7, 0, 2]));
    sw.set_zone(1, 7);
    sw.set_zone(2, 7);
    sw.attach(1, a.mac, 1);
    sw.attach(2, b.mac, 1);
    // Vport 3 is its own tenant (zone 4, no rules).
    let c = Ep {
        zone: 4,
        mac: [2, 0, 0, 0, 4, 3],
        ..ep(3, [10, 7, 0, 3])
    };
    sw.attach(3, c.mac, 1);
    let take = |func: u8| -> Vec<Vec<u8>> {
        std::iter::from_fn(|| sw.take(func, 0).map(|f| f.bytes)).collect()
    };
    // A connection from A to B's web port: handshake, data both ways, close.
    let mut rng = Rng(7);
    let pkts = session(&mut rng, &a, &b, 40_000, 0);
    for p in &pkts {
        let Place::Vport(from) = p.from.at else {
            unreachable!()
        };
        sw.from_vport(from as u8, &p.frame);
        let Place::Vport(to) = p.to.at else {
            unreachable!()
        };
        assert_eq!(take(to as u8), vec![p.frame.clone()], "{:?}", p.key);
    }
    let s = sw.offload_stats().unwrap();
    assert_eq!(s.installed, 1, "{s:?}");
    assert_eq!(s.hits, pkts.len() as u64 - 6, "{s:?}");
    // A to the uplink (a host in zone 7's network) and its answer from the uplink.
    let host = Ep {
        mac: [2, 0, 0, 0, 7, 99],
        ip: Ipv4Addr::new(10, 7, 9, 9),
        at: Place::Remote,
        ..a
    };
    let syn = tcp(&a, &host, (40_001, 80), 1, None, "S", 0);
    sw.from_vport(1, &syn);
    assert_eq!(
        wire.take_sent()
            .into_iter()
            .map(|f| f.bytes)
            .collect::<Vec<_>>(),
        vec![syn]
    );
    let synack = tcp(&host, &a, (80, 40_001), 9, Some(2), "S", 0);
    sw.from_uplink(&synack);
    assert_eq!(take(1), vec![synack]);
    // Tenant 4 reaches nothing: not B (another tenant's MAC), not the uplink.
    sw.from_vport(3, &tcp(&c, &b, (40_002, 80), 1, None, "S", 0));
    assert!(take(2).is_empty() && wire.take_sent().is_empty());
    // Time passes: the switch's timers run as the runtime polls (no panic, nothing due yet).
    sw.pump();
}
