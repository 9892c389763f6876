//! The software virtio-net engine on one core, chains already walked (the per-frame cost a CPU
//! worker pays after dispatch): TX of a 64 B and a 1500 B frame with checksum offload to an
//! uplink that drops what it gets, TX of a 64 KiB TSO frame (segmented to 1500), and RX of a
//! 64 B and a 1500 B frame into one buffer (parse, checksum check, RSS, header, copy).
//!
//! `cargo bench -p fpga-virtio-benches --bench net_engine`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use fpga_virtio_driver::device::{ChainSource, DeviceEngine};
use fpga_virtio_driver::net::{features, parse, rx, tx, NetConfig, NetEngine, Switch};
use fpga_virtio_driver::virtq::Segment;
use fpga_virtio_hw::formats::VirtioNetHdrV1;
use fpga_virtio_wire::{Source, Uplink};
use std::hint::black_box;
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// An uplink that drops every frame (the cost measured is the engine's).
#[derive(Debug)]
struct Null;
impl Uplink for Null {
    fn transmit(&self, _: Source, frame: &[u8], _: u64) {
        black_box(frame);
    }
}

/// A TCP/IPv4 frame of `len` bytes with its checksum left to the device; the chain at 0x1000.
fn tx_chain(mem: &GuestMemoryMmap, len: usize, gso: Option<u16>) -> Vec<Segment> {
    let payload = vec![0x5au8; len - 54];
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1000, 80, 1, 1024)
        .write(&mut f, &payload)
        .unwrap();
    f[50] = 0;
    f[51] = 0;
    let hdr = VirtioNetHdrV1 {
        flags: tx::HDR_F_NEEDS_CSUM,
        gso_type: if gso.is_some() { tx::GSO_TCPV4 } else { 0 },
        hdr_len: 54,
        gso_size: gso.unwrap_or(0),
        csum_start: 34,
        csum_offset: 16,
        num_buffers: 0,
    };
    let mut b = hdr.to_le_bytes().to_vec();
    b.extend_from_slice(&f);
    mem.write_slice(&b, GuestAddress(0x1000)).unwrap();
    vec![Segment {
        addr: 0x1000,
        len: b.len() as u32,
        write: false,
    }]
}

struct OneChain(Vec<Segment>, bool);
impl ChainSource for OneChain {
    fn next_chain(&mut self) -> Option<Vec<Segment>> {
        (!std::mem::replace(&mut self.1, true)).then(|| self.0.clone())
    }
    fn give_back(&mut self, n: usize) {
        if n > 0 {
            self.1 = false;
        }
    }
}

fn bench(c: &mut Criterion) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    let cfg = NetConfig::new([2, 0, 0, 0, 0, 1], 1500, 1);
    let mut engine = NetEngine::new(0, cfg, features::OFFERED, Switch::new(Arc::new(Null)));
    let mut g = c.benchmark_group("net_engine");
    g.throughput(Throughput::Elements(1));
    for len in [64usize, 1500] {
        let chain = tx_chain(&mem, len, None);
        g.bench_function(format!("tx_{len}_csum"), |b| {
            b.iter(|| black_box(engine.serve(&mem, 1, black_box(&chain))))
        });
    }
    let tso = tx_chain(&mem, 65_000, Some(1460));
    g.bench_function("tx_64k_tso", |b| {
        b.iter(|| black_box(engine.serve(&mem, 1, black_box(&tso))))
    });
    for len in [64usize, 1500] {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .tcp(80, 1000, 1, 1024)
            .write(&mut f, &vec![0xa5u8; len - 54])
            .unwrap();
        let buf = vec![Segment {
            addr: 0x40000,
            len: 2048,
            write: true,
        }];
        let feats = rx::RxFeatures {
            mrg_rxbuf: true,
            guest_csum: true,
        };
        let rss = fpga_virtio_driver::net::rss::Rss::new(4);
        g.bench_function(format!("rx_{len}"), |b| {
            let mut used = Vec::with_capacity(4);
            b.iter(|| {
                used.clear();
                let meta = parse::parse(black_box(&f));
                black_box(rss.queue(&meta));
                let mut src = OneChain(buf.clone(), false);
                black_box(rx::deliver(&mem, &f, &meta, feats, &mut src, &mut used))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
