//! A runtime that dies mid-I/O (a vhost-user backend killed) and a new one on a new device, over
//! the same guest memory and disk: with the queue's done log the new runtime serves exactly the
//! requests the dead one left in flight, even when they had completed out of order (a punted
//! request answered after later ones): none is lost, none is completed twice.

use fpga_virtio_driver::blk::{BlkConfig, ChainError};
use fpga_virtio_driver::runtime::{
    done_log, BlkFunction, Path, QueueInfo, QueueSpec, Rings, Runtime, RuntimeError, SplitPolicy,
};
use fpga_virtio_hw::regs;
use fpga_virtio_sim::testing::{enable_device, kick, Buffer, SplitRing};
use fpga_virtio_sim::{GuestMemory, Perm, SimConfig, SimDevice, Simulator};
use fpga_virtio_storage::{BlockStore, RamStore};
use std::collections::BTreeSet;
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: u64 = 32 << 20;
const PUNT: u64 = 0x0f_0000;
const CPL: u64 = 0x0f_8000;
const RING: u64 = 0x10_0000;
const LOG: u64 = 0x12_0000;
const REQS: u64 = 0x20_0000; // request slots, 64 KiB apart
const SIZE: u16 = 64;

/// What outlives a backend: guest memory with one queue's ring and empty done log, and the disk.
fn world() -> (GuestMemoryMmap, Arc<dyn BlockStore>, SplitRing) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
    let store: Arc<dyn BlockStore> = Arc::new(RamStore::new(4 << 20));
    let ring = SplitRing::new(&mem, RING, u32::from(SIZE), false).unwrap();
    done_log::init(&mem, LOG, SIZE, 0).unwrap();
    (mem, store, ring)
}

/// One incarnation of the backend: a device (the simulated FPGA) and a runtime.
struct Backend {
    dev: SimDevice,
    rt: Runtime,
}

fn backend(mem: &GuestMemoryMmap, store: &Arc<dyn BlockStore>, path: Path) -> Backend {
    let mut sim = Simulator::new(SimConfig {
        memory: 1 << 16,
        ..SimConfig::default()
    })
    .unwrap();
    sim.set_memory(GuestMemory::from_mmap(mem.clone()));
    sim.iommu_mut().map(0, 0, MEM, Perm::RW).unwrap();
    sim.attach_store(store.clone());
    let dev = SimDevice::new(sim);
    enable_device(&dev).unwrap();
    let rt = Runtime::start(
        &dev,
        mem.clone(),
        SplitPolicy::all(path),
        vec![BlkFunction {
            func: 0,
            store: store.clone(),
            config: BlkConfig::new(store.size() / 512, "restart"),
            windows: fpga_virtio_workload::tenant_windows(mem),
        }
        .into()],
        Rings {
            punt: PUNT,
            punt_log2: 6,
            cpl: CPL,
            cpl_log2: 6,
            punt_vector: regs::NO_VECTOR,
        },
    )
    .unwrap();
    Backend { dev, rt }
}

fn info(ring: &SplitRing) -> QueueInfo {
    QueueInfo {
        func: 0,
        vq: 0,
        desc: ring.desc_addr(),
        avail: ring.avail_addr(),
        used: ring.used_addr(),
        size: SIZE,
        indirect: true,
        event_idx: false,
        notification_data: false,
    }
}

fn spec(ring: &SplitRing, last_avail: u16, used_idx: u16) -> QueueSpec {
    QueueSpec {
        qid: 0,
        info: info(ring),
        vector: regs::NO_VECTOR,
        last_avail,
        used_idx,
        done_log: Some(LOG),
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

/// Post a write of `data` at `sector` from request slot `slot`, the data split into descriptors
/// of `piece` bytes (more than 16 descriptors: the FPGA punts it). Returns the head.
fn post_write(
    mem: &GuestMemoryMmap,
    ring: &mut SplitRing,
    slot: u64,
    sector: u64,
    data: &[u8],
    piece: usize,
) -> u16 {
    let base = REQS + slot * 0x1_0000;
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&1u32.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    mem.write_slice(&h, GuestAddress(base)).unwrap();
    mem.write_slice(data, GuestAddress(base + 0x100)).unwrap();
    mem.write_obj(0xffu8, GuestAddress(base + 0x80)).unwrap();
    let mut bufs = vec![Buffer {
        addr: base,
        len: 16,
        write: false,
    }];
    for (k, c) in data.chunks(piece).enumerate() {
        bufs.push(Buffer {
            addr: base + 0x100 + (k * piece) as u64,
            len: c.len() as u32,
            write: false,
        });
    }
    bufs.push(Buffer {
        addr: base + 0x80,
        len: 1,
        write: true,
    });
    ring.add_chain(&bufs).unwrap()
}

/// 4 KiB writes of request slots `slots` (slot k: sector k * 64, pattern k), posted by `g`.
fn post_writes(
    mem: &GuestMemoryMmap,
    ring: &mut SplitRing,
    g: &mut Guest,
    slots: std::ops::Range<u64>,
) {
    for k in slots {
        g.post(post_write(
            mem,
            ring,
            k,
            k * 64,
            &pattern(4096, k as u8),
            4096,
        ));
    }
}

fn status(mem: &GuestMemoryMmap, slot: u64) -> u8 {
    mem.read_obj(GuestAddress(REQS + slot * 0x1_0000 + 0x80))
        .unwrap()
}

fn run_until(b: &mut Backend, ring: &SplitRing, used: u16, poll: bool) {
    for _ in 0..2_000 {
        b.dev.lock().run(500).unwrap();
        if poll {
            b.rt.poll(&b.dev).unwrap();
        }
        if ring.used_idx().unwrap() == used {
            return;
        }
    }
    panic!(
        "used->idx stayed at {} (want {used})",
        ring.used_idx().unwrap()
    );
}

/// The guest's view: the heads it posted and has not got back. Every used entry must name one
/// of them (a request completed twice would name a head that is free, or reused by a later
/// request that then completes once too often).
#[derive(Default)]
struct Guest {
    out: BTreeSet<u16>,
    completed: usize,
}

impl Guest {
    fn post(&mut self, head: u16) -> u16 {
        assert!(self.out.insert(head));
        head
    }

    fn reap(&mut self, ring: &mut SplitRing) {
        for (head, _) in ring.reap().unwrap() {
            assert!(
                self.out.remove(&head),
                "head {head} completed but not outstanding"
            );
            self.completed += 1;
        }
    }
}

/// The FPGA serves positions 1..=4 while the punted position 0 (a chain too long for its
/// segment table) waits for a CPU that never answers: the backend dies with position 0 in
/// flight and used->idx already 4. Resuming from used->idx (what a frontend without in-flight
/// tracking does) would skip position 4 forever and run position 0 twice... here the done log
/// says exactly which one is left.
#[test]
fn a_punt_completing_late_is_served_once_after_a_crash() {
    let (mem, store, mut ring) = world();

    let mut b = backend(&mem, &store, Path::Fpga);
    b.rt.add_queue(&b.dev, spec(&ring, 0, 0)).unwrap();
    let long = pattern(20 * 512, 1);
    let mut g = Guest::default();
    let first = g.post(post_write(&mem, &mut ring, 0, 0, &long, 512));
    post_writes(&mem, &mut ring, &mut g, 1..5);
    ring.publish().unwrap();
    kick(&b.dev, 0, ring.avail_idx()).unwrap();
    // No runtime polls: the punt is never served.
    run_until(&mut b, &ring, 4, false);
    g.reap(&mut ring);
    assert_eq!(g.completed, 4);
    assert_eq!(g.out, BTreeSet::from([first]), "position 0 is in flight");
    // The backend dies: runtime and device are gone; guest memory and disk stay.
    drop(b);

    let mut b = backend(&mem, &store, Path::Fpga);
    let r = b.rt.resubmit_in_flight(0, &info(&ring), LOG, 0).unwrap();
    let pos = r.resume;
    assert_eq!((pos.last_avail, pos.used_idx), (5, 5));
    assert_eq!((r.used_before, r.served.clone()), (4, vec![0]));
    assert!(r.out_of_order(), "position 0 left behind 1..=4");
    assert_eq!(b.rt.stats().queues[&0].resubmitted, 1);
    g.reap(&mut ring);
    assert!(g.out.is_empty(), "position 0 completed now");
    assert_eq!(status(&mem, 0), 0);
    let mut disk = vec![0u8; long.len()];
    store.read_at(0, &mut disk).unwrap();
    assert_eq!(disk, long);

    // The queue goes on from there on the new device, the log kept.
    b.rt.add_queue(&b.dev, spec(&ring, pos.last_avail, pos.used_idx))
        .unwrap();
    post_writes(&mem, &mut ring, &mut g, 5..9);
    ring.publish().unwrap();
    kick(&b.dev, 0, ring.avail_idx()).unwrap();
    run_until(&mut b, &ring, 9, true);
    g.reap(&mut ring);
    assert!(g.out.is_empty());
    assert_eq!(g.completed, 9);
    for k in 0..9u64 {
        assert_eq!(status(&mem, k), 0, "request {k}");
    }
    for k in 1..9u64 {
        let mut got = vec![0u8; 4096];
        store.read_at(k * 64 * 512, &mut got).unwrap();
        assert_eq!(got, pattern(4096, k as u8), "request {k} on disk");
    }
    // A second crash with nothing in flight: nothing to serve again.
    drop(b);
    let mut b = backend(&mem, &store, Path::Fpga);
    let again = b.rt.resubmit_in_flight(0, &info(&ring), LOG, 0).unwrap();
    assert_eq!((again.resume.last_avail, again.resume.used_idx), (9, 9));
    assert!(again.served.is_empty() && !again.out_of_order());
    assert_eq!(b.rt.stats().queues.get(&0).map_or(0, |q| q.resubmitted), 0);
}

/// A CPU-owned queue keeps the same log (its worker records each request before the used
/// element): requests the dead runtime never got to are served by the new one, those it served
/// are not served again.
#[test]
fn a_cpu_owned_queue_resumes_from_its_log() {
    let (mem, store, mut ring) = world();
    let mut b = backend(&mem, &store, Path::Cpu);
    b.rt.add_queue(&b.dev, spec(&ring, 0, 0)).unwrap();
    let mut g = Guest::default();
    post_writes(&mem, &mut ring, &mut g, 0..3);
    ring.publish().unwrap();
    kick(&b.dev, 0, ring.avail_idx()).unwrap();
    run_until(&mut b, &ring, 3, true);
    g.reap(&mut ring);
    // The worker finished its pass over the ring (it would take what is posted meanwhile).
    for _ in 0..10_000 {
        b.rt.poll(&b.dev).unwrap();
        if b.rt.outstanding() == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(b.rt.outstanding(), 0);
    // Two more posted, and the backend dies before it sees the kick.
    post_writes(&mem, &mut ring, &mut g, 3..5);
    ring.publish().unwrap();
    drop(b);
    let mut b = backend(&mem, &store, Path::Cpu);
    let r = b.rt.resubmit_in_flight(0, &info(&ring), LOG, 0).unwrap();
    assert_eq!((r.resume.last_avail, r.resume.used_idx), (5, 5));
    assert_eq!(r.served, vec![3, 4]);
    assert!(!r.out_of_order(), "a CPU-owned queue completes in order");
    assert_eq!(b.rt.stats().queues[&0].resubmitted, 2);
    g.reap(&mut ring);
    assert!(g.out.is_empty());
    assert_eq!(g.completed, 5);
    for k in 0..5u64 {
        assert_eq!(status(&mem, k), 0, "request {k}");
        let mut got = vec![0u8; 4096];
        store.read_at(k * 64 * 512, &mut got).unwrap();
        assert_eq!(got, pattern(4096, k as u8), "request {k} on disk");
    }
}

/// A malformed chain left in flight fails the recovery of its queue with an error, no panic.
#[test]
fn a_malformed_chain_in_flight_is_an_error() {
    let (mem, store, mut ring) = world();
    post_write(&mem, &mut ring, 0, 0, &pattern(512, 0), 512);
    ring.publish().unwrap();
    // The avail entry names a descriptor beyond the table.
    mem.write_obj(SIZE + 3, GuestAddress(ring.avail_addr() + 4))
        .unwrap();
    let mut b = backend(&mem, &store, Path::Fpga);
    let e =
        b.rt.resubmit_in_flight(0, &info(&ring), LOG, 0)
            .unwrap_err();
    assert!(
        matches!(
            e,
            RuntimeError::InFlightChain {
                qid: 0,
                pos: 0,
                source: ChainError::BadIndex { .. }
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("avail position 0"), "{e}");
}
