//! The punt ring through the RTL: doorbells of CPU-owned queues become punt-ring events the
//! runtime reads from memory (phase bit, producer index, backpressure when full, MSI-X).

use fpga_virtio_hw::formats::{CplEntry, PuntEntry};
use fpga_virtio_hw::regs::{self, punt_ring, PuntReason, QueueOwner};
use fpga_virtio_sim::testing::{
    enable_device, kick, open_dma_windows, setup_queue, setup_vector, Buffer, QueueSetup, SplitRing,
};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, Simulator};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RING: u64 = 0x1f0_0000;
const LOG2: u32 = 2;

fn device() -> (SimDevice, GuestMemoryMmap) {
    let mut sim = Simulator::new(SimConfig {
        timing: DmaTiming {
            read_latency: 8,
            write_latency: 4,
            bytes_per_cycle: 0,
        },
        ..SimConfig::default()
    })
    .unwrap();
    sim.iommu_mut().map(0, 0, 32 << 20, Perm::RW).unwrap();
    let mem = sim.memory().mem().clone();
    let dev = SimDevice::new(sim);
    enable_device(&dev).unwrap();
    // The tenant's memory ends below the backend's rings and logs (LOG, CPL, RING).
    open_dma_windows(&dev, 0, LOG).unwrap();
    punt_ring::BASE_LO.write(&dev, RING as u32).unwrap();
    punt_ring::BASE_HI.write(&dev, 0).unwrap();
    punt_ring::SIZE_LOG2.write(&dev, LOG2).unwrap();
    setup_vector(&dev, 9).unwrap();
    punt_ring::MSIX.write(&dev, 9).unwrap();
    punt_ring::CTRL.write(&dev, 1).unwrap();
    (dev, mem)
}

fn entry(mem: &GuestMemoryMmap, slot: u64) -> PuntEntry {
    let mut b = [0u8; PuntEntry::SIZE];
    mem.read_slice(&mut b, GuestAddress(RING + slot * PuntEntry::SIZE as u64))
        .unwrap();
    PuntEntry::from_le_bytes(&b)
}

fn cpu_queue(dev: &SimDevice, mem: &GuestMemoryMmap, q: u32) -> SplitRing {
    let ring = SplitRing::new(mem, 0x10_0000 + u64::from(q) * 0x1_0000, 8, false).unwrap();
    setup_queue(
        dev,
        q,
        &ring,
        QueueSetup {
            owner: QueueOwner::Cpu,
            ..Default::default()
        },
    )
    .unwrap();
    ring
}

#[test]
fn doorbell_of_a_cpu_owned_queue_is_a_punt_event() {
    let (dev, mem) = device();
    let mut ring = cpu_queue(&dev, &mem, 2);
    ring.add_chain(&[Buffer {
        addr: 0x80_0000,
        len: 64,
        write: false,
    }])
    .unwrap();
    ring.publish().unwrap();
    // Enabling the queue is the runtime's own act: no event.
    dev.lock().run(200).unwrap();
    assert_eq!(punt_ring::PROD.read(&dev).unwrap(), 0);
    kick(&dev, 2, ring.avail_idx()).unwrap();
    dev.lock().run(200).unwrap();
    assert_eq!(punt_ring::PROD.read(&dev).unwrap(), 1);
    kick(&dev, 2, ring.avail_idx()).unwrap();
    dev.lock().run(200).unwrap();
    assert_eq!(punt_ring::PROD.read(&dev).unwrap(), 2);
    for slot in 0..2 {
        let e = entry(&mem, slot);
        assert_eq!(e.qid, 2);
        assert_eq!(u32::from(e.reason), PuntReason::Doorbell.raw());
        assert_eq!(e.flags & 1, 1, "phase 1 on the first pass");
    }
    // The engines never touch a CPU-owned ring.
    assert_eq!(ring.used_idx().unwrap(), 0);
    // One MSI per entry, on the ring's vector.
    let msis = dev.lock().msis().to_vec();
    assert_eq!(msis.len(), 2);
    assert!(msis.iter().all(|m| m.data == 9));
    let by_reason = regs::counters::punts::REQUESTS
        .at(PuntReason::Doorbell.raw())
        .unwrap();
    assert_eq!(by_reason.read(&dev).unwrap(), 2);
}

#[test]
fn full_ring_holds_events_back_and_phase_flips_on_wrap() {
    let (dev, mem) = device();
    punt_ring::MSIX.write(&dev, regs::NO_VECTOR).unwrap();
    // Six queues kicked: six events, four slots.
    for q in 0..6 {
        cpu_queue(&dev, &mem, q);
    }
    for q in 0..6 {
        kick(&dev, q, 0).unwrap();
    }
    dev.lock().run(2_000).unwrap();
    assert_eq!(punt_ring::PROD.read(&dev).unwrap(), 4);
    assert_eq!(punt_ring::STATUS.read(&dev).unwrap() & 1, 1, "full");
    assert!(punt_ring::STALLS.read(&dev).unwrap() > 0);
    let first: Vec<u16> = (0..4).map(|s| entry(&mem, s).qid).collect();
    // The CPU consumes all four.
    punt_ring::CONS.write(&dev, 4).unwrap();
    dev.lock().run(2_000).unwrap();
    assert_eq!(punt_ring::PROD.read(&dev).unwrap(), 6);
    assert_eq!(punt_ring::STATUS.read(&dev).unwrap() & 1, 0);
    // Slots 0 and 1 now hold second-pass entries: phase 0. Every queue reported exactly once.
    let mut qids = first;
    for s in 0..2 {
        let e = entry(&mem, s);
        assert_eq!(e.flags & 1, 0);
        qids.push(e.qid);
    }
    qids.sort();
    assert_eq!(qids, vec![0, 1, 2, 3, 4, 5]);
    // Slots 2 and 3 still hold first-pass entries: the consumer sees them as old.
    assert_eq!(entry(&mem, 2).flags & 1, 1);
}

const CPL: u64 = 0x1e0_0000;

fn cpl_ring(dev: &SimDevice) {
    use fpga_virtio_hw::regs::cpl_ring;
    cpl_ring::BASE_LO.write(dev, CPL as u32).unwrap();
    cpl_ring::BASE_HI.write(dev, 0).unwrap();
    cpl_ring::SIZE_LOG2.write(dev, 3).unwrap();
    cpl_ring::CTRL.write(dev, 1).unwrap();
}

fn post_completion(dev: &SimDevice, mem: &GuestMemoryMmap, idx: u32, c: CplEntry) {
    use fpga_virtio_hw::regs::cpl_ring;
    let slot = u64::from(idx % 8);
    mem.write_slice(
        &c.to_le_bytes(),
        GuestAddress(CPL + slot * CplEntry::SIZE as u64),
    )
    .unwrap();
    cpl_ring::PROD.write(dev, idx + 1).unwrap();
}

/// The CPU's answer (completion-ring entry `idx`) to the punt of queue 0's `head`.
fn complete(dev: &SimDevice, mem: &GuestMemoryMmap, idx: u32, head: u16, len: u32, tag: u32) {
    post_completion(
        dev,
        mem,
        idx,
        CplEntry {
            qid: 0,
            head,
            len,
            tag,
            ..Default::default()
        },
    );
}

/// 20 readable descriptors of 8 bytes at 0x80_0000 and one writable of `out` bytes at
/// 0x90_0000: too long for the engine's segment table (16), so punted.
fn long_chain(ring: &mut SplitRing, out: u32) -> u16 {
    let mut bufs: Vec<Buffer> = (0..20u64)
        .map(|k| Buffer {
            addr: 0x80_0000 + 8 * k,
            len: 8,
            write: false,
        })
        .collect();
    bufs.push(Buffer {
        addr: 0x90_0000,
        len: out,
        write: true,
    });
    ring.add_chain(&bufs).unwrap()
}

/// A chain longer than the engine's segment table goes to the CPU through the punt ring; the
/// CPU's completion comes back through the completion ring and the engine publishes it: the FPGA
/// stays the single publisher of used->idx.
#[test]
fn long_chain_is_punted_and_completed_through_the_completion_ring() {
    use fpga_virtio_hw::regs::{cpl_ring, queue, QueueError};
    let (dev, mem) = device();
    cpl_ring(&dev);
    setup_vector(&dev, 3).unwrap();
    let mut ring = SplitRing::new(&mem, 0x10_0000, 32, false).unwrap();
    setup_queue(
        &dev,
        0,
        &ring,
        QueueSetup {
            vector: 3,
            ..Default::default()
        },
    )
    .unwrap();
    // 20 readable descriptors of 8 bytes and one writable: too long for the engine (16).
    let src: Vec<u8> = (0..160u32).map(|i| (i * 7 + 3) as u8).collect();
    mem.write_slice(&src, GuestAddress(0x80_0000)).unwrap();
    let long = long_chain(&mut ring, 256);
    // And a short one after it, which the FPGA serves itself.
    mem.write_slice(&[0xab; 16], GuestAddress(0x81_0000))
        .unwrap();
    let short = ring
        .add_chain(&[
            Buffer {
                addr: 0x81_0000,
                len: 16,
                write: false,
            },
            Buffer {
                addr: 0x91_0000,
                len: 16,
                write: true,
            },
        ])
        .unwrap();
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    dev.lock().run(2_000).unwrap();
    assert_eq!(punt_ring::PROD.read(&dev).unwrap(), 1);
    let p = entry(&mem, 0);
    assert_eq!(p.qid, 0);
    assert_eq!(p.head, long);
    assert_eq!(u32::from(p.reason), PuntReason::ChainTooLong.raw());
    assert_eq!(p.addr, 0x80_0000);
    assert_eq!(p.len, 16 * 8, "readable bytes of the 16 descriptors walked");
    // The short request is done; the long one is in flight at the CPU.
    assert_eq!(ring.reap().unwrap(), vec![(short, 16)]);
    let st = queue::q::STATUS.at(0).unwrap().read(&dev).unwrap();
    assert_eq!(queue::q::status::INFLIGHT.get(st), 1);
    // A disable waits for the punted request.
    let ctrl = queue::q::CTRL.at(0).unwrap();
    let on = ctrl.read(&dev).unwrap();
    ctrl.write(&dev, 0).unwrap();
    dev.lock().run(500).unwrap();
    assert!(queue::q::status::ENABLED.is_set(queue::q::STATUS.at(0).unwrap().read(&dev).unwrap()));

    assert_eq!(
        cpl_ring::CONS.read(&dev).unwrap(),
        0,
        "nothing consumed yet"
    );
    // The CPU serves it (echo in software) and completes it.
    let n = src.len().min(256);
    mem.write_slice(&src[..n], GuestAddress(0x90_0000)).unwrap();
    complete(&dev, &mem, 0, long, n as u32, p.tag);
    dev.lock().run(2_000).unwrap();
    assert_eq!(cpl_ring::CONS.read(&dev).unwrap(), 1);
    assert_eq!(ring.reap().unwrap(), vec![(long, n as u32)]);
    // Drained: the disable handshake completes, and the saved state counts both.
    let st = queue::q::STATUS.at(0).unwrap().read(&dev).unwrap();
    assert!(!queue::q::status::ENABLED.is_set(st));
    let state = queue::q::STATE.at(0).unwrap().read(&dev).unwrap();
    assert_eq!(state, 2 | (2 << 16));
    // One interrupt per used entry.
    assert_eq!(dev.lock().msis().iter().filter(|m| m.data == 3).count(), 2);

    // A completion naming nothing in flight: dropped, flagged, and it fails its queue.
    ctrl.write(&dev, on).unwrap();
    complete(&dev, &mem, 1, long, 1, p.tag);
    dev.lock().run(2_000).unwrap();
    assert_eq!(cpl_ring::STATUS.read(&dev).unwrap() & 1, 1);
    let st = queue::q::STATUS.at(0).unwrap().read(&dev).unwrap();
    assert_eq!(
        QueueError::try_from(queue::q::status::CAUSE.get(st)).unwrap(),
        QueueError::BadCompletion
    );
    assert_eq!(ring.used_idx().unwrap(), 2, "nothing published for it");
}

const LOG: u64 = 0x1d0_0000;

/// The done log's record of ring entry `i`: (avail position, used->idx of its publish).
fn record(mem: &GuestMemoryMmap, i: u64) -> (u16, u16) {
    let v: u32 = mem.read_obj(GuestAddress(LOG + 4 * i)).unwrap();
    (v as u16, (v >> 16) as u16)
}

/// With a done log, every publish first records its request's avail position and the used->idx
/// it writes, so a restarted driver can tell completed requests from those in flight even when
/// a punted request completes after later ones: here position 0 is punted, 1 and 2 are served by
/// the FPGA and published first, and position 0's record appears only with its own publish.
#[test]
fn done_log_records_each_publish_when_a_punt_completes_late() {
    use fpga_virtio_hw::regs::{queue, QueueError};
    let (dev, mem) = device();
    cpl_ring(&dev);
    let mut ring = SplitRing::new(&mem, 0x10_0000, 32, false).unwrap();
    // The driver marks every record as naming no position of the ring's first pass.
    for i in 0..32u64 {
        mem.write_obj(0x8000u32, GuestAddress(LOG + 4 * i)).unwrap();
    }
    setup_queue(
        &dev,
        0,
        &ring,
        QueueSetup {
            done_log: LOG,
            ..Default::default()
        },
    )
    .unwrap();
    let long = long_chain(&mut ring, 64);
    let short = |ring: &mut SplitRing, k: u64| {
        ring.add_chain(&[
            Buffer {
                addr: 0x81_0000 + 0x100 * k,
                len: 16,
                write: false,
            },
            Buffer {
                addr: 0x91_0000 + 0x100 * k,
                len: 16,
                write: true,
            },
        ])
        .unwrap()
    };
    let s1 = short(&mut ring, 1);
    let s2 = short(&mut ring, 2);
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    dev.lock().run(3_000).unwrap();
    assert_eq!(ring.reap().unwrap(), vec![(s1, 16), (s2, 16)]);
    assert_eq!(record(&mem, 0), (0x8000, 0), "position 0 is in flight");
    assert_eq!(record(&mem, 1), (1, 1));
    assert_eq!(record(&mem, 2), (2, 2));
    assert_eq!(record(&mem, 3), (0x8000, 0), "untouched");
    let p = entry(&mem, 0);
    assert_eq!(p.head, long);
    complete(&dev, &mem, 0, long, 0, p.tag);
    dev.lock().run(2_000).unwrap();
    assert_eq!(ring.reap().unwrap(), vec![(long, 0)]);
    assert_eq!(record(&mem, 0), (0, 3));
    assert_eq!(ring.used_idx().unwrap(), 3);

    // The positions wrap with the ring: position 32 uses record 0.
    for batch in [3..13, 13..23, 23..33] {
        let n = (batch.end - batch.start) as usize;
        for k in batch {
            short(&mut ring, k);
        }
        ring.publish().unwrap();
        kick(&dev, 0, ring.avail_idx()).unwrap();
        dev.lock().run(8_000).unwrap();
        assert_eq!(ring.reap().unwrap().len(), n);
    }
    assert_eq!(record(&mem, 0), (32, 33));
    assert_eq!(record(&mem, 31), (31, 32));

    // A log the device cannot write fails the queue (writes are posted: the used entry behind
    // the refused record is written all the same, and nothing after it).
    let mut ring = SplitRing::new(&mem, 0x12_0000, 8, false).unwrap();
    setup_queue(
        &dev,
        1,
        &ring,
        QueueSetup {
            done_log: 0x4000_0000,
            ..Default::default()
        },
    )
    .unwrap();
    short(&mut ring, 20);
    ring.publish().unwrap();
    kick(&dev, 1, ring.avail_idx()).unwrap();
    dev.lock().run(3_000).unwrap();
    let st = queue::q::STATUS.at(1).unwrap().read(&dev).unwrap();
    assert!(queue::q::status::ERROR.is_set(st));
    assert_eq!(
        QueueError::from_raw(queue::q::status::CAUSE.get(st)),
        Some(QueueError::DmaFault)
    );
    assert_eq!(ring.used_idx().unwrap(), 1);
    short(&mut ring, 21);
    ring.publish().unwrap();
    kick(&dev, 1, ring.avail_idx()).unwrap();
    dev.lock().run(3_000).unwrap();
    assert_eq!(
        ring.used_idx().unwrap(),
        1,
        "a broken queue publishes nothing more"
    );
}
