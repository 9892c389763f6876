//! Seeded virtio-net TX traffic and what the wire must see for it.
//!
//! [`tx_traffic`] makes the frames a guest's driver would send, and the ones a hostile or
//! broken one would: Ethernet with and without an 802.1Q tag; IPv4 (with options) and IPv6;
//! TCP, UDP, ICMP and raw frames; 14 bytes to jumbo; the L4 checksum left to the device
//! (NEEDS_CSUM, the field holding the pseudo-header sum as Linux leaves it) or filled in; GSO
//! (TSO over IPv4 and IPv6, USO); and malformed ones (runts, frames over the MTU, checksum
//! offsets past the frame, TX flags a driver must not set, bad GSO, a chain shorter than the
//! header). Each is laid out in descriptors split at random places, the header included.
//!
//! [`expected_wire`] is what the device must send for a frame: the reference model's decision
//! (`fpga_virtio_driver::net::tx`) applied to it.

use crate::Rng;
use etherparse::{IpNumber, Ipv4Header, Ipv4Options, PacketBuilder};
use fpga_virtio_driver::net::{csum, tx, NetConfig};
use fpga_virtio_hw::formats::VirtioNetHdrV1;

/// One TX request: its header, its frame, and where its bytes (header then frame) are cut
/// into descriptors.
#[derive(Clone, Debug)]
pub struct TxFrame {
    pub hdr: VirtioNetHdrV1,
    pub frame: Vec<u8>,
    /// Lengths of the descriptors (summing to 12 + frame length, or less for a chain shorter
    /// than the header).
    pub pieces: Vec<usize>,
    pub kind: &'static str,
}

impl TxFrame {
    /// The chain's bytes: header then frame.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.hdr.to_le_bytes().to_vec();
        b.extend_from_slice(&self.frame);
        b.truncate(self.pieces.iter().sum());
        b
    }
}

use tx::header as hdr;

/// Cut `n` bytes into 1 to 4 pieces at random places.
fn cut(rng: &mut Rng, n: usize) -> Vec<usize> {
    let parts = 1 + rng.below(4) as usize;
    let mut at: Vec<usize> = (1..parts)
        .map(|_| 1 + rng.below(n.max(2) as u64 - 1) as usize)
        .collect();
    at.sort_unstable();
    at.dedup();
    let mut pieces = Vec::new();
    let mut prev = 0;
    for a in at.into_iter().chain([n]) {
        if a > prev {
            pieces.push(a - prev);
            prev = a;
        }
    }
    pieces
}

/// The L4 checksum field left as Linux leaves it for the device (CHECKSUM_PARTIAL): the
/// pseudo-header's sum, folded, not complemented.
fn partial(frame: &mut [u8], l3: usize, l4: usize, field: usize, v4: bool, proto: u8) {
    let len = (frame.len() - l4) as u64;
    let mut sum = if v4 {
        csum::add(0, &frame[l3 + 12..l3 + 20])
    } else {
        csum::add(0, &frame[l3 + 8..l3 + 40])
    };
    sum += u64::from(proto) + (len & 0xffff) + (len >> 16);
    let p = csum::fold(sum);
    frame[l4 + field..l4 + field + 2].copy_from_slice(&p.to_be_bytes());
}

/// A well-formed frame of `payload` bytes: (frame, l3 offset, l4 offset, v4, L4 protocol).
fn packet(
    rng: &mut Rng,
    src: [u8; 6],
    payload: usize,
    l4: u8,
    v6: bool,
    vlan: bool,
) -> (Vec<u8>, usize, usize, bool, u8) {
    let dst = [0x02, 0x10, 0, 0, rng.below(4) as u8, rng.below(256) as u8];
    let data: Vec<u8> = (0..payload).map(|_| rng.next_u64() as u8).collect();
    let eth = PacketBuilder::ethernet2(src, dst);
    let mut out = Vec::new();
    let l3 = 14 + if vlan { 4 } else { 0 };
    let (sport, dport) = (
        1024 + rng.below(60000) as u16,
        [80u16, 443, 53, 8080][rng.below(4) as usize],
    );
    macro_rules! finish {
        ($ip:expr) => {
            match l4 {
                6 => $ip
                    .tcp(sport, dport, rng.next_u64() as u32, 1024)
                    .ack(rng.next_u64() as u32)
                    .write(&mut out, &data),
                17 => $ip.udp(sport, dport).write(&mut out, &data),
                _ => {
                    if v6 {
                        $ip.icmpv6_echo_request(7, 9).write(&mut out, &data)
                    } else {
                        $ip.icmpv4_echo_request(7, 9).write(&mut out, &data)
                    }
                }
            }
        };
    }
    let ipv4 = |rng: &mut Rng| {
        let mut h = Ipv4Header::new(
            0,
            64,
            IpNumber(0),
            [10, 0, 0, 1 + rng.below(200) as u8],
            [10, 1, 0, 1 + rng.below(200) as u8],
        )
        .expect("header");
        h.identification = rng.next_u64() as u16;
        if rng.below(4) == 0 {
            // IPv4 options (NOPs and an end): a longer header to walk.
            h.options = Ipv4Options::try_from(&[1u8, 1, 1, 0][..]).expect("options");
        }
        h
    };
    let res = match (vlan, v6) {
        (false, false) => {
            let ip = ipv4(rng);
            finish!(eth.ip(etherparse::IpHeaders::Ipv4(ip, Default::default())))
        }
        (true, false) => {
            let ip = ipv4(rng);
            finish!(eth
                .single_vlan(etherparse::VlanId::try_new(rng.below(4095) as u16).expect("vlan"))
                .ip(etherparse::IpHeaders::Ipv4(ip, Default::default())))
        }
        (false, true) => finish!(eth.ipv6([0xfd; 16], [0xfe; 16], 64)),
        (true, true) => finish!(eth
            .single_vlan(etherparse::VlanId::try_new(rng.below(4095) as u16).expect("vlan"))
            .ipv6([0xfd; 16], [0xfe; 16], 64)),
    };
    res.expect("the builder writes to a Vec");
    let ihl = if v6 {
        40
    } else {
        usize::from(out[l3] & 0xf) * 4
    };
    (out, l3, l3 + ihl, !v6, l4)
}

/// `n` TX requests from `seed`, with source MACs ending in `tag` (so a wire frame names the
/// queue that sent it), for a function of `cfg`.
pub fn tx_traffic(seed: u64, n: usize, tag: u8, cfg: &NetConfig) -> Vec<TxFrame> {
    let mut rng = Rng(seed);
    let mtu = usize::from(cfg.mtu);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let src = [0x02, 0x20, 0, 0, tag, i as u8];
        let v6 = rng.below(2) == 1;
        let vlan = rng.below(4) == 0;
        let l4 = [6u8, 17, 1][rng.below(3) as usize];
        let ip_over = if v6 { 40 } else { 24 } + 8 + if l4 == 6 { 12 } else { 0 };
        let pick = rng.below(100);
        let (kind, hdr, frame) = match pick {
            // Plain frames, checksum filled in by the guest.
            0..=24 => {
                let size = if rng.below(10) == 0 {
                    mtu - ip_over
                } else {
                    rng.below(1400) as usize
                };
                let (f, ..) = packet(&mut rng, src, size, l4, v6, vlan);
                ("full_csum", hdr(0, 0, 0, 0, 0), f)
            }
            // NEEDS_CSUM: TCP and UDP leave the checksum to the device.
            25..=59 => {
                let l4 = if l4 == 1 { 17 } else { l4 };
                let size = if rng.below(10) == 0 {
                    mtu - ip_over
                } else {
                    rng.below(1400) as usize
                };
                let (mut f, l3, l4o, v4, proto) = packet(&mut rng, src, size, l4, v6, vlan);
                let field = if proto == 6 { 16 } else { 6 };
                partial(&mut f, l3, l4o, field, v4, proto);
                (
                    "needs_csum",
                    hdr(tx::HDR_F_NEEDS_CSUM, 0, 0, l4o as u16, field as u16),
                    f,
                )
            }
            // GSO: TSO over IPv4/IPv6, USO.
            60..=71 => {
                let l4 = if l4 == 1 { 6 } else { l4 };
                let size = 1500 + rng.below(20_000) as usize;
                let (mut f, l3, l4o, v4, proto) = packet(&mut rng, src, size, l4, v6, vlan);
                let field = if proto == 6 { 16 } else { 6 };
                partial(&mut f, l3, l4o, field, v4, proto);
                let gso = match (proto, v4) {
                    (6, true) => tx::GSO_TCPV4,
                    (6, false) => tx::GSO_TCPV6,
                    _ => tx::GSO_UDP_L4,
                };
                let hl = l4o + if proto == 6 { 20 } else { 8 };
                let mss = (mtu - (hl - l3)).min(400 + rng.below(1200) as usize);
                (
                    "gso",
                    hdr(
                        tx::HDR_F_NEEDS_CSUM,
                        gso,
                        mss as u16,
                        l4o as u16,
                        field as u16,
                    ),
                    f,
                )
            }
            // Raw Ethernet (an unknown ethertype), 14 bytes and up.
            72..=79 => {
                let len = 14 + rng.below(200) as usize;
                let mut f: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                f[..6].copy_from_slice(&[0x02, 0x10, 0, 0, 1, 2]);
                f[6..12].copy_from_slice(&src);
                f[12..14].copy_from_slice(&[0x88, 0xb5]);
                ("raw", hdr(0, 0, 0, 0, 0), f)
            }
            // Malformed.
            _ => {
                let mut f: Vec<u8> = (0..60 + rng.below(100) as usize)
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                f[6..12].copy_from_slice(&src);
                let (kind, h) = match pick {
                    80..=82 => {
                        f.truncate(rng.below(14) as usize);
                        ("runt", hdr(0, 0, 0, 0, 0))
                    }
                    83..=85 => {
                        f.resize(cfg.max_frame() + 1 + rng.below(100) as usize, 0x5a);
                        ("too_long", hdr(0, 0, 0, 0, 0))
                    }
                    86..=88 => {
                        let start = rng.below(f.len() as u64) as u16;
                        (
                            "bad_csum_offset",
                            hdr(1, 0, 0, start, f.len() as u16 - start - 1),
                        )
                    }
                    89..=91 => ("bad_flags", hdr(tx::HDR_F_DATA_VALID, 0, 0, 0, 0)),
                    92..=94 => (
                        "bad_gso",
                        hdr(
                            1,
                            [7u8, tx::GSO_UDP, tx::GSO_TCPV4][rng.below(3) as usize],
                            0,
                            14,
                            16,
                        ),
                    ),
                    _ => ("short_chain", hdr(0, 0, 0, 0, 0)),
                };
                (kind, h, f)
            }
        };
        let total = 12 + frame.len();
        let total = if kind == "short_chain" {
            1 + rng.below(11) as usize
        } else {
            total
        };
        let pieces = cut(&mut rng, total);
        out.push(TxFrame {
            hdr,
            frame,
            pieces,
            kind,
        });
    }
    out
}

/// What the wire must carry for `f` (frames in order; none when it is dropped).
pub fn expected_wire(cfg: &NetConfig, features: u64, f: &TxFrame) -> Vec<Vec<u8>> {
    if f.pieces.iter().sum::<usize>() < 12 {
        return Vec::new();
    }
    match tx::classify(cfg, features, &f.hdr, f.frame.len()) {
        tx::Verdict::Send { csum: c } => {
            let mut frame = f.frame.clone();
            if let Some((start, offset)) = c {
                csum::insert(&mut frame, start, offset);
            }
            vec![frame]
        }
        tx::Verdict::Gso => tx::segment(cfg, features, &f.hdr, &f.frame).unwrap_or_default(),
        tx::Verdict::Drop(_) => Vec::new(),
    }
}

/// Guest memory of a [`NetCard`] (64 MiB, all of it the tenants'), where its rings go (64 KiB
/// per queue from [`RINGS`]) and where buffers may go (from [`BUFS`]).
pub const CARD_MEM: u64 = 64 << 20;
pub const RINGS: u64 = 0x10_0000;
pub const BUFS: u64 = 0x100_0000;
/// Entries of every ring a [`NetCard`] sets up.
pub const RING_SIZE: u16 = 256;

/// A simulated card with net functions (vports) on one runtime, its uplink's wire and its
/// software switch: what the net tests, benches and the demo drive.
pub struct NetCard {
    pub dev: fpga_virtio_sim::SimDevice,
    pub mem: vm_memory::GuestMemoryMmap,
    pub rt: fpga_virtio_driver::runtime::Runtime,
    pub wire: std::sync::Arc<fpga_virtio_wire::Wire>,
    pub switch: std::sync::Arc<fpga_virtio_driver::net::Switch>,
    /// Per vport, in the order given: its CPU path's counters.
    pub counters: Vec<std::sync::Arc<fpga_virtio_driver::net::NetCounters>>,
}

impl std::fmt::Debug for NetCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetCard")
            .field("dev", &self.dev)
            .finish_non_exhaustive()
    }
}

impl NetCard {
    /// A card whose vports are `(function, config)` (every offered feature negotiated), the
    /// wire's far side `peer`, queues placed by the split policy `policy` (TOML).
    pub fn new(
        policy: &str,
        vports: &[(u8, NetConfig)],
        peer: fpga_virtio_wire::Peer,
    ) -> Result<Self, crate::WorkloadError> {
        use crate::mem_err as e;
        use fpga_virtio_driver::net::{features, NetFunction, Switch};
        use fpga_virtio_driver::runtime::{Rings, Runtime, SplitPolicy};
        use fpga_virtio_driver::virtq::DmaWindows;
        use fpga_virtio_sim::{Perm, SimConfig, SimDevice, Simulator};
        use fpga_virtio_wire::{LinkTiming, Wire};
        use std::sync::Arc;
        let mut sim = Simulator::new(SimConfig {
            memory: CARD_MEM,
            ..SimConfig::default()
        })?;
        sim.iommu_mut().map(0, 0, CARD_MEM, Perm::RW).map_err(e)?;
        let wire = Arc::new(Wire::new(LinkTiming::default()));
        wire.set_peer(peer);
        sim.attach_uplink(wire.clone());
        let mem = sim.memory().mem().clone();
        let dev = SimDevice::new(sim);
        fpga_virtio_sim::testing::enable_device(&dev)?;
        let switch = Switch::new(wire.clone());
        let mut functions = Vec::new();
        let mut counters = Vec::new();
        for &(func, config) in vports {
            let (f, c) = NetFunction {
                func,
                config,
                features: features::OFFERED,
                windows: DmaWindows::new(&[(RINGS, CARD_MEM)]).map_err(e)?,
                switch: switch.clone(),
            }
            .build()
            .map_err(e)?;
            functions.push(f);
            counters.push(c);
        }
        let rt = Runtime::start(
            &dev,
            mem.clone(),
            SplitPolicy::from_toml(policy).map_err(e)?,
            functions,
            Rings {
                punt: 0x0f_0000,
                punt_log2: 6,
                cpl: 0x0f_8000,
                cpl_log2: 6,
                punt_vector: fpga_virtio_hw::regs::NO_VECTOR,
            },
        )?;
        Ok(NetCard {
            dev,
            mem,
            rt,
            wire,
            switch,
            counters,
        })
    }

    /// Set up queue `qid` as virtqueue `vq` of function `func`, on a fresh ring of
    /// [`RING_SIZE`] entries at `RINGS + qid * 64 KiB`.
    pub fn add_queue(
        &mut self,
        qid: u16,
        func: u8,
        vq: u16,
    ) -> Result<fpga_virtio_sim::testing::SplitRing, crate::WorkloadError> {
        use fpga_virtio_driver::runtime::{QueueInfo, QueueSpec};
        let ring = fpga_virtio_sim::testing::SplitRing::new(
            &self.mem,
            RINGS + u64::from(qid) * 0x1_0000,
            u32::from(RING_SIZE),
            false,
        )?;
        self.rt.add_queue(
            &self.dev,
            QueueSpec {
                qid,
                info: QueueInfo {
                    func,
                    vq,
                    desc: ring.desc_addr(),
                    avail: ring.avail_addr(),
                    used: ring.used_addr(),
                    size: RING_SIZE,
                    indirect: false,
                    event_idx: false,
                    notification_data: true,
                },
                vector: fpga_virtio_hw::regs::NO_VECTOR,
                last_avail: 0,
                used_idx: 0,
                done_log: None,
            },
        )?;
        Ok(ring)
    }

    /// Run the device a turn and let the runtime do what is ready.
    pub fn step(&mut self) -> Result<(), crate::WorkloadError> {
        self.dev.lock().run(2000)?;
        self.rt.poll(&self.dev)?;
        Ok(())
    }
}

/// The net half of the demo: what to run.
#[derive(Clone, Debug)]
pub struct NetRunConfig {
    pub seed: u64,
    /// TX requests per TX queue.
    pub frames: usize,
}

/// The net half of the demo: what happened.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NetReport {
    pub seed: u64,
    /// TX requests the guest of vport A posted (two TX queues: the first FPGA-owned, the
    /// second CPU-owned).
    pub tx_requests: u64,
    /// Frames the FPGA's TX engine sent itself, and their bytes.
    pub fpga_frames: u64,
    pub fpga_bytes: u64,
    /// Frames the CPU sent: its own queue's, and the FPGA's punts (GSO segments included).
    pub cpu_frames: u64,
    pub cpu_gso_frames: u64,
    pub cpu_segments: u64,
    /// TX requests the FPGA punted, by reason.
    pub punts: std::collections::BTreeMap<&'static str, u64>,
    /// TX frames dropped, by reason.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    /// Frames vport B received (every frame A sent to it, through the FPGA and the wire or
    /// through the CPU's switch), and their bytes.
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub rx_merged: u64,
    /// Every frame A's traffic should put on B's queue arrived, once, byte for byte.
    pub verified: bool,
    /// Queues in their error state at the end (none expected), with the cause.
    pub queue_errors: Vec<(u16, String)>,
    pub simulated_cycles: u64,
    /// FPGA TX over the run's simulated time at 250 MHz.
    pub fpga_mpps_at_250mhz: f64,
    pub fpga_gbits_at_250mhz: f64,
    pub wall_seconds: f64,
}

/// Run the net half of the demo: vport A sends seeded traffic to vport B's MAC on two TX
/// queues, one FPGA-owned (its frames go out on the uplink, which loops back to the card) and
/// one CPU-owned (its frames cross the card's software switch); B receives on a CPU-owned RX
/// queue with mergeable buffers.
pub fn run(cfg: &NetRunConfig) -> Result<NetReport, crate::WorkloadError> {
    use crate::mem_err as e;
    use fpga_virtio_driver::net::features;
    use fpga_virtio_hw::regs::PuntReason;
    use fpga_virtio_sim::testing::{kick, Buffer, SplitRing};
    use fpga_virtio_wire::Peer;
    use vm_memory::{Bytes, GuestAddress};

    const RXBUF: u32 = 1024;
    const MAC_A: [u8; 6] = [0x02, 0x20, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [0x02, 0x20, 0, 0, 0, 0xb];
    let wall = std::time::Instant::now();
    let net_cfg = NetConfig::new(MAC_A, 1500, 2);
    let mut card = NetCard::new(
        "cpu_queues = [1, 2]",
        &[(0, net_cfg), (1, NetConfig::new(MAC_B, 1500, 1))],
        Peer::Loopback,
    )?;
    // qid 0: A's transmitq1 (FPGA), 1: A's transmitq2 (CPU), 2: B's receiveq1 (CPU).
    let mut rings = Vec::new();
    for (q, (func, vq)) in [(0u8, 1u16), (0, 3), (1, 0)].into_iter().enumerate() {
        rings.push(card.add_queue(q as u16, func, vq)?);
    }
    let NetCard {
        dev,
        mem,
        mut rt,
        switch: _,
        counters,
        ..
    } = card;
    // The traffic, addressed to B.
    let traffic: Vec<Vec<TxFrame>> = (0..2u8)
        .map(|q| {
            let mut t = tx_traffic(cfg.seed.wrapping_add(u64::from(q)), cfg.frames, q, &net_cfg);
            for f in &mut t {
                if f.frame.len() >= 6 {
                    f.frame[..6].copy_from_slice(&MAC_B);
                }
            }
            t
        })
        .collect();
    let mut want: Vec<Vec<u8>> = traffic
        .iter()
        .flatten()
        .flat_map(|f| expected_wire(&net_cfg, features::OFFERED, f))
        .collect();
    // B's receive buffers, kept topped up.
    let mut rx_bufs = std::collections::HashMap::new();
    let mut next_rx = 0u64;
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut merged = 0u64;
    let mut post_rx = |ring: &mut SplitRing,
                       bufs: &mut std::collections::HashMap<u16, u64>|
     -> Result<(), crate::WorkloadError> {
        while ring.free_descriptors() > 0 {
            // After the two TX queues' 8 MiB each.
            let addr = BUFS + 2 * (8 << 20) + (next_rx % 1024) * u64::from(RXBUF);
            next_rx += 1;
            let head = ring.add_chain(&[Buffer {
                addr,
                len: RXBUF,
                write: true,
            }])?;
            bufs.insert(head, addr);
        }
        ring.publish()?;
        Ok(kick(&dev, 2, ring.avail_idx())?)
    };
    post_rx(&mut rings[2], &mut rx_bufs)?;
    let start = dev.lock().cycle();
    let reap_rx = |ring: &mut SplitRing,
                   bufs: &std::collections::HashMap<u16, u64>,
                   got: &mut Vec<Vec<u8>>,
                   merged: &mut u64|
     -> Result<(), crate::WorkloadError> {
        let used = ring.reap()?;
        let mut it = used.into_iter();
        while let Some((head, len)) = it.next() {
            let mut b = vec![0u8; len as usize];
            mem.read_slice(&mut b, GuestAddress(bufs[&head]))
                .map_err(e)?;
            if b.len() < 12 {
                continue;
            }
            let hdr = VirtioNetHdrV1::from_le_bytes(b[..12].try_into().map_err(e)?);
            let mut frame = b[12..].to_vec();
            for got in 1..hdr.num_buffers {
                let Some((h, l)) = it.next() else {
                    return Err(crate::WorkloadError::RxBuffersMissing {
                        missing: hdr.num_buffers - got,
                        announced: hdr.num_buffers,
                    });
                };
                let mut c = vec![0u8; l as usize];
                mem.read_slice(&mut c, GuestAddress(bufs[&h])).map_err(e)?;
                frame.extend_from_slice(&c);
            }
            *merged += u64::from(hdr.num_buffers > 1);
            got.push(frame);
        }
        Ok(())
    };
    for i in (0..cfg.frames).step_by(16) {
        for (q, frames) in traffic.iter().enumerate() {
            let base = BUFS + q as u64 * (8 << 20);
            let mut at = base;
            let batch = &frames[i..(i + 16).min(frames.len())];
            for f in batch {
                let bytes = f.bytes();
                let mut bufs = Vec::new();
                let mut off = 0;
                for &len in &f.pieces {
                    mem.write_slice(&bytes[off..off + len], GuestAddress(at))
                        .map_err(e)?;
                    bufs.push(Buffer {
                        addr: at,
                        len: len as u32,
                        write: false,
                    });
                    at = (at + len as u64 + 64).next_multiple_of(64);
                    off += len;
                }
                rings[q].add_chain(&bufs)?;
            }
            rings[q].publish()?;
            kick(&dev, q as u32, rings[q].avail_idx())?;
        }
        for _ in 0..20_000 {
            if rings[0].in_flight() == 0 && rings[1].in_flight() == 0 {
                break;
            }
            dev.lock().run(2000)?;
            rt.poll(&dev)?;
            rings[0].reap()?;
            rings[1].reap()?;
            reap_rx(&mut rings[2], &rx_bufs, &mut got, &mut merged)?;
            post_rx(&mut rings[2], &mut rx_bufs)?;
        }
    }
    // Let the last frames arrive (the CPU workers deliver asynchronously: wait on the count,
    // bounded in wall-clock time, then a few turns more for anything extra).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut extra = 20;
    while extra > 0 {
        if std::time::Instant::now() >= deadline {
            // Not a mismatch to report as `verified: false`: the workers stopped delivering.
            return Err(crate::WorkloadError::Hang {
                batch: cfg.frames.div_ceil(16) as u64,
                missing: want.len().saturating_sub(got.len()),
                cycles: dev.lock().cycle() - start,
            });
        }
        dev.lock().run(2000)?;
        rt.poll(&dev)?;
        reap_rx(&mut rings[2], &rx_bufs, &mut got, &mut merged)?;
        post_rx(&mut rings[2], &mut rx_bufs)?;
        if got.len() >= want.len() {
            extra -= 1;
        }
    }
    let cycles = dev.lock().cycle() - start;
    let packets = dev.lock().packet_stats();
    let stats = rt.stats();
    let mut punts = std::collections::BTreeMap::new();
    for r in [PuntReason::NetTxGso, PuntReason::NetTxMalformed] {
        let n = stats.queues.get(&0).map_or(0, |q| q.punts.get(r));
        punts.insert(r.name(), n);
    }
    let a = counters[0].snapshot();
    let b = counters[1].snapshot();
    got.sort_unstable();
    want.sort_unstable();
    let secs = cycles as f64 / 250e6;
    Ok(NetReport {
        seed: cfg.seed,
        tx_requests: 2 * cfg.frames as u64,
        fpga_frames: packets.frames,
        fpga_bytes: packets.bytes,
        cpu_frames: a.tx_frames,
        cpu_gso_frames: a.tx_gso,
        cpu_segments: a.tx_segments,
        punts,
        drops: a.drops.into_iter().filter(|&(_, n)| n > 0).collect(),
        rx_frames: b.rx_frames,
        rx_bytes: b.rx_bytes,
        rx_merged: merged,
        verified: got == want,
        queue_errors: (0..3u16)
            .filter_map(|q| stats.queues.get(&q).and_then(|s| s.error()).map(|e| (q, e)))
            .collect(),
        simulated_cycles: cycles,
        fpga_mpps_at_250mhz: if secs > 0.0 {
            packets.frames as f64 / secs / 1e6
        } else {
            0.0
        },
        fpga_gbits_at_250mhz: if secs > 0.0 {
            packets.bytes as f64 * 8.0 / secs / 1e9
        } else {
            0.0
        },
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}
