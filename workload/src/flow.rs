//! Seeded traffic for the flow-offload loop (driver/src/net/offload.rs) and its oracle: TCP
//! and UDP sessions between two tenants — vports 1 and 2 and a host behind the plain uplink in
//! zone 1, vport 3 and a host behind a VxLAN tunnel (VNI 100) in zone 2, both tenants using
//! 10.1.0.1 — with sessions tenant 1's ACL denies among them. The oracle is the traffic itself:
//! every accepted packet leaves exactly once, where its receiver is, byte for byte; denied
//! ones leave nowhere; every connection's counters equal its packets (docs/FLOW.md).

use fpga_virtio_driver::net::fastpath::{Punt, UPLINK};
use fpga_virtio_driver::net::offload::{FlowOffload, OffloadConfig, Out};
use fpga_virtio_flow::conntrack::{Event, Key, Millis};
use fpga_virtio_flow::forward::{Egress, Tunnel};
use fpga_virtio_flow::{vxlan, IpNet, PortRange, Rule, Verdict};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// A seeded generator (splitmix64).
#[derive(Debug)]
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Where an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Place {
    Vport(u16),
    /// Behind the uplink, plain (zone 1).
    Remote,
    /// Behind the VxLAN tunnel's remote VTEP (zone 2).
    Tunnelled,
}

/// An endpoint of the traffic: a vport or a host behind the uplink.
#[derive(Clone, Copy, Debug)]
pub struct Ep {
    pub zone: u32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub at: Place,
}

pub const VNI: u32 = 100;
const CARD_VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const REMOTE_VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// The two tenants' endpoints (tenant 2 uses tenant 1's first address too).
pub fn endpoints() -> Vec<Ep> {
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

/// Zone 2's tunnel, as the card holds it.
pub fn tunnel_out() -> Tunnel {
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

/// The card's loop set up for the two tenants: vports, defaults, the tunnel, the ACLs.
pub fn card(cfg: OffloadConfig) -> FlowOffload {
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
pub struct Pkt {
    pub from: Ep,
    pub to: Ep,
    pub frame: Vec<u8>,
    pub accepted: bool,
    /// The session's orig key and this packet's direction (0 orig, 1 reply).
    pub key: Key,
    pub dir: usize,
}

/// A TCP segment's frame (flags: S, F, P; an ACK when `ack` is given).
pub fn tcp(
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

/// A UDP datagram's frame.
pub fn udp(from: &Ep, to: &Ep, ports: (u16, u16), payload: usize, tag: u8) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(from.mac, to.mac)
        .ipv4(from.ip.octets(), to.ip.octets(), 64)
        .udp(ports.0, ports.1);
    let data: Vec<u8> = (0..payload).map(|i| (i as u8) ^ tag).collect();
    let mut f = Vec::new();
    b.write(&mut f, &data).unwrap();
    f
}

/// A session's packets, in order (kind 0-1: TCP to port 80, 2: TCP to 22, 3-4: UDP to 53,
/// 5: UDP to 9999).
pub fn session(rng: &mut Rng, c: &Ep, s: &Ep, sport: u16, kind: u64) -> Vec<Pkt> {
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
            let (mut cs, mut ss) = (rng.next_u64() as u32, rng.next_u64() as u32);
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
            let cs = rng.next_u64() as u32;
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
pub fn traffic(seed: u64, n: usize) -> Vec<Pkt> {
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
pub fn ingress(p: &Pkt) -> (u16, Vec<u8>) {
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

/// A run of the traffic through one card.
#[derive(Debug)]
pub struct Run {
    /// Every frame out, in order.
    pub out: Vec<Out>,
    /// The frames out of each packet.
    pub per_packet: Vec<Vec<Out>>,
    pub card: FlowOffload,
    /// The connections' Destroy events.
    pub destroyed: Vec<Event>,
}

/// The traffic through a card of `cfg`, then time until every connection is gone.
pub fn run(cfg: OffloadConfig, pkts: &[Pkt]) -> Run {
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

/// The oracle: each packet's frames out, from the traffic alone; every connection's counters
/// (software and hardware together) the packets it had; nothing left in the table or the
/// tracker. The first difference, described.
pub fn check(r: &Run, pkts: &[Pkt]) -> Result<(), String> {
    for (i, (p, out)) in pkts.iter().zip(&r.per_packet).enumerate() {
        if !p.accepted {
            if !out.is_empty() {
                return Err(format!("packet {i} was denied but left: {out:?}"));
            }
            continue;
        }
        let ok = match (out.as_slice(), p.to.at) {
            ([Out::Vport(v, f)], Place::Vport(w)) => *v == w && *f == p.frame,
            ([Out::Uplink(f)], Place::Remote) => *f == p.frame,
            ([Out::Uplink(f)], Place::Tunnelled) => {
                vxlan::decap(f, 4789).is_ok_and(|d| d.vni == VNI && d.inner == &p.frame[..])
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "packet {i} ({:?} → {:?}, {:?}) left as {out:?}",
                p.from.at, p.to.at, p.key
            ));
        }
    }
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
    if let Some(d) = diff.first() {
        return Err(format!(
            "per-connection packet counts ({} differ): {d}",
            diff.len()
        ));
    }
    if r.card.hw_entries() != 0 || !r.card.slow.conntrack.is_empty() {
        return Err(format!(
            "left at the end: {} entries, {} connections",
            r.card.hw_entries(),
            r.card.slow.conntrack.len()
        ));
    }
    Ok(())
}

/// One way of running the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Mode {
    /// Connections learnt and offloaded.
    Learning,
    /// Nothing offloaded: every packet through the CPU.
    AllCpu,
    /// A flow table of 8 entries: most installs refused.
    FullTable,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Learning, Mode::AllCpu, Mode::FullTable];

    pub fn config(self) -> OffloadConfig {
        match self {
            Mode::Learning => OffloadConfig::default(),
            Mode::AllCpu => OffloadConfig {
                offload: false,
                ..Default::default()
            },
            Mode::FullTable => OffloadConfig {
                entries: 8,
                ..Default::default()
            },
        }
    }
}

/// What one mode did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModeReport {
    pub mode: Mode,
    /// Packets the flow table forwarded, and those it punted by reason.
    pub hits: u64,
    pub punts: std::collections::BTreeMap<&'static str, u64>,
    pub installed: u64,
    pub refused: u64,
    pub removed: u64,
    /// Packets the slow path refused or had nowhere to send.
    pub dropped: u64,
    pub frames_out: usize,
    /// The oracle's verdict (the first difference).
    pub verified: Result<(), String>,
}

/// The flow-offload run: the same traffic in every mode.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FlowReport {
    pub seed: u64,
    pub sessions: usize,
    pub packets: usize,
    pub accepted: usize,
    pub connections: usize,
    pub modes: Vec<ModeReport>,
    /// Every mode put the same frames out in the same order.
    pub modes_agree: bool,
    pub wall_seconds: f64,
}

impl FlowReport {
    /// Every mode matched the oracle and the others.
    pub fn verified(&self) -> bool {
        self.modes_agree && self.modes.iter().all(|m| m.verified.is_ok())
    }
}

/// `sessions` seeded sessions of two tenants through the card in every [`Mode`].
pub fn run_modes(seed: u64, sessions: usize) -> FlowReport {
    let wall = std::time::Instant::now();
    let pkts = traffic(seed, sessions);
    let mut outs = Vec::new();
    let mut modes = Vec::new();
    let mut connections = 0;
    for mode in Mode::ALL {
        let r = run(mode.config(), &pkts);
        let s = r.card.stats();
        connections = r.destroyed.len();
        modes.push(ModeReport {
            mode,
            hits: s.hits,
            punts: Punt::ALL.iter().map(|&p| (p.name(), s.punted(p))).collect(),
            installed: s.installed,
            refused: s.refused,
            removed: s.removed,
            dropped: s.dropped,
            frames_out: r.out.len(),
            verified: check(&r, &pkts),
        });
        outs.push(r.out);
    }
    FlowReport {
        seed,
        sessions,
        packets: pkts.len(),
        accepted: pkts.iter().filter(|p| p.accepted).count(),
        connections,
        modes,
        modes_agree: outs.windows(2).all(|w| w[0] == w[1]),
        wall_seconds: wall.elapsed().as_secs_f64(),
    }
}
