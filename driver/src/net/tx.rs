//! The TX path of a virtio-net function: what a frame the guest sends becomes on the wire.
//!
//! [`classify`] is the decision both engines make, in the same order (the RTL TX engine,
//! `fv_net_tx_engine.sv`, takes it in hardware and punts what it does not send itself with the
//! [`Verdict`]'s punt reason): send it (with the checksum filled in when the guest asked), give
//! it to GSO, or drop it with a reason. The CPU path then also does what the FPGA punts:
//! [`segment`] cuts a GSO frame (TSO over IPv4 and IPv6, USO) into frames of the MTU, each with
//! its IP and L4 checksums computed.

use super::csum;
use super::features::{self as nf, NetConfig};
use fpga_virtio_hw::formats::VirtioNetHdrV1;
use fpga_virtio_hw::regs::PuntReason;

/// `virtio_net_hdr.flags`.
pub const HDR_F_NEEDS_CSUM: u8 = 1;
pub const HDR_F_DATA_VALID: u8 = 2;
/// `virtio_net_hdr.gso_type`.
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

/// Bytes of an Ethernet header, and of one 802.1Q tag.
pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
/// The largest TX frame the CPU reads (a GSO frame: 64 KiB of IP plus its Ethernet header and
/// tags); longer ones are dropped unread.
pub const MAX_TX_FRAME: usize = 65_535 + ETH_HLEN + 2 * VLAN_HLEN;

/// Why a TX frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxDrop {
    /// The chain held less than a `virtio_net_hdr_v1`.
    ShortHeader,
    /// Shorter than an Ethernet header.
    Runt,
    /// Longer than MTU + 18 (and not GSO), or than [`MAX_TX_FRAME`].
    TooLong,
    /// Header flags other than NEEDS_CSUM.
    BadFlags,
    /// NEEDS_CSUM without the CSUM feature.
    CsumNotNegotiated,
    /// `csum_start + csum_offset + 2` past the frame.
    BadCsumOffset,
    /// A GSO type not negotiated, unknown, or a GSO frame whose headers or sizes are wrong.
    BadGso,
    /// The chain's buffers could not be read.
    Memory,
}

impl TxDrop {
    pub const ALL: [TxDrop; 8] = [
        TxDrop::ShortHeader,
        TxDrop::Runt,
        TxDrop::TooLong,
        TxDrop::BadFlags,
        TxDrop::CsumNotNegotiated,
        TxDrop::BadCsumOffset,
        TxDrop::BadGso,
        TxDrop::Memory,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            TxDrop::ShortHeader => "short_header",
            TxDrop::Runt => "runt",
            TxDrop::TooLong => "too_long",
            TxDrop::BadFlags => "bad_flags",
            TxDrop::CsumNotNegotiated => "csum_not_negotiated",
            TxDrop::BadCsumOffset => "bad_csum_offset",
            TxDrop::BadGso => "bad_gso",
            TxDrop::Memory => "memory",
        }
    }
}

/// What becomes of a TX frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Sent as it is, with the checksum inserted at `csum` = (start, offset) when asked.
    Send { csum: Option<(usize, usize)> },
    /// A GSO frame: the CPU segments it (the FPGA punts `net_tx_gso`).
    Gso,
    /// Not sent (the FPGA punts `net_tx_malformed` and the CPU drops it).
    Drop(TxDrop),
}

impl Verdict {
    /// The punt reason with which the FPGA hands this frame to the CPU (None: it sends it).
    pub fn punt_reason(self) -> Option<PuntReason> {
        match self {
            Verdict::Send { .. } => None,
            Verdict::Gso => Some(PuntReason::NetTxGso),
            Verdict::Drop(_) => Some(PuntReason::NetTxMalformed),
        }
    }
}

/// The TX decision, on the header and the frame's length (the order is the RTL's).
pub fn classify(cfg: &NetConfig, features: u64, hdr: &VirtioNetHdrV1, frame_len: usize) -> Verdict {
    if hdr.flags & !HDR_F_NEEDS_CSUM != 0 {
        return Verdict::Drop(TxDrop::BadFlags);
    }
    if hdr.gso_type != GSO_NONE {
        return Verdict::Gso;
    }
    if frame_len < ETH_HLEN {
        return Verdict::Drop(TxDrop::Runt);
    }
    if frame_len > cfg.max_frame() {
        return Verdict::Drop(TxDrop::TooLong);
    }
    if hdr.flags & HDR_F_NEEDS_CSUM == 0 {
        return Verdict::Send { csum: None };
    }
    if features & (1 << nf::F_CSUM) == 0 {
        return Verdict::Drop(TxDrop::CsumNotNegotiated);
    }
    let (start, offset) = (usize::from(hdr.csum_start), usize::from(hdr.csum_offset));
    if start + offset + 2 > frame_len {
        return Verdict::Drop(TxDrop::BadCsumOffset);
    }
    Verdict::Send {
        csum: Some((start, offset)),
    }
}

/// A TX header as a driver writes it (`hdr_len` and `num_buffers` 0: the device does not
/// use them on TX).
pub fn header(
    flags: u8,
    gso_type: u8,
    gso_size: u16,
    csum_start: u16,
    csum_offset: u16,
) -> VirtioNetHdrV1 {
    VirtioNetHdrV1 {
        flags,
        gso_type,
        hdr_len: 0,
        gso_size,
        csum_start,
        csum_offset,
        num_buffers: 0,
    }
}

/// Where a GSO frame's headers are.
struct Layout {
    l3: usize,
    l4: usize,
    /// First payload byte (the end of the L4 header).
    payload: usize,
    v4: bool,
    tcp: bool,
}

fn layout(frame: &[u8], gso: u8) -> Option<Layout> {
    // The parser's view of the frame (zero-copy, as for every frame): the same walk decides.
    let m = super::parse::parse(frame);
    if m.unwalked || m.fragment || m.ports.is_none() {
        return None;
    }
    let l4 = usize::from(m.l4_offset);
    let l3 = 14 + if m.vlan.is_some() { VLAN_HLEN } else { 0 };
    // Extension headers or a second tag would move the pseudo-header's or the IP header's
    // place: refused.
    let v4 = match m.l3 {
        super::parse::L3::V4 { .. } if m.ethertype == 0x0800 => true,
        super::parse::L3::V6 { .. } if m.ethertype == 0x86dd && l4 == l3 + 40 => false,
        _ => return None,
    };
    if v4
        && frame
            .get(l3)
            .is_none_or(|&b| usize::from(b & 0xf) * 4 != l4 - l3)
    {
        return None;
    }
    let tcp = m.l4_proto == 6;
    let payload = match m.l4_proto {
        6 => l4 + usize::from(*frame.get(l4 + 12)? >> 4) * 4,
        17 => l4 + 8,
        _ => return None,
    };
    let want = match gso & !GSO_ECN {
        GSO_TCPV4 => v4 && tcp,
        GSO_TCPV6 => !v4 && tcp,
        GSO_UDP_L4 => !tcp,
        _ => false,
    };
    (want && payload < frame.len()).then_some(Layout {
        l3,
        l4,
        payload,
        v4,
        tcp,
    })
}

/// The L4 checksum of `seg` (its L4 header and payload from `l4`), with the pseudo-header.
fn l4_checksum(seg: &[u8], l: &Layout) -> u16 {
    let len = (seg.len() - l.l4) as u64;
    let proto = if l.tcp { 6u64 } else { 17 };
    let mut sum = if l.v4 {
        csum::add(0, &seg[l.l3 + 12..l.l3 + 20])
    } else {
        csum::add(0, &seg[l.l3 + 8..l.l3 + 40])
    };
    sum += proto + (len & 0xffff) + (len >> 16);
    csum::finish(csum::add(sum, &seg[l.l4..]))
}

/// Cut a GSO frame into frames of at most `hdr.gso_size` payload bytes each, headers copied
/// and fixed (IPv4 total length, identification and header checksum; IPv6 payload length; TCP
/// sequence number and flags — CWR on the first, FIN and PSH on the last only; UDP length),
/// every L4 checksum computed. None when the frame cannot be segmented (dropped as `BadGso`).
pub fn segment(
    cfg: &NetConfig,
    features: u64,
    hdr: &VirtioNetHdrV1,
    frame: &[u8],
) -> Option<Vec<Vec<u8>>> {
    let gso = hdr.gso_type & !GSO_ECN;
    let feature = match gso {
        GSO_TCPV4 => nf::F_HOST_TSO4,
        GSO_TCPV6 => nf::F_HOST_TSO6,
        GSO_UDP_L4 => nf::F_HOST_USO,
        _ => return None,
    };
    if features & (1 << feature) == 0 || hdr.flags & HDR_F_NEEDS_CSUM == 0 {
        return None;
    }
    let l = layout(frame, hdr.gso_type)?;
    let mss = usize::from(hdr.gso_size);
    // Each segment's IP packet fits the MTU.
    if mss == 0 || l.payload - l.l3 + mss > usize::from(cfg.mtu) {
        return None;
    }
    let payload = &frame[l.payload..];
    let n = payload.len().div_ceil(mss);
    let mut out = Vec::with_capacity(n);
    let seq0 = if l.tcp {
        u32::from_be_bytes(frame[l.l4 + 4..l.l4 + 8].try_into().ok()?)
    } else {
        0
    };
    let ip_id0 = if l.v4 {
        u16::from_be_bytes([frame[l.l3 + 4], frame[l.l3 + 5]])
    } else {
        0
    };
    for (i, chunk) in payload.chunks(mss).enumerate() {
        let mut seg = Vec::with_capacity(l.payload + chunk.len());
        seg.extend_from_slice(&frame[..l.payload]);
        seg.extend_from_slice(chunk);
        let ip_len = seg.len() - l.l3;
        if l.v4 {
            seg[l.l3 + 2..l.l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            let id = ip_id0.wrapping_add(i as u16);
            seg[l.l3 + 4..l.l3 + 6].copy_from_slice(&id.to_be_bytes());
            seg[l.l3 + 10..l.l3 + 12].fill(0);
            let c = !csum::fold(csum::add(0, &seg[l.l3..l.l4]));
            seg[l.l3 + 10..l.l3 + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            seg[l.l3 + 4..l.l3 + 6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
        }
        let ck = if l.tcp {
            let seq = seq0.wrapping_add((i * mss) as u32);
            seg[l.l4 + 4..l.l4 + 8].copy_from_slice(&seq.to_be_bytes());
            let (fin_psh, cwr) = (0x01 | 0x08, 0x80);
            if i + 1 < n {
                seg[l.l4 + 13] &= !fin_psh;
            }
            if i > 0 {
                seg[l.l4 + 13] &= !cwr;
            }
            l.l4 + 16
        } else {
            let udp_len = (seg.len() - l.l4) as u16;
            seg[l.l4 + 4..l.l4 + 6].copy_from_slice(&udp_len.to_be_bytes());
            l.l4 + 6
        };
        seg[ck..ck + 2].fill(0);
        let c = l4_checksum(&seg, &l);
        seg[ck..ck + 2].copy_from_slice(&c.to_be_bytes());
        out.push(seg);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn cfg() -> NetConfig {
        NetConfig::new([2, 0, 0, 0, 0, 1], 1500, 1)
    }

    use super::header as hdr;

    const ALL: u64 = nf::OFFERED;

    #[test]
    fn classify_in_the_rtl_order() {
        let c = cfg();
        let h = hdr(0, 0, 0, 0, 0);
        assert_eq!(classify(&c, ALL, &h, 60), Verdict::Send { csum: None });
        assert_eq!(classify(&c, ALL, &h, 13), Verdict::Drop(TxDrop::Runt));
        assert_eq!(classify(&c, ALL, &h, 1518), Verdict::Send { csum: None });
        assert_eq!(classify(&c, ALL, &h, 1519), Verdict::Drop(TxDrop::TooLong));
        assert_eq!(
            classify(&c, ALL, &hdr(4, 0, 0, 0, 0), 60),
            Verdict::Drop(TxDrop::BadFlags)
        );
        assert_eq!(classify(&c, ALL, &hdr(0, 1, 0, 0, 0), 10), Verdict::Gso);
        let cs = hdr(1, 0, 0, 34, 16);
        assert_eq!(
            classify(&c, ALL, &cs, 52),
            Verdict::Send {
                csum: Some((34, 16))
            }
        );
        assert_eq!(
            classify(&c, ALL, &cs, 51),
            Verdict::Drop(TxDrop::BadCsumOffset)
        );
        assert_eq!(
            classify(&c, ALL & !(1 << nf::F_CSUM), &cs, 60),
            Verdict::Drop(TxDrop::CsumNotNegotiated)
        );
        // Offsets that would wrap a 16-bit sum do not.
        assert_eq!(
            classify(&c, ALL, &hdr(1, 0, 0, 0xffff, 0xffff), 1518),
            Verdict::Drop(TxDrop::BadCsumOffset)
        );
    }

    /// A TCP/IPv4 frame as Linux hands it with TSO: the TCP checksum field holds the
    /// pseudo-header sum (of the whole frame's length: the device recomputes it anyway).
    fn tso_frame(v6: bool, payload: usize, flags_fin: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let data: Vec<u8> = (0..payload).map(|i| (i * 13) as u8).collect();
        let mut out = Vec::new();
        if v6 {
            let mut b = b
                .ipv6([1; 16], [2; 16], 64)
                .tcp(1000, 80, 0xffff_fff0, 4096)
                .psh()
                .cwr();
            if flags_fin {
                b = b.fin();
            }
            b.write(&mut out, &data).unwrap();
        } else {
            let mut b = b
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(1000, 80, 0xffff_fff0, 4096)
                .psh()
                .cwr();
            if flags_fin {
                b = b.fin();
            }
            b.write(&mut out, &data).unwrap();
        }
        out
    }

    fn check_segments(segs: &[Vec<u8>], payload: usize, mss: usize, v6: bool) {
        assert_eq!(segs.len(), payload.div_ceil(mss));
        let mut seq = 0xffff_fff0u32;
        let mut data = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(s.len() <= 1514);
            let p = etherparse::SlicedPacket::from_ethernet(s).unwrap();
            let tcp = match p.transport.unwrap() {
                etherparse::TransportSlice::Tcp(t) => t.to_header(),
                _ => panic!("not tcp"),
            };
            assert_eq!(tcp.sequence_number, seq, "segment {i}");
            assert_eq!(tcp.cwr, i == 0);
            assert_eq!(tcp.psh, i + 1 == segs.len());
            let body = &s[s.len() - (s.len() - if v6 { 74 } else { 54 })..];
            let want = match p.net.unwrap() {
                etherparse::NetSlice::Ipv4(ip) => {
                    assert_eq!(usize::from(ip.header().total_len()), s.len() - 14);
                    let h = ip.header().to_header();
                    assert_eq!(h.header_checksum, h.calc_header_checksum());
                    tcp.calc_checksum_ipv4(&h, body).unwrap()
                }
                etherparse::NetSlice::Ipv6(ip) => tcp
                    .calc_checksum_ipv6(&ip.header().to_header(), body)
                    .unwrap(),
                _ => panic!(),
            };
            assert_eq!(tcp.checksum, want, "segment {i}");
            seq = seq.wrapping_add(body.len() as u32);
            data.extend_from_slice(body);
        }
        assert_eq!(
            data,
            (0..payload).map(|i| (i * 13) as u8).collect::<Vec<_>>()
        );
    }

    #[test]
    fn tso4_and_tso6_segments_are_sized_and_checksummed() {
        for v6 in [false, true] {
            let payload = 5000;
            let f = tso_frame(v6, payload, false);
            let (gso, mss) = if v6 {
                (GSO_TCPV6, 1440)
            } else {
                (GSO_TCPV4, 1460)
            };
            let csum_start = if v6 { 54 } else { 34 };
            let h = hdr(1, gso, mss, csum_start, 16);
            assert_eq!(classify(&cfg(), ALL, &h, f.len()), Verdict::Gso);
            let segs = segment(&cfg(), ALL, &h, &f).unwrap();
            check_segments(&segs, payload, usize::from(mss), v6);
        }
    }

    #[test]
    fn gso_refusals() {
        let f = tso_frame(false, 3000, false);
        let c = cfg();
        // Not negotiated, wrong family, segments over the MTU, no NEEDS_CSUM, UFO.
        assert!(segment(
            &c,
            ALL & !(1 << nf::F_HOST_TSO4),
            &hdr(1, GSO_TCPV4, 1460, 34, 16),
            &f
        )
        .is_none());
        assert!(segment(&c, ALL, &hdr(1, GSO_TCPV6, 1460, 34, 16), &f).is_none());
        assert!(segment(&c, ALL, &hdr(1, GSO_TCPV4, 1461, 34, 16), &f).is_none());
        assert!(segment(&c, ALL, &hdr(0, GSO_TCPV4, 1460, 34, 16), &f).is_none());
        assert!(segment(&c, ALL, &hdr(1, GSO_UDP, 1460, 34, 16), &f).is_none());
        assert!(segment(&c, ALL, &hdr(1, GSO_TCPV4, 0, 34, 16), &f).is_none());
        // Garbage: refused, no panic.
        for n in 0..f.len() {
            let _ = segment(&c, ALL, &hdr(1, GSO_TCPV4, 100, 34, 16), &f[..n]);
        }
    }

    #[test]
    fn uso_segments() {
        let data: Vec<u8> = (0..3000).map(|i| i as u8).collect();
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5000, 6000)
            .write(&mut f, &data)
            .unwrap();
        let h = hdr(1, GSO_UDP_L4, 1000, 34, 6);
        let segs = segment(&cfg(), ALL, &h, &f).unwrap();
        assert_eq!(segs.len(), 3);
        for (i, s) in segs.iter().enumerate() {
            let p = etherparse::SlicedPacket::from_ethernet(s).unwrap();
            let (ip, udp) = match (p.net.unwrap(), p.transport.unwrap()) {
                (etherparse::NetSlice::Ipv4(ip), etherparse::TransportSlice::Udp(u)) => {
                    (ip.header().to_header(), u.to_header())
                }
                _ => panic!(),
            };
            assert_eq!(udp.length, 1008);
            assert_eq!(&s[42..], &data[i * 1000..(i + 1) * 1000]);
            assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&ip, &s[42..]).unwrap());
        }
    }
}
