//! From a frame to what the slow path decides on: the [`Packet`] connection tracking takes and
//! the ACL's [`Tuple`], parsed with `etherparse` (Ethernet, 802.1Q, IPv4 and IPv6 with their
//! extension headers, TCP with its window-scale option, UDP, ICMP and ICMPv6 with the packet an
//! error carries).

use crate::acl::Tuple;
use crate::conntrack::{Inner, Packet, TcpSeg, L4, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use etherparse::{
    LaxNetSlice, LaxSlicedPacket, NetSlice, SlicedPacket, TcpOptionElement, TransportSlice,
};
use std::net::IpAddr;

/// Why a frame is not a packet the slow path tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not IP")]
    NotIp,
    #[error("a fragment (not reassembled on this path)")]
    Fragment,
    #[error("malformed or truncated headers")]
    Malformed,
}

/// Parses an Ethernet frame of zone `zone`.
pub fn from_frame(zone: u32, frame: &[u8]) -> Result<Packet, ParseError> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|_| ParseError::Malformed)?;
    let (src, dst, payload) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload(),
        ),
        _ => return Err(ParseError::NotIp),
    };
    if payload.fragmented {
        return Err(ParseError::Fragment);
    }
    let proto = payload.ip_number.0;
    let l4 = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let wscale = t.options_iterator().find_map(|o| match o {
                Ok(TcpOptionElement::WindowScale(s)) => Some(s),
                _ => None,
            });
            let b = t.slice();
            L4::Tcp(TcpSeg {
                sport: t.source_port(),
                dport: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                flags: b[13],
                window: t.window_size(),
                wscale,
                payload: t.payload().len() as u32,
            })
        }
        Some(TransportSlice::Udp(u)) => L4::Udp {
            sport: u.source_port(),
            dport: u.destination_port(),
        },
        Some(TransportSlice::Icmpv4(i)) => icmp(i.type_u8(), i.slice(), false)?,
        Some(TransportSlice::Icmpv6(i)) => icmp(i.type_u8(), i.slice(), true)?,
        None if matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_ICMPV6) => {
            return Err(ParseError::Malformed)
        }
        _ => L4::Other,
    };
    Ok(Packet {
        zone,
        src,
        dst,
        proto,
        l4,
        len: frame.len() as u32,
    })
}

/// An ICMP or ICMPv6 message (`m`: from its type byte on).
fn icmp(ty: u8, m: &[u8], v6: bool) -> Result<L4, ParseError> {
    let id = || u16::from_be_bytes([m[4], m[5]]);
    let (echo_req, echo_reply) = if v6 { (128, 129) } else { (8, 0) };
    let error = if v6 {
        matches!(ty, 1..=4)
    } else {
        matches!(ty, 3 | 11 | 12)
    };
    if m.len() < 8 {
        return Err(ParseError::Malformed);
    }
    Ok(if ty == echo_req || ty == echo_reply {
        L4::Echo {
            id: id(),
            reply: ty == echo_reply,
        }
    } else if error {
        L4::IcmpError(inner(&m[8..]).ok_or(ParseError::Malformed)?)
    } else {
        L4::Other
    })
}

/// The offending packet's tuple in an ICMP error: its IP header and at least the first 8 bytes
/// after it (RFC 792, RFC 4443).
fn inner(b: &[u8]) -> Option<Inner> {
    let p = LaxSlicedPacket::from_ip(b).ok()?;
    let (src, dst, pl) = match &p.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload(),
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload(),
        ),
        _ => return None,
    };
    let proto = pl.ip_number.0;
    let l = pl.payload;
    let (sport, dport) = match proto {
        PROTO_TCP | PROTO_UDP => {
            let h = l.get(..4)?;
            (
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            )
        }
        // An error about an echo: its identifier, as the echo's connection is keyed.
        PROTO_ICMP | PROTO_ICMPV6 => {
            let h = l.get(..8)?;
            let echo = if proto == PROTO_ICMPV6 { 128 } else { 8 };
            if h[0] != echo {
                return None;
            }
            let id = u16::from_be_bytes([h[4], h[5]]);
            (id, id)
        }
        _ => (0, 0),
    };
    Some(Inner {
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

/// The ACL's view of a packet (ports only for TCP and UDP).
pub fn tuple(p: &Packet) -> Tuple {
    let (src_port, dst_port) = match p.l4 {
        L4::Tcp(t) => (t.sport, t.dport),
        L4::Udp { sport, dport } => (sport, dport),
        _ => (0, 0),
    };
    Tuple {
        src: p.src,
        dst: p.dst,
        proto: p.proto,
        src_port,
        dst_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::tcp_flags::{ACK, SYN};
    use etherparse::{IcmpEchoHeader, Icmpv4Type, PacketBuilder, TcpOptionElement};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn build(b: etherparse::PacketBuilderStep<etherparse::TcpHeader>, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn tcp_with_its_window_scale() {
        let b = PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1234, 500)
            .syn()
            .options(&[TcpOptionElement::WindowScale(7)])
            .unwrap();
        let f = build(b, &[]);
        let p = from_frame(3, &f).unwrap();
        assert_eq!(p.zone, 3);
        assert_eq!(p.proto, PROTO_TCP);
        let L4::Tcp(t) = p.l4 else { panic!() };
        assert_eq!(
            (t.sport, t.dport, t.seq, t.flags, t.window),
            (40000, 80, 1234, SYN, 500)
        );
        assert_eq!(t.wscale, Some(7));
        let b = PacketBuilder::ethernet2(MAC, MAC)
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4)
            .ack(9);
        let p = from_frame(0, &build(b, b"hello")).unwrap();
        let L4::Tcp(t) = p.l4 else { panic!() };
        assert_eq!((t.flags, t.ack, t.payload, t.wscale), (ACK, 9, 5, None));
        assert_eq!(tuple(&p).dst_port, 2);
    }

    #[test]
    fn udp_icmp_and_errors() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv6([1; 16], [2; 16], 64)
            .udp(5000, 53)
            .write(&mut f, b"q")
            .unwrap();
        let p = from_frame(0, &f).unwrap();
        assert_eq!(
            p.l4,
            L4::Udp {
                sport: 5000,
                dport: 53
            }
        );

        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(77, 1)
            .write(&mut f, b"ping")
            .unwrap();
        assert_eq!(
            from_frame(0, &f).unwrap().l4,
            L4::Echo {
                id: 77,
                reply: false
            }
        );

        // A port unreachable about a UDP datagram 10.0.0.1:5000 -> 10.0.0.2:53.
        let mut inner = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5000, 53)
            .write(&mut inner, b"query")
            .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut f, &inner[..28])
            .unwrap();
        let p = from_frame(0, &f).unwrap();
        let L4::IcmpError(i) = p.l4 else {
            panic!("{p:?}")
        };
        assert_eq!((i.proto, i.sport, i.dport), (PROTO_UDP, 5000, 53));
        assert_eq!(i.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        // An error about an echo names the echo's identifier.
        let mut inner = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 9], 1)
            .icmpv4(Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 42, seq: 1 }))
            .write(&mut inner, b"")
            .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([10, 0, 0, 254], [10, 0, 0, 1], 64)
            .icmpv4(Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            ))
            .write(&mut f, &inner)
            .unwrap();
        let L4::IcmpError(i) = from_frame(0, &f).unwrap().l4 else {
            panic!()
        };
        assert_eq!((i.proto, i.sport, i.dport), (PROTO_ICMP, 42, 42));
    }

    #[test]
    fn what_is_not_tracked() {
        assert_eq!(from_frame(0, &[0; 60]).unwrap_err(), ParseError::NotIp);
        assert_eq!(from_frame(0, &[0; 5]).unwrap_err(), ParseError::Malformed);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut f, &[0; 100])
            .unwrap();
        // More fragments (byte 20 of the frame: the IPv4 flags), header checksum ignored here.
        f[20] |= 0x20;
        assert_eq!(from_frame(0, &f).unwrap_err(), ParseError::Fragment);
        // A TCP header cut short.
        let b = PacketBuilder::ethernet2(MAC, MAC)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 3, 4);
        let mut f = build(b, &[]);
        f.truncate(14 + 20 + 10);
        f[16..18].copy_from_slice(&30u16.to_be_bytes());
        assert_eq!(from_frame(0, &f).unwrap_err(), ParseError::Malformed);
    }
}
