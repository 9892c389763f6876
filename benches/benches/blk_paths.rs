//! A 4 KiB read, doorbell to used entry, through the FPGA path (the RTL blk engine) and through
//! the CPU path (a CPU-owned queue: doorbell event on the punt ring, a worker, virtio-queue), on
//! the simulated FPGA with default timing (DMA reads 250 cycles, storage reads 500 cycles).
//! Prints the simulated cycles of one read per path (deterministic on the FPGA path), then
//! criterion measures wall time per read (simulation cost included).
//!
//! `cargo bench -p fpga-virtio-benches --bench blk_paths`

use criterion::{criterion_group, criterion_main, Criterion};
use fpga_virtio_driver::runtime::{Path, SplitPolicy};
use fpga_virtio_workload::{Rig, WorkloadConfig};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("blk_paths");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for path in [Path::Fpga, Path::Cpu] {
        let mut rig = Rig::new(&WorkloadConfig {
            queues: 1,
            depth: 1,
            capacity_sectors: 1 << 16,
            policy: SplitPolicy::all(path),
            ..WorkloadConfig::default()
        })
        .expect("rig");
        assert_eq!(rig.one(0, true, 8, 4096).expect("write").1, 0);
        let (cycles, status) = rig.one(0, false, 8, 4096).expect("read");
        assert_eq!(status, 0);
        println!(
            "blk_paths: {} 4 KiB read: {cycles} simulated cycles ({:.2} us at 250 MHz)",
            path.as_str(),
            cycles as f64 / 250.0
        );
        g.bench_function(format!("{}_read_4k", path.as_str()), |b| {
            b.iter(|| rig.one(0, false, 8, 4096).expect("read"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
