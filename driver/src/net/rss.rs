//! Receive-side scaling: the Toeplitz hash (Microsoft RSS; virtio 1.2 5.1.6.4.3.1) over a
//! frame's addresses and ports, and an indirection table from the hash to a receive queue.
//! The RTL computes the same function (its key and table in registers), so this is written
//! out, not taken from a hasher.

use super::parse::{PacketMeta, L3};

/// The key of Microsoft's RSS verification suite (and many drivers' default).
pub const DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The Toeplitz hash of `input` under `key` (the key at least 4 bytes longer than the input:
/// 40 bytes cover IPv6 with ports, 36 bytes); the flow table hashes with the same function.
pub use fpga_virtio_flow::table::toeplitz;

/// The hash input of a frame: source and destination address, then (TCP and UDP, not
/// fragments) source and destination port; its bytes and length (no allocation per frame).
/// None for frames that are not IP.
pub fn hash_input(meta: &PacketMeta) -> Option<([u8; 36], usize)> {
    let mut v = [0u8; 36];
    let mut n = match meta.l3 {
        L3::V4 { src, dst } => {
            v[..4].copy_from_slice(&src);
            v[4..8].copy_from_slice(&dst);
            8
        }
        L3::V6 { src, dst } => {
            v[..16].copy_from_slice(&src);
            v[16..32].copy_from_slice(&dst);
            32
        }
        L3::None => return None,
    };
    if let (6 | 17, false, Some((s, d))) = (meta.l4_proto, meta.fragment, meta.ports) {
        v[n..n + 2].copy_from_slice(&s.to_be_bytes());
        v[n + 2..n + 4].copy_from_slice(&d.to_be_bytes());
        n += 4;
    }
    Some((v, n))
}

/// A function's RSS configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rss {
    pub key: [u8; 40],
    /// Receive queue pair index by `hash % table.len()` (a power of two in length).
    pub table: Vec<u16>,
}

impl Rss {
    /// The default key, flows spread over `pairs` queue pairs.
    pub fn new(pairs: u16) -> Self {
        Rss {
            key: DEFAULT_KEY,
            table: (0..128).map(|i| i % pairs.max(1)).collect(),
        }
    }

    /// The RX queue pair of a frame (0 for what is not IP) and its hash.
    pub fn queue(&self, meta: &PacketMeta) -> (u16, u32) {
        match hash_input(meta) {
            Some((input, n)) => {
                let h = toeplitz(&self.key, &input[..n]);
                (self.table[h as usize % self.table.len()], h)
            }
            None => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], b: [u8; 4], ports: Option<(u16, u16)>) -> Vec<u8> {
        let mut v = [a, b].concat();
        if let Some((s, d)) = ports {
            v.extend_from_slice(&s.to_be_bytes());
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    /// Microsoft's "Verifying the RSS Hash Calculation" IPv4 vectors.
    #[test]
    fn microsoft_ipv4_vectors() {
        let cases = [
            (
                [66, 9, 149, 187],
                2794,
                [161, 142, 100, 80],
                1766,
                0x323e_8fc2,
                0x51cc_c178,
            ),
            (
                [199, 92, 111, 2],
                14230,
                [65, 69, 140, 83],
                4739,
                0xd718_262a,
                0xc626_b0ea,
            ),
            (
                [24, 19, 198, 95],
                12898,
                [12, 22, 207, 184],
                38024,
                0xd2d0_a5de,
                0x5c2b_394a,
            ),
            (
                [38, 27, 205, 30],
                48228,
                [209, 142, 163, 6],
                2217,
                0x8298_9176,
                0xafc7_327f,
            ),
            (
                [153, 39, 163, 191],
                44251,
                [202, 188, 127, 2],
                1303,
                0x5d18_09c5,
                0x10e8_28a2,
            ),
        ];
        for (src, sp, dst, dp, ip, tcp) in cases {
            assert_eq!(toeplitz(&DEFAULT_KEY, &v4(src, dst, None)), ip, "{src:?}");
            assert_eq!(
                toeplitz(&DEFAULT_KEY, &v4(src, dst, Some((sp, dp)))),
                tcp,
                "{src:?} ports"
            );
        }
    }

    /// Microsoft's IPv6 vectors.
    #[test]
    fn microsoft_ipv6_vectors() {
        let a = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let cases = [
            (
                "3ffe:2501:200:1fff::7",
                2794,
                "3ffe:2501:200:3::1",
                1766,
                0x2cc1_8cd5,
                0x4020_7d3d,
            ),
            (
                "3ffe:501:8::260:97ff:fe40:efab",
                14230,
                "ff02::1",
                4739,
                0x0f0c_461c,
                0xdde5_1bbf,
            ),
            (
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                "fe80::200:f8ff:fe21:67cf",
                38024,
                0x4b61_e985,
                0x02d1_feef,
            ),
        ];
        for (src, sp, dst, dp, ip, tcp) in cases {
            let mut v = [a(src), a(dst)].concat();
            assert_eq!(toeplitz(&DEFAULT_KEY, &v), ip, "{src}");
            v.extend_from_slice(&(sp as u16).to_be_bytes());
            v.extend_from_slice(&(dp as u16).to_be_bytes());
            assert_eq!(toeplitz(&DEFAULT_KEY, &v), tcp, "{src} ports");
        }
    }
}
