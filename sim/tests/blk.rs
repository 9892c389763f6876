//! The RTL blk engine: IN and OUT between guest buffers and the storage port, the status byte,
//! and every request it does not serve punted with its reason and sector.

use fpga_virtio_hw::formats::PuntEntry;
use fpga_virtio_hw::regs::{
    self as regs, functions, global, punt_ring, queue, PuntReason, QueueError, VirtioDevice,
};
use fpga_virtio_sim::testing::{
    enable_device, kick, open_dma_windows, set_dma_window, setup_queue, Buffer, QueueSetup,
    SplitRing,
};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, Simulator, StoreFault, StoreTiming};
use fpga_virtio_storage::{BlockStore, RamStore};
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const PUNT_RING: u64 = 0x1f0_0000;
const HDR: u64 = 0x40_0000; // request headers, 16 bytes apart
const STATUS: u64 = 0x48_0000; // status bytes
const DATA: u64 = 0x80_0000; // data buffers, 64 KiB apart
const CAPACITY: u64 = 2048; // sectors (1 MiB)

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;

struct Rig {
    dev: SimDevice,
    mem: GuestMemoryMmap,
    store: Arc<RamStore>,
    ring: SplitRing,
}

fn rig(store_bytes: u64, max_sectors: u32) -> Rig {
    let mut sim = Simulator::new(SimConfig {
        timing: DmaTiming {
            read_latency: 20,
            write_latency: 10,
            bytes_per_cycle: 0,
        },
        store_timing: StoreTiming {
            read_latency: 30,
            write_latency: 15,
            bytes_per_cycle: 0,
        },
        ..SimConfig::default()
    })
    .unwrap();
    sim.iommu_mut().map(0, 0, 32 << 20, Perm::RW).unwrap();
    let store = Arc::new(RamStore::new(store_bytes));
    sim.attach_store(store.clone());
    let mem = sim.memory().mem().clone();
    let dev = SimDevice::new(sim);
    enable_device(&dev).unwrap();
    // The tenant's memory ends below the punt ring.
    open_dma_windows(&dev, 0, PUNT_RING).unwrap();
    let f = |a: fpga_virtio_hw::RegArray| a.at(0).unwrap();
    f(functions::func::DEVICE_TYPE)
        .write(&dev, VirtioDevice::Blk as u32)
        .unwrap();
    f(functions::func::BLK_CAPACITY_LO)
        .write(&dev, CAPACITY as u32)
        .unwrap();
    f(functions::func::BLK_CAPACITY_HI).write(&dev, 0).unwrap();
    f(functions::func::BLK_MAX_SECTORS)
        .write(&dev, max_sectors)
        .unwrap();
    punt_ring::BASE_LO.write(&dev, PUNT_RING as u32).unwrap();
    punt_ring::BASE_HI.write(&dev, 0).unwrap();
    punt_ring::SIZE_LOG2.write(&dev, 4).unwrap();
    punt_ring::CTRL.write(&dev, 1).unwrap();
    let ring = SplitRing::new(&mem, 0x10_0000, 64, false).unwrap();
    setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
    Rig {
        dev,
        mem,
        store,
        ring,
    }
}

/// A seeded byte pattern.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Rig {
    /// Post a request: header `n` (type, sector), data buffers (len, device-writable), status.
    fn post(&mut self, n: u64, rtype: u32, sector: u64, data: &[(u32, bool)]) -> u16 {
        let hdr = HDR + n * 16;
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&rtype.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&h, GuestAddress(hdr)).unwrap();
        self.mem
            .write_obj(0xffu8, GuestAddress(STATUS + n))
            .unwrap();
        let mut bufs = vec![Buffer {
            addr: hdr,
            len: 16,
            write: false,
        }];
        for (i, &(len, write)) in data.iter().enumerate() {
            bufs.push(Buffer {
                addr: DATA + n * 0x1_0000 + i as u64 * 0x2000,
                len,
                write,
            });
        }
        bufs.push(Buffer {
            addr: STATUS + n,
            len: 1,
            write: true,
        });
        self.ring.add_chain(&bufs).unwrap()
    }

    fn data_addr(n: u64, i: usize) -> u64 {
        DATA + n * 0x1_0000 + i as u64 * 0x2000
    }

    fn status(&self, n: u64) -> u8 {
        self.mem.read_obj(GuestAddress(STATUS + n)).unwrap()
    }

    /// Publish and kick, then reap `count` used entries, sorted by head: requests on
    /// different device-engine slots may complete in any order.
    fn run(&mut self, count: usize) -> Vec<(u16, u32)> {
        self.ring.publish().unwrap();
        kick(&self.dev, 0, self.ring.avail_idx()).unwrap();
        let mut used = Vec::new();
        for _ in 0..200 {
            self.dev.lock().run(2_000).unwrap();
            used.extend(self.ring.reap().unwrap());
            if used.len() >= count {
                break;
            }
        }
        used.sort_unstable();
        used
    }

    fn punts(&self) -> Vec<PuntEntry> {
        let n = punt_ring::PROD.read(&self.dev).unwrap();
        (0..u64::from(n))
            .map(|i| {
                let mut b = [0u8; PuntEntry::SIZE];
                self.mem
                    .read_slice(&mut b, GuestAddress(PUNT_RING + i * PuntEntry::SIZE as u64))
                    .unwrap();
                PuntEntry::from_le_bytes(&b)
            })
            .collect()
    }
}

#[test]
fn writes_then_reads_move_bytes_between_guest_and_store() {
    let mut r = rig(CAPACITY * 512, 256);
    // OUT: 4 KiB in one buffer at sector 8; 512 + 1536 bytes in two buffers at sector 100.
    let a = pattern(1, 4096);
    let b = pattern(2, 2048);
    let h0 = r.post(0, T_OUT, 8, &[(4096, false)]);
    r.mem
        .write_slice(&a, GuestAddress(Rig::data_addr(0, 0)))
        .unwrap();
    let h1 = r.post(1, T_OUT, 100, &[(512, false), (1536, false)]);
    r.mem
        .write_slice(&b[..512], GuestAddress(Rig::data_addr(1, 0)))
        .unwrap();
    r.mem
        .write_slice(&b[512..], GuestAddress(Rig::data_addr(1, 1)))
        .unwrap();
    let used = r.run(2);
    assert_eq!(
        used,
        sorted(vec![(h0, 1), (h1, 1)]),
        "OUT: used len is the status byte"
    );
    assert_eq!((r.status(0), r.status(1)), (0, 0));
    let disk = r.store.snapshot().unwrap();
    assert_eq!(&disk[8 * 512..8 * 512 + 4096], &a[..]);
    assert_eq!(&disk[100 * 512..100 * 512 + 2048], &b[..]);
    assert!(
        disk[..8 * 512].iter().all(|&x| x == 0),
        "nothing else written"
    );

    // IN: read both back, split differently (3 x 512 + 2560, and one 2048).
    let h2 = r.post(2, T_IN, 8, &[(1536, true), (2560, true)]);
    let h3 = r.post(3, T_IN, 100, &[(2048, true)]);
    let used = r.run(2);
    assert_eq!(
        used,
        sorted(vec![(h2, 4097), (h3, 2049)]),
        "IN: data + status"
    );
    assert_eq!((r.status(2), r.status(3)), (0, 0));
    let mut got = vec![0u8; 4096];
    r.mem
        .read_slice(&mut got[..1536], GuestAddress(Rig::data_addr(2, 0)))
        .unwrap();
    r.mem
        .read_slice(&mut got[1536..], GuestAddress(Rig::data_addr(2, 1)))
        .unwrap();
    assert_eq!(got, a);
    let mut got = vec![0u8; 2048];
    r.mem
        .read_slice(&mut got, GuestAddress(Rig::data_addr(3, 0)))
        .unwrap();
    assert_eq!(got, b);
    assert!(r.punts().is_empty(), "nothing punted");
    let storage = r.dev.lock().store_stats();
    assert_eq!(storage.read_bytes, 4096 + 2048);
    assert_eq!(storage.write_bytes, 4096 + 2048);
}

#[test]
fn everything_else_is_punted_with_reason_and_sector() {
    let mut r = rig(CAPACITY * 512, 8);
    // (type, sector, data buffers, expected reason)
    type Case = (u32, u64, Vec<(u32, bool)>, PuntReason);
    let cases: Vec<Case> = vec![
        (T_FLUSH, 0, vec![], PuntReason::BlkFlush),
        (T_GET_ID, 0, vec![(20, true)], PuntReason::BlkGetId),
        (T_DISCARD, 0, vec![(16, false)], PuntReason::BlkDiscard),
        (
            T_WRITE_ZEROES,
            0,
            vec![(16, false)],
            PuntReason::BlkWriteZeroes,
        ),
        (77, 5, vec![], PuntReason::BlkUnsupported),
        (
            T_IN,
            16,
            vec![(8 * 512 + 512, true)],
            PuntReason::BlkTooLarge,
        ),
        (
            T_OUT,
            CAPACITY - 1,
            vec![(1024, false)],
            PuntReason::BlkOutOfRange,
        ),
        (T_IN, u64::MAX, vec![(512, true)], PuntReason::BlkOutOfRange),
        (T_IN, 0, vec![(100, true)], PuntReason::BlkMalformed),
        (T_OUT, 0, vec![(512, true)], PuntReason::BlkMalformed),
    ];
    for (n, (t, sector, data, _)) in cases.iter().enumerate() {
        r.post(n as u64, *t, *sector, data);
    }
    r.run(0);
    let punts = r.punts();
    assert_eq!(punts.len(), cases.len());
    for (n, (p, (t, sector, _, reason))) in punts.iter().zip(&cases).enumerate() {
        assert_eq!(
            PuntReason::from_raw(u32::from(p.reason)),
            Some(*reason),
            "request {n} (type {t})"
        );
        assert_eq!(
            p.arg, *sector,
            "request {n}: the sector travels with the punt"
        );
        assert_eq!(p.addr, HDR + n as u64 * 16, "request {n}: header address");
        assert_eq!(r.status(n as u64), 0xff, "request {n}: left for the CPU");
    }
    assert!(r.ring.reap().unwrap().is_empty(), "no used entry yet");
    assert!(r.store.snapshot().unwrap().iter().all(|&x| x == 0));
}

#[test]
fn a_header_the_engine_does_not_take_is_punted_as_malformed() {
    let mut r = rig(CAPACITY * 512, 256);
    // An 8-byte header descriptor: the engine takes only the 16-byte one.
    r.mem.write_slice(&[0u8; 16], GuestAddress(HDR)).unwrap();
    r.ring
        .add_chain(&[
            Buffer {
                addr: HDR,
                len: 8,
                write: false,
            },
            Buffer {
                addr: HDR + 8,
                len: 8,
                write: false,
            },
            Buffer {
                addr: STATUS,
                len: 1,
                write: true,
            },
        ])
        .unwrap();
    r.run(0);
    let punts = r.punts();
    assert_eq!(punts.len(), 1);
    assert_eq!(punts[0].reason, PuntReason::BlkMalformed as u8);
}

#[test]
fn a_store_error_is_ioerr_and_a_guest_fault_fails_only_the_queue() {
    // The function claims 1 MiB, the store has 64 KiB: reads past it fail in the store.
    let mut r = rig(64 << 10, 256);
    let h0 = r.post(0, T_IN, 1000, &[(4096, true)]);
    let h1 = r.post(1, T_IN, 0, &[(512, true)]);
    let used = r.run(2);
    assert_eq!(used, sorted(vec![(h0, 4097), (h1, 513)]));
    assert_eq!(r.status(0), 1, "VIRTIO_BLK_S_IOERR");
    assert_eq!(r.status(1), 0);
    assert!(r.dev.lock().store_stats().errors > 0);

    // A data buffer outside the IOMMU map: the queue enters its error state.
    r.dev.lock().iommu_mut().unmap(0, 32 << 20).unwrap();
    r.dev
        .lock()
        .iommu_mut()
        .map(0, 0, 8 << 20, Perm::RW)
        .unwrap();
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&T_IN.to_le_bytes());
    r.mem.write_slice(&h, GuestAddress(HDR + 32)).unwrap();
    r.ring
        .add_chain(&[
            Buffer {
                addr: HDR + 32,
                len: 16,
                write: false,
            },
            Buffer {
                addr: 16 << 20,
                len: 512,
                write: true,
            },
            Buffer {
                addr: STATUS + 2,
                len: 1,
                write: true,
            },
        ])
        .unwrap();
    let used = r.run(1);
    assert!(used.is_empty(), "no used entry for a faulted request");
    let st = queue::q::STATUS.at(0).unwrap().read(&r.dev).unwrap();
    assert!(queue::q::status::ERROR.is_set(st));
    assert_eq!(queue::q::status::CAUSE.get(st), QueueError::DmaFault as u32);
}

/// Used entries in `Rig::run`'s order (by head).
fn sorted(mut used: Vec<(u16, u32)>) -> Vec<(u16, u32)> {
    used.sort_unstable();
    used
}

/// Read `len` bytes of request `n`'s first data buffer.
fn data(r: &Rig, n: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    r.mem
        .read_slice(&mut b, GuestAddress(Rig::data_addr(n, 0)))
        .unwrap();
    b
}

#[test]
fn a_storage_port_that_stops_answering_fails_the_request_not_the_device() {
    let mut r = rig(CAPACITY * 512, 256);
    global::STORAGE_TIMEOUT.write(&r.dev, 3000).unwrap();
    let a = pattern(3, 4096);
    r.store.write_at(16 * 512, &a).unwrap();

    // A read whose storage answer never comes: IOERR after the timeout.
    r.dev.lock().store_fault(StoreFault::Drop(1));
    let h0 = r.post(0, T_IN, 16, &[(4096, true)]);
    let used = r.run(1);
    assert_eq!(used, vec![(h0, 4097)]);
    assert_eq!(r.status(0), 1, "VIRTIO_BLK_S_IOERR");
    assert_eq!(global::STORAGE_TIMEOUTS.read(&r.dev).unwrap(), 1);

    // A write whose acknowledgements never come: IOERR too.
    r.dev.lock().store_fault(StoreFault::Drop(u32::MAX));
    let h1 = r.post(1, T_OUT, 40, &[(512, false)]);
    let used = r.run(1);
    assert_eq!(used, vec![(h1, 1)]);
    assert_eq!(r.status(1), 1);
    assert_eq!(global::STORAGE_TIMEOUTS.read(&r.dev).unwrap(), 2);
    r.dev.lock().store_fault(StoreFault::Drop(0));

    // Answers that come after the timeout are dropped by tag: the next requests read the right
    // bytes, and the queue never left its running state.
    r.dev.lock().store_fault(StoreFault::Delay(1, 200_000));
    let h2 = r.post(2, T_IN, 16, &[(4096, true)]);
    let h3 = r.post(3, T_IN, 16, &[(4096, true)]);
    let used = r.run(2);
    assert_eq!(used, sorted(vec![(h2, 4097), (h3, 4097)]));
    assert_eq!((r.status(2), r.status(3)), (1, 0));
    assert_eq!(data(&r, 3, 4096), a);
    r.dev.lock().run(30_000).unwrap(); // the late answer arrives now, and is dropped
    let h4 = r.post(4, T_IN, 16, &[(4096, true)]);
    assert_eq!(r.run(1), vec![(h4, 4097)]);
    assert_eq!(r.status(4), 0);
    assert_eq!(data(&r, 4, 4096), a);
    let st = queue::q::STATUS.at(0).unwrap().read(&r.dev).unwrap();
    assert!(!queue::q::status::ERROR.is_set(st));
    assert_eq!(global::STORAGE_TIMEOUTS.read(&r.dev).unwrap(), 3);
    let stats = r.dev.lock().store_stats();
    assert_eq!((stats.dropped > 0, stats.delayed), (true, 1));
}

/// Issue 15: data segments of 0xFFFFFE00, 0x400, 0xFFFFFFFF and 0x201 bytes summed to 1 KiB in
/// 32 bits (the overflow bit was cleared by the second carry), and the engine then moved ~8 GiB
/// from sector 0. A chain describing more than MAX_CHAIN_BYTES now fails its queue
/// (chain_too_long) in the walk, before the blk engine or the store sees anything; one just
/// under the limit but over the function's BLK_MAX_SECTORS is punted as too large.
#[test]
fn wrapping_length_sums_fail_the_queue_before_any_data_moves() {
    let mut r = rig(CAPACITY * 512, 256);
    // The window allows it all: the byte limit is what stops it (the IOMMU maps 32 MiB only).
    set_dma_window(&r.dev, 0, 0, 0, 1 << 40).unwrap();
    let lens = [0xFFFF_FE00u32, 0x400, 0xFFFF_FFFF, 0x201];
    let bufs: Vec<(u32, bool)> = lens.iter().map(|&l| (l, true)).collect();
    r.post(0, T_IN, 0, &bufs);
    assert!(r.run(1).is_empty(), "nothing published");
    let st = queue::q::STATUS.at(0).unwrap().read(&r.dev).unwrap();
    assert!(queue::q::status::ERROR.is_set(st));
    assert_eq!(
        queue::q::status::CAUSE.get(st),
        QueueError::ChainTooLong as u32
    );
    let stats = r.dev.lock().store_stats();
    assert_eq!(
        (stats.reads, stats.write_beats),
        (0, 0),
        "the store saw nothing"
    );
    assert!(r.dev.lock().faults().is_empty(), "no DMA was attempted");

    // Just inside the limit (16 MiB of data on a 1 MiB disk): a request, refused as too large.
    let mut r = rig(CAPACITY * 512, 256);
    set_dma_window(&r.dev, 0, 0, 0, 1 << 40).unwrap();
    let limit = regs::MAX_CHAIN_BYTES;
    r.post(0, T_IN, 0, &[(limit - 1024, true), (512, true)]);
    r.ring.publish().unwrap();
    kick(&r.dev, 0, r.ring.avail_idx()).unwrap();
    r.dev.lock().run(20_000).unwrap();
    let punts = r.punts();
    assert_eq!(punts.len(), 1);
    assert_eq!(punts[0].reason, PuntReason::BlkTooLarge as u8);
    // One byte more: a queue error.
    let mut r = rig(CAPACITY * 512, 256);
    set_dma_window(&r.dev, 0, 0, 0, 1 << 40).unwrap();
    r.post(0, T_IN, 0, &[(limit - 17 - 511, true), (512, true)]);
    assert!(r.run(1).is_empty());
    let st = queue::q::STATUS.at(0).unwrap().read(&r.dev).unwrap();
    assert_eq!(
        queue::q::status::CAUSE.get(st),
        QueueError::ChainTooLong as u32
    );
}

/// Issue 15 (engine hang): a slot whose engine never finishes was held forever. Request 0's
/// data read is answered 200 000 cycles late: the slot's watchdog (ENGINE_TIMEOUT, here 20 000)
/// aborts the engine, fails the queue with engine_timeout and counts it; the slot takes no new
/// request until that late answer came (it must not reach the next request), then serves
/// again. Another queue goes on throughout, with the right bytes.
#[test]
fn a_hung_engine_is_timed_out_and_its_slot_reused_once_its_dma_is_answered() {
    let mut r = rig(CAPACITY * 512, 256);
    global::ENGINE_TIMEOUT.write(&r.dev, 20_000).unwrap();
    let h0 = r.post(0, T_OUT, 8, &[(4096, false)]);
    r.mem
        .write_slice(&pattern(9, 4096), GuestAddress(Rig::data_addr(0, 0)))
        .unwrap();
    let data0 = Rig::data_addr(0, 0);
    r.dev
        .lock()
        .dma_read_fault(data0..data0 + 4096, StoreFault::Delay(1, 200_000));
    let _ = h0;
    r.ring.publish().unwrap();
    kick(&r.dev, 0, r.ring.avail_idx()).unwrap();
    r.dev.lock().run(40_000).unwrap();
    let st = queue::q::STATUS.at(0).unwrap().read(&r.dev).unwrap();
    assert!(queue::q::status::ERROR.is_set(st), "status {st:#x}");
    assert_eq!(
        queue::q::status::CAUSE.get(st),
        QueueError::EngineTimeout as u32
    );
    assert_eq!(global::ENGINE_TIMEOUTS.read(&r.dev).unwrap(), 1);
    assert!(r.ring.reap().unwrap().is_empty(), "nothing published");
    // Queue 1 writes eight patterns and reads them back, across the late answer's arrival:
    // with slow reads, a slot taken again too early would be waiting for its own read when the
    // late answer comes, and take it for its data.
    global::ENGINE_TIMEOUT.write(&r.dev, 10_000_000).unwrap();
    let mut slow = r.dev.lock().timing();
    slow.read_latency = 50_000;
    r.dev.lock().set_timing(slow);
    let mut q1 = SplitRing::new(&r.mem, 0x18_0000, 64, false).unwrap();
    setup_queue(&r.dev, 1, &q1, QueueSetup::default()).unwrap();
    for round in 0..2u64 {
        for n in 0..8u64 {
            let at = 0x60_0000 + n * 0x2000;
            let mut h = [0u8; 16];
            h[..4].copy_from_slice(&(if round == 0 { T_OUT } else { T_IN }).to_le_bytes());
            h[8..].copy_from_slice(&(100 + n * 8).to_le_bytes());
            r.mem.write_slice(&h, GuestAddress(at)).unwrap();
            if round == 0 {
                r.mem
                    .write_slice(&pattern(20 + n, 4096), GuestAddress(at + 0x1000))
                    .unwrap();
            } else {
                r.mem
                    .write_slice(&[0u8; 4096], GuestAddress(at + 0x1000))
                    .unwrap();
            }
            q1.add_chain(&[
                Buffer {
                    addr: at,
                    len: 16,
                    write: false,
                },
                Buffer {
                    addr: at + 0x1000,
                    len: 4096,
                    write: round == 1,
                },
                Buffer {
                    addr: at + 16,
                    len: 1,
                    write: true,
                },
            ])
            .unwrap();
        }
        q1.publish().unwrap();
        kick(&r.dev, 1, q1.avail_idx()).unwrap();
        let target = q1.avail_idx();
        let ok = r
            .dev
            .lock()
            .run_until(20_000_000, 1024, |_| q1.used_idx().unwrap() == target)
            .unwrap();
        assert!(ok, "round {round}: queue 1 stalled");
        let done = q1.reap().unwrap();
        assert_eq!(done.len(), 8, "round {round}");
        for n in 0..8u64 {
            let at = 0x60_0000 + n * 0x2000;
            assert_eq!(r.mem.read_obj::<u8>(GuestAddress(at + 16)).unwrap(), 0);
            if round == 1 {
                let mut got = vec![0u8; 4096];
                r.mem
                    .read_slice(&mut got, GuestAddress(at + 0x1000))
                    .unwrap();
                assert!(
                    got == pattern(20 + n, 4096),
                    "request {n} read back wrong data"
                );
            }
        }
    }
    // Request 0's bytes never reached the disk (its engine was aborted before its write).
    let disk = r.store.snapshot().unwrap();
    assert!(disk[8 * 512..8 * 512 + 4096].iter().all(|&b| b == 0));
}
