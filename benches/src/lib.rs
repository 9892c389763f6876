//! Criterion benches live in benches/benches.

use fpga_virtio_flow::acl::{IpNet, PortRange, Rule, Verdict};
use std::net::{Ipv4Addr, Ipv6Addr};

/// An operator's ACL of `n` rules (fpga-virtio-flow benches): TCP services (one port of a
/// /24), subnet pairs, UDP port ranges of hosts, IPv6 /64s; priorities and verdicts mixed.
pub fn acl_rules(n: usize) -> Vec<Rule> {
    let mut out = Vec::with_capacity(n);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let r = next();
        let verdict = if r % 3 == 0 {
            Verdict::Deny
        } else {
            Verdict::Allow
        };
        let priority = (r >> 8) as u32 % 1000;
        let rule = match i % 4 {
            // A service: TCP to one port of a /24.
            0 => Rule {
                dst: Some(IpNet::V4(
                    Ipv4Addr::from(0x0a00_0000 | ((r >> 16) as u32 & 0xff_ff00)),
                    24,
                )),
                proto: Some(6),
                dst_ports: PortRange::one(1000 + (i as u16 % 30000)),
                ..Rule::any(priority, verdict)
            },
            // A subnet pair.
            1 => Rule {
                src: Some(IpNet::V4(
                    Ipv4Addr::from(0xac10_0000 | ((r >> 20) as u32 & 0xffff) << 8),
                    24,
                )),
                dst: Some(IpNet::V4(
                    Ipv4Addr::from(0x0a00_0000 | ((r >> 24) as u32 & 0xffff) << 8),
                    16,
                )),
                ..Rule::any(priority, verdict)
            },
            // A port range of a host.
            2 => Rule {
                dst: Some(IpNet::V4(
                    Ipv4Addr::from(0x0a00_0000 | (r >> 32) as u32 & 0xff_ffff),
                    32,
                )),
                proto: Some(17),
                dst_ports: PortRange {
                    lo: 20000,
                    hi: 20000 + (r as u16 % 5000),
                },
                ..Rule::any(priority, verdict)
            },
            // IPv6 /64s.
            _ => Rule {
                src: Some(IpNet::V6(
                    Ipv6Addr::from((0x2001_0db8_u128 << 96) | (u128::from(r >> 40) << 64)),
                    64,
                )),
                ..Rule::any(priority, verdict)
            },
        };
        out.push(rule);
    }
    out
}
