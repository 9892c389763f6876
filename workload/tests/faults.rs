//! Faults on the CPU path fail only the affected requests: nothing is lost or completed twice.

use fpga_virtio_driver::runtime::{CpuQueueError, Path, SplitPolicy};
use fpga_virtio_driver::virtq::ChainError;
use fpga_virtio_hw::regs::QueueError;
use fpga_virtio_workload::{run, WorkloadConfig};

fn config(panic_queue: Option<u16>) -> WorkloadConfig {
    WorkloadConfig {
        seed: 11,
        requests: 200,
        queues: 3,
        depth: 4,
        capacity_sectors: 8 << 11,
        policy: SplitPolicy::all(Path::Fpga),
        max_hw_sectors: 32,
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

#[test]
fn a_worker_panic_on_a_cpu_owned_queue_fails_one_request_at_a_time() {
    let policy = |panic| WorkloadConfig {
        policy: SplitPolicy::from_toml("cpu_queues = [2]").unwrap(),
        max_hw_sectors: 32,
        panic_queue: panic,
        ..config(None)
    };
    let good = run(&policy(None), |_, _| {}).unwrap();
    let bad = run(&policy(Some(2)), |_, _| {}).unwrap();
    assert_eq!(bad.records.len(), 200, "every request completed");
    let mut failed = 0;
    for (g, b) in good.records.iter().zip(&bad.records) {
        if b.queue == 2 {
            assert_eq!((b.status, b.used_len), (0xff, 0), "request {}", b.id);
            failed += 1;
        } else {
            assert_eq!(
                (g.status, g.used_len, g.data_hash),
                (b.status, b.used_len, b.data_hash)
            );
        }
    }
    assert_eq!(bad.stats.queues[&2].worker_panics, failed);
    assert_eq!(
        bad.stats.queues[&2].broken, 0,
        "the queue itself kept running"
    );
}

#[test]
fn a_broken_chain_on_a_cpu_owned_queue_stops_only_that_queue() {
    use fpga_virtio_sim::testing::kick;
    use fpga_virtio_workload::Rig;
    let cfg = WorkloadConfig {
        policy: SplitPolicy::from_toml("cpu_queues = [1, 2]").unwrap(),
        ..config(None)
    };
    let mut rig = Rig::new(&cfg).unwrap();
    // Queue 1: a readable descriptor after a writable one (the guest broke the ring protocol).
    let ring = &mut rig.rings[1];
    let table = ring.desc_addr();
    ring.write_desc(table, 100, 0x20_0000, 16, 1 | 2, 101)
        .unwrap();
    ring.write_desc(table, 101, 0x20_1000, 16, 0, 0).unwrap();
    ring.push_raw_head(100).unwrap();
    ring.publish().unwrap();
    kick(&rig.dev, 1, rig.rings[1].avail_idx()).unwrap();
    for _ in 0..50 {
        rig.step(1000).unwrap();
    }
    let q1 = &rig.rt.stats().queues[&1];
    assert_eq!(q1.broken, 1);
    assert!(
        matches!(
            q1.last_error,
            Some(CpuQueueError::Chain(ChainError::BadDirection {
                index: 101
            }))
        ),
        "{q1:?}"
    );
    assert!(
        rig.rings[1].reap().unwrap().is_empty(),
        "nothing published on the broken queue"
    );
    // The FPGA queue and the other CPU queue go on.
    assert_eq!(rig.one(0, true, 8, 4096).unwrap().1, 0);
    assert_eq!(rig.one(2, false, 8, 4096).unwrap().1, 0);
    assert_eq!(rig.one(0, false, 8, 512).unwrap().1, 0);
}

#[test]
fn a_broken_chain_on_an_fpga_queue_shows_in_the_stats_and_stops_only_that_queue() {
    use fpga_virtio_sim::testing::kick;
    use fpga_virtio_workload::Rig;
    let cfg = WorkloadConfig {
        policy: SplitPolicy::from_toml("cpu_queues = [2]").unwrap(),
        ..config(None)
    };
    let mut rig = Rig::new(&cfg).unwrap();
    // Queue 1 (FPGA): a chain whose NEXT points outside the table.
    let ring = &mut rig.rings[1];
    let table = ring.desc_addr();
    ring.write_desc(table, 100, 0x20_0000, 16, 1, 500).unwrap();
    ring.push_raw_head(100).unwrap();
    ring.publish().unwrap();
    kick(&rig.dev, 1, rig.rings[1].avail_idx()).unwrap();
    rig.step(5_000).unwrap();
    assert_eq!(rig.rt.refresh_device_state(&rig.dev).unwrap(), 1);
    let err = rig.rt.stats().queues[&1].device_error.unwrap();
    assert_eq!(err.cause, Some(QueueError::BadIndex), "{err}");
    // The other FPGA queue and the CPU queue go on.
    assert_eq!(rig.one(0, true, 8, 4096).unwrap().1, 0);
    assert_eq!(rig.one(2, false, 8, 4096).unwrap().1, 0);
    assert_eq!(rig.rt.refresh_device_state(&rig.dev).unwrap(), 1);
    assert!(rig.rt.stats().queues[&0].device_error.is_none());
}

#[test]
fn a_new_runtime_on_a_running_device_takes_no_stale_punt_entries() {
    // The device's punt-ring producer index runs on across runtimes. A runtime started at an
    // index that is not a multiple of the ring size must not take the slots it did not see
    // written for new entries when the ring wraps (a vhost-user backend restarts its runtime on
    // every new memory table; this lost requests and wedged the ring before).
    use fpga_virtio_workload::Rig;
    let cfg = WorkloadConfig {
        queues: 2,
        depth: 1,
        capacity_sectors: 8 << 11,
        policy: SplitPolicy::all(Path::Cpu),
        ..WorkloadConfig::default()
    };
    let mut rig = Rig::new(&cfg).unwrap();
    for i in 0..3 {
        assert_eq!(rig.one(0, true, i * 8, 4096).unwrap().1, 0);
    }
    rig.restart_runtime().unwrap();
    // The punt ring has 64 slots: three laps of doorbell events on both queues.
    for i in 0..200u64 {
        let q = (i % 2) as u16;
        let (_, status) = rig.one(q, i % 3 == 0, (i % 64) * 8, 4096).unwrap();
        assert_eq!(status, 0, "request {i} on queue {q}");
    }
    // The last request's used entry can be seen before its worker's report is collected: let
    // the runtime take every report (a doorbell job reports its requests before it ends).
    for _ in 0..10_000 {
        rig.rt.poll(&rig.dev).unwrap();
        if rig.rt.outstanding() == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let s = rig.rt.stats();
    let served: u64 = s.queues.values().map(|q| q.requests).sum();
    assert_eq!(
        served, 200,
        "every request after the restart served exactly once"
    );
}

/// Issue 15: the device's IOMMU map holds the runtime's punt and completion rings beside the
/// guest's memory. A guest that points a read's data buffer at the punt ring (to forge punt
/// entries from disk data it wrote) fails its queue with dma_window on every path: the FPGA's
/// walk, a chain the FPGA punted for the CPU to walk (more descriptors than its segment table),
/// and a CPU-owned queue. No disk data lands in the rings and the other queues go on.
#[test]
fn a_buffer_on_the_runtimes_rings_fails_its_queue_on_every_path() {
    use fpga_virtio_hw::regs::cpl_ring;
    use fpga_virtio_sim::testing::{kick, Buffer};
    use fpga_virtio_workload::{Rig, CPL_RING, PUNT_RING};
    use vm_memory::{Bytes, GuestAddress};
    let cfg = WorkloadConfig {
        queues: 4,
        policy: SplitPolicy::from_toml("cpu_queues = [2]").unwrap(),
        ..config(None)
    };
    let mut rig = Rig::new(&cfg).unwrap();
    // The disk data the guest would smuggle in: a pattern no ring entry has.
    rig.store.write_at(0, &[0xa5; 8192]).unwrap();
    let base = 0x20_0000u64;
    let mut hdr = [0u8; 16]; // VIRTIO_BLK_T_IN, sector 0
    hdr[8..].copy_from_slice(&0u64.to_le_bytes());
    let buf = |addr: u64, len: u32, write: bool| Buffer { addr, len, write };
    for (q, target) in [(0u16, PUNT_RING), (1, PUNT_RING + 0x40), (2, CPL_RING)] {
        let h = base + u64::from(q) * 0x1_0000;
        rig.mem.write_slice(&hdr, GuestAddress(h)).unwrap();
        let mut chain = vec![buf(h, 16, false)];
        if q == 1 {
            // 16 data buffers of the tenant's first: the FPGA walks them, runs out of segment
            // table and punts; the CPU's walk meets the ring.
            chain.extend((0..16).map(|i| buf(h + 0x1000 + i * 0x200, 512, true)));
        }
        chain.push(buf(target, 512, true));
        chain.push(buf(h + 0x8000, 1, true));
        rig.rings[usize::from(q)].add_chain(&chain).unwrap();
        rig.rings[usize::from(q)].publish().unwrap();
        kick(
            &rig.dev,
            u32::from(q),
            rig.rings[usize::from(q)].avail_idx(),
        )
        .unwrap();
    }
    for _ in 0..100 {
        rig.step(1000).unwrap();
    }
    assert_eq!(rig.rt.refresh_device_state(&rig.dev).unwrap(), 2);
    for q in [0u16, 1] {
        let err = rig.rt.stats().queues[&q].device_error.unwrap();
        assert_eq!(err.cause, Some(QueueError::DmaWindow), "queue {q}: {err}");
        assert!(
            rig.rings[usize::from(q)].reap().unwrap().is_empty(),
            "queue {q}"
        );
    }
    let q2 = &rig.rt.stats().queues[&2];
    assert_eq!(q2.broken, 1);
    assert!(
        matches!(
            q2.last_error,
            Some(CpuQueueError::Chain(ChainError::OutsideWindow { .. }))
        ),
        "{q2:?}"
    );
    assert!(rig.rings[2].reap().unwrap().is_empty());
    // Nothing of the disk reached the runtime's rings, and the device saw no forged completion.
    let mut rings = vec![0u8; 0x1_0000];
    rig.mem
        .read_slice(&mut rings, GuestAddress(PUNT_RING))
        .unwrap();
    assert!(
        !rings.windows(64).any(|w| w.iter().all(|&b| b == 0xa5)),
        "disk data in the runtime's rings"
    );
    assert!(!cpl_ring::status::BAD_ENTRY.is_set(cpl_ring::STATUS.read(&rig.dev).unwrap()));
    // Queue 3 (FPGA) goes on.
    assert_eq!(rig.one(3, false, 8, 4096).unwrap().1, 0);
    assert_eq!(rig.one(3, true, 16, 4096).unwrap().1, 0);
}

/// Issue 15: a malformed chain gives the same queue error on both paths. The CPU's walker
/// applies the RTL's limits and windows, and a chain the FPGA punted (past its segment table)
/// and the CPU then found broken fails the queue with the CPU's cause, as if the FPGA had.
/// CPU-owned queues used to stop silently (virtio-queue's iterator just ends).
#[test]
fn a_malformed_chain_fails_its_queue_with_the_same_cause_on_both_paths() {
    use fpga_virtio_hw::regs::QueueError;
    use fpga_virtio_sim::testing::{kick, SplitRing};
    use fpga_virtio_workload::{Rig, PUNT_RING};
    const F_NEXT: u16 = 1;
    const F_WRITE: u16 = 2;
    const F_INDIRECT: u16 = 4;
    const A: u64 = 0x20_0000; // tenant memory
    type Break = fn(&mut SplitRing);
    let cases: [(&str, QueueError, Break); 9] = [
        ("loop", QueueError::DescLoop, |r| {
            let t = r.desc_addr();
            r.write_desc(t, 100, A, 16, F_NEXT, 101).unwrap();
            r.write_desc(t, 101, A, 16, F_NEXT, 100).unwrap();
            r.push_raw_head(100).unwrap();
        }),
        ("next outside the table", QueueError::BadIndex, |r| {
            r.write_desc(r.desc_addr(), 100, A, 16, F_NEXT, 500)
                .unwrap();
            r.push_raw_head(100).unwrap();
        }),
        ("head outside the table", QueueError::BadIndex, |r| {
            r.push_raw_head(500).unwrap();
        }),
        ("zero length", QueueError::ZeroLen, |r| {
            let t = r.desc_addr();
            r.write_desc(t, 100, A, 16, F_NEXT, 101).unwrap();
            r.write_desc(t, 101, A + 0x1000, 0, F_WRITE, 0).unwrap();
            r.push_raw_head(100).unwrap();
        }),
        ("readable after writable", QueueError::BadDirection, |r| {
            let t = r.desc_addr();
            r.write_desc(t, 100, A, 16, F_NEXT | F_WRITE, 101).unwrap();
            r.write_desc(t, 101, A + 0x1000, 16, 0, 0).unwrap();
            r.push_raw_head(100).unwrap();
        }),
        ("buffer on the punt ring", QueueError::DmaWindow, |r| {
            let t = r.desc_addr();
            r.write_desc(t, 100, A, 16, F_NEXT, 101).unwrap();
            r.write_desc(t, 101, PUNT_RING, 512, F_WRITE, 0).unwrap();
            r.push_raw_head(100).unwrap();
        }),
        ("nested indirect", QueueError::BadIndirect, |r| {
            let t = r.desc_addr();
            r.write_desc(t, 100, A + 0x2000, 16, F_INDIRECT, 0).unwrap();
            r.write_desc(A + 0x2000, 0, A + 0x3000, 16, F_INDIRECT, 0)
                .unwrap();
            r.push_raw_head(100).unwrap();
        }),
        (
            "more bytes than a chain may hold",
            QueueError::ChainTooLong,
            |r| {
                let t = r.desc_addr();
                r.write_desc(t, 100, A, 16, F_NEXT, 101).unwrap();
                r.write_desc(t, 101, A, 0x80_0000, F_NEXT | F_WRITE, 102)
                    .unwrap();
                r.write_desc(t, 102, A, 0x80_0000, F_WRITE, 0).unwrap();
                r.push_raw_head(100).unwrap();
            },
        ),
        ("avail->idx jumps", QueueError::AvailJump, |r| {
            let idx = r.avail_idx().wrapping_add(300);
            r.publish_idx(idx).unwrap();
        }),
    ];
    for (name, want, break_it) in cases {
        let cfg = WorkloadConfig {
            queues: 3,
            policy: SplitPolicy::from_toml("cpu_queues = [1]").unwrap(),
            ..config(None)
        };
        let mut rig = Rig::new(&cfg).unwrap();
        // Queue 0 on the FPGA, queue 1 on the CPU; queue 2 (FPGA) goes on.
        for q in 0..2u16 {
            break_it(&mut rig.rings[usize::from(q)]);
            if want != QueueError::AvailJump {
                rig.rings[usize::from(q)].publish().unwrap();
            }
            kick(
                &rig.dev,
                u32::from(q),
                rig.rings[usize::from(q)].avail_idx(),
            )
            .unwrap();
        }
        let mut got = [None, None];
        for _ in 0..200 {
            rig.step(1000).unwrap();
            for q in 0..2u16 {
                got[usize::from(q)] = rig.rt.queue_error(&rig.dev, q).unwrap();
            }
            if got.iter().all(Option::is_some) {
                break;
            }
        }
        assert_eq!(got, [Some(want), Some(want)], "{name}: [FPGA, CPU]");
        assert_eq!(rig.rt.queue_error(&rig.dev, 2).unwrap(), None, "{name}");
        assert_eq!(
            rig.one(2, false, 8, 4096).unwrap().1,
            0,
            "{name}: queue 2 goes on"
        );
    }
}
