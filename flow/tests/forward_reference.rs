//! Forwarding state against references: routes by longest prefix against a scan of every
//! route (seeded route sets, both families, overlapping prefixes, replaced and removed
//! routes), and VxLAN frames against tshark, an independent dissector (the VNI, the inner
//! frame, and every IP and UDP checksum of both layers).

use etherparse::PacketBuilder;
use fpga_virtio_flow::forward::{lpm_scan, Egress, Forwarding, Tunnel};
use fpga_virtio_flow::{vxlan, IpNet};
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
}

#[test]
fn longest_prefix_against_a_scan() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut f = Forwarding::new();
        let mut routes: Vec<(IpNet, Egress)> = Vec::new();
        let n = 10 + rng.below(2000);
        // Addresses near each other so that prefixes overlap.
        let base4 = 0x0a00_0000u32;
        let base6 = 0x2001_0db8u128 << 96;
        for _ in 0..n {
            let egress = match rng.below(4) {
                0 => Egress::Vport(rng.below(64) as u16),
                1 => Egress::Uplink,
                2 => Egress::Tunnel(rng.below(8) as u16),
                _ => Egress::Drop,
            };
            let net = if rng.below(3) > 0 {
                let len = [0, 8, 16, 20, 24, 28, 30, 32][rng.below(8) as usize];
                IpNet::V4(
                    Ipv4Addr::from(base4 | (rng.next() as u32 & 0x00ff_ffff)),
                    len,
                )
            } else {
                let len = [0, 32, 48, 56, 64, 96, 127, 128][rng.below(8) as usize];
                IpNet::V6(Ipv6Addr::from(base6 | u128::from(rng.next() as u32)), len)
            };
            f.add_route(3, net, egress).unwrap();
            routes.push((net, egress));
            // Now and then a route goes again.
            if rng.below(10) == 0 {
                let i = rng.below(routes.len() as u64) as usize;
                let (gone, _) = routes[i];
                f.remove_route(3, gone);
                let same = |a: &IpNet, b: &IpNet| match (a, b) {
                    (IpNet::V4(x, l), IpNet::V4(y, m)) => {
                        l == m && (*l == 0 || (u32::from(*x) ^ u32::from(*y)) >> (32 - l) == 0)
                    }
                    (IpNet::V6(x, l), IpNet::V6(y, m)) => {
                        l == m && (*l == 0 || (u128::from(*x) ^ u128::from(*y)) >> (128 - l) == 0)
                    }
                    _ => false,
                };
                routes.retain(|(r, _)| !same(r, &gone));
            }
        }
        for _ in 0..5000 {
            let addr = if rng.below(3) > 0 {
                IpAddr::V4(Ipv4Addr::from(base4 | (rng.next() as u32 & 0x00ff_ffff)))
            } else {
                IpAddr::V6(Ipv6Addr::from(base6 | u128::from(rng.next() as u32)))
            };
            assert_eq!(
                f.route(3, addr),
                lpm_scan(&routes, addr),
                "seed {seed}: {addr} with {} routes",
                routes.len()
            );
        }
    }
}

#[test]
fn vxlan_frames_as_tshark_reads_them() {
    let mut rng = Rng(0xfeed);
    let mut frames = Vec::new();
    let mut expect = Vec::new();
    for k in 0..200u32 {
        let v6 = k % 2 == 1;
        let t = Tunnel {
            vni: rng.below(1 << 24) as u32,
            local: if v6 {
                "2001:db8::1".parse().unwrap()
            } else {
                "192.0.2.1".parse().unwrap()
            },
            remote: if v6 {
                "2001:db8::2".parse().unwrap()
            } else {
                "192.0.2.2".parse().unwrap()
            },
            local_mac: [2, 0, 0, 0, 0, 1],
            next_hop_mac: [2, 0, 0, 0, 0, 2],
            port: 4789,
            ttl: 64,
        };
        let payload: Vec<u8> = (0..rng.below(1400)).map(|i| i as u8).collect();
        let mut inner = Vec::new();
        let b = PacketBuilder::ethernet2([2, 9, 9, 9, 9, 1], [2, 9, 9, 9, 9, 2]).ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            64,
        );
        if k % 3 == 0 {
            b.udp(5000, 53).write(&mut inner, &payload).unwrap();
        } else {
            b.tcp(40000, 80, k, 1000)
                .write(&mut inner, &payload)
                .unwrap();
        }
        let mut out = Vec::new();
        vxlan::encap(&t, &inner, rng.next() as u32, &mut out).unwrap();
        let d = vxlan::decap(&out, 4789).unwrap();
        assert_eq!((d.vni, d.inner), (t.vni, &inner[..]));
        expect.push(t.vni);
        frames.push(fpga_virtio_wire::Frame {
            bytes: out,
            cycle: u64::from(k) * 1000,
            source: fpga_virtio_wire::Source::Cpu { func: 0 },
        });
    }
    let pcap = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vxlan.pcap");
    fpga_virtio_wire::write_pcap(std::fs::File::create(&pcap).unwrap(), &frames).unwrap();
    let Some(text) = fpga_virtio_wire::tshark_fields(
        &pcap,
        &["-d", "udp.port==4789,vxlan"],
        &[
            "vxlan.vni",
            "ip.checksum.status",
            "udp.checksum.status",
            "tcp.checksum.status",
        ],
    ) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expect.len(), "{text}");
    let mut good = 0;
    for (line, vni) in lines.iter().zip(&expect) {
        let f: Vec<&str> = line.split(';').collect();
        assert_eq!(f[0], vni.to_string(), "VNI in {line}");
        // Checksum status: 1 good, 0 bad, 2 unverified; outer and inner IP and UDP fields
        // come comma-separated.
        for v in f[1..].iter().flat_map(|x| x.split(',')) {
            assert_ne!(v.trim(), "0", "a bad checksum: {line}");
            good += usize::from(v.trim() == "1");
        }
    }
    assert!(good >= 400, "tshark verified {good} checksums");
}
