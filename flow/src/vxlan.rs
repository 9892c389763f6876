//! VxLAN (RFC 7348): the reference for the FPGA's encapsulation and decapsulation.
//!
//! Encapsulation wraps an inner Ethernet frame in outer Ethernet, IPv4 or IPv6, UDP and the
//! 8-byte VxLAN header (flags with the I bit, the 24-bit VNI), from a [`Tunnel`]: lengths and
//! the IPv4 header checksum computed, the UDP checksum computed too (RFC 7348 allows zero over
//! IPv4; IPv6 needs it), the outer IPv4 header with DF set and TTL from the tunnel, and the UDP
//! source port from the inner flow's hash in the dynamic range 49152–65535, so that the
//! underlay's ECMP spreads flows and keeps each one on one path. Decapsulation checks every
//! layer and gives the VNI, the outer source (the remote VTEP) and the inner frame.

use crate::forward::Tunnel;
use etherparse::{
    IpNumber, Ipv4Header, Ipv6Header, LinkSlice, NetSlice, SlicedPacket, TransportSlice, UdpHeader,
};
use std::net::IpAddr;

/// The VxLAN header's length.
pub const HEADER: usize = 8;
/// The I flag: the VNI is valid.
const FLAG_I: u8 = 0x08;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VxlanError {
    #[error("not Ethernet / IP / UDP: {0}")]
    Outer(String),
    #[error("UDP port {0} is not the tunnel's")]
    Port(u16),
    #[error("shorter than the VxLAN header")]
    Short,
    #[error("VxLAN flags {0:#04x} without the I bit")]
    Flags(u8),
    #[error("inner frame too big for the outer packet ({0} bytes)")]
    TooBig(usize),
}

/// The UDP source port of a flow (RFC 7348 section 5: from a hash of the inner headers, in the
/// dynamic range).
pub fn source_port(flow_hash: u32) -> u16 {
    49152 | (flow_hash ^ (flow_hash >> 16)) as u16 & 0x3fff
}

/// `inner` (an Ethernet frame) in the tunnel's headers, appended to `out`.
pub fn encap(
    t: &Tunnel,
    inner: &[u8],
    flow_hash: u32,
    out: &mut Vec<u8>,
) -> Result<(), VxlanError> {
    let mut vx = [0u8; HEADER];
    vx[0] = FLAG_I;
    vx[4..7].copy_from_slice(&t.vni.to_be_bytes()[1..]);
    let udp_len = 8 + HEADER + inner.len();
    // The outer IP packet must fit its 16-bit length (IPv4 counts its 20-byte header too).
    if udp_len + 20 > usize::from(u16::MAX) {
        return Err(VxlanError::TooBig(inner.len()));
    }
    let udp_len16 = udp_len as u16;
    let sport = source_port(flow_hash);
    out.extend_from_slice(&t.next_hop_mac);
    out.extend_from_slice(&t.local_mac);
    let mut payload = Vec::with_capacity(HEADER + inner.len());
    payload.extend_from_slice(&vx);
    payload.extend_from_slice(inner);
    match (t.local, t.remote) {
        (IpAddr::V4(l), IpAddr::V4(r)) => {
            out.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = Ipv4Header::new(udp_len16, t.ttl, IpNumber::UDP, l.octets(), r.octets())
                .map_err(|_| VxlanError::TooBig(inner.len()))?;
            ip.dont_fragment = true;
            let udp = UdpHeader::with_ipv4_checksum(sport, t.port, &ip, &payload)
                .map_err(|_| VxlanError::TooBig(inner.len()))?;
            ip.header_checksum = ip.calc_header_checksum();
            ip.write(out).expect("a Vec takes it");
            udp.write(out).expect("a Vec takes it");
        }
        (IpAddr::V6(l), IpAddr::V6(r)) => {
            out.extend_from_slice(&0x86ddu16.to_be_bytes());
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: udp_len16,
                next_header: IpNumber::UDP,
                hop_limit: t.ttl,
                source: l.octets(),
                destination: r.octets(),
            };
            let udp = UdpHeader::with_ipv6_checksum(sport, t.port, &ip, &payload)
                .map_err(|_| VxlanError::TooBig(inner.len()))?;
            ip.write(out).expect("a Vec takes it");
            udp.write(out).expect("a Vec takes it");
        }
        _ => {
            return Err(VxlanError::Outer(
                "the tunnel's VTEPs are of two families".into(),
            ))
        }
    }
    out.extend_from_slice(&payload);
    Ok(())
}

/// A decapsulated packet.
#[derive(Debug, PartialEq, Eq)]
pub struct Decapped<'a> {
    pub vni: u32,
    /// The outer source: the remote VTEP.
    pub remote: IpAddr,
    pub inner: &'a [u8],
}

/// Takes a VxLAN packet (an Ethernet frame to UDP port `port`) apart.
pub fn decap(frame: &[u8], port: u16) -> Result<Decapped<'_>, VxlanError> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| VxlanError::Outer(e.to_string()))?;
    if !matches!(p.link, Some(LinkSlice::Ethernet2(_))) {
        return Err(VxlanError::Outer("no Ethernet II header".into()));
    }
    let remote = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            if ip.payload().fragmented {
                return Err(VxlanError::Outer("a fragment".into()));
            }
            IpAddr::V4(ip.header().source_addr())
        }
        Some(NetSlice::Ipv6(ip)) => IpAddr::V6(ip.header().source_addr()),
        _ => return Err(VxlanError::Outer("not IP".into())),
    };
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        return Err(VxlanError::Outer("not UDP".into()));
    };
    if u.destination_port() != port {
        return Err(VxlanError::Port(u.destination_port()));
    }
    let body = u.payload();
    if body.len() < HEADER {
        return Err(VxlanError::Short);
    }
    if body[0] & FLAG_I == 0 {
        return Err(VxlanError::Flags(body[0]));
    }
    Ok(Decapped {
        vni: u32::from_be_bytes([0, body[4], body[5], body[6]]),
        remote,
        inner: &body[HEADER..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tunnel(v6: bool) -> Tunnel {
        Tunnel {
            vni: 0x12_3456,
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
        }
    }

    fn inner() -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 1, 1, 1, 1, 1], [2, 2, 2, 2, 2, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1, 1000)
            .write(&mut f, b"inner payload")
            .unwrap();
        f
    }

    #[test]
    fn encap_then_decap_both_families() {
        for v6 in [false, true] {
            let t = tunnel(v6);
            let mut out = Vec::new();
            encap(&t, &inner(), 0xdead_beef, &mut out).unwrap();
            let overhead = 14 + if v6 { 40 } else { 20 } + 8 + 8;
            assert_eq!(out.len(), inner().len() + overhead);
            let d = decap(&out, 4789).unwrap();
            assert_eq!(
                (d.vni, d.remote, d.inner),
                (0x12_3456, t.local, &inner()[..])
            );
            // The outer headers as etherparse reads them: checksums right, DF, TTL, ports.
            let p = SlicedPacket::from_ethernet(&out).unwrap();
            let Some(TransportSlice::Udp(u)) = &p.transport else {
                panic!()
            };
            assert_eq!(u.source_port(), source_port(0xdead_beef));
            assert!(u.source_port() >= 49152);
            match &p.net {
                Some(NetSlice::Ipv4(ip)) => {
                    let h = ip.header().to_header();
                    assert_eq!(h.header_checksum, h.calc_header_checksum());
                    assert!(h.dont_fragment);
                    assert_eq!(h.time_to_live, 64);
                    let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                    assert_eq!(u.checksum(), want);
                }
                Some(NetSlice::Ipv6(ip)) => {
                    let h = ip.header().to_header();
                    let want = u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap();
                    assert_eq!(u.checksum(), want);
                }
                _ => panic!(),
            }
        }
    }

    #[test]
    fn the_source_port_follows_the_flow() {
        assert_eq!(source_port(7), source_port(7));
        let ports: std::collections::HashSet<u16> = (0..1000u32)
            .map(|h| source_port(h.wrapping_mul(2654435761)))
            .collect();
        assert!(ports.len() > 900, "spread: {}", ports.len());
        assert!(ports.iter().all(|&p| p >= 49152));
    }

    #[test]
    fn decap_refuses_what_is_not_vxlan() {
        let t = tunnel(false);
        let mut out = Vec::new();
        encap(&t, &inner(), 1, &mut out).unwrap();
        assert_eq!(decap(&out, 8472), Err(VxlanError::Port(4789)));
        let mut bad = out.clone();
        bad[14 + 20 + 8] = 0; // flags without I
        assert_eq!(decap(&bad, 4789), Err(VxlanError::Flags(0)));
        assert!(matches!(decap(&out[..30], 4789), Err(VxlanError::Outer(_))));
        assert!(matches!(
            decap(&inner(), 4789),
            Err(VxlanError::Outer(_)) | Err(VxlanError::Port(_))
        ));
        // A UDP packet too short for the VxLAN header.
        let mut short = Vec::new();
        PacketBuilder::ethernet2([2; 6], [2; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(1, 4789)
            .write(&mut short, &[FLAG_I, 0, 0])
            .unwrap();
        assert_eq!(decap(&short, 4789), Err(VxlanError::Short));
        assert_eq!(
            encap(&t, &vec![0; 70_000], 1, &mut Vec::new()),
            Err(VxlanError::TooBig(70_000))
        );
    }
}
