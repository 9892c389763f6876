//! 30 s of the soak (`fpga-virtio soak --seconds 600` is the documented long run;
//! `FV_SOAK_SECS` changes this one): every queue of a split device kept full, no stall, no
//! queue over its depth, no memory growth after the warm-up.

use fpga_virtio_driver::runtime::SplitPolicy;
use fpga_virtio_workload::soak::soak;
use fpga_virtio_workload::WorkloadConfig;

#[test]
fn every_queue_saturated_stays_flat_and_never_stalls() {
    let secs = std::env::var("FV_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let cfg = WorkloadConfig {
        seed: 7,
        queues: 4,
        depth: 16,
        capacity_sectors: 16 << 11,
        policy: SplitPolicy::from_toml("cpu_queues = [3]").unwrap(),
        ..WorkloadConfig::default()
    };
    let r = soak(&cfg, secs, 16 << 10, |s| {
        eprintln!(
            "soak {:>4} s: done {:?}, rss {} KiB, device in flight {:?}, punt ring {}, outstanding {}, {} cycles",
            s.second, s.done, s.rss_kib, s.device_inflight, s.punt_ring, s.outstanding, s.simulated_cycles
        );
    })
    .unwrap();
    assert!(r.requests > 0);
    assert_eq!(r.samples.len() as u64, secs);
    eprintln!(
        "soak: {} requests ({} not OK, the malformed ones), RSS {} KiB after warm-up, {} KiB at most",
        r.requests, r.failed, r.rss_after_warmup_kib, r.rss_max_kib
    );
}
