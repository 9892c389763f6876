//! Fault campaign (issue 15): seeded runs of reads and writes on three queues (two on the FPGA,
//! one on the CPU) while one or two faults are injected mid-I/O:
//!
//! - the storage port drops or delays answers (the device's storage timeout fails the request),
//! - a page of one FPGA queue's buffers leaves the IOMMU map (a DMA error for that request),
//! - the CPU workers panic on one queue's requests for a while,
//! - the runtime is stopped and started again under running queues (what a vhost-user backend
//!   does on a new memory table).
//!
//! Per run: every request posted on a queue that did not enter its error state completed
//! exactly once (no duplicate, none lost) with OK or an error status; a read that completed OK
//! returned what the last write that completed OK put there; faults aimed at one queue left
//! the other queues' requests all OK; nothing hung. `FV_CAMPAIGN_SEEDS=N` (default 1000).

use fpga_virtio_driver::runtime::SplitPolicy;
use fpga_virtio_hw::regs::QueueError;
use fpga_virtio_sim::testing::{kick, Buffer};
use fpga_virtio_sim::{Perm, StoreFault};
use fpga_virtio_workload::{Rig, WorkloadConfig};
use std::collections::HashMap;
use vm_memory::{Bytes, GuestAddress};

const QUEUES: u16 = 3;
const DEPTH: u64 = 4;
const BATCHES: u64 = 4;
const BUFS: u64 = 0x20_0000; // per slot: header, data (4 KiB), status; 16 KiB apart
const SLOT: u64 = 0x4000;
const SECTORS_PER_SLOT: u64 = 8;
const DISK_SECTORS: u64 = 4096;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    StoreDrop(u32),
    StoreDelay(u32, u64),
    /// Unmap the data page of this FPGA queue's slot.
    DmaError(u16, u64),
    /// Worker panics on this queue for one batch.
    WorkerPanic(u16),
    RestartRuntime,
}

impl Fault {
    /// The queue a fault is aimed at, if it is aimed at one.
    fn queue(self) -> Option<u16> {
        match self {
            Fault::DmaError(q, _) | Fault::WorkerPanic(q) => Some(q),
            _ => None,
        }
    }
}

fn pick(rng: &mut Rng) -> Fault {
    match rng.below(5) {
        0 => Fault::StoreDrop(1 + rng.below(3) as u32),
        1 => Fault::StoreDelay(1 + rng.below(4) as u32, 2_000 + rng.below(50_000)),
        2 => Fault::DmaError(rng.below(2) as u16, rng.below(DEPTH)),
        3 => Fault::WorkerPanic(2),
        _ => Fault::RestartRuntime,
    }
}

/// A request in flight, by head: its slot, whether it writes, and the data it writes.
type Posted = (u64, bool, Vec<u8>);

fn slot_addr(q: u16, i: u64) -> u64 {
    BUFS + (u64::from(q) * DEPTH + i) * SLOT
}

fn sector_of(q: u16, i: u64) -> u64 {
    (u64::from(q) * DEPTH + i) * SECTORS_PER_SLOT
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(seed: u64) -> Vec<Fault> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let cfg = WorkloadConfig {
        queues: QUEUES,
        depth: DEPTH as u16,
        capacity_sectors: DISK_SECTORS,
        policy: SplitPolicy {
            workers: 2,
            ..SplitPolicy::from_toml("cpu_queues = [2]").unwrap()
        },
        interrupts: false,
        ..WorkloadConfig::default()
    };
    let mut rig = Rig::new(&cfg).unwrap();
    // Short storage timeout: a dropped answer fails its request in 20 000 cycles.
    fpga_virtio_hw::regs::global::STORAGE_TIMEOUT
        .write(&rig.dev, 20_000)
        .unwrap();
    let mem_end = {
        use vm_memory::GuestMemoryBackend;
        rig.mem.last_addr().0 + 1
    };
    let faults: Vec<Fault> = (0..1 + rng.below(2)).map(|_| pick(&mut rng)).collect();
    let fault_batch: Vec<u64> = faults.iter().map(|_| rng.below(BATCHES)).collect();
    // What each slot's sectors hold after the last write that completed OK (None: unknown, a
    // write to them failed since).
    let mut shadow: HashMap<(u16, u64), Option<Vec<u8>>> = HashMap::new();
    for q in 0..QUEUES {
        for i in 0..DEPTH {
            shadow.insert((q, i), Some(vec![0u8; 4096]));
        }
    }
    let mut broken = [false; QUEUES as usize];
    let mut unmapped = None;
    for batch in 0..BATCHES {
        // Post: every slot of every live queue, a read or a write.
        let mut posted: Vec<HashMap<u16, Posted>> = (0..QUEUES).map(|_| HashMap::new()).collect();
        for q in 0..QUEUES {
            if broken[usize::from(q)] {
                continue;
            }
            for i in 0..DEPTH {
                let at = slot_addr(q, i);
                let write = rng.below(2) == 0;
                let mut h = [0u8; 16];
                h[..4].copy_from_slice(&u32::from(write).to_le_bytes());
                h[8..].copy_from_slice(&sector_of(q, i).to_le_bytes());
                rig.mem.write_slice(&h, GuestAddress(at)).unwrap();
                rig.mem.write_obj(0xffu8, GuestAddress(at + 16)).unwrap();
                let data: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
                if write {
                    rig.mem
                        .write_slice(&data, GuestAddress(at + 0x1000))
                        .unwrap();
                } else {
                    rig.mem
                        .write_slice(&[0u8; 4096], GuestAddress(at + 0x1000))
                        .unwrap();
                }
                let head = rig.rings[usize::from(q)]
                    .add_chain(&[
                        Buffer {
                            addr: at,
                            len: 16,
                            write: false,
                        },
                        Buffer {
                            addr: at + 0x1000,
                            len: 4096,
                            write: !write,
                        },
                        Buffer {
                            addr: at + 16,
                            len: 1,
                            write: true,
                        },
                    ])
                    .unwrap();
                posted[usize::from(q)].insert(head, (i, write, data));
            }
        }
        // Faults of this batch, before the kick or a little after it.
        let now: Vec<Fault> = faults
            .iter()
            .zip(&fault_batch)
            .filter(|(_, &b)| b == batch)
            .map(|(f, _)| *f)
            .collect();
        let mut kicked = false;
        let kick_all = |rig: &mut Rig| {
            for q in 0..QUEUES {
                if !broken[usize::from(q)] {
                    rig.rings[usize::from(q)].publish().unwrap();
                    kick(
                        &rig.dev,
                        u32::from(q),
                        rig.rings[usize::from(q)].avail_idx(),
                    )
                    .unwrap();
                }
            }
        };
        for f in &now {
            match *f {
                Fault::StoreDrop(n) => rig.dev.lock().store_fault(StoreFault::Drop(n)),
                Fault::StoreDelay(n, c) => rig.dev.lock().store_fault(StoreFault::Delay(n, c)),
                Fault::DmaError(_, _) if unmapped.is_some() => {} // one page at a time
                Fault::DmaError(q, i) => {
                    let page = slot_addr(q, i) + 0x1000;
                    let mut sim = rig.dev.lock();
                    let iommu = sim.iommu_mut();
                    iommu.unmap(0, mem_end).unwrap();
                    iommu.map(0, 0, page, Perm::RW).unwrap();
                    iommu
                        .map(
                            page + 0x1000,
                            page + 0x1000,
                            mem_end - page - 0x1000,
                            Perm::RW,
                        )
                        .unwrap();
                    unmapped = Some(page);
                }
                Fault::WorkerPanic(q) => rig.rt.inject_worker_panic(Some(q)),
                Fault::RestartRuntime => {
                    kick_all(&mut rig);
                    kicked = true;
                    let cycles = rng.below(3000);
                    rig.step(cycles).unwrap();
                    rig.restart_runtime().unwrap();
                }
            }
        }
        if !kicked {
            kick_all(&mut rig);
        }
        // Collect: every request of a live queue exactly once.
        let mut left: usize = posted.iter().map(HashMap::len).sum();
        let mut steps = 0;
        while left > 0 {
            rig.step(1000).unwrap();
            steps += 1;
            for q in 0..QUEUES {
                for (head, _len) in rig.rings[usize::from(q)].reap().unwrap() {
                    let (i, write, data) = posted[usize::from(q)]
                        .remove(&head)
                        .unwrap_or_else(|| panic!("seed {seed}: queue {q} completed head {head} twice or unposted ({faults:?})"));
                    left -= 1;
                    let at = slot_addr(q, i);
                    let status: u8 = rig.mem.read_obj(GuestAddress(at + 16)).unwrap();
                    let aimed_elsewhere =
                        faults.iter().all(|f| f.queue().is_some_and(|fq| fq != q));
                    if aimed_elsewhere {
                        assert_eq!(
                            status, 0,
                            "seed {seed}: queue {q} hit by a fault aimed elsewhere ({faults:?})"
                        );
                    }
                    assert!(
                        status == 0 || status == 1 || status == 0xff,
                        "seed {seed}: status {status}"
                    );
                    let sh = shadow.get_mut(&(q, i)).unwrap();
                    if write {
                        *sh = (status == 0).then_some(data);
                    } else if status == 0 {
                        if let Some(expect) = sh.as_ref() {
                            let mut got = vec![0u8; 4096];
                            rig.mem
                                .read_slice(&mut got, GuestAddress(at + 0x1000))
                                .unwrap();
                            assert!(
                                got == *expect,
                                "seed {seed}: queue {q} slot {i} read back wrong data ({faults:?})"
                            );
                        }
                    }
                }
                // A queue that entered its error state owes nothing more.
                if !broken[usize::from(q)] {
                    if let Some(cause) = rig.rt.queue_error(&rig.dev, q).unwrap() {
                        assert!(
                            faults.iter().any(|f| f.queue() == Some(q)),
                            "seed {seed}: queue {q} failed ({cause:?}) with no fault aimed at it ({faults:?})"
                        );
                        assert!(
                            matches!(cause, QueueError::DmaFault | QueueError::Internal),
                            "seed {seed}: queue {q}: {cause:?}"
                        );
                        broken[usize::from(q)] = true;
                        left -= posted[usize::from(q)].len();
                        posted[usize::from(q)].clear();
                        // Its shadow is unknown from here.
                        for i in 0..DEPTH {
                            shadow.insert((q, i), None);
                        }
                    }
                }
            }
            assert!(
                steps < 2000,
                "seed {seed}: {left} requests never completed ({faults:?}, batch {batch})"
            );
        }
        if now.iter().any(|f| matches!(f, Fault::WorkerPanic(_))) {
            rig.rt.inject_worker_panic(None);
        }
        if let Some(page) = unmapped.take() {
            // The page comes back for the next batch (the queue that hit it stays broken).
            let mut sim = rig.dev.lock();
            let iommu = sim.iommu_mut();
            iommu.unmap(0, page).unwrap();
            iommu.unmap(page + 0x1000, mem_end - page - 0x1000).unwrap();
            iommu.map(0, 0, mem_end, Perm::RW).unwrap();
        }
    }
    // Whatever survived still works: one more read on every live queue.
    for q in 0..QUEUES {
        if !broken[usize::from(q)] {
            let (_, status) = rig.one(q, false, sector_of(q, 0), 4096).unwrap();
            assert!(
                status == 0 || status == 1,
                "seed {seed}: queue {q} after the run: {status}"
            );
        }
    }
    faults
}

#[test]
fn every_request_completes_once_or_fails_cleanly_under_injected_faults() {
    // The injected worker panics are expected: keep them out of the log (others still print).
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("injected worker panic"));
        if !injected {
            default(info);
        }
    }));
    let first = env("FV_CAMPAIGN_FIRST", 0);
    let seeds = env("FV_CAMPAIGN_SEEDS", 1000);
    let mut kinds = HashMap::<&str, u64>::new();
    for seed in first..first + seeds {
        for f in run(seed) {
            let k = match f {
                Fault::StoreDrop(_) => "storage drop",
                Fault::StoreDelay(..) => "storage delay",
                Fault::DmaError(..) => "DMA error",
                Fault::WorkerPanic(_) => "worker panic",
                Fault::RestartRuntime => "runtime restart",
            };
            *kinds.entry(k).or_default() += 1;
        }
    }
    eprintln!("fault campaign: {seeds} runs from seed {first}, faults injected: {kinds:?}");
}
