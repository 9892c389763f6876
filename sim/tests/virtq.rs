//! The virtqueue engine through the RTL: the test plays a guest driver (split rings in guest
//! memory) and the runtime (programming the device through RegisterIo), the simulator plays the
//! FPGA. Seeded and deterministic.

use fpga_virtio_hw::regs::{self, global, queue, QueueError};
use fpga_virtio_sim::testing::{
    enable_device, kick, open_dma_windows, set_dma_window, setup_queue, setup_vector, Buffer,
    QueueSetup, SplitRing, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, Simulator};
use std::sync::{Arc, Mutex};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Mapped for DMA: [0, MAPPED). Anything above is outside the IOMMU map.
const MAPPED: u64 = 48 << 20;
const RINGS: u64 = 0x10_0000;
const DATA: u64 = 0x80_0000;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn device(timing: DmaTiming) -> (SimDevice, GuestMemoryMmap) {
    let mut sim = Simulator::new(SimConfig {
        timing,
        ..SimConfig::default()
    })
    .unwrap();
    sim.iommu_mut().map(0, 0, MAPPED, Perm::RW).unwrap();
    let mem = sim.memory().mem().clone();
    let dev = SimDevice::new(sim);
    enable_device(&dev).unwrap();
    open_dma_windows(&dev, 0, MAPPED).unwrap();
    (dev, mem)
}

fn fast() -> DmaTiming {
    DmaTiming {
        read_latency: 8,
        write_latency: 4,
        bytes_per_cycle: 0,
    }
}

fn status(dev: &SimDevice, q: u32) -> u32 {
    queue::q::STATUS.at(q).unwrap().read(dev).unwrap()
}

fn cause(dev: &SimDevice, q: u32) -> Option<QueueError> {
    let s = status(dev, q);
    queue::q::status::ERROR
        .is_set(s)
        .then(|| QueueError::try_from(queue::q::status::CAUSE.get(s)).unwrap())
}

/// Run until `ring` shows `n` used entries in total since `base`, or fail after `max` cycles.
fn wait_used(dev: &SimDevice, ring: &SplitRing, target: u16, max: u64) {
    let ok = dev
        .lock()
        .run_until(max, 64, |_| ring.used_idx().unwrap() == target)
        .unwrap();
    assert!(
        ok,
        "used->idx {} != {target} after {max} cycles; queue status {:#x}",
        ring.used_idx().unwrap(),
        status(dev, 0)
    );
}

/// Fill `len` bytes at `addr` with a pattern derived from `seed`; return it.
fn pattern(mem: &GuestMemoryMmap, addr: u64, len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let data: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
    mem.write_slice(&data, GuestAddress(addr)).unwrap();
    data
}

/// A chain of one device-readable and one device-writable buffer.
fn pair(rd: u64, rd_len: u32, wr: u64, wr_len: u32) -> [Buffer; 2] {
    [
        Buffer {
            addr: rd,
            len: rd_len,
            write: false,
        },
        Buffer {
            addr: wr,
            len: wr_len,
            write: true,
        },
    ]
}

fn read(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

/// Post `total` echo requests through a ring of `size`, keeping it full, with random lengths
/// and chain shapes; check every used entry and every byte. Returns the cycles taken.
fn echo_workload(
    dev: &SimDevice,
    mem: &GuestMemoryMmap,
    q: u32,
    size: u32,
    total: usize,
    seed: u64,
    indirect: bool,
) -> u64 {
    // Rings too small for a 3-descriptor chain use one indirect descriptor per request.
    let indirect = indirect || size < 4;
    let per_chain = if indirect { 1 } else { 3 };
    let max_in_flight = (size as usize).min(64);
    let base = RINGS + u64::from(q) * 0x10_0000;
    let mut ring = SplitRing::new(mem, base, size, false).unwrap();
    setup_queue(dev, q, &ring, QueueSetup::default()).unwrap();
    let mut rng = Rng(seed);
    let slot_bytes = 0x2000u64;
    let data_base = DATA + u64::from(q) * 0x40_0000;
    // Per slot (one chain in flight each): expected bytes and used length.
    let mut expect: std::collections::BTreeMap<u16, (u64, Vec<u8>, u32)> = Default::default();
    let (mut posted, mut done) = (0usize, 0usize);
    let start = dev.lock().cycle();
    let mut slot = 0u64;
    while done < total {
        while posted < total
            && ring.free_descriptors() >= per_chain
            && ring.in_flight() < max_in_flight
        {
            let area = data_base + (slot % 64) * slot_bytes;
            slot += 1;
            let rd_len = 1 + rng.below(700) as usize;
            let wr_len = 1 + rng.below(700) as usize;
            let src = pattern(mem, area, rd_len, rng.next());
            mem.write_slice(&vec![0u8; wr_len], GuestAddress(area + 0x1000))
                .unwrap();
            // Split the readable part in two when it is long enough: multi-descriptor chains.
            let mut bufs = Vec::new();
            if rd_len > 1 && rng.below(2) == 0 {
                let cut = 1 + rng.below(rd_len as u64 - 1) as usize;
                bufs.push(Buffer {
                    addr: area,
                    len: cut as u32,
                    write: false,
                });
                bufs.push(Buffer {
                    addr: area + cut as u64,
                    len: (rd_len - cut) as u32,
                    write: false,
                });
            } else {
                bufs.push(Buffer {
                    addr: area,
                    len: rd_len as u32,
                    write: false,
                });
            }
            bufs.push(Buffer {
                addr: area + 0x1000,
                len: wr_len as u32,
                write: true,
            });
            let head = if indirect {
                ring.add_indirect(area + 0x1c00, &bufs).unwrap()
            } else {
                ring.add_chain(&bufs).unwrap()
            };
            let n = rd_len.min(wr_len);
            expect.insert(head, (area + 0x1000, src[..n].to_vec(), n as u32));
            posted += 1;
        }
        if ring.publish().unwrap() {
            kick(dev, q, ring.avail_idx()).unwrap();
        }
        let target = ring.avail_idx();
        let _ = dev
            .lock()
            .run_until(200_000, 64, |_| ring.used_idx().unwrap() == target)
            .unwrap();
        let used = ring.reap().unwrap();
        assert!(
            !used.is_empty(),
            "queue {q} made no progress: status {:#x}",
            status(dev, q)
        );
        for (head, len) in used {
            let (addr, bytes, n) = expect.remove(&head).expect("used id is a chain in flight");
            assert_eq!(len, n, "used length of head {head}");
            assert_eq!(
                read(mem, addr, bytes.len()),
                bytes,
                "echoed bytes of head {head}"
            );
            done += 1;
        }
    }
    dev.lock().cycle() - start
}

#[test]
fn thousands_of_requests_wrap_small_rings() {
    let (dev, mem) = device(fast());
    echo_workload(&dev, &mem, 0, 4, 3000, 0x5eed, false);
    // Saved state is final once the disable handshake completed.
    queue::q::CTRL.at(0).unwrap().write(&dev, 0).unwrap();
    dev.lock().run(1_000).unwrap();
    assert!(!queue::q::status::ENABLED.is_set(status(&dev, 0)));
    let st = queue::q::STATE.at(0).unwrap().read(&dev).unwrap();
    assert_eq!(queue::q::state::LAST_AVAIL.get(st), 3000);
    assert_eq!(queue::q::state::USED_IDX.get(st), 3000);
    // Counters saw every request.
    let req = regs::counters::qstat::REQUESTS_LO
        .at(0)
        .unwrap()
        .read(&dev)
        .unwrap();
    assert_eq!(req, 3000);
    assert_eq!(cause(&dev, 0), None);
}

#[test]
fn indirect_chains() {
    let (dev, mem) = device(fast());
    echo_workload(&dev, &mem, 1, 16, 500, 0x1d1, true);
    assert_eq!(cause(&dev, 1), None);
}

#[test]
fn queue_sizes_from_1_to_32768() {
    let (dev, mem) = device(fast());
    for (q, log) in (0..=15u32).enumerate() {
        let size = 1u32 << log;
        echo_workload(&dev, &mem, q as u32 % 8, size, 40, u64::from(size), false);
    }
}

#[test]
fn several_queues_at_once() {
    let (dev, mem) = device(fast());
    let mut rings = Vec::new();
    let mut rng = Rng(77);
    let mut expect = Vec::new();
    for q in 0..6u32 {
        let mut ring = SplitRing::new(&mem, RINGS + u64::from(q) * 0x10_0000, 16, false).unwrap();
        setup_queue(&dev, q, &ring, QueueSetup::default()).unwrap();
        let mut e = Vec::new();
        for k in 0..8u64 {
            let area = DATA + u64::from(q) * 0x40_0000 + k * 0x2000;
            let len = 1 + rng.below(300) as usize;
            let src = pattern(&mem, area, len, rng.next());
            let head = ring
                .add_chain(&pair(area, len as u32, area + 0x1000, 512))
                .unwrap();
            e.push((head, area + 0x1000, src));
        }
        ring.publish().unwrap();
        rings.push(ring);
        expect.push(e);
    }
    for (q, ring) in rings.iter().enumerate() {
        kick(&dev, q as u32, ring.avail_idx()).unwrap();
    }
    let ok = dev
        .lock()
        .run_until(500_000, 64, |_| {
            rings.iter().all(|r| r.used_idx().unwrap() == 8)
        })
        .unwrap();
    assert!(ok);
    for (q, ring) in rings.iter_mut().enumerate() {
        let used = ring.reap().unwrap();
        assert_eq!(used.len(), 8);
        for (head, addr, src) in &expect[q] {
            let (_, len) = used.iter().find(|u| u.0 == *head).unwrap();
            assert_eq!(*len as usize, src.len());
            assert_eq!(read(&mem, *addr, src.len()), *src);
        }
    }
}

/// A malformed chain on queue 0 puts queue 0 alone into its error state with `want`; queue 1
/// keeps working.
fn malformed(want: QueueError, break_it: impl FnOnce(&mut SplitRing, &GuestMemoryMmap)) {
    let (dev, mem) = device(fast());
    let mut bad = SplitRing::new(&mem, RINGS, 8, false).unwrap();
    let mut good = SplitRing::new(&mem, RINGS + 0x10_0000, 8, false).unwrap();
    break_it(&mut bad, &mem);
    setup_queue(
        &dev,
        0,
        &bad,
        QueueSetup {
            indirect: false,
            ..Default::default()
        },
    )
    .unwrap();
    setup_queue(&dev, 1, &good, QueueSetup::default()).unwrap();
    kick(&dev, 0, bad.avail_idx()).unwrap();
    let ok = dev.lock().run_until(100_000, 64, |_| false).unwrap();
    assert!(!ok);
    assert_eq!(cause(&dev, 0), Some(want), "status {:#x}", status(&dev, 0));
    assert_eq!(
        bad.used_idx().unwrap(),
        0,
        "nothing published for a broken chain"
    );
    // The other queue goes on.
    let src = pattern(&mem, DATA, 64, 3);
    good.add_chain(&pair(DATA, 64, DATA + 0x1000, 64)).unwrap();
    good.publish().unwrap();
    kick(&dev, 1, good.avail_idx()).unwrap();
    wait_used(&dev, &good, 1, 100_000);
    assert_eq!(read(&mem, DATA + 0x1000, 64), src);
    assert_eq!(cause(&dev, 1), None);
    let errors = regs::counters::qstat::ERRORS
        .at(0)
        .unwrap()
        .read(&dev)
        .unwrap();
    assert_eq!(errors, 1);
    // Disabled, the queue keeps its error (the driver reads it after the handshake: a request
    // that drained after the disable may have caused it); enabled again, it starts clean.
    queue::q::CTRL.at(0).unwrap().write(&dev, 0).unwrap();
    dev.lock().run(10).unwrap();
    assert_eq!(cause(&dev, 0), Some(want));
    assert_eq!(status(&dev, 0) & queue::q::status::ENABLED.mask(), 0);
    let fresh = SplitRing::new(&mem, RINGS + 0x2_0000, 8, false).unwrap();
    setup_queue(&dev, 0, &fresh, QueueSetup::default()).unwrap();
    dev.lock().run(10).unwrap();
    assert_eq!(cause(&dev, 0), None);
}

#[test]
fn descriptor_loop_breaks_only_its_queue() {
    malformed(QueueError::DescLoop, |r, _| {
        // 0 -> 1 -> 0 ...
        r.write_desc(r.desc_addr(), 0, DATA, 16, VRING_DESC_F_NEXT, 1)
            .unwrap();
        r.write_desc(r.desc_addr(), 1, DATA, 16, VRING_DESC_F_NEXT, 0)
            .unwrap();
        r.push_raw_head(0).unwrap();
        r.publish().unwrap();
    });
}

#[test]
fn buffer_outside_the_iommu_map_breaks_only_its_queue() {
    let (dev, mem) = device(fast());
    // The function's window reaches past the IOMMU map (memory the tenant was given and then
    // lost, say): the walk lets the buffer through and the IOMMU refuses the DMA.
    set_dma_window(&dev, 0, 0, 0, 1 << 40).unwrap();
    let mut ring = SplitRing::new(&mem, RINGS, 8, false).unwrap();
    setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
    ring.add_chain(&pair(MAPPED + 0x1000, 64, DATA, 64))
        .unwrap();
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    dev.lock().run(20_000).unwrap();
    assert_eq!(cause(&dev, 0), Some(QueueError::DmaFault));
    // The IOMMU saw it, and so does the device's fault report.
    let faults = dev.lock().faults().to_vec();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].iova, MAPPED + 0x1000);
    assert!(!faults[0].write);
    let st = global::STATUS.read(&dev).unwrap();
    assert!(global::status::DMA_FAULT.is_set(st));
    assert_eq!(
        global::DMA_FAULT_ADDR_LO.read(&dev).unwrap(),
        (MAPPED + 0x1000) as u32
    );
    assert_eq!(global::DMA_FAULT_INFO.read(&dev).unwrap() & 0xffff, 0);
    assert_eq!(
        regs::counters::qstat::DMA_FAULTS
            .at(0)
            .unwrap()
            .read(&dev)
            .unwrap(),
        1
    );
    // Write-1-to-clear.
    global::STATUS
        .write(&dev, global::status::DMA_FAULT.mask())
        .unwrap();
    assert!(!global::status::DMA_FAULT.is_set(global::STATUS.read(&dev).unwrap()));
}

/// Tenant isolation (issue 15): the device's IOMMU map holds the backend's memory too, so what
/// keeps a guest out of it is its function's DMA windows. A buffer or an indirect table outside
/// them fails the queue (dma_window) before any DMA of the chain: nothing read from there
/// reaches the guest, nothing is written there. Another function goes on.
#[test]
fn a_buffer_outside_its_functions_windows_fails_the_queue_before_any_dma() {
    let (dev, mem) = device(fast());
    // Function 0 owns [DATA, DATA + 1 MiB); PRIVATE is mapped for the device, not function 0's.
    const PRIVATE: u64 = 0x40_0000;
    set_dma_window(&dev, 0, 0, DATA, DATA + 0x10_0000).unwrap();
    let secret = pattern(&mem, PRIVATE, 0x1000, 7);
    let ring_at = |q: u64| RINGS + q * 0x1_0000;
    let mut rings: Vec<SplitRing> = (0..5)
        .map(|q| SplitRing::new(&mem, ring_at(q), 8, false).unwrap())
        .collect();
    for (q, ring) in rings.iter().enumerate() {
        let func = u32::from(q == 4);
        setup_queue(
            &dev,
            q as u32,
            ring,
            QueueSetup {
                func,
                ..QueueSetup::default()
            },
        )
        .unwrap();
    }
    // Inside the window: served.
    let data = pattern(&mem, DATA, 64, 1);
    rings[0]
        .add_chain(&pair(DATA, 64, DATA + 0x1000, 64))
        .unwrap();
    // Queue 1: the data to read is the backend's (it would come back in the guest's buffer).
    let head1 = rings[1]
        .add_chain(&pair(PRIVATE, 64, DATA + 0x2000, 64))
        .unwrap();
    // Queue 2: the buffer to write is the backend's (a forged punt entry, say).
    rings[2]
        .add_chain(&pair(DATA, 64, PRIVATE + 0x100, 64))
        .unwrap();
    // Queue 3: an indirect table there, and a buffer running off the window's end.
    rings[3]
        .add_indirect(PRIVATE + 0x200, &pair(DATA, 64, DATA + 0x3000, 64))
        .unwrap();
    for (q, ring) in rings.iter_mut().enumerate().take(4) {
        ring.publish().unwrap();
        kick(&dev, q as u32, ring.avail_idx()).unwrap();
    }
    wait_used(&dev, &rings[0], 1, 50_000);
    dev.lock().run(20_000).unwrap();
    assert_eq!(read(&mem, DATA + 0x1000, 64), data);
    for q in 1..4 {
        assert_eq!(cause(&dev, q), Some(QueueError::DmaWindow), "queue {q}");
        assert_eq!(rings[q as usize].used_idx().unwrap(), 0, "queue {q}");
    }
    assert_ne!(read(&mem, DATA + 0x2000, 64), secret[..64]);
    // (The indirect table at PRIVATE + 0x200 was put there by the test.)
    assert_eq!(
        read(&mem, PRIVATE, 0x200),
        secret[..0x200],
        "the backend's memory is untouched"
    );
    assert!(
        dev.lock().faults().is_empty(),
        "refused before the IOMMU saw anything"
    );
    assert_eq!(
        queue::q::ERR_INFO.at(1).unwrap().read(&dev).unwrap(),
        u32::from(head1),
        "the detail names the descriptor"
    );
    // A buffer that starts inside and ends outside, and one whose end wraps.
    for (k, (addr, len)) in [(DATA + 0x10_0000 - 32, 64u32), (u64::MAX - 31, 64)]
        .into_iter()
        .enumerate()
    {
        let q = 5 + k as u32;
        let mut ring = SplitRing::new(&mem, ring_at(u64::from(q)), 8, false).unwrap();
        setup_queue(&dev, q, &ring, QueueSetup::default()).unwrap();
        ring.add_chain(&pair(DATA, 64, addr, len)).unwrap();
        ring.publish().unwrap();
        kick(&dev, q, ring.avail_idx()).unwrap();
        dev.lock().run(20_000).unwrap();
        assert_eq!(cause(&dev, q), Some(QueueError::DmaWindow), "queue {q}");
    }
    // Function 1, whose window holds PRIVATE, goes on; so does queue 0.
    rings[4]
        .add_chain(&pair(PRIVATE, 64, DATA + 0x4000, 64))
        .unwrap();
    rings[4].publish().unwrap();
    kick(&dev, 4, rings[4].avail_idx()).unwrap();
    wait_used(&dev, &rings[4], 1, 50_000);
    assert_eq!(read(&mem, DATA + 0x4000, 64), secret[..64]);
    rings[0]
        .add_chain(&pair(DATA, 64, DATA + 0x5000, 64))
        .unwrap();
    rings[0].publish().unwrap();
    kick(&dev, 0, rings[0].avail_idx()).unwrap();
    wait_used(&dev, &rings[0], 2, 50_000);
    assert_eq!(cause(&dev, 0), None);
}

/// A function whose windows were never set reaches nothing (the reset value disables them).
#[test]
fn a_function_without_windows_reaches_nothing() {
    let (dev, mem) = device(fast());
    for w in 0..regs::DMA_WINDOWS_PER_FUNCTION {
        set_dma_window(&dev, 2, w, 0, 0).unwrap();
    }
    let mut ring = SplitRing::new(&mem, RINGS, 8, false).unwrap();
    setup_queue(
        &dev,
        0,
        &ring,
        QueueSetup {
            func: 2,
            ..QueueSetup::default()
        },
    )
    .unwrap();
    ring.add_chain(&pair(DATA, 64, DATA + 0x1000, 64)).unwrap();
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    dev.lock().run(20_000).unwrap();
    assert_eq!(cause(&dev, 0), Some(QueueError::DmaWindow));
}

#[test]
fn avail_idx_jump_breaks_only_its_queue() {
    malformed(QueueError::AvailJump, |r, _| {
        r.publish_idx(9).unwrap(); // size 8, nothing added
    });
}

#[test]
fn zero_length_and_bad_direction_and_bad_index() {
    malformed(QueueError::ZeroLen, |r, _| {
        r.write_desc(r.desc_addr(), 0, DATA, 0, 0, 0).unwrap();
        r.push_raw_head(0).unwrap();
        r.publish().unwrap();
    });
    malformed(QueueError::BadDirection, |r, _| {
        r.write_desc(
            r.desc_addr(),
            0,
            DATA,
            8,
            VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
            1,
        )
        .unwrap();
        r.write_desc(r.desc_addr(), 1, DATA, 8, 0, 0).unwrap();
        r.push_raw_head(0).unwrap();
        r.publish().unwrap();
    });
    malformed(QueueError::BadIndex, |r, _| {
        r.push_raw_head(8).unwrap();
        r.publish().unwrap();
    });
    malformed(QueueError::BadIndirect, |r, _| {
        // INDIRECT without the feature negotiated on this queue.
        r.write_desc(
            r.desc_addr(),
            0,
            DATA,
            32,
            fpga_virtio_sim::testing::VRING_DESC_F_INDIRECT,
            0,
        )
        .unwrap();
        r.push_raw_head(0).unwrap();
        r.publish().unwrap();
    });
}

/// Interrupts: one per used entry without EVENT_IDX unless NO_INTERRUPT; with EVENT_IDX only
/// when used_event says so. And never before the used entry is visible in memory. With slow DMA
/// reads (the default timing) several publishes' decisions are in flight at once, each decided
/// on its own used->idx.
#[test]
fn interrupts_follow_event_idx_and_no_interrupt() {
    for (timing, event_idx) in [
        (fast(), false),
        (fast(), true),
        (DmaTiming::default(), false),
        (DmaTiming::default(), true),
    ] {
        let (dev, mem) = device(timing);
        let mut ring = SplitRing::new(&mem, RINGS, 16, event_idx).unwrap();
        setup_vector(&dev, 3).unwrap();
        setup_queue(
            &dev,
            0,
            &ring,
            QueueSetup {
                event_idx,
                vector: 3,
                ..Default::default()
            },
        )
        .unwrap();
        let irq = dev.lock().irqfd(3).unwrap();
        // At each MSI, used->idx must already cover every entry the device wrote.
        let used_addr = ring.used_addr();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        dev.lock().set_msi_hook(move |m, _| {
            let idx: u16 = m.read_obj(GuestAddress(used_addr + 2)).unwrap();
            s2.lock().unwrap().push(idx);
        });
        let post = |ring: &mut SplitRing, n: usize| {
            for k in 0..n {
                let a = DATA + (k as u64) * 0x100;
                ring.add_chain(&pair(a, 16, a + 0x80, 16)).unwrap();
            }
            if ring.publish().unwrap() {
                kick(&dev, 0, ring.avail_idx()).unwrap();
            }
        };
        // Interrupts wanted: without EVENT_IDX one per entry; with it, used_event = 3 asks for
        // exactly the interrupt after the fourth entry.
        ring.set_interrupt(true, 3).unwrap();
        post(&mut ring, 8);
        wait_used(&dev, &ring, 8, 100_000);
        dev.lock().run(2_000).unwrap();
        let msis = dev.lock().msis().len();
        assert_eq!(msis, if event_idx { 1 } else { 8 }, "event_idx={event_idx}");
        assert_eq!(irq.read().unwrap(), msis as u64);
        for (i, idx) in seen.lock().unwrap().iter().enumerate() {
            // The k-th interrupt announces entry k (without EVENT_IDX: used->idx >= k + 1), or
            // the fourth (with it: used->idx >= 4).
            let want = if event_idx { 4 } else { i + 1 };
            assert!(*idx as usize >= want, "MSI {i} saw used->idx {idx}");
        }
        ring.reap().unwrap();
        // Suppressed: NO_INTERRUPT, or a used_event far ahead.
        ring.set_interrupt(false, 1000).unwrap();
        post(&mut ring, 8);
        wait_used(&dev, &ring, 16, 100_000);
        dev.lock().run(2_000).unwrap();
        assert_eq!(
            dev.lock().msis().len(),
            msis,
            "suppressed, event_idx={event_idx}"
        );
        ring.reap().unwrap();
    }
}

#[test]
fn masked_vector_sets_pending_bit_and_fires_on_unmask() {
    let (dev, mem) = device(fast());
    let mut ring = SplitRing::new(&mem, RINGS, 8, false).unwrap();
    setup_vector(&dev, 5).unwrap();
    let ctrl = regs::msix_table::vec::CTRL.at(5).unwrap();
    ctrl.write(&dev, 1).unwrap(); // mask
    setup_queue(
        &dev,
        0,
        &ring,
        QueueSetup {
            vector: 5,
            ..Default::default()
        },
    )
    .unwrap();
    ring.add_chain(&pair(DATA, 8, DATA + 0x100, 8)).unwrap();
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    wait_used(&dev, &ring, 1, 100_000);
    dev.lock().run(100).unwrap();
    assert!(dev.lock().msis().is_empty());
    let pba = regs::msix_pba::pba::PENDING.at(0).unwrap();
    assert_eq!(pba.read(&dev).unwrap(), 1 << 5);
    ctrl.write(&dev, 0).unwrap();
    dev.lock().run(500).unwrap();
    assert_eq!(dev.lock().msis().len(), 1);
    assert_eq!(dev.lock().msis()[0].data, 5);
    assert_eq!(pba.read(&dev).unwrap(), 0);
}

/// Disable is a handshake: STATUS.enabled drops once in-flight work drained, and the saved
/// state can be read, changed and restored.
#[test]
fn disable_handshake_and_saved_state() {
    let (dev, mem) = device(DmaTiming::default());
    let mut ring = SplitRing::new(&mem, RINGS, 8, false).unwrap();
    setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
    for k in 0..3u64 {
        ring.add_chain(&pair(DATA + k * 0x100, 32, DATA + 0x1000 + k * 0x100, 32))
            .unwrap();
    }
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    // Disable while the second request is under way.
    assert!(dev
        .lock()
        .run_until(100_000, 1, |_| ring.used_idx().unwrap() == 1)
        .unwrap());
    dev.lock().run(600).unwrap();
    queue::q::CTRL.at(0).unwrap().write(&dev, 0).unwrap();
    // While a request is in flight the queue stays enabled; then the handshake completes.
    let s0 = status(&dev, 0);
    if queue::q::status::INFLIGHT.get(s0) != 0 {
        assert!(queue::q::status::ENABLED.is_set(s0));
    }
    dev.lock().run(20_000).unwrap();
    assert_eq!(status(&dev, 0) & queue::q::status::ENABLED.mask(), 0);
    assert_eq!(status(&dev, 0) & queue::q::status::INFLIGHT.mask(), 0);
    let st = queue::q::STATE.at(0).unwrap().read(&dev).unwrap();
    let used = ring.used_idx().unwrap();
    assert_eq!(queue::q::state::USED_IDX.get(st), u32::from(used));
    assert_eq!(queue::q::state::LAST_AVAIL.get(st), u32::from(used));
    // Nothing moves while disabled.
    dev.lock().run(5_000).unwrap();
    assert_eq!(ring.used_idx().unwrap(), used);
    // Re-enable with the saved state: the rest completes, each request exactly once.
    queue::q::STATE.at(0).unwrap().write(&dev, st).unwrap();
    let ctrl = queue::q::ctrl::ENABLE.mask() | queue::q::ctrl::INDIRECT.mask();
    queue::q::CTRL.at(0).unwrap().write(&dev, ctrl).unwrap();
    wait_used(&dev, &ring, 3, 200_000);
    let reaped = ring.reap().unwrap();
    assert_eq!(reaped.len(), 3);
}

#[test]
fn same_seed_same_cycles() {
    let run = || {
        let (dev, mem) = device(DmaTiming::default());
        echo_workload(&dev, &mem, 0, 8, 200, 42, false)
    };
    let a = run();
    let b = run();
    assert_eq!(a, b);
    assert!(a > 0);
}

/// FV_SIM_TRACE / SimConfig::trace writes an FST waveform.
#[test]
fn waveform_on_request() {
    let path = std::env::temp_dir().join(format!("fv-trace-{}.fst", std::process::id()));
    {
        let sim = Simulator::new(SimConfig {
            trace: Some(path.clone()),
            ..SimConfig::default()
        })
        .unwrap();
        let dev = SimDevice::new(sim);
        global::SCRATCH.write(&dev, 1).unwrap();
        dev.lock().run(100).unwrap();
    }
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.len() > 100, "FST file of {} bytes", meta.len());
    std::fs::remove_file(&path).unwrap();
}

/// A used ring the device may not write (read-only IOMMU window): the used-ring writes fault,
/// the queue fails with dma_fault, and no interrupt announces the entry that never landed.
#[test]
fn used_ring_write_fault_fails_the_queue_without_an_interrupt() {
    let mut sim = Simulator::new(SimConfig {
        timing: fast(),
        ..SimConfig::default()
    })
    .unwrap();
    sim.iommu_mut().map(RINGS, RINGS, 0x1000, Perm::RO).unwrap();
    sim.iommu_mut()
        .map(DATA, DATA, 0x10_0000, Perm::RW)
        .unwrap();
    let mem = sim.memory().mem().clone();
    let dev = SimDevice::new(sim);
    enable_device(&dev).unwrap();
    open_dma_windows(&dev, 0, MAPPED).unwrap();
    setup_vector(&dev, 1).unwrap();
    let mut ring = SplitRing::new(&mem, RINGS, 8, false).unwrap();
    setup_queue(
        &dev,
        0,
        &ring,
        QueueSetup {
            vector: 1,
            ..Default::default()
        },
    )
    .unwrap();
    ring.add_chain(&pair(DATA, 32, DATA + 0x1000, 32)).unwrap();
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    dev.lock().run(5_000).unwrap();
    assert_eq!(cause(&dev, 0), Some(QueueError::DmaFault));
    assert_eq!(ring.used_idx().unwrap(), 0);
    assert!(dev.lock().msis().is_empty());
    let faults = dev.lock().faults().to_vec();
    assert!(
        faults.iter().all(|f| f.write && f.iova >= ring.used_addr()),
        "{faults:?}"
    );
    assert!(!faults.is_empty());
}

/// Resetting one function disables and drains its queues and zeroes their saved state; a queue
/// of another function keeps running with its state intact.
#[test]
fn function_reset_touches_only_its_queues() {
    let (dev, mem) = device(fast());
    let mut rings = Vec::new();
    for q in 0..2u32 {
        let mut ring = SplitRing::new(&mem, RINGS + u64::from(q) * 0x10_0000, 8, false).unwrap();
        setup_queue(
            &dev,
            q,
            &ring,
            QueueSetup {
                func: q,
                ..Default::default()
            },
        )
        .unwrap();
        for k in 0..3u64 {
            let a = DATA + u64::from(q) * 0x10_0000 + k * 0x100;
            ring.add_chain(&pair(a, 16, a + 0x80, 16)).unwrap();
        }
        ring.publish().unwrap();
        kick(&dev, q, ring.avail_idx()).unwrap();
        rings.push(ring);
    }
    for r in &rings {
        wait_used(&dev, r, 3, 100_000);
    }
    let f0 = regs::functions::func::CTRL.at(0).unwrap();
    let f0_status = regs::functions::func::STATUS.at(0).unwrap();
    f0.write(&dev, regs::functions::func::ctrl::RESET.mask())
        .unwrap();
    dev.lock().run(200).unwrap();
    assert!(!regs::functions::func::status::RESET_BUSY.is_set(f0_status.read(&dev).unwrap()));
    let ctrl0 = queue::q::CTRL.at(0).unwrap().read(&dev).unwrap();
    assert!(
        !queue::q::ctrl::ENABLE.is_set(ctrl0),
        "function reset clears the queue's enable"
    );
    assert_eq!(queue::q::STATE.at(0).unwrap().read(&dev).unwrap(), 0);
    assert!(!queue::q::status::ENABLED.is_set(status(&dev, 0)));
    // Function 1's queue: untouched, and it still serves requests.
    assert_eq!(
        queue::q::STATE.at(1).unwrap().read(&dev).unwrap(),
        3 | (3 << 16)
    );
    let r1 = &mut rings[1];
    r1.reap().unwrap();
    r1.add_chain(&pair(DATA + 0x10_0000, 16, DATA + 0x10_0080, 16))
        .unwrap();
    r1.publish().unwrap();
    kick(&dev, 1, r1.avail_idx()).unwrap();
    wait_used(&dev, &rings[1], 4, 100_000);
    // Queue 0 comes back after a fresh setup, from index 0.
    let ring0 = SplitRing::new(&mem, RINGS + 0x40_0000, 8, false).unwrap();
    setup_queue(&dev, 0, &ring0, QueueSetup::default()).unwrap();
    assert!(queue::q::status::ENABLED.is_set(status(&dev, 0)));
}

/// IRQ_MODERATION: with MAX_PENDING 4 and a timeout, 8 echoes give 2 interrupts (each after the
/// 4th used entry since the last), and a lone request still gets its interrupt when the timeout
/// expires; every interrupt follows the used->idx it announces.
#[test]
fn interrupt_moderation_counts_and_times_out() {
    let (dev, mem) = device(fast());
    let mut ring = SplitRing::new(&mem, 0x10_0000, 64, false).unwrap();
    setup_vector(&dev, 6).unwrap();
    setup_queue(
        &dev,
        0,
        &ring,
        QueueSetup {
            vector: 6,
            ..Default::default()
        },
    )
    .unwrap();
    queue::q::IRQ_MODERATION
        .at(0)
        .unwrap()
        .write(&dev, 4 | (3000 << 8))
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let used_addr = ring.used_addr();
    dev.lock().set_msi_hook(move |m, _| {
        let idx: u16 = m.read_obj(GuestAddress(used_addr + 2)).unwrap();
        s2.lock().unwrap().push(idx);
    });
    for i in 0..8u64 {
        ring.add_chain(&pair(
            0x80_0000 + i * 0x1000,
            16,
            0x90_0000 + i * 0x1000,
            16,
        ))
        .unwrap();
    }
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    dev.lock().run(2_000).unwrap();
    assert_eq!(ring.reap().unwrap().len(), 8);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![4, 8],
        "one interrupt per 4 used entries"
    );
    // One more: deferred, then raised by the timeout.
    ring.add_chain(&pair(0x80_0000, 16, 0x90_0000, 16)).unwrap();
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    dev.lock().run(1_000).unwrap();
    assert_eq!(ring.reap().unwrap().len(), 1);
    assert_eq!(seen.lock().unwrap().len(), 2, "deferred");
    dev.lock().run(3_000).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![4, 8, 9],
        "raised by the timeout"
    );
}

/// NOTIFICATION_DATA: the doorbell's value spares the avail->idx read (fewer cycles, same
/// results); a doorbell value more than a ring ahead is ignored and the engine reads the ring.
#[test]
fn notification_data_skips_the_avail_idx_read() {
    let run = |notify: bool, lie: bool| -> u64 {
        let (dev, mem) = device(DmaTiming::default());
        let mut ring = SplitRing::new(&mem, 0x10_0000, 16, false).unwrap();
        setup_queue(
            &dev,
            0,
            &ring,
            QueueSetup {
                notification_data: notify,
                ..Default::default()
            },
        )
        .unwrap();
        let mut cycles = 0;
        for i in 0..20u64 {
            let src = 0x80_0000 + i * 0x100;
            mem.write_slice(&[i as u8; 32], GuestAddress(src)).unwrap();
            ring.add_chain(&pair(src, 32, 0x90_0000, 32)).unwrap();
            ring.publish().unwrap();
            let start = dev.lock().cycle();
            let value = if lie {
                ring.avail_idx().wrapping_add(100)
            } else {
                ring.avail_idx()
            };
            kick(&dev, 0, value).unwrap();
            let done = dev
                .lock()
                .run_until(100_000, 16, |s| {
                    s.cycle() > start && ring.has_used().unwrap()
                })
                .unwrap();
            assert!(done, "request {i} completed");
            cycles += dev.lock().cycle() - start;
            assert_eq!(ring.reap().unwrap().len(), 1);
            let mut got = [0u8; 32];
            mem.read_slice(&mut got, GuestAddress(0x90_0000)).unwrap();
            assert_eq!(got, [i as u8; 32]);
        }
        let st = queue::q::STATUS.at(0).unwrap().read(&dev).unwrap();
        assert!(!queue::q::status::ERROR.is_set(st));
        cycles / 20
    };
    let plain = run(false, false);
    let notified = run(true, false);
    let lied = run(true, true);
    assert!(
        notified + 200 < plain,
        "with NOTIFICATION_DATA {notified} cycles/request, without {plain}"
    );
    assert!(
        lied >= plain - 20,
        "a bogus doorbell value is not believed ({lied} vs {plain})"
    );
}

/// Requests move data on several device-engine slots at once, but the device publishes the
/// results of one queue in avail order: short requests posted behind a long one wait for it
/// (a backend that restarts at used->idx then repeats nothing it completed), while another
/// queue's short request does not.
#[test]
fn slots_overlap_requests_and_publish_each_queue_in_order() {
    let (dev, mem) = device(DmaTiming::default());
    let mut q0 = SplitRing::new(&mem, RINGS, 16, false).unwrap();
    let mut q1 = SplitRing::new(&mem, RINGS + 0x1_0000, 16, false).unwrap();
    setup_queue(&dev, 0, &q0, QueueSetup::default()).unwrap();
    setup_queue(&dev, 1, &q1, QueueSetup::default()).unwrap();

    // q0: 2 KiB (128 echo chunks of a read latency each), then two of 16 bytes.
    let lens = [2048u32, 16, 16];
    let mut heads = Vec::new();
    let mut want = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let rd = DATA + i as u64 * 0x1_0000;
        want.push(pattern(&mem, rd, len as usize, i as u64 + 1));
        heads.push(q0.add_chain(&pair(rd, len, rd + 0x8000, len)).unwrap());
    }
    q0.publish().unwrap();
    kick(&dev, 0, q0.avail_idx()).unwrap();
    // q1: one short request, a little later.
    dev.lock().run(200).unwrap();
    let rd1 = DATA + 0x10_0000;
    let want1 = pattern(&mem, rd1, 16, 9);
    let h1 = q1.add_chain(&pair(rd1, 16, rd1 + 0x8000, 16)).unwrap();
    q1.publish().unwrap();
    kick(&dev, 1, q1.avail_idx()).unwrap();

    // q1's request is done while q0's long one still runs: the slots overlap.
    let start = dev.lock().cycle();
    let ok = dev
        .lock()
        .run_until(200_000, 16, |_| q1.used_idx().unwrap() == 1)
        .unwrap();
    assert!(ok, "q1's request completed");
    assert_eq!(q1.reap().unwrap(), vec![(h1, 16)]);
    assert_eq!(read(&mem, rd1 + 0x8000, 16), want1);
    assert_eq!(
        q0.used_idx().unwrap(),
        0,
        "q0's short requests wait for the long one before them ({} cycles in)",
        dev.lock().cycle() - start
    );

    wait_used(&dev, &q0, 3, 400_000);
    let used = q0.reap().unwrap();
    assert_eq!(
        used,
        heads
            .iter()
            .zip(lens)
            .map(|(&h, l)| (h, l))
            .collect::<Vec<_>>(),
        "q0's used entries in avail order"
    );
    for (i, w) in want.iter().enumerate() {
        assert_eq!(&read(&mem, DATA + i as u64 * 0x1_0000 + 0x8000, w.len()), w);
    }
}

/// Take the page at `page` out of the IOMMU map (the rest of the test memory stays mapped).
fn unmap_page(dev: &SimDevice, page: u64) {
    let mut sim = dev.lock();
    let iommu = sim.iommu_mut();
    iommu.unmap(0, MAPPED).unwrap();
    iommu.map(0, 0, page, Perm::RW).unwrap();
    let after = page + 0x1000;
    iommu.map(after, after, MAPPED - after, Perm::RW).unwrap();
}

/// The IOMMU refused two reads at `iova` (a speculative read and the walk's own), and the
/// device reported the fault once.
fn seen_twice_reported_once(dev: &SimDevice, iova: u64) {
    let faults = dev.lock().faults().to_vec();
    assert!(
        faults.iter().all(|f| f.iova == iova && !f.write),
        "{faults:?}"
    );
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert_eq!(global::DMA_FAULT_COUNT.read(dev).unwrap(), 1);
    assert_eq!(global::DMA_FAULT_ADDR_LO.read(dev).unwrap(), iova as u32);
}

/// The engine reads the descriptors of the heads after the one it walks ahead of the walk
/// (descriptor prefetch). Such a read is speculative: when the IOMMU refuses it, nothing is
/// reported; the walk's own read of the same descriptors reports the fault, once, and breaks the
/// queue. Here chain 1's head sits in a page of the descriptor table that is not mapped.
#[test]
fn a_refused_descriptor_prefetch_is_reported_once_by_the_walk() {
    let (dev, mem) = device(fast());
    // 512 entries: the descriptor table spans two pages; the second is unmapped.
    let mut ring = SplitRing::new(&mem, RINGS, 512, false).unwrap();
    let hole = ring.desc_addr() + 0x1000;
    unmap_page(&dev, hole);
    setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
    ring.add_chain(&pair(DATA, 64, DATA + 0x1000, 64)).unwrap();
    ring.publish().unwrap();
    // Position 1 names head 300 (in the hole).
    mem.write_obj(300u16, GuestAddress(ring.avail_addr() + 4 + 2))
        .unwrap();
    ring.publish_idx(2).unwrap();
    kick(&dev, 0, 2).unwrap();
    dev.lock().run(20_000).unwrap();
    assert_eq!(cause(&dev, 0), Some(QueueError::DmaFault));
    let iova = hole + (300 - 256) * 16;
    // The IOMMU saw the prefetch and the walk's read; the device reports one fault.
    seen_twice_reported_once(&dev, iova);
}

/// The engine reads the next avail-ring entries ahead of the walk (avail-ring read-ahead). Such
/// a read is speculative: when the IOMMU refuses it, nothing is reported; the walk's own read of
/// the same entries reports the fault, once, and breaks the queue. Here the avail ring of a
/// 4096-entry queue spans two pages and the second (entries 2046 ..) is not mapped: the first
/// 2038 requests complete, then twelve more are posted at once: positions 2038 .. 2045 are read
/// and walked, the read-ahead of 2046 .. is refused (and not repeated).
#[test]
fn a_refused_ring_read_ahead_is_reported_once_by_the_walk() {
    let (dev, mem) = device(fast());
    let mut ring = SplitRing::new(&mem, RINGS, 4096, false).unwrap();
    let hole = ring.avail_addr() + 0x1000;
    assert_eq!(hole % 0x1000, 0);
    setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
    let post = |ring: &mut SplitRing, n: usize| {
        for k in 0..n {
            let a = DATA + (k as u64 % 64) * 0x100;
            ring.add_chain(&pair(a, 16, a + 0x80, 16)).unwrap();
        }
        ring.publish().unwrap();
        kick(&dev, 0, ring.avail_idx()).unwrap();
    };
    let mut done = 0u16;
    while done < 2038 {
        let n = (2038 - done).min(256);
        post(&mut ring, n as usize);
        done += n;
        wait_used(&dev, &ring, done, 1_000_000);
        ring.reap().unwrap();
    }
    assert_eq!(cause(&dev, 0), None);
    assert!(dev.lock().faults().is_empty());
    unmap_page(&dev, hole);
    post(&mut ring, 12);
    dev.lock().run(20_000).unwrap();
    // The walk got to position 2046 (requests still on a slot then are not published: the
    // queue is broken).
    assert_eq!(cause(&dev, 0), Some(QueueError::DmaFault));
    assert_eq!(
        queue::q::ERR_INFO.at(0).unwrap().read(&dev).unwrap(),
        hole as u32
    );
    assert!(ring.used_idx().unwrap() >= 2040);
    // The IOMMU saw the read-ahead and the walk's read; the device reports one fault.
    seen_twice_reported_once(&dev, hole);
}

/// Head prediction: while the engine waits for the ring entry of a request, it reads the
/// descriptors at the head it published last on the queue (a driver with a LIFO free list, like
/// Linux's split ring, reuses it at queue depth 1). A right guess spares the walk's own
/// descriptor read; a wrong one is never used, even though the descriptors at the guessed head
/// still describe the previous request.
#[test]
fn a_guessed_head_is_used_only_when_the_ring_names_it() {
    let (dev, mem) = device(DmaTiming::default());
    let mut ring = SplitRing::new(&mem, RINGS, 16, false).unwrap();
    let setup = QueueSetup {
        notification_data: true,
        ..QueueSetup::default()
    };
    setup_queue(&dev, 0, &ring, setup).unwrap();
    // Reads the device makes for one request, counted once everything it set off is over.
    let serve = |ring: &mut SplitRing, target: u16| -> u64 {
        let before = dev.lock().stats().reads;
        ring.publish().unwrap();
        kick(&dev, 0, ring.avail_idx()).unwrap();
        wait_used(&dev, ring, target, 100_000);
        dev.lock().run(5_000).unwrap();
        dev.lock().stats().reads - before
    };
    // A: no guess yet.
    pattern(&mem, DATA, 64, 1);
    let a = ring.add_chain(&pair(DATA, 64, DATA + 0x1000, 64)).unwrap();
    serve(&mut ring, 1);
    ring.reap().unwrap();
    // B: the free list hands out A's head again; the guess is right.
    let want_b = pattern(&mem, DATA + 0x2000, 64, 2);
    let b = ring
        .add_chain(&pair(DATA + 0x2000, 64, DATA + 0x3000, 64))
        .unwrap();
    assert_eq!(a, b);
    let reads_hit = serve(&mut ring, 2);
    assert_eq!(read(&mem, DATA + 0x3000, 64), want_b);
    // C: a chain at other descriptors (6, 7) while those at the guessed head still describe B.
    mem.write_slice(&[0u8; 64], GuestAddress(DATA + 0x3000))
        .unwrap();
    let want_c = pattern(&mem, DATA + 0x4000, 64, 3);
    let d = ring.desc_addr();
    ring.write_desc(d, 6, DATA + 0x4000, 64, VRING_DESC_F_NEXT, 7)
        .unwrap();
    ring.write_desc(d, 7, DATA + 0x5000, 64, VRING_DESC_F_WRITE, 0)
        .unwrap();
    ring.push_raw_head(6).unwrap();
    let reads_miss = serve(&mut ring, 3);
    assert_eq!(read(&mem, DATA + 0x5000, 64), want_c);
    assert_eq!(
        read(&mem, DATA + 0x3000, 64),
        vec![0u8; 64],
        "B's chain was served again"
    );
    assert_eq!(cause(&dev, 0), None);
    // The wrong guess cost the walk's own descriptor read; the right one spared it.
    assert_eq!(
        reads_miss,
        reads_hit + 1,
        "hit {reads_hit}, miss {reads_miss}"
    );
}
