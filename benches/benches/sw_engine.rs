//! The software virtio-blk engine on one core: a 4 KiB read and a 4 KiB write against a RAM
//! store, chain already walked (the per-request cost a CPU worker pays after dispatch).
//!
//! `cargo bench -p fpga-virtio-benches --bench sw_engine`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fpga_virtio_driver::blk::{BlkConfig, Segment, SoftwareEngine};
use fpga_virtio_storage::RamStore;
use std::hint::black_box;
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

fn request(mem: &GuestMemoryMmap, t: u32, sector: u64) -> [Segment; 3] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&t.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    mem.write_slice(&h, GuestAddress(0x1000)).unwrap();
    [
        Segment {
            addr: 0x1000,
            len: 16,
            write: false,
        },
        Segment {
            addr: 0x2000,
            len: 4096,
            write: t == 0,
        },
        Segment {
            addr: 0x4000,
            len: 1,
            write: true,
        },
    ]
}

fn bench(c: &mut Criterion) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
    let store = Arc::new(RamStore::new(64 << 20));
    let mut engine = SoftwareEngine::new(store, BlkConfig::new(128 << 10, "bench"));
    let mut g = c.benchmark_group("sw_engine");
    g.throughput(Throughput::Elements(1));
    let read = request(&mem, 0, 8);
    g.bench_function("read_4k_ram", |b| {
        b.iter(|| black_box(engine.serve(&mem, black_box(&read))))
    });
    let write = request(&mem, 1, 8);
    g.bench_function("write_4k_ram", |b| {
        b.iter(|| black_box(engine.serve(&mem, black_box(&write))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
