//! The compiled classifier against the rules themselves: seeded random rule sets (prefixes of
//! both families around a few networks, protocols, port ranges and single ports, priorities with
//! ties) and packets drawn near them; every packet's verdict and deciding rule must be those of
//! a scan of every rule in order (`Rule::matches`, the best priority, the first among equals).

use fpga_virtio_flow::acl::{Classifier, IpNet, PortRange, Rule, Tuple, Verdict};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NETS4: [u32; 4] = [0x0a00_0000, 0x0a01_0000, 0xc0a8_0100, 0x6440_0000];

fn addr4(rng: &mut Rng) -> u32 {
    NETS4[rng.below(4) as usize] | (rng.below(1 << 12) as u32)
}

fn addr6(rng: &mut Rng) -> u128 {
    let net: u128 = if rng.chance(50) {
        0x2001_0db8 << 96
    } else {
        0xfd00_0000_0000_0001 << 64
    };
    net | u128::from(rng.below(1 << 12))
}

fn port(rng: &mut Rng) -> u16 {
    [22, 53, 80, 443, 1024, 8080, 40000][rng.below(7) as usize] + rng.below(3) as u16
}

fn range(rng: &mut Rng) -> PortRange {
    match rng.below(4) {
        0 | 1 => PortRange::ANY,
        2 => PortRange::one(port(rng)),
        _ => {
            let lo = port(rng);
            PortRange {
                lo,
                hi: lo.saturating_add(rng.below(2000) as u16),
            }
        }
    }
}

/// A rule; `any_len`: prefix lengths anywhere in 0..=32 / 0..=128 (else the usual ones).
fn rule(rng: &mut Rng, any_len: bool) -> Rule {
    let v6 = rng.chance(30);
    let net = |rng: &mut Rng| -> Option<IpNet> {
        if rng.chance(30) {
            return None;
        }
        Some(if v6 {
            let len = if any_len {
                rng.below(129)
            } else {
                [32, 48, 64, 128][rng.below(4) as usize]
            };
            IpNet::V6(Ipv6Addr::from(addr6(rng)), len as u8)
        } else {
            let len = if any_len {
                rng.below(33)
            } else {
                [8, 16, 24, 32][rng.below(4) as usize]
            };
            IpNet::V4(Ipv4Addr::from(addr4(rng)), len as u8)
        })
    };
    let src = net(rng);
    let dst = net(rng);
    let proto = [None, Some(6), Some(17), Some(1)][rng.below(4) as usize];
    let (src_ports, dst_ports) = if proto == Some(1) || rng.chance(40) {
        (PortRange::ANY, PortRange::ANY)
    } else {
        (
            if rng.chance(20) {
                range(rng)
            } else {
                PortRange::ANY
            },
            range(rng),
        )
    };
    Rule {
        priority: rng.below(50) as u32,
        src,
        dst,
        proto,
        src_ports,
        dst_ports,
        verdict: if rng.chance(50) {
            Verdict::Allow
        } else {
            Verdict::Deny
        },
    }
}

fn tuple(rng: &mut Rng) -> Tuple {
    let (src, dst) = if rng.chance(30) {
        (
            IpAddr::V6(Ipv6Addr::from(addr6(rng))),
            IpAddr::V6(Ipv6Addr::from(addr6(rng))),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(addr4(rng))),
            IpAddr::V4(Ipv4Addr::from(addr4(rng))),
        )
    };
    Tuple {
        src,
        dst,
        proto: [6, 17, 1, 58][rng.below(4) as usize],
        src_port: port(rng),
        dst_port: if rng.chance(20) {
            rng.next() as u16
        } else {
            port(rng)
        },
    }
}

fn reference(rules: &[Rule], default: Verdict, t: &Tuple) -> (Verdict, Option<usize>) {
    let mut best: Option<usize> = None;
    for (i, r) in rules.iter().enumerate() {
        if r.matches(t) && best.is_none_or(|b| r.priority > rules[b].priority) {
            best = Some(i);
        }
    }
    match best {
        Some(i) => (rules[i].verdict, Some(i)),
        None => (default, None),
    }
}

#[test]
fn classifier_equals_a_scan_of_every_rule() {
    for seed in 1..=16u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let n = [10, 100, 1000, 3000][(seed % 4) as usize];
        let any_len = seed > 8;
        let rules: Vec<Rule> = (0..n).map(|_| rule(&mut rng, any_len)).collect();
        let default = if seed % 2 == 0 {
            Verdict::Deny
        } else {
            Verdict::Allow
        };
        let c = Classifier::new(rules.clone(), default).expect("rules compile");
        let mut matched = 0;
        for _ in 0..5000 {
            let t = tuple(&mut rng);
            let want = reference(&rules, default, &t);
            assert_eq!(c.classify(&t), want, "seed {seed}, {n} rules, {t:?}");
            matched += usize::from(want.1.is_some());
        }
        assert!(
            matched > 500,
            "seed {seed}: the packets exercise the rules ({matched} matched)"
        );
        // Rules of the usual prefix lengths share tables: far fewer tables than rules. (With
        // arbitrary lengths the number of shapes grows: tuple space search's known cost.)
        if !any_len && n >= 1000 {
            assert!(
                c.tables() * 4 < n,
                "seed {seed}: {} tables for {n} rules",
                c.tables()
            );
        }
    }
}
