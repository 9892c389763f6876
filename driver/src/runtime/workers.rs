//! CPU workers: a pool of threads on crossbeam-channel that run the software engine for
//! requests the FPGA punted and for the queues the CPU owns.
//!
//! The runtime thread sends [`Job`]s; workers send back [`Done`]s. A worker never touches the
//! device's registers or rings: the runtime thread is the only writer of the completion ring.
//! A panic while serving a request is caught: the request still completes (as failed), the
//! worker goes on, and only that request (or, on a CPU-owned queue, that queue) is affected.

use crate::blk::{Outcome, SoftwareEngine};
use crate::virtq::{chain, ChainError, DmaWindows};
use crossbeam_channel::{Receiver, Sender};
use fpga_virtio_hw::formats::PuntEntry;
use fpga_virtio_hw::regs::QueueError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

/// Where a queue's rings are (IOVA = address in the runtime's view of guest memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    pub func: u8,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub size: u16,
    pub indirect: bool,
    pub event_idx: bool,
    /// VIRTIO_F_NOTIFICATION_DATA: doorbells carry the avail idx (the FPGA then skips a read).
    pub notification_data: bool,
}

/// A CPU-owned queue: virtio-queue's split-ring state, served by one worker at a time.
#[derive(Debug)]
pub(crate) struct CpuQueue {
    pub queue: Queue,
    pub func: u8,
    /// VIRTIO_F_INDIRECT_DESC negotiated.
    pub indirect: bool,
    /// The guest broke the ring protocol (or the worker failed): the queue is stopped, with
    /// this cause, until it is set up again.
    pub broken: Option<QueueError>,
    /// The queue's done log (see [`super::done_log`]).
    pub done_log: Option<u64>,
}

pub(crate) struct Shared {
    pub mem: GuestMemoryMmap,
    /// Per function: the software engine (cloned into each worker).
    pub engines: Vec<Option<SoftwareEngine>>,
    /// Per function: its DMA windows (the tenant's memory).
    pub windows: Vec<DmaWindows>,
    /// Per queue: CPU-owned state.
    pub cpu_queues: Vec<Mutex<Option<CpuQueue>>>,
    /// Per queue: a doorbell job is queued and not yet started.
    pub kick_pending: Vec<AtomicBool>,
    /// Test hook: a worker panics when it serves a request of this queue (u16::MAX: never).
    pub panic_on_queue: std::sync::atomic::AtomicU32,
}

pub(crate) enum Job {
    Punted {
        entry: PuntEntry,
        queue: QueueInfo,
        at: Instant,
    },
    Doorbell {
        qid: u16,
        at: Instant,
    },
}

pub(crate) enum Done {
    /// A punted request, served (or refused: a broken chain): answer on the completion ring.
    Punted {
        entry: PuntEntry,
        result: Result<Outcome, ChainError>,
        ns: u64,
        panicked: bool,
    },
    /// A request of a CPU-owned queue, published on its used ring.
    Served {
        qid: u16,
        outcome: Outcome,
        ns: u64,
        panicked: bool,
    },
    /// A CPU-owned queue published used entries and the guest wants an interrupt.
    Notify { qid: u16 },
    /// A doorbell job ended (the queue is drained, stopped or gone).
    Drained,
    /// A CPU-owned queue stopped (bad chain, or a panic while serving it).
    Broken {
        qid: u16,
        cause: QueueError,
        reason: String,
        panicked: bool,
    },
}

pub(crate) struct Pool {
    pub tx: Option<Sender<Job>>,
    pub done: Receiver<Done>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn start(n: usize, shared: Arc<Shared>) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let (dtx, done) = crossbeam_channel::unbounded::<Done>();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let rx = rx.clone();
            let dtx = dtx.clone();
            let shared = shared.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("fv-worker-{i}"))
                    .spawn(move || worker(&shared, &rx, &dtx))?,
            );
        }
        Ok(Pool {
            tx: Some(tx),
            done,
            handles,
        })
    }

    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.tx {
            // The workers hold the receiver until the pool is dropped.
            let _ = tx.send(job);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker(shared: &Shared, rx: &Receiver<Job>, done: &Sender<Done>) {
    let mut engines = shared.engines.clone();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Punted { entry, queue, at } => {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    serve_punted(shared, &mut engines, &entry, &queue)
                }));
                let (result, panicked) = match r {
                    Ok(result) => (result, false),
                    Err(_) => (
                        Ok(Outcome {
                            status: None,
                            used_len: 0,
                        }),
                        true,
                    ),
                };
                let _ = done.send(Done::Punted {
                    entry,
                    result,
                    ns: at.elapsed().as_nanos() as u64,
                    panicked,
                });
            }
            Job::Doorbell { qid, at } => {
                shared.kick_pending[qid as usize].store(false, Ordering::Release);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    serve_cpu_queue(shared, &mut engines, qid, at, done)
                }));
                if r.is_err() {
                    // The queue's lock is poisoned and its state unknown: stop that queue only.
                    let mut q = shared.cpu_queues[qid as usize]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if let Some(q) = q.as_mut() {
                        q.broken = Some(QueueError::Internal);
                    }
                    let _ = done.send(Done::Broken {
                        qid,
                        cause: QueueError::Internal,
                        reason: "worker panicked while serving the queue".into(),
                        panicked: true,
                    });
                }
                let _ = done.send(Done::Drained);
            }
        }
    }
}

fn maybe_panic(shared: &Shared, qid: u16) {
    if shared.panic_on_queue.load(Ordering::Relaxed) == u32::from(qid) {
        panic!("injected worker panic on queue {qid}");
    }
}

fn serve_punted(
    shared: &Shared,
    engines: &mut [Option<SoftwareEngine>],
    entry: &PuntEntry,
    q: &QueueInfo,
) -> Result<Outcome, ChainError> {
    let windows = &shared.windows[usize::from(q.func)];
    let segs = chain::walk(&shared.mem, windows, q.desc, q.size, entry.head, q.indirect)?;
    maybe_panic(shared, entry.qid);
    match engines
        .get_mut(usize::from(q.func))
        .and_then(Option::as_mut)
    {
        Some(engine) => Ok(engine.serve(&shared.mem, &segs)),
        None => Ok(Outcome {
            status: None,
            used_len: 0,
        }),
    }
}

fn serve_cpu_queue(
    shared: &Shared,
    engines: &mut [Option<SoftwareEngine>],
    qid: u16,
    at: Instant,
    done: &Sender<Done>,
) {
    let mut guard = shared.cpu_queues[qid as usize]
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(cq) = guard.as_mut() else { return };
    if cq.broken.is_some() {
        return;
    }
    let mem = &shared.mem;
    let mut published = 0u32;
    // The guest broke the ring protocol: the queue stops until it is set up again.
    let broken = |cq: &mut CpuQueue, cause: QueueError, reason: String| {
        cq.broken = Some(cause);
        let _ = done.send(Done::Broken {
            qid,
            cause,
            reason,
            panicked: false,
        });
    };
    // virtio's consumer loop: notifications off while draining, then on again (with EVENT_IDX
    // that writes avail_event, without which a driver stops kicking), and drain again if
    // requests arrived in between.
    loop {
        if cq.queue.disable_notification(mem).is_err() {
            return broken(cq, QueueError::DmaFault, "used ring not writable".into());
        }
        loop {
            // virtio-queue keeps the avail and used rings; the chain is walked here, with the
            // limits and DMA windows of the FPGA's walk, so a chain fails the same way on both
            // paths (virtio-queue's own iterator just ends on a broken chain).
            let head = match cq.queue.iter(mem) {
                Ok(mut it) => match it.next() {
                    Some(c) => c.head_index(),
                    None => break,
                },
                Err(e @ virtio_queue::Error::InvalidAvailRingIndex) => {
                    return broken(cq, QueueError::AvailJump, format!("avail ring: {e}"))
                }
                Err(e) => return broken(cq, QueueError::DmaFault, format!("avail ring: {e}")),
            };
            let windows = &shared.windows[usize::from(cq.func)];
            let segs = match chain::walk(
                mem,
                windows,
                cq.queue.desc_table(),
                cq.queue.size(),
                head,
                cq.indirect,
            ) {
                Ok(s) => s,
                Err(e) => return broken(cq, e.cause(), e.to_string()),
            };
            // A panic while serving fails this request only: it is still published (used length
            // 0, no status), and the queue goes on.
            let func = usize::from(cq.func);
            let served = catch_unwind(AssertUnwindSafe(|| {
                maybe_panic(shared, qid);
                match engines.get_mut(func).and_then(Option::as_mut) {
                    Some(engine) => engine.serve(mem, &segs),
                    None => Outcome {
                        status: None,
                        used_len: 0,
                    },
                }
            }));
            let panicked = served.is_err();
            let outcome = served.unwrap_or(Outcome {
                status: None,
                used_len: 0,
            });
            if let Some(log) = cq.done_log {
                // The record goes before the used element (see done_log).
                let pos = cq.queue.next_avail().wrapping_sub(1);
                let after = cq.queue.next_used().wrapping_add(1);
                if let Err(e) = super::done_log::write(mem, log, cq.queue.size(), pos, after) {
                    return broken(cq, QueueError::DmaFault, e.to_string());
                }
            }
            if cq.queue.add_used(mem, head, outcome.used_len).is_err() {
                return broken(cq, QueueError::DmaFault, "used ring not writable".into());
            }
            published += 1;
            let _ = done.send(Done::Served {
                qid,
                outcome,
                ns: at.elapsed().as_nanos() as u64,
                panicked,
            });
        }
        match cq.queue.enable_notification(mem) {
            Ok(true) => continue,
            Ok(false) => break,
            Err(_) => return broken(cq, QueueError::DmaFault, "used ring not writable".into()),
        }
    }
    if published > 0 && wants_interrupt(cq, mem) {
        let _ = done.send(Done::Notify { qid });
    }
}

/// Whether the guest wants an interrupt for what was just published: EVENT_IDX through
/// virtio-queue (used_event), otherwise the avail ring's NO_INTERRUPT flag (virtio-queue's
/// `needs_notification` ignores it).
fn wants_interrupt(cq: &mut CpuQueue, mem: &GuestMemoryMmap) -> bool {
    if cq.queue.event_idx_enabled() {
        return cq.queue.needs_notification(mem).unwrap_or(true);
    }
    let flags: u16 = mem
        .load(
            vm_memory::GuestAddress(cq.queue.avail_ring()),
            std::sync::atomic::Ordering::Acquire,
        )
        .unwrap_or(0);
    flags & 1 == 0
}
