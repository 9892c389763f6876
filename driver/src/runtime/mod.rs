//! The runtime on the NIC's CPU: it sets up functions and queues, splits the queues between the
//! FPGA and the CPU ([`split`]), reads the punt ring, hands requests to the CPU workers
//! ([`workers`]) and writes their answers to the completion ring, and keeps statistics
//! ([`stats`]). It knows a function's device type only through its
//! [`DeviceEngine`](crate::device::DeviceEngine).
//!
//! The runtime is polled: [`Runtime::poll`] does whatever is ready and returns. On hardware a
//! thread calls it when the punt ring's MSI-X fires; in the simulator the caller interleaves it
//! with running simulated time.

pub mod split;
pub mod stats;
pub mod workers;

pub use crate::blk::BlkFunction;
pub use crate::device::Function;
pub use crate::virtq::{done_log, DoneLogError, QueueInfo};
pub use split::{Path, PolicyError, SplitPolicy};
pub use stats::{DeviceQueueError, Histogram, PuntCounts, QueueStats, Stats, StatusCounts};
pub use workers::CpuQueueError;

use crate::device::{DeviceEngine, SetupError, Status};
use crate::virtq::{chain, ChainError, DmaWindows};
use fpga_virtio_hw::formats::{CplEntry, PuntEntry};
use fpga_virtio_hw::regs::{
    self, cpl_ring, functions, punt_ring, queue, PuntReason, QueueError, QueueOwner,
};
use fpga_virtio_hw::{IoError, RegisterIo};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use workers::{CpuQueue, Done, Job, Pool, Shared};

const NQ: usize = regs::NUM_QUEUES as usize;
/// `cpl_entry.flags` bit 1: the chain was malformed; fail the queue with `status` as the cause.
const CPL_QUEUE_ERROR: u8 = 2;
const NF: usize = regs::NUM_FUNCTIONS as usize;
/// How long a queue's disable handshake may take (in-flight and punted requests drain first).
const DISABLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Index(#[from] fpga_virtio_hw::IndexError),
    #[error(transparent)]
    Field(#[from] fpga_virtio_hw::FieldError),
    #[error("function {func}: {source}")]
    Setup { func: u8, source: SetupError },
    #[error("queue {0}: no such queue (the device has {NQ})")]
    NoSuchQueue(u16),
    #[error("queue {0}: not set up")]
    QueueNotSetUp(u16),
    #[error("queue {qid}: the device did not confirm the disable in {waited:?}")]
    DisableTimeout {
        qid: u16,
        waited: std::time::Duration,
    },
    #[error("the punt-ring writer did not go idle after its disable")]
    PuntRingBusy,
    #[error("queue {qid}: virtio-queue refused the ring: {source}")]
    VirtioQueue {
        qid: u16,
        source: virtio_queue::Error,
    },
    #[error("queue {qid}: request in flight at avail position {pos}: {source}")]
    InFlightChain {
        qid: u16,
        pos: u16,
        source: ChainError,
    },
    #[error("queue {qid}: used ring: {source}")]
    UsedRing {
        qid: u16,
        source: virtio_queue::Error,
    },
    #[error("function {0} does not exist or is not set up")]
    Function(u8),
    #[error("ring memory at {0:#x} is not in guest memory")]
    RingMemory(u64),
    #[error(
        "queue {qid}: its {ring} at {addr:#x} (+{len:#x}) is outside its function's DMA windows"
    )]
    RingOutsideWindows {
        qid: u16,
        ring: &'static str,
        addr: u64,
        len: u64,
    },
    #[error("starting the workers: {0}")]
    Workers(std::io::Error),
    #[error("queue {0}: {1}")]
    DoneLog(u16, DoneLogError),
}

/// virtio-queue's state of queue `q`'s split ring at (`next_avail`, `next_used`).
fn split_queue(
    q: u16,
    info: &QueueInfo,
    next_avail: u16,
    next_used: u16,
) -> Result<virtio_queue::Queue, RuntimeError> {
    crate::virtq::queue::split_queue(info, next_avail, next_used)
        .map_err(|source| RuntimeError::VirtioQueue { qid: q, source })
}

/// Give every punt-ring slot the phase of the pass *before* the one in which index `cons`
/// and its successors will fill it: slot `s` is next written at the first index `i >= cons`
/// with `i % size == s`, whose phase is `(i >> log2) & 1 == 0`.
fn stale_phases(
    mem: &GuestMemoryMmap,
    base: u64,
    log2: u32,
    cons: u32,
) -> Result<(), RuntimeError> {
    let size = 1u32 << log2;
    for slot in 0..size {
        let next = cons.wrapping_add(slot.wrapping_sub(cons) & (size - 1));
        let expected = u8::from((next >> log2) & 1 == 0);
        let at = base + u64::from(slot) * PuntEntry::SIZE as u64;
        let entry = PuntEntry {
            flags: 1 - expected,
            ..PuntEntry::default()
        };
        mem.write_slice(&entry.to_le_bytes(), GuestAddress(at))
            .map_err(|_| RuntimeError::RingMemory(at))?;
    }
    Ok(())
}

/// Where the runtime keeps its two rings (IOVAs the device can reach, in `mem`).
#[derive(Clone, Copy, Debug)]
pub struct Rings {
    pub punt: u64,
    pub punt_log2: u32,
    pub cpl: u64,
    pub cpl_log2: u32,
    /// MSI-X vector for the punt ring (regs::NO_VECTOR: poll only).
    pub punt_vector: u32,
}

/// A queue the guest driver set up.
#[derive(Clone, Copy, Debug)]
pub struct QueueSpec {
    pub qid: u16,
    pub info: QueueInfo,
    /// MSI-X vector (regs::NO_VECTOR: none).
    pub vector: u32,
    /// Where the ring resumes: the next avail index to fetch and the used index to publish next
    /// (0 and 0 for a fresh ring; a vhost-user frontend's SET_VRING_BASE and the used ring's idx
    /// after a reconnect or a migration).
    pub last_avail: u16,
    pub used_idx: u16,
    /// Address of the queue's done log ([`done_log`]; in the runtime's memory, which is the
    /// device's IOVA space), or None. Whoever publishes (the FPGA or a CPU worker) records each
    /// request there before its used element; [`Runtime::resubmit_in_flight`] reads it back.
    pub done_log: Option<u64>,
}

/// A stopped queue's position (what [`Runtime::stop_queue`] returns; vhost-user's
/// GET_VRING_BASE answers `last_avail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePosition {
    pub last_avail: u16,
    pub used_idx: u16,
}

/// What [`Runtime::resubmit_in_flight`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Where the queue goes on.
    pub resume: QueuePosition,
    /// The ring's used->idx before.
    pub used_before: u16,
    /// Avail positions of the requests served, in order.
    pub served: Vec<u16>,
}

impl Recovery {
    /// Whether the dead runtime had completed requests out of order: one it left in flight is
    /// older than the count of those it completed (resuming at used->idx would have lost it).
    pub fn out_of_order(&self) -> bool {
        let completed_from = self.resume.last_avail.wrapping_sub(self.used_before);
        self.served.first().is_some_and(|&p| {
            // Positions before used->idx (counting back from avail->idx).
            self.resume.last_avail.wrapping_sub(p) > completed_from
        })
    }
}

/// See the module docs.
pub struct Runtime {
    policy: SplitPolicy,
    shared: Arc<Shared>,
    pool: Pool,
    rings: Rings,
    punt_cons: u32,
    cpl_prod: u32,
    cpl_cons_seen: u32,
    queues: [Option<QueueInfo>; NQ],
    paths: [Option<Path>; NQ],
    /// Completions waiting for room in the completion ring.
    backlog: VecDeque<CplEntry>,
    /// CPU-owned queues whose guest wants an interrupt.
    notify: Vec<u16>,
    stats: Stats,
    outstanding: usize,
    /// Queues whose punted requests are served one at a time, in punt order (a net TX queue:
    /// its frames must leave in order): the one in flight, and those held behind it.
    ordered_busy: [bool; NQ],
    ordered_held: Vec<VecDeque<Job>>,
    /// CPU-owned queues the guest broke (or a worker failed on), with the cause.
    cpu_errors: [Option<QueueError>; NQ],
    /// Queues taken over in their error state ([`Runtime::add_failed_queue`]).
    failed: [Option<QueueError>; NQ],
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("policy", &self.policy)
            .field("rings", &self.rings)
            .field("outstanding", &self.outstanding)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Set up the functions (each through its device engine: [`DeviceEngine::registers`], then
    /// its DMA windows, then its enable), the punt and completion rings, and start the workers.
    /// `mem` is the memory the rings and the guests' buffers live in, as the CPU sees it.
    pub fn start(
        io: &(impl RegisterIo + ?Sized),
        mem: GuestMemoryMmap,
        policy: SplitPolicy,
        functions_: Vec<Function>,
        rings: Rings,
    ) -> Result<Self, RuntimeError> {
        for (base, log2, esz) in [
            (rings.punt, rings.punt_log2, PuntEntry::SIZE),
            (rings.cpl, rings.cpl_log2, CplEntry::SIZE),
        ] {
            let len = (esz as u64) << log2;
            let zero = vec![0u8; len as usize];
            mem.write_slice(&zero, GuestAddress(base))
                .map_err(|_| RuntimeError::RingMemory(base))?;
        }
        let mut engines: Vec<Option<Box<dyn DeviceEngine>>> = (0..NF).map(|_| None).collect();
        let mut windows: Vec<DmaWindows> = vec![DmaWindows::none(); NF];
        for f in functions_ {
            let slot = engines
                .get_mut(usize::from(f.func))
                .ok_or(RuntimeError::Function(f.func))?;
            let setup = |source| RuntimeError::Setup {
                func: f.func,
                source,
            };
            for (reg, value) in f.engine.registers(f.func).map_err(setup)? {
                reg.write(io, value)?;
            }
            f.windows.program(io, f.func)?;
            functions::func::CTRL
                .at(u32::from(f.func))?
                .write(io, functions::func::ctrl::ENABLE.mask())?;
            windows[usize::from(f.func)] = f.windows;
            *slot = Some(f.engine);
        }
        punt_ring::CTRL.write(io, 0)?;
        punt_ring::BASE_LO.write(io, rings.punt as u32)?;
        punt_ring::BASE_HI.write(io, (rings.punt >> 32) as u32)?;
        punt_ring::SIZE_LOG2.write(io, rings.punt_log2)?;
        punt_ring::MSIX.write(io, rings.punt_vector)?;
        // An entry the writer had started before the disable still lands (and moves PROD):
        // wait for it, so PROD is final and the slot initialization below cannot race it.
        let mut polls = 0u32;
        while punt_ring::status::BUSY.is_set(punt_ring::STATUS.read(io)?) {
            polls += 1;
            if polls > 100_000 {
                return Err(RuntimeError::PuntRingBusy);
            }
        }
        let punt_cons = punt_ring::PROD.read(io)?;
        // Every slot must read as "not written yet" for the pass in which the consumer reaches
        // it next. The device's producer index runs on across runtimes (it is never reset), so
        // zeroed slots are not enough: on an odd pass an all-zero entry carries the expected
        // phase (0) and would be taken for a new one.
        stale_phases(&mem, rings.punt, rings.punt_log2, punt_cons)?;
        punt_ring::CONS.write(io, punt_cons)?;
        punt_ring::CTRL.write(io, 1)?;
        cpl_ring::CTRL.write(io, 0)?;
        cpl_ring::BASE_LO.write(io, rings.cpl as u32)?;
        cpl_ring::BASE_HI.write(io, (rings.cpl >> 32) as u32)?;
        cpl_ring::SIZE_LOG2.write(io, rings.cpl_log2)?;
        let cpl_prod = cpl_ring::CONS.read(io)?;
        cpl_ring::PROD.write(io, cpl_prod)?;
        cpl_ring::CTRL.write(io, 1)?;

        let shared = Arc::new(Shared {
            mem,
            engines,
            windows,
            cpu_queues: (0..NQ).map(|_| Mutex::new(None)).collect(),
            kick_pending: (0..NQ).map(|_| AtomicBool::new(false)).collect(),
            panic_on_queue: AtomicU32::new(u32::MAX),
        });
        let pool = Pool::start(policy.workers, shared.clone()).map_err(RuntimeError::Workers)?;
        Ok(Runtime {
            policy,
            shared,
            pool,
            rings,
            punt_cons,
            cpl_prod,
            cpl_cons_seen: cpl_prod,
            queues: [None; NQ],
            paths: [None; NQ],
            backlog: VecDeque::new(),
            notify: Vec::new(),
            stats: Stats::default(),
            outstanding: 0,
            ordered_busy: [false; NQ],
            ordered_held: (0..NQ).map(|_| VecDeque::new()).collect(),
            cpu_errors: [None; NQ],
            failed: [None; NQ],
        })
    }

    pub fn policy(&self) -> &SplitPolicy {
        &self.policy
    }

    /// Program a queue the guest set up, on the path the policy gives it, and enable it.
    pub fn add_queue(
        &mut self,
        io: &(impl RegisterIo + ?Sized),
        spec: QueueSpec,
    ) -> Result<Path, RuntimeError> {
        let q = spec.qid;
        let i = spec.info;
        if usize::from(q) >= NQ {
            return Err(RuntimeError::NoSuchQueue(q));
        }
        if self
            .shared
            .engines
            .get(usize::from(i.func))
            .is_none_or(Option::is_none)
        {
            return Err(RuntimeError::Function(i.func));
        }
        // The rings come from the guest (through a VMM): they must be the tenant's memory too.
        let n = u64::from(i.size);
        let win = &self.shared.windows[usize::from(i.func)];
        for (ring, addr, len) in [
            ("descriptor table", i.desc, 16 * n),
            ("available ring", i.avail, 6 + 2 * n),
            ("used ring", i.used, 6 + 8 * n),
        ] {
            if !win.contains(addr, len) {
                return Err(RuntimeError::RingOutsideWindows {
                    qid: q,
                    ring,
                    addr,
                    len,
                });
            }
        }
        let path = self.policy.path(q);
        if let Some(engine) = self.shared.engines[usize::from(i.func)].as_ref() {
            engine
                .check_queue(i.vq, path == Path::Fpga)
                .map_err(|source| RuntimeError::Setup {
                    func: i.func,
                    source,
                })?;
        }
        let r = |a: fpga_virtio_hw::RegArray| a.at(u32::from(q));
        // Disable, wait for the handshake, then program.
        self.disable(io, q)?;
        r(queue::q::DESC_LO)?.write(io, i.desc as u32)?;
        r(queue::q::DESC_HI)?.write(io, (i.desc >> 32) as u32)?;
        r(queue::q::AVAIL_LO)?.write(io, i.avail as u32)?;
        r(queue::q::AVAIL_HI)?.write(io, (i.avail >> 32) as u32)?;
        r(queue::q::USED_LO)?.write(io, i.used as u32)?;
        r(queue::q::USED_HI)?.write(io, (i.used >> 32) as u32)?;
        r(queue::q::SIZE)?.write(io, u32::from(i.size))?;
        r(queue::q::MSIX)?.write(io, spec.vector)?;
        r(queue::q::STATE)?.write(
            io,
            u32::from(spec.last_avail) | (u32::from(spec.used_idx) << 16),
        )?;
        let log = spec.done_log.unwrap_or(0);
        r(queue::q::DONE_LOG_LO)?.write(io, log as u32)?;
        r(queue::q::DONE_LOG_HI)?.write(io, (log >> 32) as u32)?;
        let owner = match path {
            Path::Fpga => QueueOwner::Fpga,
            Path::Cpu => {
                let vq = split_queue(q, &i, spec.last_avail, spec.used_idx)?;
                *self.shared.cpu_queues[usize::from(q)]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(CpuQueue {
                    queue: vq,
                    func: i.func,
                    vq: i.vq,
                    indirect: i.indirect,
                    broken: None,
                    done_log: spec.done_log,
                    signalled: spec.used_idx,
                });
                QueueOwner::Cpu
            }
        };
        let ctrl = queue::q::ctrl::ENABLE.mask()
            | (owner.raw() << queue::q::ctrl::OWNER.lsb)
            | (u32::from(i.event_idx) << queue::q::ctrl::EVENT_IDX.lsb)
            | (u32::from(i.indirect) << queue::q::ctrl::INDIRECT.lsb)
            | (u32::from(i.notification_data) << queue::q::ctrl::NOTIFICATION_DATA.lsb)
            | queue::q::ctrl::FUNC.value(u32::from(i.func))?;
        r(queue::q::CTRL)?.write(io, ctrl)?;
        self.queues[usize::from(q)] = Some(i);
        self.paths[usize::from(q)] = Some(path);
        self.cpu_errors[usize::from(q)] = None;
        self.failed[usize::from(q)] = None;
        self.stats.paths.insert(q, path);
        if path == Path::Cpu {
            // Requests the guest posted before the queue was enabled.
            self.kick(q);
        }
        Ok(path)
    }

    /// Clear the queue's enable and wait for the device's handshake, serving punted requests
    /// meanwhile (the device drains them before it confirms).
    fn disable(&mut self, io: &(impl RegisterIo + ?Sized), q: u16) -> Result<(), RuntimeError> {
        let r = |a: fpga_virtio_hw::RegArray| a.at(u32::from(q));
        r(queue::q::CTRL)?.write(io, 0)?;
        let deadline = Instant::now() + DISABLE_TIMEOUT;
        while queue::q::status::ENABLED.is_set(r(queue::q::STATUS)?.read(io)?) {
            self.poll(io)?;
            if Instant::now() > deadline {
                return Err(RuntimeError::DisableTimeout {
                    qid: q,
                    waited: DISABLE_TIMEOUT,
                });
            }
        }
        Ok(())
    }

    /// Stop queue `qid`: no new requests are taken; those in flight (punted ones included) are
    /// finished and their used entries published; then the position is read back. The queue
    /// is forgotten: [`Runtime::add_queue`] sets it up again (from that position, say).
    pub fn stop_queue(
        &mut self,
        io: &(impl RegisterIo + ?Sized),
        qid: u16,
    ) -> Result<QueuePosition, RuntimeError> {
        self.stop_queue_and_error(io, qid).map(|(pos, _)| pos)
    }

    /// [`Runtime::stop_queue`], also saying whether the queue was in its error state (the guest
    /// broke it): such a queue must not simply be started again from its position, since the
    /// requests it held when it failed were neither completed nor failed. Give it to
    /// [`Runtime::add_failed_queue`] instead, and let the guest reset it.
    pub fn stop_queue_and_error(
        &mut self,
        io: &(impl RegisterIo + ?Sized),
        qid: u16,
    ) -> Result<(QueuePosition, Option<QueueError>), RuntimeError> {
        let q = usize::from(qid);
        if q >= NQ || self.queues[q].is_none() {
            return Err(RuntimeError::QueueNotSetUp(qid));
        }
        let before = self.queue_error(io, qid)?;
        self.disable(io, qid)?;
        // A request that drained after the disable may have failed the queue: the device keeps
        // the error while the queue is disabled.
        let error = match before {
            Some(e) => Some(e),
            None => self.queue_error(io, qid)?,
        };
        let pos = match self.paths[q] {
            Some(Path::Cpu) => {
                // A worker holds this lock for the whole of each chain it serves: once we have
                // it, everything popped has its used entry.
                let cq = self.shared.cpu_queues[q]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                let queue = cq.map(|c| c.queue);
                QueuePosition {
                    last_avail: queue.as_ref().map_or(0, |v| v.next_avail()),
                    used_idx: queue.as_ref().map_or(0, |v| v.next_used()),
                }
            }
            _ => {
                let st = queue::q::STATE.at(u32::from(qid))?.read(io)?;
                QueuePosition {
                    last_avail: queue::q::state::LAST_AVAIL.get(st) as u16,
                    used_idx: queue::q::state::USED_IDX.get(st) as u16,
                }
            }
        };
        // Interrupts the workers asked for before the stop still go out.
        self.poll(io)?;
        self.queues[q] = None;
        self.paths[q] = None;
        self.failed[q] = None;
        Ok((pos, error))
    }

    /// Take over queue `spec` as failed with `cause` (a queue that was in its error state when
    /// a previous runtime stopped it): the device does not run it, [`Runtime::queue_error`]
    /// reports it, and [`Runtime::add_queue`] (the guest reset it) replaces it.
    pub fn add_failed_queue(
        &mut self,
        spec: QueueSpec,
        cause: QueueError,
    ) -> Result<(), RuntimeError> {
        let q = usize::from(spec.qid);
        if q >= NQ {
            return Err(RuntimeError::NoSuchQueue(spec.qid));
        }
        self.queues[q] = Some(spec.info);
        self.paths[q] = Some(self.policy.path(spec.qid));
        self.failed[q] = Some(cause);
        Ok(())
    }

    /// After a runtime died mid-I/O (a vhost-user backend killed and started again): serve, on
    /// the CPU and in avail order, every request of the ring at `info` that the queue's done log
    /// (at `log`, started at avail position `base`) does not show complete, publishing each one
    /// (record first) and counting it in the stats. Returns where the queue goes on (the guest's
    /// avail->idx as read here and its used->idx after these) and the positions served. Requests completed before the
    /// death, even out of order, are not served twice; none in flight is lost. The queue must not
    /// be running. A malformed chain stops the recovery with an error for this queue alone.
    pub fn resubmit_in_flight(
        &mut self,
        qid: u16,
        info: &QueueInfo,
        log: u64,
        base: u16,
    ) -> Result<Recovery, RuntimeError> {
        let mem = &self.shared.mem;
        let idx = |at: u64| -> Result<u16, RuntimeError> {
            mem.read_obj::<u16>(GuestAddress(at.wrapping_add(2)))
                .map_err(|_| RuntimeError::RingMemory(at))
        };
        let (avail_idx, used_idx) = (idx(info.avail)?, idx(info.used)?);
        let todo = done_log::in_flight(mem, log, info.size, base, avail_idx, used_idx)
            .map_err(|e| RuntimeError::DoneLog(qid, e))?;
        let mut engine = self
            .shared
            .engines
            .get(usize::from(info.func))
            .and_then(|e| e.as_ref().map(|e| e.fork()))
            .ok_or(RuntimeError::Function(info.func))?;
        let mut vq = split_queue(qid, info, avail_idx, used_idx)?;
        let mask = info.size - 1;
        for &pos in &todo {
            let at = Instant::now();
            let slot = info.avail + 4 + 2 * u64::from(pos & mask);
            let head: u16 = mem
                .read_obj(GuestAddress(slot))
                .map_err(|_| RuntimeError::RingMemory(slot))?;
            let windows = &self.shared.windows[usize::from(info.func)];
            let segs = chain::walk(mem, windows, info.desc, info.size, head, info.indirect)
                .map_err(|source| RuntimeError::InFlightChain { qid, pos, source })?;
            let c = engine.serve(mem, info.vq, &segs);
            done_log::write(mem, log, info.size, pos, vq.next_used().wrapping_add(1))
                .map_err(|e| RuntimeError::DoneLog(qid, e))?;
            vq.add_used(mem, head, c.used_len)
                .map_err(|source| RuntimeError::UsedRing { qid, source })?;
            let qs = self.stats.queues.entry(qid).or_default();
            qs.record(c.status, c.used_len, at.elapsed().as_nanos() as u64);
            qs.resubmitted += 1;
        }
        Ok(Recovery {
            resume: QueuePosition {
                last_avail: avail_idx,
                used_idx: vq.next_used(),
            },
            used_before: used_idx,
            served: todo,
        })
    }

    fn kick(&mut self, qid: u16) {
        if !self.shared.kick_pending[usize::from(qid)].swap(true, Ordering::AcqRel) {
            self.outstanding += 1;
            self.pool.send(Job::Doorbell {
                qid,
                at: Instant::now(),
            });
        }
    }

    /// Requests handed to the workers and not yet answered (plus doorbell jobs not finished).
    pub fn outstanding(&self) -> usize {
        self.outstanding + self.backlog.len()
    }

    /// Do what is ready: read new punt entries and dispatch them, write the workers' answers to
    /// the completion ring. Returns how many entries it moved.
    pub fn poll(&mut self, io: &(impl RegisterIo + ?Sized)) -> Result<usize, RuntimeError> {
        let mut moved = 0;
        // Device-driven CPU-owned queues (net RX) with something for the guest: served as if
        // the guest had rung (a ring without buffers keeps its frames waiting, or dropped when
        // its backlog is full, without holding anything else).
        for q in 0..NQ {
            if self.paths[q] != Some(Path::Cpu) {
                continue;
            }
            let Some(i) = self.queues[q] else { continue };
            let wants = self
                .shared
                .engines
                .get(usize::from(i.func))
                .and_then(Option::as_ref)
                .is_some_and(|e| e.device_driven(i.vq) && e.has_work(i.vq));
            if wants {
                self.kick(q as u16);
            }
        }
        // Punt ring: entries are valid when their phase matches this pass.
        let size = 1u32 << self.rings.punt_log2;
        let start = self.punt_cons;
        loop {
            let slot = self.punt_cons & (size - 1);
            let phase = u8::from((self.punt_cons >> self.rings.punt_log2) & 1 == 0);
            let mut b = [0u8; PuntEntry::SIZE];
            let at = self.rings.punt + u64::from(slot) * PuntEntry::SIZE as u64;
            self.shared
                .mem
                .read_slice(&mut b, GuestAddress(at))
                .map_err(|_| RuntimeError::RingMemory(at))?;
            let e = PuntEntry::from_le_bytes(&b);
            if e.flags & 1 != phase {
                break;
            }
            self.punt_cons = self.punt_cons.wrapping_add(1);
            self.stats.punt_entries += 1;
            self.dispatch(e);
            moved += 1;
        }
        if self.punt_cons != start {
            punt_ring::CONS.write(io, self.punt_cons)?;
        }
        // Answers.
        while let Ok(d) = self.pool.done.try_recv() {
            moved += 1;
            self.collect(d);
        }
        self.flush_completions(io)?;
        // Interrupts of CPU-owned queues go out through the device's MSI-X block.
        for qid in self.notify.drain(..) {
            queue::q::IRQ
                .at(u32::from(qid))?
                .write(io, queue::q::irq::RAISE.mask())?;
        }
        Ok(moved)
    }

    fn dispatch(&mut self, e: PuntEntry) {
        let qid = e.qid;
        let reason = PuntReason::from_raw(u32::from(e.reason));
        self.stats
            .queues
            .entry(qid)
            .or_default()
            .punts
            .count(reason);
        if reason == Some(PuntReason::Doorbell) {
            if self.paths.get(usize::from(qid)).copied().flatten() == Some(Path::Cpu) {
                self.kick(qid);
            }
            return;
        }
        match self.queues.get(usize::from(qid)).copied().flatten() {
            Some(queue) => {
                self.outstanding += 1;
                let job = Job::Punted {
                    entry: e,
                    queue,
                    at: Instant::now(),
                };
                let ordered = self
                    .shared
                    .engines
                    .get(usize::from(queue.func))
                    .and_then(Option::as_ref)
                    .is_some_and(|eng| eng.ordered(queue.vq));
                let q = usize::from(qid);
                if ordered && self.ordered_busy[q] {
                    self.ordered_held[q].push_back(job);
                } else {
                    self.ordered_busy[q] = ordered;
                    self.pool.send(job);
                }
            }
            None => {
                // A punt for a queue the runtime never set up: answer it so the FPGA's slot is
                // freed (the FPGA fails that queue on a completion it does not expect).
                self.backlog.push_back(CplEntry {
                    qid,
                    head: e.head,
                    len: 0,
                    tag: e.tag,
                    flags: 0,
                    status: 1,
                    rsvd: 0,
                });
            }
        }
    }

    fn collect(&mut self, d: Done) {
        match d {
            Done::Punted {
                entry,
                result,
                ns,
                panicked,
            } => {
                self.outstanding -= 1;
                // The next punted request of an ordered queue goes once this one is done.
                let q = usize::from(entry.qid);
                if q < NQ && self.ordered_busy[q] {
                    match self.ordered_held[q].pop_front() {
                        Some(job) => self.pool.send(job),
                        None => self.ordered_busy[q] = false,
                    }
                }
                let qs = self.stats.queues.entry(entry.qid).or_default();
                let c = match result {
                    Ok(c) => c,
                    Err(e) => {
                        // The guest broke the ring protocol: the queue fails as it would had
                        // the FPGA's walk found it (QUEUE_ERROR, with the same cause).
                        qs.broken += 1;
                        let cause = e.cause();
                        qs.last_error = Some(e.into());
                        self.backlog.push_back(CplEntry {
                            qid: entry.qid,
                            head: entry.head,
                            len: u32::from(entry.head),
                            tag: entry.tag,
                            flags: CPL_QUEUE_ERROR,
                            status: cause.raw() as u8,
                            rsvd: 0,
                        });
                        return;
                    }
                };
                if panicked {
                    qs.worker_panics += 1;
                }
                qs.record(c.status, c.used_len, ns);
                self.backlog.push_back(CplEntry {
                    qid: entry.qid,
                    head: entry.head,
                    len: c.used_len,
                    tag: entry.tag,
                    flags: 0,
                    status: u8::from(c.status != Status::Ok),
                    rsvd: 0,
                });
            }
            Done::Served {
                qid,
                completion: c,
                ns,
                panicked,
            } => {
                let qs = self.stats.queues.entry(qid).or_default();
                qs.record(c.status, c.used_len, ns);
                if panicked {
                    qs.worker_panics += 1;
                }
            }
            Done::Broken {
                qid,
                error,
                panicked,
            } => {
                if let Some(e) = self.cpu_errors.get_mut(usize::from(qid)) {
                    *e = Some(error.cause());
                }
                let qs = self.stats.queues.entry(qid).or_default();
                qs.broken += 1;
                qs.last_error = Some(error);
                if panicked {
                    qs.worker_panics += 1;
                }
            }
            Done::Drained => self.outstanding -= 1,
            Done::Notify { qid } => {
                self.stats.queues.entry(qid).or_default().interrupts += 1;
                self.notify.push(qid);
            }
        }
    }

    fn flush_completions(&mut self, io: &(impl RegisterIo + ?Sized)) -> Result<(), RuntimeError> {
        if self.backlog.is_empty() {
            return Ok(());
        }
        let size = 1u32 << self.rings.cpl_log2;
        let start = self.cpl_prod;
        while let Some(c) = self.backlog.front().copied() {
            if self.cpl_prod.wrapping_sub(self.cpl_cons_seen) >= size {
                self.cpl_cons_seen = cpl_ring::CONS.read(io)?;
                if self.cpl_prod.wrapping_sub(self.cpl_cons_seen) >= size {
                    break;
                }
            }
            let slot = self.cpl_prod & (size - 1);
            let at = self.rings.cpl + u64::from(slot) * CplEntry::SIZE as u64;
            self.shared
                .mem
                .write_slice(&c.to_le_bytes(), GuestAddress(at))
                .map_err(|_| RuntimeError::RingMemory(at))?;
            self.cpl_prod = self.cpl_prod.wrapping_add(1);
            self.stats.completions += 1;
            self.backlog.pop_front();
        }
        if self.cpl_prod != start {
            cpl_ring::PROD.write(io, self.cpl_prod)?;
        }
        Ok(())
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Read the device's error state of the FPGA-owned queues into the stats
    /// (`QueueStats::device_error`: the cause and detail of a queue the guest broke). Returns how
    /// many queues are in their error state.
    pub fn refresh_device_state(
        &mut self,
        io: &(impl RegisterIo + ?Sized),
    ) -> Result<usize, RuntimeError> {
        let mut broken = 0;
        for (q, path) in self.paths.iter().enumerate() {
            if *path != Some(Path::Fpga) {
                continue;
            }
            let st = queue::q::STATUS.at(q as u32)?.read(io)?;
            let qs = self.stats.queues.entry(q as u16).or_default();
            qs.device_error = if queue::q::status::ERROR.is_set(st) {
                broken += 1;
                let raw_cause = queue::q::status::CAUSE.get(st);
                Some(DeviceQueueError {
                    cause: QueueError::from_raw(raw_cause),
                    raw_cause,
                    detail: queue::q::ERR_INFO.at(q as u32)?.read(io)?,
                })
            } else {
                None
            };
        }
        Ok(broken)
    }

    /// Queue `q`'s error state, whichever path serves it: the device's (cause and detail from
    /// QUEUE.STATUS / ERR_INFO) for an FPGA-owned queue, the CPU walker's for a CPU-owned one
    /// (detail 0). The same malformed chain gives the same cause on both paths. None: running
    /// (or not set up).
    pub fn queue_error(
        &self,
        io: &(impl RegisterIo + ?Sized),
        q: u16,
    ) -> Result<Option<QueueError>, RuntimeError> {
        if let Some(cause) = self.failed.get(usize::from(q)).copied().flatten() {
            return Ok(Some(cause));
        }
        match self.paths.get(usize::from(q)).copied().flatten() {
            Some(Path::Fpga) => {
                let st = queue::q::STATUS.at(u32::from(q))?.read(io)?;
                Ok(queue::q::status::ERROR
                    .is_set(st)
                    .then(|| QueueError::from_raw(queue::q::status::CAUSE.get(st)))
                    .flatten())
            }
            Some(Path::Cpu) => Ok(self.cpu_errors[usize::from(q)]),
            None => Ok(None),
        }
    }

    /// Test hook: the next request a worker serves for `qid` panics inside the worker.
    pub fn inject_worker_panic(&self, qid: Option<u16>) {
        self.shared
            .panic_on_queue
            .store(qid.map_or(u32::MAX, u32::from), Ordering::Relaxed);
    }
}
