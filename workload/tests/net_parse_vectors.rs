//! The RTL parser against the Rust one: `sim/tb/vectors/net_parse.hex` holds frames (the seeded
//! TX traffic's, QinQ and VxLAN ones) with the metadata `fpga_virtio_driver::net::parse`
//! gives them, packed as `fv_net_pkg::net_meta_t`; `sim/tb/tb_fv_net_parse.sv` checks that
//! `fv_net_parse.sv` gives the same for each frame the Rust parser walked. This test fails when
//! the file is not what the Rust parser gives now; `FV_REGEN=1` rewrites it.

use etherparse::PacketBuilder;
use fpga_virtio_driver::net::parse::{parse, PacketMeta, L3};
use fpga_virtio_driver::net::NetConfig;
use fpga_virtio_workload::net::tx_traffic;

const HDR_BYTES: usize = 128;

/// Bits, most significant first.
struct Bits(Vec<bool>);

impl Bits {
    fn push(&mut self, value: u128, width: usize) {
        for i in (0..width).rev() {
            self.0.push((value >> i) & 1 == 1);
        }
    }
    fn hex(&self) -> String {
        assert_eq!(self.0.len() % 4, 0);
        self.0
            .chunks(4)
            .map(|n| {
                let v = n.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b));
                char::from_digit(u32::from(v), 16).expect("a nibble")
            })
            .collect()
    }
}

fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, &x| (a << 8) | u128::from(x))
}

/// One vector of 1508 bits: {a zero pad bit, len[15:0], net_meta_t (467 bits),
/// hdr[1023:0] (byte 0 in the low bits)}, as 377 hex digits.
fn record(frame: &[u8], m: &PacketMeta) -> String {
    let mut b = Bits(Vec::new());
    b.push(0, 1);
    b.push(frame.len() as u128, 16);
    b.push(be(&m.dst_mac), 48);
    b.push(be(&m.src_mac), 48);
    b.push(u128::from(m.vlan.is_some()), 1);
    b.push(u128::from(m.vlan.unwrap_or(0)), 12);
    b.push(u128::from(m.ethertype), 16);
    let (kind, src, dst) = match m.l3 {
        L3::None => (0, 0, 0),
        L3::V4 { src, dst } => (1, be(&src), be(&dst)),
        L3::V6 { src, dst } => (2, be(&src), be(&dst)),
    };
    b.push(kind, 2);
    b.push(src, 128);
    b.push(dst, 128);
    b.push(u128::from(m.l4_proto), 8);
    let (sp, dp) = m.ports.unwrap_or((0, 0));
    b.push(u128::from(m.ports.is_some()), 1);
    b.push(u128::from(sp), 16);
    b.push(u128::from(dp), 16);
    b.push(u128::from(m.tcp_flags), 8);
    b.push(u128::from(m.fragment), 1);
    b.push(u128::from(m.unwalked), 1);
    b.push(u128::from(m.l4_offset), 8);
    b.push(u128::from(m.vni.is_some()), 1);
    b.push(u128::from(m.vni.unwrap_or(0)), 24);
    let mut hdr = [0u8; HDR_BYTES];
    let n = frame.len().min(HDR_BYTES);
    hdr[..n].copy_from_slice(&frame[..n]);
    hdr.reverse();
    for byte in hdr {
        b.push(u128::from(byte), 8);
    }
    b.hex()
}

fn frames() -> Vec<Vec<u8>> {
    let cfg = NetConfig::new([2, 0, 0, 0, 0, 1], 9000, 1);
    let mut out: Vec<Vec<u8>> = (0..2u8)
        .flat_map(|q| tx_traffic(0xface + u64::from(q), 150, q, &cfg))
        .map(|f| f.frame)
        .collect();
    for vni in [1u32, 0x123456, 0xffffff] {
        let mut vx = vec![0x08, 0, 0, 0];
        vx.extend_from_slice(&(vni << 8).to_be_bytes());
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(40000, 4789)
            .write(&mut f, &vx)
            .unwrap();
        out.push(f);
    }
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .double_vlan(
            etherparse::VlanId::try_new(7).unwrap(),
            etherparse::VlanId::try_new(9).unwrap(),
        )
        .ipv6([1; 16], [2; 16], 64)
        .tcp(1, 2, 3, 4)
        .write(&mut f, b"qinq")
        .unwrap();
    out.push(f);
    out
}

#[test]
fn the_rtl_parsers_vectors_are_the_rust_parsers() {
    let mut text = String::new();
    let mut walked = 0;
    for f in frames() {
        let m = parse(&f);
        if m.unwalked {
            continue;
        }
        walked += 1;
        text.push_str(&record(&f, &m));
        text.push('\n');
    }
    assert!(walked > 200, "{walked} frames walked");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sim/tb/vectors/net_parse.hex"
    );
    if std::env::var_os("FV_REGEN").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "sim/tb/vectors/net_parse.hex is not what the Rust parser gives now: \
         FV_REGEN=1 cargo test -p fpga-virtio-workload --test net_parse_vectors"
    );
}
