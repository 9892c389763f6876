//! virtio-net TX, differential: the same seeded traffic (see `fpga_virtio_workload::net`) run
//! all-FPGA, all-CPU and split puts the same frames on the wire, byte for byte, each exactly
//! once; the FPGA keeps each queue's order; drops are counted by reason; an independent
//! checker (tshark, when installed; CI requires it) finds every IP, TCP and UDP checksum of
//! what went out valid.

use fpga_virtio_driver::net::{features, NetConfig};
use fpga_virtio_hw::regs::PuntReason;
use fpga_virtio_sim::testing::{kick, Buffer, SplitRing};
use fpga_virtio_wire::{Frame, Peer, Source};
use fpga_virtio_workload::net::{expected_wire, tx_traffic, NetCard, TxFrame, BUFS};
use std::collections::BTreeMap;
use vm_memory::{Bytes, GuestAddress};

/// Two TX queues: virtio queues 1 and 3 (transmitq1, transmitq2) of function 0.
const TXQ: [u16; 2] = [1, 3];

fn config() -> NetConfig {
    NetConfig::new([0x02, 0x20, 0, 0, 0, 1], 9000, 2)
}

fn features() -> u64 {
    features::OFFERED
}

struct Rig {
    card: NetCard,
    rings: Vec<SplitRing>,
}

fn rig(policy: &str) -> Rig {
    let mut card = NetCard::new(policy, &[(0, config())], Peer::Sink).unwrap();
    let rings = TXQ
        .into_iter()
        .enumerate()
        .map(|(q, vq)| card.add_queue(q as u16, 0, vq).unwrap())
        .collect();
    Rig { card, rings }
}

impl Rig {
    /// Send `frames` on queue `q` in batches of 16 (each piece of a chain in its own buffer),
    /// waiting for each batch's used entries (every used length must be 0).
    fn send(&mut self, q: usize, frames: &[TxFrame]) {
        let base = BUFS + q as u64 * (8 << 20);
        for batch in frames.chunks(16) {
            let mut at = base;
            let mut posted = Vec::new();
            for f in batch {
                let bytes = f.bytes();
                let mut bufs = Vec::new();
                let mut off = 0;
                for &len in &f.pieces {
                    // Odd buffer addresses: the engines take any alignment.
                    let addr = at + (off as u64 % 7);
                    self.card
                        .mem
                        .write_slice(&bytes[off..off + len], GuestAddress(addr))
                        .unwrap();
                    bufs.push(Buffer {
                        addr,
                        len: len as u32,
                        write: false,
                    });
                    at = (addr + len as u64 + 64).next_multiple_of(64);
                    off += len;
                }
                posted.push(self.rings[q].add_chain(&bufs).unwrap());
            }
            self.rings[q].publish().unwrap();
            kick(&self.card.dev, q as u32, self.rings[q].avail_idx()).unwrap();
            let mut used = BTreeMap::new();
            for _ in 0..20_000 {
                if used.len() == posted.len() {
                    break;
                }
                self.card.dev.lock().run(2000).unwrap();
                self.card.rt.poll(&self.card.dev).unwrap();
                for (head, len) in self.rings[q].reap().unwrap() {
                    used.insert(head, len);
                }
            }
            assert_eq!(used.len(), posted.len(), "queue {q}: the batch completes");
            assert!(used.values().all(|&l| l == 0), "TX used lengths are 0");
        }
    }
}

/// The queue a wire frame came from (its source MAC's fifth octet).
fn queue_of(f: &Frame) -> usize {
    usize::from(f.bytes[10])
}

struct Run {
    frames: Vec<Frame>,
    drops: u64,
    punts: BTreeMap<PuntReason, u64>,
}

fn run(policy: &str, traffic: &[Vec<TxFrame>]) -> Run {
    let mut rig = rig(policy);
    // Both queues' batches interleaved: their frames share the wire.
    for (q, frames) in traffic.iter().enumerate() {
        rig.send(q, frames);
    }
    let stats = rig.card.rt.stats();
    let mut punts = BTreeMap::new();
    for q in 0..traffic.len() as u16 {
        if let Some(qs) = stats.queues.get(&q) {
            for r in [PuntReason::NetTxGso, PuntReason::NetTxMalformed] {
                *punts.entry(r).or_default() += qs.punts.get(r);
            }
        }
    }
    Run {
        frames: rig.card.wire.take_sent(),
        drops: rig.card.counters[0].snapshot().dropped(),
        punts,
    }
}

#[test]
fn tx_is_the_same_on_the_wire_all_fpga_all_cpu_and_split() {
    let cfg = config();
    let traffic: Vec<Vec<TxFrame>> = (0..2u8)
        .map(|q| tx_traffic(0x7e7 + u64::from(q), 160, q, &cfg))
        .collect();
    let want: Vec<Vec<Vec<u8>>> = traffic
        .iter()
        .map(|fs| {
            fs.iter()
                .flat_map(|f| expected_wire(&cfg, features(), f))
                .collect()
        })
        .collect();
    let dropped: u64 = traffic
        .iter()
        .flatten()
        .filter(|f| expected_wire(&cfg, features(), f).is_empty())
        .count() as u64;
    let gso = traffic.iter().flatten().filter(|f| f.kind == "gso").count() as u64;
    // What the FPGA punts as GSO: the good GSO frames and the bad ones (the CPU drops those).
    let gso_punts = traffic
        .iter()
        .flatten()
        .filter(|f| {
            f.pieces.iter().sum::<usize>() >= 12
                && fpga_virtio_driver::net::tx::classify(&cfg, features(), &f.hdr, f.frame.len())
                    == fpga_virtio_driver::net::tx::Verdict::Gso
        })
        .count() as u64;
    assert!(
        dropped > 10 && gso > 10,
        "the traffic has both ({dropped} dropped, {gso} GSO)"
    );

    let runs = [
        ("fpga", run("", &traffic)),
        ("cpu", run("cpu_queues = [0, 1]", &traffic)),
        ("split", run("cpu_queues = [1]", &traffic)),
    ];
    for (name, r) in &runs {
        assert_eq!(r.drops, dropped, "{name}: drops counted");
        for (q, want) in want.iter().enumerate() {
            let got: Vec<&Frame> = r
                .frames
                .iter()
                .filter(|f| f.bytes.len() >= 12 && queue_of(f) == q)
                .collect();
            // Every frame exactly once, byte for byte.
            let mut a: Vec<&[u8]> = got.iter().map(|f| &f.bytes[..]).collect();
            let mut b: Vec<&[u8]> = want.iter().map(|f| &f[..]).collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a.len(), b.len(), "{name}: queue {q}: frames on the wire");
            assert!(a == b, "{name}: queue {q}: the same frames, byte for byte");
            // Order: the frames one path sent keep the queue's order.
            for path in [true, false] {
                let from = |f: &Frame| matches!(f.source, Source::Fpga { .. }) == path;
                let seq: Vec<&[u8]> = got
                    .iter()
                    .filter(|f| from(f))
                    .map(|f| &f.bytes[..])
                    .collect();
                let mut it = want.iter();
                for s in &seq {
                    assert!(
                        it.any(|w| &w[..] == *s),
                        "{name}: queue {q}: frames sent by the {} keep the queue's order",
                        if path { "FPGA" } else { "CPU" }
                    );
                }
            }
        }
        assert_eq!(
            r.frames.len(),
            want.iter().map(Vec::len).sum::<usize>(),
            "{name}: nothing else on the wire"
        );
    }
    // All-FPGA: the FPGA sent the plain frames and punted the rest with their reasons.
    let fpga = &runs[0].1;
    assert_eq!(fpga.punts[&PuntReason::NetTxGso], gso_punts);
    assert!(fpga.punts[&PuntReason::NetTxMalformed] > 0);
    let by_fpga = fpga
        .frames
        .iter()
        .filter(|f| matches!(f.source, Source::Fpga { .. }))
        .count();
    assert!(
        by_fpga > 150,
        "most frames went out through the FPGA ({by_fpga})"
    );
    assert!(runs[1]
        .1
        .frames
        .iter()
        .all(|f| matches!(f.source, Source::Cpu { .. })));

    check_with_tshark(&fpga.frames);
}

/// Write the frames as a pcap and have tshark check every IP, TCP and UDP checksum in it.
fn check_with_tshark(frames: &[Frame]) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let pcap = dir.join("net-tx.pcap");
    fpga_virtio_wire::write_pcap(std::fs::File::create(&pcap).unwrap(), frames).unwrap();
    let Some(text) = fpga_virtio_wire::tshark_fields(
        &pcap,
        &[],
        &[
            "ip.checksum.status",
            "tcp.checksum.status",
            "udp.checksum.status",
        ],
    ) else {
        return;
    };
    // Status 1 is good, 0 bad, 2 unverified (a field the frame does not have is empty).
    let (mut good, mut bad) = (0, 0);
    for line in text.lines() {
        for v in line.split([';', ',']) {
            match v.trim() {
                "1" => good += 1,
                "0" => bad += 1,
                _ => {}
            }
        }
    }
    assert_eq!(
        bad,
        0,
        "tshark found bad checksums in {}:\n{text}",
        pcap.display()
    );
    assert!(good > 200, "tshark verified {good} checksums");
}
