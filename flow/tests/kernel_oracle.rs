//! The slow path against Linux's connection tracking (issue 17, item 9).
//!
//! Seeded TCP, UDP and ICMP sessions — handshakes, data both ways, closes, resets, refused and
//! half-open connections, retransmissions, out-of-window segments, unsolicited packets, ICMP
//! echo and ICMP errors about tracked and untracked flows — are replayed through the kernel
//! and through [`SlowPath`], packet by packet, and must get the same verdict.
//!
//! The kernel side runs in a network namespace of its own: two TUN interfaces (`tunA` with the
//! A hosts 10.1.0.0/16 behind it, `tunB` with the B hosts 10.2.0.0/16), IPv4 forwarding, and an
//! nftables forward chain that is the same policy as the slow path's ACL and conntrack:
//!
//! ```text
//! ct state invalid drop
//! ct state established  -> accept, DSCP CS1        ct state related -> accept, DSCP CS2
//! from tunA: tcp dport {80, 443}, udp dport 53, icmp echo-request -> accept, DSCP CS3 (new)
//! everything else dropped
//! ```
//!
//! A packet written into one TUN comes out of the other if the kernel accepted it, with the
//! connection state it was given in its DSCP bits. After each packet a marker (UDP to port 9,
//! untracked, always forwarded) is written the same way: once the marker is out, the packet
//! would have been too. At the end, every TCP connection's final state in `conntrack -L` is
//! compared with the tracker's. `nf_conntrack_tcp_loose` is 0 in the namespace (only a SYN
//! opens a TCP connection, as in the tracker). Timeouts are not replayed (the kernel runs on
//! real time); tests/conntrack.rs checks them.
//!
//! Needs root or unprivileged user namespaces, `/dev/net/tun`, `nft`, `conntrack` and `ip`
//! (ci/setup installs nftables and conntrack). Without them the test says so and passes, unless
//! `FV_REQUIRE_NETNS=1` (CI) makes that a failure.

use etherparse::{IpNumber, Ipv4Header, PacketBuilder, TcpHeader, TcpOptionElement};
use fpga_virtio_flow::conntrack::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use fpga_virtio_flow::{
    packet, Acl, CtState, IpNet, Key, Limits, PortRange, Rule, SlowPath, TcpState, Verdict,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::time::Duration;

const SEED: u64 = 0x5eed_0017;
const SESSIONS: usize = 1000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}

/// One packet of a scenario: which side sends it, the IP packet, and what it is (for reports).
struct Pkt {
    session: usize,
    from_a: bool,
    ip: Vec<u8>,
    what: String,
}

/// Host `i` behind tunA (10.1.0.0/16, 2001:db8:1::/48) or tunB (10.2.0.0/16, 2001:db8:2::/48).
fn host(side_b: bool, i: u64, v6: bool) -> IpAddr {
    let net = if side_b { 2 } else { 1 };
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, net, 0, 0, 0, 0, i as u16 | 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            10,
            net as u8,
            (i >> 8) as u8,
            (i & 0xff) as u8 | 1,
        ))
    }
}

/// An IP header step of either family (the builder sets lengths and protocol).
fn ip_step(src: IpAddr, dst: IpAddr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ip(etherparse::IpHeaders::Ipv4(
            Ipv4Header::new(0, 64, IpNumber::TCP, s.octets(), d.octets()).unwrap(),
            Default::default(),
        )),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ip(etherparse::IpHeaders::Ipv6(
            etherparse::Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        )),
        _ => unreachable!("one family per session"),
    }
}

/// A TCP segment between `a` (port `ap`) and `b` (port `bp`).
#[allow(clippy::too_many_arguments)]
fn seg(
    from_a: bool,
    a: IpAddr,
    ap: u16,
    b: IpAddr,
    bp: u16,
    flags: &str,
    seq: u32,
    ack: u32,
    window: u16,
    payload: usize,
) -> Pkt {
    let (src, sp, dst, dp) = if from_a {
        (a, ap, b, bp)
    } else {
        (b, bp, a, ap)
    };
    let mut h = TcpHeader::new(sp, dp, seq, window);
    for f in flags.chars() {
        match f {
            'S' => h.syn = true,
            'A' => {
                h.ack = true;
                h.acknowledgment_number = ack;
            }
            'F' => h.fin = true,
            'R' => h.rst = true,
            'P' => h.psh = true,
            _ => unreachable!(),
        }
    }
    if h.syn {
        h.set_options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    }
    let mut ip = Vec::new();
    ip_step(src, dst)
        .tcp_header(h)
        .write(&mut ip, &vec![0x5a; payload])
        .unwrap();
    Pkt {
        session: 0,
        from_a,
        ip,
        what: format!(
            "{} {flags} seq={seq} ack={ack} len={payload}",
            if from_a { "A->B" } else { "B->A" }
        ),
    }
}

fn udp(from_a: bool, a: IpAddr, ap: u16, b: IpAddr, bp: u16) -> Pkt {
    let (src, sp, dst, dp) = if from_a {
        (a, ap, b, bp)
    } else {
        (b, bp, a, ap)
    };
    let mut ip = Vec::new();
    ip_step(src, dst)
        .udp(sp, dp)
        .write(&mut ip, b"datagram")
        .unwrap();
    Pkt {
        session: 0,
        from_a,
        ip,
        what: format!("{} udp {sp}->{dp}", if from_a { "A->B" } else { "B->A" }),
    }
}

fn echo(from_a: bool, a: IpAddr, b: IpAddr, id: u16, reply: bool) -> Pkt {
    let (src, dst) = if from_a { (a, b) } else { (b, a) };
    let mut ip = Vec::new();
    let step = ip_step(src, dst);
    match (a.is_ipv6(), reply) {
        (false, true) => step.icmpv4_echo_reply(id, 1).write(&mut ip, b"ping"),
        (false, false) => step.icmpv4_echo_request(id, 1).write(&mut ip, b"ping"),
        (true, true) => step.icmpv6_echo_reply(id, 1).write(&mut ip, b"ping"),
        (true, false) => step.icmpv6_echo_request(id, 1).write(&mut ip, b"ping"),
    }
    .unwrap();
    Pkt {
        session: 0,
        from_a,
        ip,
        what: format!(
            "{} echo {} id={id}",
            if from_a { "A->B" } else { "B->A" },
            if reply { "reply" } else { "request" }
        ),
    }
}

/// A port unreachable from `b` to `a` about the packet `about` (an A->B packet).
fn unreachable(a: IpAddr, b: IpAddr, about: &Pkt) -> Pkt {
    let mut ip = Vec::new();
    if a.is_ipv6() {
        ip_step(b, a)
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(&mut ip, &about.ip[..40 + 8])
            .unwrap();
    } else {
        let ihl = usize::from(about.ip[0] & 0xf) * 4;
        ip_step(b, a)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut ip, &about.ip[..ihl + 8])
            .unwrap();
    }
    Pkt {
        session: 0,
        from_a: false,
        ip,
        what: format!("B->A port unreachable about [{}]", about.what),
    }
}

/// One session's packets, in order.
fn session(rng: &mut Rng, i: usize) -> Vec<Pkt> {
    // Every third session over IPv6 (not drawn from the generator: the IPv4 sessions stay
    // what they were).
    let v6 = i % 3 == 2;
    let a = host(false, rng.below(40), v6);
    let b = host(true, rng.below(40), v6);
    let ap = 20000 + (i % 40000) as u16;
    let bp = [80, 443, 80, 22][rng.below(4) as usize];
    let (ia, ib) = (rng.u32(), rng.u32());
    let (a1, b1) = (ia.wrapping_add(1), ib.wrapping_add(1));
    let t = |from_a, flags: &str, seq: u32, ack: u32, len: usize| {
        seg(from_a, a, ap, b, bp, flags, seq, ack, 502, len)
    };
    let handshake = |v: &mut Vec<Pkt>| {
        v.push(seg(true, a, ap, b, bp, "S", ia, 0, 64240, 0));
        v.push(seg(false, a, ap, b, bp, "SA", ib, a1, 65160, 0));
        v.push(t(true, "A", a1, b1, 0));
    };
    // Data both ways: returns the next sequence of each side.
    let data = |v: &mut Vec<Pkt>, rng: &mut Rng, mut sa: u32, mut sb: u32, retrans: bool| {
        for _ in 0..1 + rng.below(6) {
            let n = 1 + rng.below(1400) as usize;
            v.push(t(true, "PA", sa, sb, n));
            if retrans && rng.below(3) == 0 {
                v.push(t(true, "PA", sa, sb, n)); // the same segment again
            }
            sa = sa.wrapping_add(n as u32);
            let m = rng.below(1400) as usize;
            v.push(t(false, if m > 0 { "PA" } else { "A" }, sb, sa, m));
            sb = sb.wrapping_add(m as u32);
            if m > 0 {
                v.push(t(true, "A", sa, sb, 0));
            }
        }
        (sa, sb)
    };
    let mut v = Vec::new();
    match rng.below(21) {
        // A full connection, closed by A or by B.
        0..=3 => {
            handshake(&mut v);
            let (sa, sb) = data(&mut v, rng, a1, b1, false);
            if rng.below(2) == 0 {
                v.push(t(true, "FA", sa, sb, 0));
                v.push(t(false, "A", sb, sa.wrapping_add(1), 0));
                v.push(t(false, "FA", sb, sa.wrapping_add(1), 0));
                v.push(t(true, "A", sa.wrapping_add(1), sb.wrapping_add(1), 0));
            } else {
                v.push(t(false, "FA", sb, sa, 0));
                v.push(t(true, "FA", sa, sb.wrapping_add(1), 0));
                v.push(t(false, "A", sb.wrapping_add(1), sa.wrapping_add(1), 0));
            }
        }
        // Reset mid-stream, by either side; then a late segment.
        4 | 5 => {
            handshake(&mut v);
            let (sa, sb) = data(&mut v, rng, a1, b1, false);
            if rng.below(2) == 0 {
                v.push(t(false, "R", sb, 0, 0));
            } else {
                v.push(t(true, "RA", sa, sb, 0));
            }
            v.push(t(true, "PA", sa, sb, 100));
        }
        // Half-open: the SYN retransmitted, never answered. Or refused with RST+ACK.
        6 => {
            v.push(seg(true, a, ap, b, bp, "S", ia, 0, 64240, 0));
            v.push(seg(true, a, ap, b, bp, "S", ia, 0, 64240, 0));
            if rng.below(2) == 0 {
                v.push(t(false, "RA", 0, a1, 0));
            }
        }
        // Retransmissions.
        7 => {
            handshake(&mut v);
            data(&mut v, rng, a1, b1, true);
        }
        // Out of window: far ahead, long before, acknowledging what was never sent; then on.
        8 | 9 => {
            handshake(&mut v);
            let (sa, sb) = data(&mut v, rng, a1, b1, false);
            match rng.below(4) {
                0 => v.push(t(true, "PA", sa.wrapping_add(5_000_000), sb, 100)),
                1 => v.push(t(true, "PA", sa.wrapping_sub(3_000_000), sb, 100)),
                2 => v.push(t(false, "A", sb, sa.wrapping_add(2_000_000), 0)),
                _ => v.push(t(false, "R", sb.wrapping_add(9_000_000), 0, 0)),
            }
            data(&mut v, rng, sa, sb, false);
        }
        // Unsolicited: a SYN-ACK, a mid-stream ACK, a SYN from B's side.
        10 => {
            v.push(t(false, "SA", ib, a1, 0));
            v.push(t(true, "A", a1, b1, 0));
            v.push(seg(false, a, ap, b, bp, "S", ib, 0, 64240, 0));
        }
        // UDP: a query and its answer; an unsolicited datagram from B; a port unreachable
        // about the query, and one about a datagram never sent.
        11 | 12 => {
            let q = udp(true, a, ap, b, 53);
            let never = udp(true, a, ap + 10_000, b, 53);
            v.push(q);
            v.push(udp(false, a, ap, b, 53));
            v.push(udp(true, a, ap, b, 53));
            v.push(udp(false, a, ap + 1, b, 5353));
            let err = unreachable(a, b, &v[0]);
            v.push(err);
            v.push(unreachable(a, b, &never));
        }
        // ICMP echo; an unsolicited reply.
        13 => {
            let id = 1000 + i as u16;
            v.push(echo(true, a, b, id, false));
            v.push(echo(false, a, b, id, true));
            v.push(echo(false, a, b, id + 5000, true));
        }
        // Simultaneous open.
        14 => {
            v.push(seg(true, a, ap, b, bp, "S", ia, 0, 64240, 0));
            v.push(seg(false, a, ap, b, bp, "S", ib, 0, 65160, 0));
            v.push(seg(true, a, ap, b, bp, "SA", ia, b1, 64240, 0));
            v.push(seg(false, a, ap, b, bp, "SA", ib, a1, 65160, 0));
            v.push(t(true, "A", a1, b1, 0));
            data(&mut v, rng, a1, b1, false);
        }
        // An RST inside the window but not at the next sequence; a retransmitted FIN; data
        // after a FIN.
        16 => {
            handshake(&mut v);
            let (sa, sb) = data(&mut v, rng, a1, b1, false);
            match rng.below(3) {
                0 => v.push(t(false, "R", sb.wrapping_add(300), 0, 0)),
                1 => {
                    v.push(t(true, "FA", sa, sb, 0));
                    v.push(t(true, "FA", sa, sb, 0));
                    v.push(t(false, "FA", sb, sa.wrapping_add(1), 0));
                    v.push(t(true, "A", sa.wrapping_add(1), sb.wrapping_add(1), 0));
                }
                _ => {
                    v.push(t(true, "FA", sa, sb, 0));
                    v.push(t(true, "PA", sa.wrapping_add(1), sb, 100));
                    v.push(t(false, "PA", sb, sa.wrapping_add(1), 100));
                }
            }
        }
        // A closed connection's ports used again: a new SYN in TIME_WAIT.
        17 => {
            handshake(&mut v);
            let (sa, sb) = data(&mut v, rng, a1, b1, false);
            v.push(t(true, "FA", sa, sb, 0));
            v.push(t(false, "FA", sb, sa.wrapping_add(1), 0));
            v.push(t(true, "A", sa.wrapping_add(1), sb.wrapping_add(1), 0));
            let ia2 = sa.wrapping_add(100_000);
            let ib2 = rng.u32();
            v.push(seg(true, a, ap, b, bp, "S", ia2, 0, 64240, 0));
            v.push(seg(
                false,
                a,
                ap,
                b,
                bp,
                "SA",
                ib2,
                ia2.wrapping_add(1),
                65160,
                0,
            ));
            v.push(t(true, "A", ia2.wrapping_add(1), ib2.wrapping_add(1), 0));
            data(&mut v, rng, ia2.wrapping_add(1), ib2.wrapping_add(1), false);
        }
        // Chaos: after the handshake, segments of any flags with sequence and acknowledgement
        // numbers near, inside, at the edge of and far outside the windows.
        18 => {
            handshake(&mut v);
            let (mut sa, mut sb) = data(&mut v, rng, a1, b1, false);
            for _ in 0..12 {
                let from_a = rng.below(2) == 0;
                let flags = ["A", "PA", "FA", "R", "RA", "S", "SA", "F", ""][rng.below(9) as usize];
                let off = |rng: &mut Rng| -> u32 {
                    match rng.below(6) {
                        0 => 0,
                        1 => rng.below(2000) as u32,
                        2 => (rng.below(2000) as u32).wrapping_neg(),
                        3 => 64256 + rng.below(3) as u32 - 1,
                        4 => (66_000 + rng.below(3) as u32 - 1).wrapping_neg(),
                        _ => rng.u32(),
                    }
                };
                let (seq, ack) = if from_a { (sa, sb) } else { (sb, sa) };
                let seq = seq.wrapping_add(off(rng));
                let ack = ack.wrapping_add(off(rng));
                let len = [0, 1, 100, 1400][rng.below(4) as usize];
                v.push(t(from_a, flags, seq, ack, len));
                if rng.below(2) == 0 {
                    // and the conversation goes on normally
                    let (x, y) = data(&mut v, rng, sa, sb, false);
                    sa = x;
                    sb = y;
                }
            }
        }
        // Chaos from the first SYN on: the handshake itself disturbed.
        19 => {
            v.push(seg(true, a, ap, b, bp, "S", ia, 0, 64240, 0));
            let (mut sa, mut sb) = (a1, b1);
            for k in 0..10 {
                let from_a = rng.below(2) == 0;
                let flags = ["A", "PA", "FA", "R", "RA", "S", "SA"][rng.below(7) as usize];
                let near = |rng: &mut Rng, x: u32| -> u32 {
                    match rng.below(4) {
                        0 => x,
                        1 => x.wrapping_sub(1),
                        2 => x.wrapping_add(rng.below(3000) as u32),
                        _ => rng.u32(),
                    }
                };
                let (seq, ack) = if from_a {
                    (near(rng, sa), near(rng, sb))
                } else {
                    (near(rng, sb), near(rng, sa))
                };
                let seq = if flags.starts_with('S') && rng.below(2) == 0 {
                    if from_a {
                        ia
                    } else {
                        ib
                    }
                } else {
                    seq
                };
                v.push(seg(from_a, a, ap, b, bp, flags, seq, ack, 64240, 0));
                if k == 4 {
                    // now the handshake, as it should be, in the middle of it
                    v.push(seg(false, a, ap, b, bp, "SA", ib, a1, 65160, 0));
                    v.push(t(true, "A", a1, b1, 0));
                    let (x, y) = data(&mut v, rng, a1, b1, false);
                    sa = x;
                    sb = y;
                }
            }
        }
        // A reply lost: the SYN-ACK retransmitted, then the handshake completes.
        _ => {
            v.push(seg(true, a, ap, b, bp, "S", ia, 0, 64240, 0));
            v.push(seg(false, a, ap, b, bp, "SA", ib, a1, 65160, 0));
            v.push(seg(false, a, ap, b, bp, "SA", ib, a1, 65160, 0));
            v.push(t(true, "A", a1, b1, 0));
            data(&mut v, rng, a1, b1, false);
        }
    }
    v
}

/// The sessions' packets interleaved (each session's own order kept).
fn scenario() -> Vec<Pkt> {
    // Another seed (and more sessions) for a longer search: FV_ORACLE_SEED, FV_ORACLE_SESSIONS.
    let seed = std::env::var("FV_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let sessions_n = std::env::var("FV_ORACLE_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SESSIONS);
    let mut rng = Rng(seed | 1);
    let mut sessions: Vec<std::collections::VecDeque<Pkt>> = (0..sessions_n)
        .map(|i| session(&mut rng, i).into())
        .collect();
    let mut out = Vec::new();
    let mut live: Vec<usize> = Vec::new();
    let mut next = 0;
    while next < sessions.len() || !live.is_empty() {
        // Up to 8 sessions at a time.
        while live.len() < 8 && next < sessions.len() {
            live.push(next);
            next += 1;
        }
        let k = rng.below(live.len() as u64) as usize;
        let s = live[k];
        let mut p = sessions[s].pop_front().expect("live sessions have packets");
        p.session = s;
        out.push(p);
        if sessions[s].is_empty() {
            live.swap_remove(k);
        }
    }
    out
}

/// The slow path's policy: the nft chain's, as ACL rules.
fn slow_path() -> SlowPath {
    let mut rules = Vec::new();
    for (a_side, icmp) in [
        (IpNet::V4(Ipv4Addr::new(10, 1, 0, 0), 16), PROTO_ICMP),
        (
            IpNet::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 48),
            PROTO_ICMPV6,
        ),
    ] {
        let allow = |proto: u8, port: Option<u16>| Rule {
            src: Some(a_side),
            proto: Some(proto),
            dst_ports: port.map_or(PortRange::ANY, PortRange::one),
            ..Rule::any(10, Verdict::Allow)
        };
        rules.extend([
            allow(PROTO_TCP, Some(80)),
            allow(PROTO_TCP, Some(443)),
            allow(PROTO_UDP, Some(53)),
            allow(icmp, None),
        ]);
    }
    let mut acl = Acl::new();
    acl.set(0, rules, Verdict::Deny).unwrap();
    let mut sp = SlowPath::new(Limits::default());
    sp.acl = acl;
    sp
}

fn frame(ip: &[u8]) -> Vec<u8> {
    let ethertype: u16 = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

const RULES: &str = r#"
table inet oracle {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    udp dport 9 notrack
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    udp dport 9 accept
    ct state invalid drop
    ct state established meta nfproto ipv4 ip dscp set cs1 accept
    ct state established meta nfproto ipv6 ip6 dscp set cs1 accept
    ct state related meta nfproto ipv4 ip dscp set cs2 accept
    ct state related meta nfproto ipv6 ip6 dscp set cs2 accept
    iifname "tunA" ip saddr 10.1.0.0/16 tcp dport { 80, 443 } ip dscp set cs3 accept
    iifname "tunA" ip saddr 10.1.0.0/16 udp dport 53 ip dscp set cs3 accept
    iifname "tunA" ip saddr 10.1.0.0/16 ip protocol icmp ip dscp set cs3 accept
    iifname "tunA" ip6 saddr 2001:db8:1::/48 tcp dport { 80, 443 } ip6 dscp set cs3 accept
    iifname "tunA" ip6 saddr 2001:db8:1::/48 udp dport 53 ip6 dscp set cs3 accept
    iifname "tunA" ip6 saddr 2001:db8:1::/48 meta l4proto ipv6-icmp ip6 dscp set cs3 accept
  }
}
"#;

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sysctl(path: &str, value: &str) {
    std::fs::write(format!("/proc/sys/{path}"), value)
        .unwrap_or_else(|e| panic!("/proc/sys/{path}: {e}"));
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn kernel_oracle() {
    if std::env::var_os("FV_IN_NETNS").is_some() {
        replay();
        return;
    }
    let required = std::env::var_os("FV_REQUIRE_NETNS").is_some();
    let missing: Vec<&str> = ["unshare", "ip", "nft", "conntrack"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() || !std::path::Path::new("/dev/net/tun").exists() {
        let why = format!("missing {missing:?} or /dev/net/tun");
        assert!(!required, "kernel oracle: {why} (ci/setup installs them)");
        eprintln!("kernel oracle skipped: {why}");
        return;
    }
    // This test again, alone, in a network namespace of its own (and a user namespace that
    // makes us root there, if we are not).
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
        .unwrap_or(false);
    let mut cmd = Command::new("unshare");
    cmd.arg("--net");
    if !root {
        cmd.arg("--map-root-user");
    }
    let status = cmd
        .arg(std::env::current_exe().unwrap())
        .args([
            "kernel_oracle",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FV_IN_NETNS", "1")
        .status()
        .unwrap();
    if !status.success() && !required {
        // A machine that refuses namespaces (or nftables in one) cannot run the oracle; in CI
        // it must.
        eprintln!("kernel oracle: the run in a namespace failed ({status}); set FV_REQUIRE_NETNS=1 to make this an error");
        return;
    }
    assert!(status.success(), "kernel oracle failed: {status}");
}

fn tun(name: &str, addr: [u8; 4]) -> tun::Device {
    let mut cfg = tun::Configuration::default();
    cfg.tun_name(name)
        .address(Ipv4Addr::from(addr))
        .netmask((255, 255, 0, 0))
        .mtu(1500)
        .up();
    tun::create(&cfg).unwrap_or_else(|e| panic!("creating {name}: {e}"))
}

/// The kernel's state name of a tracker state.
fn linux_name(s: TcpState) -> &'static str {
    match s {
        TcpState::SynSent => "SYN_SENT",
        TcpState::SynSent2 => "SYN_SENT2",
        TcpState::SynRecv => "SYN_RECV",
        TcpState::Established => "ESTABLISHED",
        TcpState::FinWait => "FIN_WAIT",
        TcpState::CloseWait => "CLOSE_WAIT",
        TcpState::LastAck => "LAST_ACK",
        TcpState::TimeWait => "TIME_WAIT",
        TcpState::Close => "CLOSE",
    }
}

fn replay() {
    sysctl("net/ipv4/ip_forward", "1");
    sysctl("net/ipv4/conf/all/rp_filter", "0");
    sysctl("net/ipv4/conf/default/rp_filter", "0");
    let ta = tun("tunA", [10, 1, 255, 254]);
    let tb = tun("tunB", [10, 2, 255, 254]);
    for d in ["tunA", "tunB"] {
        sysctl(&format!("net/ipv4/conf/{d}/rp_filter"), "0");
    }
    run("ip", &["link", "set", "lo", "up"]);
    sysctl("net/ipv6/conf/all/forwarding", "1");
    for (d, a) in [
        ("tunA", "2001:db8:1::fffe/48"),
        ("tunB", "2001:db8:2::fffe/48"),
    ] {
        run("ip", &["-6", "addr", "add", a, "dev", d, "nodad"]);
    }
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    nft.stdin
        .take()
        .unwrap()
        .write_all(RULES.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success(), "nft rejected the ruleset");
    // nf_conntrack is loaded by the rules' `ct` expressions; its knobs exist from then on.
    sysctl("net/netfilter/nf_conntrack_tcp_loose", "0");
    sysctl("net/netfilter/nf_conntrack_tcp_be_liberal", "0");

    let mut pkts = scenario();
    let show_kernel = std::env::var("FV_ORACLE_KERNEL_SESSION").ok();
    if let Some(only) = &show_kernel {
        let only: usize = only.parse().unwrap();
        pkts.retain(|p| p.session == only);
    }
    if let Ok(only) = std::env::var("FV_ORACLE_REPLAY_SESSION") {
        // Our side alone, one session alone (debugging a difference).
        let only: usize = only.parse().unwrap();
        let mut sp = slow_path();
        for (n, p) in pkts.iter().enumerate().filter(|(_, p)| p.session == only) {
            let parsed = packet::from_frame(0, &frame(&p.ip)).unwrap();
            let d = sp.decide(&parsed, n as u64);
            eprintln!(
                "{n} [{}] {parsed:?}\n   -> {d:?} {:?}",
                p.what,
                d.conn.and_then(|c| sp.conntrack.tcp_state(c))
            );
        }
        return;
    }
    let mut sp = slow_path();
    let mut buf = vec![0u8; 2048];
    let mut marker = Vec::new();
    let mut diffs = Vec::new();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut trace: Vec<String> = Vec::new();
    let mut passed_v6 = 0;
    for (n, p) in pkts.iter().enumerate() {
        let (tx, rx) = if p.from_a { (&ta, &tb) } else { (&tb, &ta) };
        // Kernel: the packet, then the marker.
        let (src, dst) = if p.from_a {
            ([10, 1, 255, 1], [10, 2, 255, 1])
        } else {
            ([10, 2, 255, 1], [10, 1, 255, 1])
        };
        marker.clear();
        PacketBuilder::ipv4(src, dst, 64)
            .udp(9, 9)
            .write(&mut marker, &(n as u32).to_be_bytes())
            .unwrap();
        tx.send(&p.ip).unwrap();
        tx.send(&marker).unwrap();
        let mut kernel: Option<CtState> = None;
        loop {
            let len = rx
                .recv_timeout(&mut buf, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("packet {n}: the marker did not come out: {e}"));
            let got = &buf[..len];
            let dscp = match got.first().map(|b| b >> 4) {
                Some(4) => {
                    let h = Ipv4Header::from_slice(got).unwrap().0;
                    if h.protocol == IpNumber::UDP && got[20..24] == [0, 9, 0, 9] {
                        if got[28..32] == (n as u32).to_be_bytes() {
                            break;
                        }
                        continue; // an earlier marker
                    }
                    if p.ip[0] >> 4 != 4 || got[12..20] != p.ip[12..20] {
                        continue;
                    }
                    h.dscp.value()
                }
                Some(6) if got.len() >= 40 => {
                    // Ours only (the interfaces' own IPv6 chatter is link-local).
                    if p.ip[0] >> 4 != 6 || got[8..40] != p.ip[8..40] {
                        continue;
                    }
                    ((got[0] & 0x0f) << 2) | (got[1] >> 6)
                }
                _ => continue,
            };
            kernel = Some(match dscp {
                8 => CtState::Established,
                16 => CtState::Related,
                24 => CtState::New,
                x => panic!("packet {n} came out with DSCP {x}"),
            });
        }
        if show_kernel.is_some() {
            let l = Command::new("conntrack")
                .args(["-L", "-p", "tcp"])
                .output()
                .unwrap();
            eprintln!(
                "{n} [{}]: kernel {kernel:?}\n   {}",
                p.what,
                String::from_utf8_lossy(&l.stdout).trim()
            );
        }
        // The slow path, on the same packet.
        let parsed = packet::from_frame(0, &frame(&p.ip)).unwrap();
        let d = sp.decide(&parsed, n as u64);
        let ours = d.accept.then_some(d.state);
        if kernel.is_some() && p.ip[0] >> 4 == 6 {
            passed_v6 += 1;
        }
        *count
            .entry(match kernel {
                Some(CtState::New) => "new",
                Some(CtState::Established) => "established",
                Some(CtState::Related) => "related",
                _ => "dropped",
            })
            .or_default() += 1;
        let st = d
            .conn
            .and_then(|c| sp.conntrack.tcp_state(c))
            .map_or("-", linux_name);
        trace.push(format!(
            "  {n} [{}]: kernel {kernel:?}, slow path {ours:?} {:?} -> {st}",
            p.what, d.reject
        ));
        if ours != kernel {
            diffs.push(format!(
                "packet {n} [{}]: kernel {kernel:?}, slow path {ours:?} ({:?})",
                p.what, d.reject
            ));
        }
    }

    // Final states of the TCP connections, both families.
    let mut listing = String::new();
    for family in ["ipv4", "ipv6"] {
        let out = Command::new("conntrack")
            .args(["-L", "-p", "tcp", "-f", family])
            .output()
            .unwrap();
        assert!(out.status.success(), "conntrack -L -f {family}");
        listing.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let mut kernel_states = BTreeMap::new();
    for line in listing.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let field = |k: &str| {
            w.iter()
                .find_map(|x| x.strip_prefix(k))
                .unwrap_or_else(|| panic!("{k} in {line}"))
        };
        let key = Key {
            zone: 0,
            proto: PROTO_TCP,
            src: field("src=").parse::<IpAddr>().unwrap(),
            dst: field("dst=").parse::<IpAddr>().unwrap(),
            sport: field("sport=").parse().unwrap(),
            dport: field("dport=").parse().unwrap(),
        };
        kernel_states.insert(key, w[3].to_string());
    }
    let mut ours_states = BTreeMap::new();
    for p in &pkts {
        let Ok(parsed) = packet::from_frame(0, &frame(&p.ip)) else {
            continue;
        };
        if parsed.proto != PROTO_TCP {
            continue;
        }
        let t = packet::tuple(&parsed);
        let key = Key {
            zone: 0,
            proto: PROTO_TCP,
            src: t.src,
            dst: t.dst,
            sport: t.src_port,
            dport: t.dst_port,
        };
        if let Some((id, fpga_virtio_flow::Dir::Orig)) = sp.conntrack.lookup(&key) {
            if let Some(s) = sp.conntrack.tcp_state(id) {
                ours_states.insert(key, linux_name(s).to_string());
            }
        }
    }
    for (k, s) in &kernel_states {
        let o = ours_states.get(k);
        if o != Some(s) {
            diffs.push(format!("connection {k:?}: kernel {s}, slow path {o:?}"));
        }
    }
    for (k, o) in &ours_states {
        if !kernel_states.contains_key(k) {
            diffs.push(format!("connection {k:?}: kernel none, slow path {o}"));
        }
    }
    eprintln!(
        "kernel oracle: {} packets ({count:?}; {passed_v6} IPv6 packets passed), {} TCP connections at the end, {} differences",
        pkts.len(),
        kernel_states.len(),
        diffs.len()
    );
    if show_kernel.is_none() {
        assert!(
            passed_v6 > 1000,
            "IPv6 through the kernel: {passed_v6} packets"
        );
    }
    if !diffs.is_empty() {
        // The whole story of the first sessions that differ.
        let mut shown = Vec::new();
        for line in &diffs {
            let Some(n) = line
                .strip_prefix("packet ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let s = pkts[n].session;
            if shown.contains(&s) || shown.len() == 3 {
                continue;
            }
            shown.push(s);
            eprintln!("session {s}:");
            for (i, p) in pkts.iter().enumerate() {
                if p.session == s {
                    eprintln!("{}", trace[i]);
                }
            }
        }
    }
    assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));
}
