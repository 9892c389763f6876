//! CPU workers: a pool of threads on crossbeam-channel that run the functions' device engines
//! ([`DeviceEngine`]) for requests the FPGA punted and for the queues the CPU owns.
//!
//! The runtime thread sends [`Job`]s; workers send back [`Done`]s. A worker never touches the
//! device's registers or rings: the runtime thread is the only writer of the completion ring.
//! A panic while serving a request is caught: the request still completes (as failed), the
//! worker goes on, and only that request (or, on a CPU-owned queue, that queue) is affected.

use crate::device::{ChainSource, Completion, DeviceEngine, Status};
use crate::virtq::queue::{add_used_batch, wants_interrupt};
use crate::virtq::Segment;
use crate::virtq::{chain, done_log, ChainError, DmaWindows, DoneLogError, QueueInfo};
use crossbeam_channel::{Receiver, Sender};
use fpga_virtio_hw::formats::PuntEntry;
use fpga_virtio_hw::regs::QueueError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestMemoryMmap;

/// Why a CPU-owned queue stopped (its error state on the CPU path).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CpuQueueError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("avail ring: avail->idx moved by more than the queue size")]
    AvailJump,
    #[error("avail ring not readable")]
    AvailRing,
    #[error("used ring not writable")]
    UsedRing,
    #[error(transparent)]
    DoneLog(#[from] DoneLogError),
    #[error("worker panicked while serving the queue")]
    Panicked,
}

impl CpuQueueError {
    /// The queue error cause (the register map's `queue_error`), as the FPGA gives it.
    pub fn cause(&self) -> QueueError {
        match self {
            CpuQueueError::Chain(e) => e.cause(),
            CpuQueueError::AvailJump => QueueError::AvailJump,
            CpuQueueError::AvailRing | CpuQueueError::UsedRing | CpuQueueError::DoneLog(_) => {
                QueueError::DmaFault
            }
            CpuQueueError::Panicked => QueueError::Internal,
        }
    }
}

/// A CPU-owned queue: virtio-queue's split-ring state, served by one worker at a time.
#[derive(Debug)]
pub(crate) struct CpuQueue {
    pub queue: Queue,
    pub func: u8,
    /// The queue's number in its function.
    pub vq: u16,
    /// VIRTIO_F_INDIRECT_DESC negotiated.
    pub indirect: bool,
    /// The guest broke the ring protocol (or the worker failed): the queue is stopped, with
    /// this cause, until it is set up again.
    pub broken: Option<QueueError>,
    /// The queue's done log (see [`super::done_log`]).
    pub done_log: Option<u64>,
    /// The used idx at the last interrupt decision (see [`wants_interrupt`]).
    pub signalled: u16,
}

pub(crate) struct Shared {
    pub mem: GuestMemoryMmap,
    /// Per function: its device engine (each worker serves with a fork of it).
    pub engines: Vec<Option<Box<dyn DeviceEngine>>>,
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
        result: Result<Completion, ChainError>,
        ns: u64,
        panicked: bool,
    },
    /// A request of a CPU-owned queue, published on its used ring.
    Served {
        qid: u16,
        completion: Completion,
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
        error: CpuQueueError,
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
    let mut engines: Vec<Option<Box<dyn DeviceEngine>>> = shared
        .engines
        .iter()
        .map(|e| e.as_ref().map(|e| e.fork()))
        .collect();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Punted { entry, queue, at } => {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    serve_punted(shared, &mut engines, &entry, &queue)
                }));
                let (result, panicked) = match r {
                    Ok(result) => (result, false),
                    Err(_) => (Ok(Completion::FAILED), true),
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
                        error: CpuQueueError::Panicked,
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
    engines: &mut [Option<Box<dyn DeviceEngine>>],
    entry: &PuntEntry,
    q: &QueueInfo,
) -> Result<Completion, ChainError> {
    let windows = &shared.windows[usize::from(q.func)];
    let segs = chain::walk(&shared.mem, windows, q.desc, q.size, entry.head, q.indirect)?;
    maybe_panic(shared, entry.qid);
    match engines
        .get_mut(usize::from(q.func))
        .and_then(Option::as_mut)
    {
        Some(engine) => Ok(engine.serve(&shared.mem, q.vq, &segs)),
        None => Ok(Completion::FAILED),
    }
}

fn serve_cpu_queue(
    shared: &Shared,
    engines: &mut [Option<Box<dyn DeviceEngine>>],
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
    let func = usize::from(cq.func);
    if engines
        .get(func)
        .and_then(Option::as_ref)
        .is_some_and(|e| e.device_driven(cq.vq))
    {
        return fill_cpu_queue(shared, engines, cq, qid, at, done);
    }
    let mut published = 0u32;
    // The guest broke the ring protocol: the queue stops until it is set up again.
    let broken = |cq: &mut CpuQueue, error: CpuQueueError| {
        cq.broken = Some(error.cause());
        let _ = done.send(Done::Broken {
            qid,
            error,
            panicked: false,
        });
    };
    // virtio's consumer loop: notifications off while draining, then on again (with EVENT_IDX
    // that writes avail_event, without which a driver stops kicking), and drain again if
    // requests arrived in between.
    loop {
        if cq.queue.disable_notification(mem).is_err() {
            return broken(cq, CpuQueueError::UsedRing);
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
                Err(virtio_queue::Error::InvalidAvailRingIndex) => {
                    return broken(cq, CpuQueueError::AvailJump)
                }
                Err(_) => return broken(cq, CpuQueueError::AvailRing),
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
                Err(e) => return broken(cq, e.into()),
            };
            // A panic while serving fails this request only: it is still published (used length
            // 0, no status), and the queue goes on.
            let func = usize::from(cq.func);
            let served = catch_unwind(AssertUnwindSafe(|| {
                maybe_panic(shared, qid);
                match engines.get_mut(func).and_then(Option::as_mut) {
                    Some(engine) => engine.serve(mem, cq.vq, &segs),
                    None => Completion::FAILED,
                }
            }));
            let panicked = served.is_err();
            let completion = served.unwrap_or(Completion::FAILED);
            if let Some(log) = cq.done_log {
                // The record goes before the used element (see done_log).
                let pos = cq.queue.next_avail().wrapping_sub(1);
                let after = cq.queue.next_used().wrapping_add(1);
                if let Err(e) = done_log::write(mem, log, cq.queue.size(), pos, after) {
                    return broken(cq, e.into());
                }
            }
            if cq.queue.add_used(mem, head, completion.used_len).is_err() {
                return broken(cq, CpuQueueError::UsedRing);
            }
            published += 1;
            let _ = done.send(Done::Served {
                qid,
                completion,
                ns: at.elapsed().as_nanos() as u64,
                panicked,
            });
        }
        match cq.queue.enable_notification(mem) {
            Ok(true) => continue,
            Ok(false) => break,
            Err(_) => return broken(cq, CpuQueueError::UsedRing),
        }
    }
    if published > 0 && wants_interrupt(&cq.queue, mem, &mut cq.signalled) {
        let _ = done.send(Done::Notify { qid });
    }
}

/// The chains of a CPU-owned queue, walked and checked as on the request path, for a
/// device-driven queue's [`DeviceEngine::fill`].
struct QueueChains<'a> {
    cq: &'a mut CpuQueue,
    shared: &'a Shared,
    heads: Vec<u16>,
    error: Option<CpuQueueError>,
}

impl ChainSource for QueueChains<'_> {
    fn next_chain(&mut self) -> Option<Vec<Segment>> {
        if self.error.is_some() {
            return None;
        }
        let mem = &self.shared.mem;
        let head = match self.cq.queue.iter(mem) {
            Ok(mut it) => it.next()?.head_index(),
            Err(virtio_queue::Error::InvalidAvailRingIndex) => {
                self.error = Some(CpuQueueError::AvailJump);
                return None;
            }
            Err(_) => {
                self.error = Some(CpuQueueError::AvailRing);
                return None;
            }
        };
        let windows = &self.shared.windows[usize::from(self.cq.func)];
        match chain::walk(
            mem,
            windows,
            self.cq.queue.desc_table(),
            self.cq.queue.size(),
            head,
            self.cq.indirect,
        ) {
            Ok(segs) => {
                self.heads.push(head);
                Some(segs)
            }
            Err(e) => {
                self.error = Some(e.into());
                None
            }
        }
    }

    fn give_back(&mut self, n: usize) {
        let n = n.min(self.heads.len());
        self.heads.truncate(self.heads.len() - n);
        let back = self.cq.queue.next_avail().wrapping_sub(n as u16);
        self.cq.queue.set_next_avail(back);
    }
}

/// A device-driven CPU-owned queue (net RX): the engine takes chains for what it has, each
/// taken chain is published with its used length.
fn fill_cpu_queue(
    shared: &Shared,
    engines: &mut [Option<Box<dyn DeviceEngine>>],
    cq: &mut CpuQueue,
    qid: u16,
    at: Instant,
    done: &Sender<Done>,
) {
    let mem = &shared.mem;
    let func = usize::from(cq.func);
    let vq = cq.vq;
    let first = cq.queue.next_avail();
    let mut src = QueueChains {
        cq,
        shared,
        heads: Vec::new(),
        error: None,
    };
    let filled = catch_unwind(AssertUnwindSafe(|| {
        maybe_panic(shared, qid);
        match engines.get_mut(func).and_then(Option::as_mut) {
            Some(engine) => engine.fill(mem, vq, &mut src),
            None => Vec::new(),
        }
    }));
    let QueueChains {
        cq, heads, error, ..
    } = src;
    let panicked = filled.is_err();
    // A panic: every chain taken is answered with used length 0.
    let lens = filled.unwrap_or_else(|_| vec![0; heads.len()]);
    let mut fail = error;
    // The done log's records first (each before its used element), then every element at
    // once: a frame's buffers are published together (see `add_used_batch`).
    let mut elems: Vec<(u16, u32)> = Vec::with_capacity(heads.len());
    let first_used = cq.queue.next_used();
    for (i, &head) in heads.iter().enumerate() {
        let len = lens.get(i).copied().unwrap_or(0);
        if let Some(log) = cq.done_log {
            let pos = first.wrapping_add(i as u16);
            let after = first_used.wrapping_add(i as u16 + 1);
            if let Err(e) = done_log::write(mem, log, cq.queue.size(), pos, after) {
                fail = Some(e.into());
                break;
            }
        }
        elems.push((head, len));
    }
    let mut published = 0u32;
    if add_used_batch(&mut cq.queue, mem, &elems).is_err() {
        fail = Some(CpuQueueError::UsedRing);
    } else {
        published = elems.len() as u32;
        for &(_, len) in &elems {
            let _ = done.send(Done::Served {
                qid,
                completion: Completion {
                    status: if panicked { Status::Failed } else { Status::Ok },
                    used_len: len,
                },
                ns: at.elapsed().as_nanos() as u64,
                panicked,
            });
        }
    }
    if let Some(error) = fail {
        cq.broken = Some(error.cause());
        let _ = done.send(Done::Broken {
            qid,
            error,
            panicked: false,
        });
        return;
    }
    // The guest kicks when it posts buffers (with EVENT_IDX: at the next one).
    let _ = cq.queue.enable_notification(mem);
    if published > 0 && wants_interrupt(&cq.queue, mem, &mut cq.signalled) {
        let _ = done.send(Done::Notify { qid });
    }
}
