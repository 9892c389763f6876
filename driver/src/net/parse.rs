//! What the device reads of a frame: the packed metadata the switch, RSS, the receive
//! checksum check and (next) the flow table use. Parsed with etherparse: Ethernet, up to two
//! 802.1Q/802.1ad tags, IPv4 (options) and IPv6 (the extension headers etherparse walks; any
//! left over marks the frame `unwalked`), TCP, UDP, ICMP, and VxLAN (UDP port 4789).

use super::csum;
use etherparse::{LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};

/// VxLAN's UDP port (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;

/// The network layer's addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum L3 {
    #[default]
    None,
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
    },
}

/// A frame's metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketMeta {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// The outer 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// The ethertype after the tags.
    pub ethertype: u16,
    pub l3: L3,
    /// IP protocol / IPv6 next header of the transport (0: none).
    pub l4_proto: u8,
    /// Source and destination port (TCP, UDP).
    pub ports: Option<(u16, u16)>,
    /// TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...).
    pub tcp_flags: u8,
    /// A fragment (IPv4 MF or offset, IPv6 fragment header).
    pub fragment: bool,
    /// IPv6 extension headers the parser did not walk, or an L3/L4 it could not read.
    pub unwalked: bool,
    /// Offset of the L4 header in the frame.
    pub l4_offset: u16,
    /// VxLAN: the VNI (UDP to port 4789 with the I flag).
    pub vni: Option<u32>,
    /// TCP or UDP checksum present and verified over the whole frame.
    pub l4_csum_ok: bool,
}

impl PacketMeta {
    pub fn is_broadcast(&self) -> bool {
        self.dst_mac == [0xff; 6]
    }

    pub fn is_multicast(&self) -> bool {
        self.dst_mac[0] & 1 != 0
    }
}

/// Parse a frame (never fails: what cannot be read stays unset; frames shorter than an
/// Ethernet header have only what they hold). Zero-copy slices (etherparse's `SlicedPacket`):
/// this runs for every frame of the CPU path.
pub fn parse(frame: &[u8]) -> PacketMeta {
    let mut m = PacketMeta::default();
    if frame.len() >= 12 {
        m.dst_mac.copy_from_slice(&frame[..6]);
        m.src_mac.copy_from_slice(&frame[6..12]);
    }
    if frame.len() >= 14 {
        m.ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    }
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        m.unwalked = frame.len() >= 14;
        return m;
    };
    for e in &p.link_exts {
        if let LinkExtSlice::Vlan(v) = e {
            if m.vlan.is_none() {
                m.vlan = Some(v.vlan_identifier().value());
            }
            m.ethertype = v.ether_type().0;
        }
    }
    // Where the IP payload (the L4 bytes the IP header counts) starts and ends in the frame.
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - frame.as_ptr() as usize;
        (start, start + s.len())
    };
    let (l4, l4_end) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            m.l3 = L3::V4 {
                src: h.source(),
                dst: h.destination(),
            };
            m.l4_proto = ip.payload().ip_number.0;
            m.fragment = ip.is_payload_fragmented();
            m.unwalked = h.protocol() != ip.payload().ip_number;
            span(ip.payload().payload)
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            m.l3 = L3::V6 {
                src: h.source(),
                dst: h.destination(),
            };
            m.l4_proto = ip.payload().ip_number.0;
            m.fragment = ip.is_payload_fragmented();
            m.unwalked = h.next_header() != ip.payload().ip_number;
            span(ip.payload().payload)
        }
        _ => return m,
    };
    m.l4_offset = l4 as u16;
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            m.ports = Some((t.source_port(), t.destination_port()));
            m.tcp_flags = frame.get(l4 + 13).copied().unwrap_or(0);
            m.l4_csum_ok = !m.fragment && l4_ok(frame, &m, l4, l4_end);
        }
        Some(TransportSlice::Udp(u)) => {
            m.ports = Some((u.source_port(), u.destination_port()));
            m.l4_csum_ok = !m.fragment && u.checksum() != 0 && l4_ok(frame, &m, l4, l4_end);
            let vx = l4 + 8;
            if u.destination_port() == VXLAN_PORT && frame.len() >= vx + 8 && frame[vx] & 0x08 != 0
            {
                m.vni = Some(u32::from_be_bytes([
                    0,
                    frame[vx + 4],
                    frame[vx + 5],
                    frame[vx + 6],
                ]));
            }
        }
        _ => {}
    }
    m
}

/// The L4 checksum (TCP or UDP) with its pseudo-header verifies over `frame[l4..end]`, the L4
/// bytes the IP header counts (a frame may be longer: padding).
fn l4_ok(frame: &[u8], m: &PacketMeta, l4: usize, end: usize) -> bool {
    if end > frame.len() || end < l4 {
        return false;
    }
    let len = (end - l4) as u64;
    let mut sum = match m.l3 {
        L3::V4 { src, dst } => csum::add(csum::add(0, &src), &dst),
        L3::V6 { src, dst } => csum::add(csum::add(0, &src), &dst),
        L3::None => return false,
    };
    sum += u64::from(m.l4_proto) + (len & 0xffff) + (len >> 16);
    csum::verify(csum::add(sum, &frame[l4..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    #[test]
    fn tcp_udp_vlan_vxlan() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .single_vlan(etherparse::VlanId::try_new(42).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 7, 100)
            .syn()
            .write(&mut f, b"hello")
            .unwrap();
        let m = parse(&f);
        assert_eq!(m.vlan, Some(42));
        assert_eq!(
            m.l3,
            L3::V4 {
                src: [10, 0, 0, 1],
                dst: [10, 0, 0, 2]
            }
        );
        assert_eq!(
            (m.l4_proto, m.ports, m.l4_offset),
            (6, Some((1234, 80)), 38)
        );
        assert_eq!(m.tcp_flags & 0x02, 0x02);
        assert!(m.l4_csum_ok);
        // A flipped payload bit: the checksum no longer verifies.
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!parse(&bad).l4_csum_ok);

        let mut v = Vec::new();
        let vx = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0];
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6([1; 16], [2; 16], 64)
            .udp(5555, VXLAN_PORT)
            .write(&mut v, &vx)
            .unwrap();
        let m = parse(&v);
        assert_eq!(m.vni, Some(0x123456));
        assert!(m.l4_csum_ok);
        assert_eq!(m.l4_offset, 54);
        // Anything at all: no panic.
        for n in 0..f.len() {
            let _ = parse(&f[..n]);
        }
    }
}
