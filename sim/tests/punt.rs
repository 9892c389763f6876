//! The punt ring through the RTL: doorbells of CPU-owned queues become punt-ring events the
//! runtime reads from memory (phase bit, producer index, backpressure when full, MSI-X).

use fpga_virtio_hw::formats::PuntEntry;
use fpga_virtio_hw::regs::{self, punt_ring, PuntReason, QueueOwner};
use fpga_virtio_sim::testing::{
    enable_device, kick, setup_queue, setup_vector, Buffer, QueueSetup, SplitRing,
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
