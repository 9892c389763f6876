//! The flow-offload loop (driver/src/net/offload.rs) against an oracle written from the traffic
//! itself: seeded TCP and UDP sessions between two tenants' vports, hosts behind the uplink
//! and a VxLAN tunnel, with ACL-denied sessions among them. Every accepted packet must leave
//! exactly where its receiver is, byte for byte, in order, and nothing else may leave; all-CPU,
//! learning (split) and a table too small for the traffic give the same frames; the counters
//! of every connection are exact across offload; the table is empty at the end.

use fpga_virtio_driver::net::fastpath::{Punt, UPLINK};
use fpga_virtio_driver::net::offload::{FlowOffload, OffloadConfig, Out};
use fpga_virtio_flow::conntrack::{Event, Key, Millis};
use fpga_virtio_flow::forward::{Egress, Tunnel};
use fpga_virtio_flow::{vxlan, IpNet, PortRange, Rule, Verdict};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    Vport(u16),
    /// Behind the uplink, plain (zone 1).
    Remote,
    /// Behind the VxLAN tunnel's remote VTEP (zone 2).
    Tunnelled,
}

#[derive(Clone, Copy, Debug)]
struct Ep {
    zone: u32,
    mac: [u8; 6],
    ip: Ipv4Addr,
    at: Place,
}

const VNI: u32 = 100;
const CARD_VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const REMOTE_VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn endpoints() -> Vec<Ep> {
    let ep = |zone, m: u8, ip: [u8; 4], at| Ep {
        zone,
        mac: [0x02, 0, 0, 0, zone as u8, m],
        ip: Ipv4Addr::from(ip),
        at,
    };
    vec![
        ep(1, 1, [10, 1, 0, 1], Place::Vport(1)),
        ep(1, 2, [10, 1, 0, 2], Place::Vport(2)),
        ep(1, 50, [10, 1, 0, 50], Place::Remote),
        // Tenant 2 uses tenant 1's first address too.
        ep(2, 3, [10, 1, 0, 1], Place::Vport(3)),
        ep(2, 9, [10, 1, 0, 9], Place::Tunnelled),
    ]
}

fn tunnel_out() -> Tunnel {
    Tunnel {
        vni: VNI,
        local: IpAddr::V4(CARD_VTEP),
        remote: IpAddr::V4(REMOTE_VTEP),
        local_mac: [0x02, 0xca, 0, 0, 0, 1],
        next_hop_mac: [0x02, 0xca, 0, 0, 0, 2],
        port: 4789,
        ttl: 64,
    }
}

fn card(cfg: OffloadConfig) -> FlowOffload {
    let mut c = FlowOffload::new(OffloadConfig {
        uplink_zone: Some(1),
        ..cfg
    });
    for e in endpoints() {
        if let Place::Vport(v) = e.at {
            c.add_vport(v, e.zone, e.mac);
        }
    }
    c.fwd.set_default(1, Egress::Uplink);
    let t = c.fwd.add_tunnel(2, tunnel_out()).unwrap();
    c.fwd.set_default(2, Egress::Tunnel(t));
    // Tenant 1: web and DNS in, nothing else; tenant 2: anything.
    let port = |proto, p| Rule {
        proto: Some(proto),
        dst_ports: PortRange::one(p),
        ..Rule::any(10, Verdict::Allow)
    };
    c.slow
        .acl
        .set(1, vec![port(6, 80), port(17, 53)], Verdict::Deny)
        .unwrap();
    c.slow
        .acl
        .set(
            2,
            vec![Rule {
                dst: Some(IpNet::V4(Ipv4Addr::new(10, 1, 0, 0), 16)),
                ..Rule::any(1, Verdict::Allow)
            }],
            Verdict::Deny,
        )
        .unwrap();
    c
}

/// One packet of the traffic: who sends it to whom, the frame, and whether the firewall lets
/// it through (the generator knows: denied sessions are the only refused ones).
#[derive(Clone, Debug)]
struct Pkt {
    from: Ep,
    to: Ep,
    frame: Vec<u8>,
    accepted: bool,
    /// The session's orig key and this packet's direction (0 orig, 1 reply).
    key: Key,
    dir: usize,
}

fn tcp(
    from: &Ep,
    to: &Ep,
    ports: (u16, u16),
    seq: u32,
    ack: Option<u32>,
    flags: &str,
    payload: usize,
) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(from.mac, to.mac)
        .ipv4(from.ip.octets(), to.ip.octets(), 64)
        .tcp(ports.0, ports.1, seq, 64000);
    let mut b = match ack {
        Some(a) => b.ack(a),
        None => b,
    };
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    let data: Vec<u8> = (0..payload).map(|i| (i * 7 + seq as usize) as u8).collect();
    let mut f = Vec::new();
    b.write(&mut f, &data).unwrap();
    f
}

fn udp(from: &Ep, to: &Ep, ports: (u16, u16), payload: usize, tag: u8) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(from.mac, to.mac)
        .ipv4(from.ip.octets(), to.ip.octets(), 64)
        .udp(ports.0, ports.1);
    let data: Vec<u8> = (0..payload).map(|i| (i as u8) ^ tag).collect();
    let mut f = Vec::new();
    b.write(&mut f, &data).unwrap();
    f
}

/// A session's packets, in order.
fn session(rng: &mut Rng, c: &Ep, s: &Ep, sport: u16, kind: u64) -> Vec<Pkt> {
    let mut out = Vec::new();
    let key = Key {
        zone: c.zone,
        proto: if kind < 3 { 6 } else { 17 },
        src: IpAddr::V4(c.ip),
        dst: IpAddr::V4(s.ip),
        sport,
        dport: 0,
    };
    let mut push = |from: &Ep, to: &Ep, frame, accepted, dport, dir| {
        out.push(Pkt {
            from: *from,
            to: *to,
            frame,
            accepted,
            key: Key { dport, ..key },
            dir,
        })
    };
    match kind {
        // TCP to a port tenant 1 allows (tenant 2 allows all): handshake, data, close.
        0 | 1 => {
            let dport = 80;
            let (mut cs, mut ss) = (rng.next() as u32, rng.next() as u32);
            let p = (sport, dport);
            let r = (dport, sport);
            push(c, s, tcp(c, s, p, cs, None, "S", 0), true, dport, 0);
            cs = cs.wrapping_add(1);
            push(s, c, tcp(s, c, r, ss, Some(cs), "S", 0), true, dport, 1);
            ss = ss.wrapping_add(1);
            push(c, s, tcp(c, s, p, cs, Some(ss), "", 0), true, dport, 0);
            for _ in 0..rng.below(12) {
                let n = rng.below(1400) as usize + 1;
                if rng.below(2) == 0 {
                    push(c, s, tcp(c, s, p, cs, Some(ss), "P", n), true, dport, 0);
                    cs = cs.wrapping_add(n as u32);
                } else {
                    push(s, c, tcp(s, c, r, ss, Some(cs), "P", n), true, dport, 1);
                    ss = ss.wrapping_add(n as u32);
                }
            }
            push(c, s, tcp(c, s, p, cs, Some(ss), "F", 0), true, dport, 0);
            cs = cs.wrapping_add(1);
            push(s, c, tcp(s, c, r, ss, Some(cs), "F", 0), true, dport, 1);
            ss = ss.wrapping_add(1);
            push(c, s, tcp(c, s, p, cs, Some(ss), "", 0), true, dport, 0);
        }
        // TCP to a port tenant 1 denies: the SYN and its retransmission.
        2 => {
            let dport = 22;
            let ok = c.zone == 2;
            let cs = rng.next() as u32;
            for _ in 0..2 {
                push(
                    c,
                    s,
                    tcp(c, s, (sport, dport), cs, None, "S", 0),
                    ok,
                    dport,
                    0,
                );
            }
        }
        // UDP: DNS-like exchanges.
        3 | 4 => {
            let dport = 53;
            for i in 0..1 + rng.below(10) {
                let n = rng.below(500) as usize;
                push(c, s, udp(c, s, (sport, dport), n, i as u8), true, dport, 0);
                if rng.below(4) != 0 {
                    let n = rng.below(1200) as usize;
                    push(
                        s,
                        c,
                        udp(s, c, (dport, sport), n, !(i as u8)),
                        true,
                        dport,
                        1,
                    );
                }
            }
        }
        // UDP to a port tenant 1 denies.
        _ => {
            let dport = 9999;
            let ok = c.zone == 2;
            push(c, s, udp(c, s, (sport, dport), 64, 1), ok, dport, 0);
        }
    }
    out
}

/// Seeded traffic: `n` sessions, at most 16 open at a time, their packets interleaved.
fn traffic(seed: u64, n: usize) -> Vec<Pkt> {
    let mut rng = Rng(seed);
    let eps = endpoints();
    let mut sessions: Vec<std::collections::VecDeque<Pkt>> = Vec::new();
    let mut out = Vec::new();
    let mut started = 0;
    let mut sport = 20_000u16;
    while started < n || !sessions.is_empty() {
        while started < n && sessions.len() < 16 {
            // Client and server of one zone, not both behind the uplink.
            let (c, s) = loop {
                let c = eps[rng.below(eps.len() as u64) as usize];
                let s = eps[rng.below(eps.len() as u64) as usize];
                if c.zone == s.zone
                    && c.ip != s.ip
                    && (matches!(c.at, Place::Vport(_)) || matches!(s.at, Place::Vport(_)))
                {
                    break (c, s);
                }
            };
            sport += 1;
            let kind = rng.below(6);
            sessions.push(session(&mut rng, &c, &s, sport, kind).into());
            started += 1;
        }
        let i = rng.below(sessions.len() as u64) as usize;
        out.push(sessions[i].pop_front().unwrap());
        if sessions[i].is_empty() {
            sessions.swap_remove(i);
        }
    }
    out
}

/// What the card receives for a packet: from a vport, from the uplink, or from the uplink in
/// the tunnel (the remote VTEP's encapsulation).
fn ingress(p: &Pkt) -> (u16, Vec<u8>) {
    match p.from.at {
        Place::Vport(v) => (v, p.frame.clone()),
        Place::Remote => (UPLINK, p.frame.clone()),
        Place::Tunnelled => {
            let t = tunnel_out();
            let back = Tunnel {
                local: t.remote,
                remote: t.local,
                local_mac: t.next_hop_mac,
                next_hop_mac: t.local_mac,
                ..t
            };
            let mut f = Vec::new();
            vxlan::encap(&back, &p.frame, 0x1234, &mut f).unwrap();
            (UPLINK, f)
        }
    }
}

struct Run {
    out: Vec<Out>,
    per_packet: Vec<Vec<Out>>,
    card: FlowOffload,
    destroyed: Vec<Event>,
}

fn run(cfg: OffloadConfig, pkts: &[Pkt]) -> Run {
    let mut card = card(cfg);
    let mut all = Vec::new();
    let mut per_packet = Vec::new();
    let mut now: Millis = 1000;
    let mut events = Vec::new();
    for p in pkts {
        let (port, frame) = ingress(p);
        let mut out = Vec::new();
        card.receive(port, &frame, now, &mut out);
        all.extend(out.iter().cloned());
        per_packet.push(out);
        now += 1;
        if now.is_multiple_of(500) {
            card.tick(now);
        }
        events.extend(card.take_events());
    }
    // Everything times out (the longest: 120 s of TIME_WAIT or of an answered UDP flow),
    // the clock ticking each second as the runtime's does.
    for _ in 0..400 {
        now += 1000;
        card.tick(now);
    }
    events.extend(card.take_events());
    Run {
        out: all,
        per_packet,
        card,
        destroyed: events
            .into_iter()
            .filter(|e| matches!(e, Event::Destroy { .. }))
            .collect(),
    }
}

/// The oracle: each packet's frames out, from the traffic alone.
fn check_against_traffic(r: &Run, pkts: &[Pkt]) {
    for (i, (p, out)) in pkts.iter().zip(&r.per_packet).enumerate() {
        if !p.accepted {
            assert!(out.is_empty(), "packet {i} was denied but left: {out:?}");
            continue;
        }
        assert_eq!(
            out.len(),
            1,
            "packet {i} ({:?} → {:?}): {out:?}",
            p.from.at,
            p.to.at
        );
        match (&out[0], p.to.at) {
            (Out::Vport(v, f), Place::Vport(w)) => {
                assert_eq!(*v, w, "packet {i}: to the wrong vport");
                assert_eq!(*f, p.frame, "packet {i}: changed on the way");
            }
            (Out::Uplink(f), Place::Remote) => assert_eq!(*f, p.frame, "packet {i}"),
            (Out::Uplink(f), Place::Tunnelled) => {
                let d = vxlan::decap(f, 4789).unwrap();
                assert_eq!(d.vni, VNI);
                assert_eq!(d.inner, &p.frame[..], "packet {i}");
            }
            (o, to) => panic!("packet {i} to {to:?} left as {o:?}"),
        }
    }
    // Every connection's counters, software and hardware together, are the packets it had.
    let mut want: HashMap<Key, [u64; 2]> = HashMap::new();
    for p in pkts.iter().filter(|p| p.accepted) {
        want.entry(p.key).or_default()[p.dir] += 1;
    }
    let mut got: HashMap<Key, [u64; 2]> = HashMap::new();
    for e in &r.destroyed {
        if let Event::Destroy { key, packets, .. } = e {
            let g = got.entry(*key).or_default();
            g[0] += packets[0];
            g[1] += packets[1];
        }
    }
    let mut diff: Vec<String> = want
        .iter()
        .filter(|(k, w)| got.get(k) != Some(w))
        .map(|(k, w)| format!("{k:?}: want {w:?} got {:?}", got.get(k)))
        .collect();
    diff.extend(
        got.keys()
            .filter(|k| !want.contains_key(k))
            .map(|k| format!("{k:?}: not in the traffic")),
    );
    diff.sort();
    diff.truncate(8);
    assert!(
        diff.is_empty(),
        "per-connection packet counts:\n{}",
        diff.join("\n")
    );
    assert_eq!(r.card.hw_entries(), 0, "entries left in the table");
    assert_eq!(r.card.slow.conntrack.len(), 0);
}

#[test]
fn learning_all_cpu_and_a_full_table_forward_the_same_frames_as_the_oracle() {
    for seed in 1..=4u64 {
        let pkts = traffic(seed, 300);
        let split = run(OffloadConfig::default(), &pkts);
        let cpu = run(
            OffloadConfig {
                offload: false,
                ..Default::default()
            },
            &pkts,
        );
        let small = run(
            OffloadConfig {
                entries: 8,
                ..Default::default()
            },
            &pkts,
        );
        for r in [&split, &cpu, &small] {
            check_against_traffic(r, &pkts);
        }
        assert_eq!(split.out, cpu.out, "seed {seed}: split and all-CPU differ");
        assert_eq!(
            small.out, cpu.out,
            "seed {seed}: a full table changed the frames"
        );
        // The modes did what they say.
        let (s, c, f) = (split.card.stats(), cpu.card.stats(), small.card.stats());
        assert!(s.hits > pkts.len() as u64 / 4, "seed {seed}: {s:?}");
        assert!(s.installed > 20 && s.removed == s.installed, "{s:?}");
        assert_eq!((c.hits, c.installed), (0, 0), "{c:?}");
        assert!(f.refused > 0 && f.hits > 0, "{f:?}");
        assert_eq!(s.hits + s.punts.iter().sum::<u64>(), pkts.len() as u64);
        assert!(s.punted(Punt::TcpControl) > 0 && s.punted(Punt::Miss) > 0);
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
