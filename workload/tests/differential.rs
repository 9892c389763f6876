//! The software engine is the reference model: the same seeded workload run all-FPGA, all-CPU
//! and split gives byte-identical disk images and identical per-request results, and every
//! request completes exactly once.

use fpga_virtio_driver::runtime::{Path, SplitPolicy};
use fpga_virtio_workload::{run, Report, WorkloadConfig};
use std::collections::BTreeSet;

fn config(seed: u64, policy: SplitPolicy) -> WorkloadConfig {
    WorkloadConfig {
        seed,
        requests: 400,
        queues: 4,
        depth: 4,
        capacity_sectors: 16 << 11, // 16 MiB
        policy,
        max_hw_sectors: 32,
        ..WorkloadConfig::default()
    }
}

fn split() -> SplitPolicy {
    SplitPolicy::from_toml("default = \"fpga\"\ncpu_queues = [1, 3]\nworkers = 2\n").unwrap()
}

fn check_once(r: &Report, n: u64) {
    let ids: BTreeSet<u64> = r.records.iter().map(|x| x.id).collect();
    assert_eq!(ids.len() as u64, n, "every request completed exactly once");
    assert_eq!(r.records.len() as u64, n);
}

/// (id, queue, kind, status, used length, data hash): everything but timing.
fn results(r: &Report) -> Vec<(u64, u16, &'static str, u8, u32, u64)> {
    r.records
        .iter()
        .map(|x| (x.id, x.queue, x.kind, x.status, x.used_len, x.data_hash))
        .collect()
}

#[test]
fn all_fpga_all_cpu_and_split_agree() {
    for seed in [1, 2] {
        let fpga = run(&config(seed, SplitPolicy::all(Path::Fpga)), |_, _| {}).unwrap();
        let cpu = run(&config(seed, SplitPolicy::all(Path::Cpu)), |_, _| {}).unwrap();
        let mixed = run(&config(seed, split()), |_, _| {}).unwrap();
        for r in [&fpga, &cpu, &mixed] {
            check_once(r, 400);
            assert_eq!(r.dma_faults, 0);
        }
        assert_eq!(results(&fpga), results(&cpu), "seed {seed}: FPGA vs CPU");
        assert_eq!(
            results(&fpga),
            results(&mixed),
            "seed {seed}: FPGA vs split"
        );
        assert!(
            fpga.disk == cpu.disk,
            "seed {seed}: disk images differ (FPGA vs CPU)"
        );
        assert!(
            fpga.disk == mixed.disk,
            "seed {seed}: disk images differ (FPGA vs split)"
        );

        // The workload exercised what it claims: every kind, all three statuses, real data.
        let kinds: BTreeSet<&str> = fpga.records.iter().map(|x| x.kind).collect();
        for k in [
            "read",
            "write",
            "flush",
            "discard",
            "write_zeroes",
            "get_id",
        ] {
            assert!(kinds.contains(k), "seed {seed}: no {k} in the workload");
        }
        let statuses: BTreeSet<u8> = fpga.records.iter().map(|x| x.status).collect();
        assert!(
            statuses.is_superset(&[0, 1, 2].into()),
            "statuses {statuses:?}"
        );
        assert!(fpga.disk.iter().any(|&b| b != 0));
        // The FPGA served the fast path itself; the CPU only what was punted.
        let on_fpga: u64 = fpga.fpga_requests.iter().sum();
        let on_cpu: u64 = fpga.stats.queues.values().map(|q| q.requests).sum();
        assert_eq!(on_fpga + on_cpu, 400);
        assert!(on_fpga > 200, "FPGA served {on_fpga}");
        assert!(cpu.fpga_requests.iter().all(|&n| n == 0));
        assert_eq!(
            mixed.paths,
            vec![Path::Fpga, Path::Cpu, Path::Fpga, Path::Cpu]
        );
    }
}

#[test]
fn same_seed_same_report() {
    let a = run(&config(7, SplitPolicy::all(Path::Fpga)), |_, _| {}).unwrap();
    let b = run(&config(7, SplitPolicy::all(Path::Fpga)), |_, _| {}).unwrap();
    assert_eq!(results(&a), results(&b));
    assert_eq!(a.disk_hash(), b.disk_hash());
}

#[test]
fn cpu_owned_queues_interrupt_the_guest_through_the_device() {
    let with = run(&config(3, split()), |_, _| {}).unwrap();
    let without = run(
        &WorkloadConfig {
            interrupts: false,
            ..config(3, split())
        },
        |_, _| {},
    )
    .unwrap();
    assert_eq!(results(&with), results(&without));
    // Queues 1 and 3 are CPU-owned: their MSIs are the runtime's QUEUE.IRQ.raise requests.
    for q in 0..4 {
        assert!(
            with.msis[q] > 0,
            "queue {q} got no interrupt: {:?}",
            with.msis
        );
    }
    for q in [1u16, 3] {
        assert_eq!(with.stats.queues[&q].interrupts, with.msis[q as usize]);
    }
    assert!(without.msis.iter().all(|&n| n == 0));
}
