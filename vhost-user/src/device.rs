//! The device behind the vhost-user socket, whatever its type ([`DeviceType`]): the simulated
//! FPGA (or a card over VFIO), the runtime (punted requests, CPU-owned queues), and the thread
//! that clocks the model.
//!
//! DMA addresses are guest physical addresses: every region of the frontend's memory table is
//! mapped in the device's IOMMU at IOVA = GPA. The runtime's punt and completion rings live in a
//! private region at [`PRIVATE_IOVA`], above anything a guest has, which the guest cannot reach.
//!
//! In-flight tracking: the frontend's in-flight region (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD,
//! memory that outlives this process) is mapped at [`INFLIGHT_IOVA`] and holds, per queue, a
//! header and the queue's done log (the driver's `runtime::done_log`), which the device (or a CPU
//! worker) writes before every used element. A queue whose header says it was running when its
//! backend died is recovered when it starts again: the requests the log does not show complete
//! are served first, once each, and the queue goes on after them.

use crate::device_type::DeviceType;
use crate::hw::{Hw, TURN};
use fpga_virtio_driver::hw::regs::{self, global};
use fpga_virtio_driver::hw::RegisterIo;
use fpga_virtio_driver::runtime::{
    done_log, DoneLogError, Path, QueueInfo, QueuePosition, QueueSpec, Rings, Runtime,
    RuntimeError, SplitPolicy,
};
use fpga_virtio_driver::vfio::VfioPciDevice;
use fpga_virtio_driver::virtq::{DmaWindows, WindowError};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use virtio_bindings::virtio_ring as vr;
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    GuestRegionMmap, MmapRegion,
};
use vmm_sys_util::eventfd::EventFd;

/// Where the runtime's private rings live in the device's address space.
pub const PRIVATE_IOVA: u64 = 1 << 46;
const PRIVATE_SIZE: usize = 1 << 20;
/// Where the frontend's in-flight region is mapped in the device's address space.
pub const INFLIGHT_IOVA: u64 = PRIVATE_IOVA + (1 << 32);
/// Per queue in the in-flight region: this header, then the done log.
const LOG_HEADER: u64 = 64;
/// Header: magic, state, ring size, base (the log's first avail position).
const LOG_MAGIC: u32 = 0x4c44_5646; // "FVDL"
const LOG_RUNNING: u32 = 1;
const LOG_STOPPED: u32 = 2;

/// Bytes per queue of an in-flight region for rings of up to `queue_size` entries.
fn inflight_stride(queue_size: u16) -> u64 {
    (LOG_HEADER + done_log::len(queue_size)).next_multiple_of(64)
}

/// Bytes (whole pages) of an in-flight region for `num_queues` rings of up to `queue_size` entries (None:
/// sizes no frontend may ask for).
pub fn inflight_len(num_queues: u16, queue_size: u16) -> Option<u64> {
    if num_queues == 0 || queue_size == 0 || queue_size > 32768 {
        return None;
    }
    // Whole pages: the device's IOMMU maps pages.
    Some((u64::from(num_queues) * inflight_stride(queue_size)).next_multiple_of(4096))
}

/// The frontend's in-flight region.
struct Inflight {
    region: Arc<GuestRegionMmap>,
    num_queues: u16,
    queue_size: u16,
}

impl Inflight {
    /// Queue q's header and done log (IOVAs), if the region has room for a ring of `size`.
    fn log(&self, q: u16, size: u16) -> Option<(u64, u64)> {
        if q >= self.num_queues || size > self.queue_size {
            return None;
        }
        let hdr = INFLIGHT_IOVA + u64::from(q) * inflight_stride(self.queue_size);
        Some((hdr, hdr + LOG_HEADER))
    }
}
const PUNT_LOG2: u32 = 8;
const CPL_LOG2: u32 = 8;
/// Cycles without DMA, storage traffic, kicks or outstanding work after which the clock thread
/// naps (the device has nothing to do; a kick wakes it).
const IDLE_CYCLES: u64 = 5_000;
/// Turns of the clock between two looks at the queues' error state (an MMIO read per running
/// FPGA-owned queue): fewer than a quiet device runs before the clock thread naps, so an error
/// is told before the nap, not at the next kick.
const ERR_POLL_TURNS: u32 = 4;
const _: () = assert!((ERR_POLL_TURNS as u64) * TURN < IDLE_CYCLES);

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[cfg(feature = "sim")]
    #[error("simulator: {0}")]
    Sim(#[from] fpga_virtio_sim::SimError),
    #[cfg(feature = "sim")]
    #[error("the simulator's IOMMU: {0}")]
    Iommu(#[from] fpga_virtio_sim::IommuError),
    #[error("VFIO interrupts: {0}")]
    VfioIrq(#[from] fpga_virtio_driver::vfio::irq::IrqError),
    #[error("VFIO DMA map: {0}")]
    VfioDma(#[from] fpga_virtio_driver::vfio::dma::DmaError),
    #[error("register access: {0}")]
    Io(#[from] fpga_virtio_driver::hw::IoError),
    #[error(transparent)]
    Index(#[from] fpga_virtio_driver::hw::IndexError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("the device: {0}")]
    Probe(#[from] fpga_virtio_driver::probe::ProbeError),
    #[error("starting the clock thread: {0}")]
    Thread(std::io::Error),
    #[error("{0} queues: between 1 and {max} are served", max = regs::NUM_QUEUES)]
    QueueCount(u16),
    #[error("queue {0}: no such queue")]
    NoSuchQueue(u16),
    #[error("queue {q}: the device stopped: {cause}")]
    Stopped { q: u16, cause: Arc<DeviceError> },
    #[error("queue {q}: the queue failed ({cause:?}); the frontend must reset it")]
    QueueFailed { q: u16, cause: regs::QueueError },
    #[error("queue {0}: kicked before the frontend sent its memory table")]
    NoMemoryTable(u16),
    #[error("queue {q}: used ring at {at:#x}: {source}")]
    UsedRing {
        q: u16,
        at: u64,
        source: vm_memory::GuestMemoryError,
    },
    #[error("the device's private region: {0}")]
    PrivateRegion(vm_memory::mmap::FromRangesError),
    #[error("guest memory overlaps the device's {region} region: {source}")]
    Overlap {
        region: &'static str,
        source: vm_memory::GuestRegionCollectionError,
    },
    #[error("guest memory: {0}")]
    Windows(#[from] WindowError),
    #[error("in-flight region for {num_queues} queues of {queue_size} entries: too large")]
    InflightGeometry { num_queues: u16, queue_size: u16 },
    #[error("in-flight region of {have} bytes, {need} needed")]
    InflightTooSmall { have: u64, need: u64 },
    #[error(transparent)]
    SharedFd(#[from] crate::shared_fd::SharedFdError),
    #[error("mapping the in-flight region: {0}")]
    InflightMap(vm_memory::mmap::MmapRegionError),
    #[error("in-flight region: {0}")]
    Inflight(#[from] vm_memory::GuestMemoryError),
    #[error("in-flight region: {0}")]
    DoneLog(#[from] DoneLogError),
    #[error("a card over VFIO is not reset in place: restart the backend")]
    CardReset,
    #[error("the device reset did not finish")]
    ResetTimeout,
    #[error("{0}")]
    Injected(&'static str),
}

/// What the device serves.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// The device type (virtio-blk: [`crate::blk::Blk`]).
    pub device: Arc<dyn DeviceType>,
    pub queues: u16,
    pub queue_size: u16,
    pub policy: SplitPolicy,
}

/// One line of the device's log.
macro_rules! note {
    ($dev:expr, $($arg:tt)*) => {
        eprintln!("fpga-virtio {}: {}", $dev.opts.device.name(), format_args!($($arg)*))
    };
}

/// Where a queue's rings are, as the frontend set them.
#[derive(Clone, Copy, Debug)]
pub struct VringSetup {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub size: u16,
    /// The frontend's base (SET_VRING_BASE): the next avail index.
    pub next_avail: u16,
}

struct State {
    /// The frontend's memory table (None until SET_MEM_TABLE).
    guest: Option<GuestMemoryMmap>,
    /// Guest memory plus the private region: what the device and the runtime address.
    dma: Option<GuestMemoryMmap>,
    features: u64,
    runtime: Option<Runtime>,
    /// Queues the device runs now: their path and rings.
    started: Vec<Option<(Path, VringSetup)>>,
    /// Queues that ran since the last reset, with their path (for the summary).
    ran: Vec<Option<Path>>,
    /// Positions of queues stopped by a memory update, to resume from.
    resume: Vec<Option<QueuePosition>>,
    /// The model stopped (a protocol check failed): nothing runs any more.
    dead: Option<Arc<DeviceError>>,
    /// The frontend's in-flight region (SET_INFLIGHT_FD).
    inflight: Option<Inflight>,
    /// Per queue: (requests the CPU served, doorbell events) of runtimes already retired.
    retired: Vec<(u64, u64)>,
    /// Per queue: its error state was signalled on its error eventfd (until it starts again).
    err_told: Vec<bool>,
    /// Per queue: it was in its error state when the device last stopped it. It is not started
    /// again from its position (the requests it held when it failed were neither completed nor
    /// failed) until the frontend stops it itself (GET_VRING_BASE) and sets it up anew.
    failed: Vec<Option<regs::QueueError>>,
    /// Turns since the last look at the queues' error state.
    err_poll: u32,
}

impl State {
    /// Drop the runtime (its workers finish), keeping its per-queue counts for the summary.
    fn retire_runtime(&mut self) {
        if let Some(rt) = self.runtime.take() {
            for (q, qs) in &rt.stats().queues {
                if let Some(t) = self.retired.get_mut(usize::from(*q)) {
                    t.0 += qs.requests;
                    t.1 += qs.punts.get(regs::PuntReason::Doorbell);
                }
            }
        }
    }
}

/// The device. Shared by the vhost-user handler threads and the clock thread.
pub struct Device {
    pub(crate) opts: DeviceOptions,
    hw: Hw,
    state: Mutex<State>,
    private: Arc<GuestRegionMmap>,
    irqfds: Vec<EventFd>,
    /// Per queue: signalled once when the queue enters its error state (the guest broke the
    /// ring protocol), on either path; the connection forwards it to the frontend's vring error
    /// fd (VHOST_USER_SET_VRING_ERR).
    errfds: Vec<EventFd>,
    kicks: AtomicU64,
    /// Kicks per queue (the summary shows them).
    queue_kicks: Vec<AtomicU64>,
    stop: AtomicBool,
    clock: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update of these states is completed before the lock is released or fails without
    // touching them, so a poisoned lock still holds a consistent value.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Device {
    /// The simulated FPGA (with the device type's store behind its storage port), its clock
    /// thread running.
    #[cfg(feature = "sim")]
    pub fn new(opts: DeviceOptions) -> Result<Arc<Self>, DeviceError> {
        Self::check(&opts)?;
        let (hw, irqfds) = Hw::simulated(opts.device.store(), opts.queues)?;
        Self::start(opts, hw, irqfds)
    }

    /// An fpga-virtio card opened through VFIO (bound to vfio-pci, its identity checked by
    /// the caller) as the data plane; a blk device's store is the CPU's view of the volume the
    /// card's storage port serves (the CPU serves punted requests and CPU-owned queues on it).
    pub fn with_vfio(opts: DeviceOptions, card: VfioPciDevice) -> Result<Arc<Self>, DeviceError> {
        Self::check(&opts)?;
        let (hw, irqfds) = Hw::vfio(card, opts.queues)?;
        Self::start(opts, hw, irqfds)
    }

    fn check(opts: &DeviceOptions) -> Result<(), DeviceError> {
        if opts.queues == 0 || u32::from(opts.queues) > regs::NUM_QUEUES {
            return Err(DeviceError::QueueCount(opts.queues));
        }
        Ok(())
    }

    fn start(opts: DeviceOptions, hw: Hw, irqfds: Vec<EventFd>) -> Result<Arc<Self>, DeviceError> {
        fpga_virtio_driver::probe::probe(hw.io())?;
        global::CTRL.write(hw.io(), global::ctrl::ENABLE.mask())?;
        let private = Arc::new(
            GuestRegionMmap::from_range(GuestAddress(PRIVATE_IOVA), PRIVATE_SIZE, None)
                .map_err(DeviceError::PrivateRegion)?,
        );
        let n = usize::from(opts.queues);
        let device = Arc::new(Device {
            opts,
            hw,
            state: Mutex::new(State {
                guest: None,
                dma: None,
                features: 0,
                runtime: None,
                started: vec![None; n],
                ran: vec![None; n],
                resume: vec![None; n],
                dead: None,
                inflight: None,
                retired: vec![(0, 0); n],
                err_told: vec![false; n],
                failed: vec![None; n],
                err_poll: 0,
            }),
            private,
            irqfds,
            errfds: (0..n)
                .map(|_| EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK))
                .collect::<Result<_, _>>()
                .map_err(DeviceError::Thread)?,
            kicks: AtomicU64::new(0),
            queue_kicks: (0..n).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
            clock: Mutex::new(None),
        });
        let d = device.clone();
        let handle = std::thread::Builder::new()
            .name("fv-clock".into())
            .spawn(move || d.clock_loop())
            .map_err(DeviceError::Thread)?;
        *lock(&device.clock) = Some(handle);
        Ok(device)
    }

    /// What the device serves.
    pub fn options(&self) -> &DeviceOptions {
        &self.opts
    }

    /// The eventfd the device signals for queue `q`'s interrupts.
    pub fn irqfd(&self, q: u16) -> Option<&EventFd> {
        self.irqfds.get(usize::from(q))
    }

    /// Queue `q`'s error eventfd (see [`Device`]'s `errfds`).
    pub fn errfd(&self, q: u16) -> Option<&EventFd> {
        self.errfds.get(usize::from(q))
    }

    /// Every few turns: signal the error eventfd of each running queue that entered its error
    /// state since it started (once), and say so in the log.
    fn tell_errors(&self, st: &mut State) {
        st.err_poll += 1;
        if st.err_poll < ERR_POLL_TURNS {
            return;
        }
        st.err_poll = 0;
        let Some(rt) = st.runtime.as_ref() else {
            return;
        };
        for q in 0..st.started.len() {
            if st.started[q].is_none() || st.err_told[q] {
                continue;
            }
            if let Ok(Some(cause)) = rt.queue_error(self.hw.io(), q as u16) {
                st.err_told[q] = true;
                note!(
                    self,
                    "queue {q} stopped: the guest broke the ring protocol ({cause:?})"
                );
                let _ = self.errfds[q].write(1);
            }
        }
    }

    /// Features the guest accepted.
    pub fn set_features(&self, features: u64) {
        lock(&self.state).features = features;
    }

    /// A new memory table: the device's IOMMU maps every region at its guest address. Running
    /// queues are stopped first and started again at once from where they stopped.
    pub fn set_memory(&self, guest: GuestMemoryMmap) -> Result<(), DeviceError> {
        let mut st = lock(&self.state);
        self.install(&mut st, guest)
    }

    /// The frontend's in-flight region (`mmap_size` bytes of `file` from `offset`) for
    /// `num_queues` rings of up to `queue_size` entries: mapped into the device, where the queues
    /// keep their done logs from their next start.
    pub fn set_inflight(
        &self,
        file: File,
        offset: u64,
        mmap_size: u64,
        num_queues: u16,
        queue_size: u16,
    ) -> Result<(), DeviceError> {
        let need = inflight_len(num_queues, queue_size).ok_or(DeviceError::InflightGeometry {
            num_queues,
            queue_size,
        })?;
        if mmap_size < need {
            return Err(DeviceError::InflightTooSmall {
                have: mmap_size,
                need,
            });
        }
        crate::shared_fd::check(&file, offset, need, "in-flight region")?;
        let map = MmapRegion::from_file(FileOffset::new(file, offset), need as usize)
            .map_err(DeviceError::InflightMap)?;
        let region = GuestRegionMmap::new(map, GuestAddress(INFLIGHT_IOVA)).ok_or(
            DeviceError::InflightGeometry {
                num_queues,
                queue_size,
            },
        )?;
        let mut st = lock(&self.state);
        st.inflight = Some(Inflight {
            region: Arc::new(region),
            num_queues,
            queue_size,
        });
        match st.guest.clone() {
            Some(guest) => self.install(&mut st, guest),
            None => Ok(()),
        }
    }

    /// Make `guest` (plus the private and in-flight regions) what the device and the runtime
    /// address. Running queues are stopped first and started again at once from where they
    /// stopped.
    fn install(&self, st: &mut State, guest: GuestMemoryMmap) -> Result<(), DeviceError> {
        // Check the new map before touching anything that runs.
        let mut dma = guest
            .insert_region(self.private.clone())
            .map_err(|source| DeviceError::Overlap {
                region: "private",
                source,
            })?;
        if let Some(inf) = &st.inflight {
            dma = dma
                .insert_region(inf.region.clone())
                .map_err(|source| DeviceError::Overlap {
                    region: "in-flight",
                    source,
                })?;
        }
        let running: Vec<(u16, VringSetup)> = (0..st.started.len())
            .filter_map(|q| st.started[q].map(|(_, ring)| (q as u16, ring)))
            .collect();
        self.stop_all(st, true)?;
        st.retire_runtime();
        self.hw.map(&dma)?;
        st.guest = Some(guest);
        st.dma = Some(dma);
        // The queues that ran go on at once, from where they stopped: the guest's last kick may
        // already have been taken, and it will not kick again for requests it already posted.
        // A queue that had failed stays stopped.
        for (q, ring) in running {
            if st.failed[usize::from(q)].is_none() {
                self.start_locked(st, q, ring)?;
            }
        }
        Ok(())
    }

    /// Queue q's done log in the in-flight region: (header, log) IOVAs.
    fn log_of(st: &State, q: u16, size: u16) -> Option<(u64, u64)> {
        st.inflight.as_ref().and_then(|i| i.log(q, size))
    }

    /// Stop every running queue; one that will not stop does not keep the others running.
    /// Returns the first error.
    fn stop_all(&self, st: &mut State, remember: bool) -> Result<(), DeviceError> {
        let mut first = None;
        for q in 0..st.started.len() {
            if st.started[q].is_some() {
                match self.stop_locked(st, q as u16) {
                    Ok(pos) if remember => st.resume[q] = pos,
                    Ok(_) => {}
                    Err(e) => {
                        note!(self, "queue {q} did not stop: {e}");
                        first.get_or_insert(e);
                    }
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn stop_locked(&self, st: &mut State, q: u16) -> Result<Option<QueuePosition>, DeviceError> {
        let Some((_, ring)) = st.started[usize::from(q)].take() else {
            return Ok(None);
        };
        let Some(rt) = st.runtime.as_mut() else {
            return Ok(None);
        };
        let (pos, error) = rt.stop_queue_and_error(self.hw.io(), q)?;
        if let Some(cause) = error {
            st.failed[usize::from(q)] = Some(cause);
        }
        // Stopped cleanly: everything it took is published; the log need not be read back.
        if let (Some((hdr, _)), Some(dma)) = (Self::log_of(st, q, ring.size), st.dma.as_ref()) {
            set_log_state(dma, hdr, LOG_STOPPED)?;
        }
        if let Some(guest) = st.guest.as_ref() {
            let idx = |at: u64| guest.read_obj::<u16>(GuestAddress(at.wrapping_add(2))).ok();
            if let (Some(avail), Some(used)) = (idx(ring.avail), idx(ring.used)) {
                if avail != pos.last_avail || used != pos.used_idx {
                    note!(
                        self,
                        "queue {q} stopped at avail {} / used {} while the guest's avail->idx is {avail} and used->idx {used}",
                        pos.last_avail, pos.used_idx
                    );
                }
            }
        }
        Ok(Some(pos))
    }

    /// GET_VRING_BASE: stop queue `q` (in-flight requests finish first) and return where it
    /// stopped; None if the device never started it.
    pub fn stop_queue(&self, q: u16) -> Result<Option<QueuePosition>, DeviceError> {
        let mut st = lock(&self.state);
        st.resume[usize::from(q)] = None;
        let pos = self.stop_locked(&mut st, q);
        // The frontend resets the queue: a failed one may start again once it is set up anew.
        if let Some(f) = st.failed.get_mut(usize::from(q)) {
            *f = None;
        }
        pos
    }

    /// Stop everything and forget the guest (a reset, or the frontend went away). Prints what
    /// each queue did since the last reset (stderr).
    pub fn reset(&self) -> Result<(), DeviceError> {
        let mut st = lock(&self.state);
        let r = self.stop_all(&mut st, false);
        if r.is_err() {
            // A queue that did not stop may still be running on this guest's rings: take every
            // mapping away, so that it faults rather than reach the memory of whatever frontend
            // comes next.
            if let Err(e) = self.hw.map(&GuestMemoryMmap::new()) {
                note!(
                    self,
                    "a queue did not stop and the device could not be unmapped: {e}"
                );
                st.dead = Some(Arc::new(e));
            }
            st.guest = None;
            st.dma = None;
        }
        st.retire_runtime();
        let n = st.started.len();
        let paths = std::mem::replace(&mut st.ran, vec![None; n]);
        for line in self.summary(&st, &paths) {
            note!(self, "{line}");
        }
        st.retired.iter_mut().for_each(|t| *t = (0, 0));
        st.resume.iter_mut().for_each(|p| *p = None);
        st.failed.iter_mut().for_each(|f| *f = None);
        // A device error is not forever: with the frontend gone (its summary printed), reset
        // the whole device and serve the next one on a clean device (its runtime starts at its
        // first kick).
        if let Some(why) = st.dead.clone() {
            st.guest = None;
            st.dma = None;
            match self.hw.reset_device(self.opts.queues) {
                Ok(()) => {
                    note!(self, "the device recovered (device reset) from: {why}");
                    st.dead = None;
                }
                Err(e) => note!(
                    self,
                    "the device stays stopped ({why}); its reset failed: {e}"
                ),
            }
        }
        r
    }

    /// One line per queue that ran since the last reset: its path, requests completed (the
    /// device's counters, which run on for the device's life, and the CPU's), punts, errors, DMA
    /// faults, kicks and doorbell events.
    fn summary(&self, st: &State, paths: &[Option<Path>]) -> Vec<String> {
        use fpga_virtio_driver::hw::regs::counters::qstat as c;
        let mut lines = Vec::new();
        for (q, path) in paths.iter().enumerate() {
            let Some(path) = path else { continue };
            let rd = |r: fpga_virtio_driver::hw::RegArray| {
                r.at(q as u32)
                    .ok()
                    .and_then(|r| r.read(self.hw.io()).ok())
                    .unwrap_or(0)
            };
            let device = u64::from(rd(c::REQUESTS_LO)) | (u64::from(rd(c::REQUESTS_HI)) << 32);
            let (cpu, doorbells) = st.retired.get(q).copied().unwrap_or_default();
            let kicks = self.queue_kicks[q].swap(0, Ordering::Relaxed);
            let requests = if *path == Path::Fpga { device } else { cpu };
            let status = rd(regs::queue::q::STATUS);
            let state = if regs::queue::q::status::ERROR.is_set(status) {
                let cause = regs::queue::q::status::CAUSE.get(status);
                format!(
                    ", stopped by {} (detail {:#x})",
                    regs::QueueError::from_raw(cause)
                        .map_or_else(|| format!("cause {cause}"), |c| format!("{c:?}")),
                    rd(regs::queue::q::ERR_INFO)
                )
            } else {
                String::new()
            };
            lines.push(format!(
                "queue {q} ({}): {requests} requests, {cpu} by the CPU, {} punted, {} errors, {} DMA faults, {kicks} kicks, {doorbells} doorbell events{state}",
                path.as_str(),
                rd(c::PUNTS),
                rd(c::ERRORS),
                rd(c::DMA_FAULTS),
            ));
        }
        lines
    }

    /// Whether queue `q` runs on the device now, and on which path.
    pub fn queue_path(&self, q: u16) -> Option<Path> {
        lock(&self.state)
            .started
            .get(usize::from(q))
            .copied()
            .flatten()
            .map(|(path, _)| path)
    }

    /// A kick on queue `q`: start it first if the device does not run it yet, then ring its
    /// doorbell.
    pub fn kick(&self, q: u16, ring: impl FnOnce() -> VringSetup) -> Result<(), DeviceError> {
        if usize::from(q) >= self.irqfds.len() {
            return Err(DeviceError::NoSuchQueue(q));
        }
        {
            let mut st = lock(&self.state);
            if let Some(why) = &st.dead {
                return Err(DeviceError::Stopped {
                    q,
                    cause: why.clone(),
                });
            }
            if let Some(cause) = st.failed[usize::from(q)] {
                return Err(DeviceError::QueueFailed { q, cause });
            }
            if st.started[usize::from(q)].is_none() {
                self.start_locked(&mut st, q, ring())?;
            }
        }
        self.kicks.fetch_add(1, Ordering::Relaxed);
        self.queue_kicks[usize::from(q)].fetch_add(1, Ordering::Relaxed);
        regs::doorbell::db::NOTIFY
            .at(u32::from(q))?
            .write(self.hw.io(), 0)?;
        if let Some(h) = lock(&self.clock).as_ref() {
            h.thread().unpark();
        }
        Ok(())
    }

    fn start_locked(&self, st: &mut State, q: u16, ring: VringSetup) -> Result<(), DeviceError> {
        let (Some(guest), Some(dma)) = (st.guest.clone(), st.dma.clone()) else {
            return Err(DeviceError::NoMemoryTable(q));
        };
        let features = st.features;
        if st.runtime.is_none() {
            // The tenant reaches its own memory and nothing else: not the runtime's rings, not
            // the in-flight region (both in the device's IOMMU map too).
            let mut private = vec![(PRIVATE_IOVA, PRIVATE_IOVA + PRIVATE_SIZE as u64)];
            if let Some(inf) = &st.inflight {
                let r = &inf.region;
                private.push((r.start_addr().0, r.start_addr().0 + r.len()));
            }
            let pieces: Vec<(u64, u64)> = guest
                .iter()
                .map(|r| (r.start_addr().0, r.start_addr().0 + r.len()))
                .collect();
            let windows = DmaWindows::covering(&pieces, &private)?;
            st.runtime = Some(Runtime::start(
                self.hw.io(),
                dma.clone(),
                self.opts.policy.clone(),
                vec![self.opts.device.function(0, features, windows)],
                Rings {
                    punt: PRIVATE_IOVA,
                    punt_log2: PUNT_LOG2,
                    cpl: PRIVATE_IOVA + (PRIVATE_SIZE as u64 / 2),
                    cpl_log2: CPL_LOG2,
                    punt_vector: regs::NO_VECTOR,
                },
            )?);
        }
        let resume = st.resume[usize::from(q)].take();
        let has = |bit: u32| features & (1 << bit) != 0;
        let info = QueueInfo {
            func: 0,
            vq: q,
            desc: ring.desc,
            avail: ring.avail,
            used: ring.used,
            size: ring.size,
            indirect: has(vr::VIRTIO_RING_F_INDIRECT_DESC),
            event_idx: has(vr::VIRTIO_RING_F_EVENT_IDX),
            notification_data: false,
        };
        let log = Self::log_of(st, q, ring.size);
        let rt = st.runtime.as_mut().expect("started above");
        let pos = match (resume, log) {
            // Stopped by a new memory table (or a new in-flight region) a moment ago, cleanly: on
            // from there, the log going on (or starting there).
            (Some(p), _) => {
                if let Some((hdr, records)) = log {
                    if !LogHeader::read(&dma, hdr)?.is_for(ring.size) {
                        start_log(&dma, hdr, records, ring.size, p.last_avail)?;
                    }
                    set_log_state(&dma, hdr, LOG_RUNNING)?;
                }
                p
            }
            (None, Some((hdr, records))) => {
                let h = LogHeader::read(&dma, hdr)?;
                if h.is_for(ring.size) && h.state == LOG_RUNNING {
                    // The backend that ran this queue died: serve what it left in flight
                    // (whatever the frontend's base says: it only counts used entries).
                    let r = rt.resubmit_in_flight(q, &info, records, h.base)?;
                    note!(
                        self,
                        "queue {q}: recovered from the in-flight log: {} requests served again (avail positions {:?}; used->idx was {}{}), going on at avail {} / used {}",
                        r.served.len(),
                        r.served,
                        r.used_before,
                        if r.out_of_order() { ", completed out of order" } else { "" },
                        r.resume.last_avail,
                        r.resume.used_idx
                    );
                    r.resume
                } else {
                    // A new log from the frontend's base: everything before it is complete.
                    start_log(&dma, hdr, records, ring.size, ring.next_avail)?;
                    set_log_state(&dma, hdr, LOG_RUNNING)?;
                    QueuePosition {
                        last_avail: ring.next_avail,
                        used_idx: used_idx_of(&guest, q, ring.used)?,
                    }
                }
            }
            // The used index to publish next is what the used ring says now (a fresh ring: 0;
            // after a reconnect: what the previous backend published).
            (None, None) => QueuePosition {
                last_avail: ring.next_avail,
                used_idx: used_idx_of(&guest, q, ring.used)?,
            },
        };
        let path = rt.add_queue(
            self.hw.io(),
            QueueSpec {
                qid: q,
                info,
                vector: u32::from(q),
                last_avail: pos.last_avail,
                used_idx: pos.used_idx,
                done_log: log.map(|(_, records)| records),
            },
        )?;
        st.started[usize::from(q)] = Some((path, ring));
        st.err_told[usize::from(q)] = false;
        st.ran[usize::from(q)] = Some(path);
        // One interrupt at every start: a backend that died after publishing a used entry but
        // before its interrupt went out leaves a guest waiting for it forever (seen when the
        // backend was killed mid-I/O). A spurious interrupt only makes the driver look.
        let _ = self.irqfds[usize::from(q)].write(1);
        Ok(())
    }

    /// The register interface of the hardware (for statistics and tests).
    pub fn io(&self) -> &dyn RegisterIo {
        self.hw.io()
    }

    /// What the data plane is ("the simulated FPGA", "BDF over VFIO").
    pub fn describe(&self) -> String {
        self.hw.describe()
    }

    /// Clock the model while there is work and nap when there is none; for a card, which runs by
    /// itself, poll the runtime (punt and completion rings) and nap briefly when it is idle.
    fn clock_loop(&self) {
        let mut last_activity = u64::MAX;
        let mut last_kicks = u64::MAX;
        let mut quiet = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            let busy = {
                let mut st = lock(&self.state);
                if st.dead.is_some() || st.runtime.is_none() {
                    drop(st);
                    std::thread::park_timeout(Duration::from_millis(20));
                    continue;
                }
                let ran = self.hw.turn();
                let polled = match ran {
                    Ok(()) => st
                        .runtime
                        .as_mut()
                        .map_or(Ok(0), |rt| rt.poll(self.hw.io()))
                        .map_err(DeviceError::from),
                    Err(e) => Err(e),
                };
                self.tell_errors(&mut st);
                match polled {
                    Ok(moved) => {
                        moved > 0 || st.runtime.as_ref().is_some_and(|rt| rt.outstanding() > 0)
                    }
                    Err(e) => {
                        note!(self, "the device stopped: {e}");
                        st.dead = Some(Arc::new(e));
                        continue;
                    }
                }
            };
            let Some(activity) = self.hw.activity() else {
                // A card: 100 µs between polls while nothing is outstanding.
                if !busy {
                    std::thread::park_timeout(Duration::from_micros(100));
                }
                continue;
            };
            let kicks = self.kicks.load(Ordering::Relaxed);
            if busy || activity != last_activity || kicks != last_kicks {
                quiet = 0;
            } else {
                quiet += TURN;
            }
            last_activity = activity;
            last_kicks = kicks;
            if quiet >= IDLE_CYCLES {
                std::thread::park_timeout(Duration::from_millis(10));
            }
        }
    }

    /// Test hook: put the device in its error state, as a failure of the model or the runtime
    /// would (`why` is the message).
    #[doc(hidden)]
    pub fn inject_device_error(&self, why: &'static str) {
        lock(&self.state).dead = Some(Arc::new(DeviceError::Injected(why)));
    }

    /// Stop the clock thread (the device keeps its state).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = lock(&self.clock).take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// The used->idx of the ring whose used ring is at `used`.
fn used_idx_of(guest: &GuestMemoryMmap, q: u16, used: u64) -> Result<u16, DeviceError> {
    guest
        .read_obj::<u16>(GuestAddress(used.wrapping_add(2)))
        .map_err(|source| DeviceError::UsedRing {
            q,
            at: used,
            source,
        })
}

fn log_err(e: vm_memory::GuestMemoryError) -> DeviceError {
    DeviceError::Inflight(e)
}

/// A queue's header in the in-flight region (magic at +0, state +4, ring size +8, base +10).
struct LogHeader {
    magic: u32,
    state: u32,
    size: u16,
    /// The log's first avail position: everything before it is complete.
    base: u16,
}

impl LogHeader {
    fn read(dma: &GuestMemoryMmap, hdr: u64) -> Result<Self, DeviceError> {
        Ok(LogHeader {
            magic: dma.read_obj(GuestAddress(hdr)).map_err(log_err)?,
            state: dma.read_obj(GuestAddress(hdr + 4)).map_err(log_err)?,
            size: dma.read_obj(GuestAddress(hdr + 8)).map_err(log_err)?,
            base: dma.read_obj(GuestAddress(hdr + 10)).map_err(log_err)?,
        })
    }

    /// Whether it heads a done log of a ring of `size` entries.
    fn is_for(&self, size: u16) -> bool {
        self.magic == LOG_MAGIC && self.size == size
    }
}

fn set_log_state(dma: &GuestMemoryMmap, hdr: u64, state: u32) -> Result<(), DeviceError> {
    dma.write_obj(state, GuestAddress(hdr + 4)).map_err(log_err)
}

/// A new done log for a ring of `size` entries from avail position `base` (every position
/// before it complete); the header's state is set by the caller.
fn start_log(
    dma: &GuestMemoryMmap,
    hdr: u64,
    records: u64,
    size: u16,
    base: u16,
) -> Result<(), DeviceError> {
    done_log::init(dma, records, size, base)?;
    dma.write_obj(LOG_MAGIC, GuestAddress(hdr))
        .map_err(log_err)?;
    dma.write_obj(size, GuestAddress(hdr + 8))
        .map_err(log_err)?;
    dma.write_obj(base, GuestAddress(hdr + 10)).map_err(log_err)
}
