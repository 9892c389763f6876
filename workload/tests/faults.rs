//! Faults on the CPU path fail only the affected requests: nothing is lost or completed twice.

use fpga_virtio_driver::runtime::{Path, SplitPolicy};
use fpga_virtio_workload::{run, WorkloadConfig};

fn config(panic_queue: Option<u16>) -> WorkloadConfig {
    WorkloadConfig {
        seed: 11,
        requests: 200,
        queues: 3,
        depth: 4,
        capacity_sectors: 8 << 11,
        policy: SplitPolicy {
            max_hw_sectors: 32,
            ..SplitPolicy::all(Path::Fpga)
        },
        panic_queue,
        ..WorkloadConfig::default()
    }
}

#[test]
fn a_worker_panic_fails_only_the_punted_request_it_was_serving() {
    let good = run(&config(None), |_, _| {}).unwrap();
    let bad = run(&config(Some(1)), |_, _| {}).unwrap();
    assert_eq!(bad.records.len(), 200, "every request completed");
    let q1_punts = bad.stats.queues.get(&1).map_or(0, |s| s.worker_panics);
    assert!(q1_punts > 0, "the injected panics happened");
    for (g, b) in good.records.iter().zip(&bad.records) {
        assert_eq!(g.id, b.id);
        let punted = !matches!(g.kind, "read" | "write");
        if b.queue == 1 && punted {
            // Failed: no status written, used length 0, but completed exactly once.
            assert_eq!(
                (b.status, b.used_len),
                (0xff, 0),
                "request {} ({})",
                b.id,
                b.kind
            );
        } else {
            assert_eq!(
                (g.status, g.used_len, g.data_hash),
                (b.status, b.used_len, b.data_hash),
                "request {} on queue {} ({}) must not be affected",
                b.id,
                b.queue,
                b.kind
            );
        }
    }
    // Other workers and queues went on; the failures are visible in the stats.
    assert_eq!(
        bad.stats.queues[&1].worker_panics,
        bad.stats.queues[&1].errors
    );
    assert_eq!(bad.stats.queues.get(&0).map_or(0, |s| s.worker_panics), 0);
}
