//! Lockstep simulation: the model runs cycles in C++ and stops on events; this side answers DMA
//! from guest memory through the IOMMU map, delivers MSI-X messages to eventfds and keeps time.
//! Everything is deterministic: the same calls give the same cycle counts.

use crate::ffi;
use crate::flash::{FlashModel, FlashTiming};
use crate::iommu::IommuMap;
use crate::memory::{GuestMemory, MemoryError};
use crate::model::{dma_bytes, Model, ModelError};
use fpga_virtio_hw::{check_access, regs, Bar, IoError, RegisterIo};
use fpga_virtio_storage::BlockStore;
use fpga_virtio_wire::{Source, Uplink};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

/// DMA writes into this window are MSI messages, not memory writes (the x86 interrupt range):
/// they bypass the IOMMU and signal the eventfd registered for their data value.
pub const MSI_WINDOW: std::ops::Range<u64> = 0xfee0_0000..0xfef0_0000;

/// Cycles an MMIO read may take before the device is declared hung.
const MMIO_TIMEOUT: u64 = 10_000;

/// DMA latency and bandwidth model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaTiming {
    /// Cycles from a read request to its first completion beat.
    pub read_latency: u64,
    /// Cycles from a write to its acknowledgement.
    pub write_latency: u64,
    /// Link bandwidth in bytes per cycle, each direction (0: unlimited).
    pub bytes_per_cycle: u64,
}

impl Default for DmaTiming {
    /// 1 µs of read latency at 250 MHz, 0.5 µs for write acknowledgements, 16 B/cycle
    /// (32 Gb/s: a PCIe Gen3 x4 link, roughly).
    fn default() -> Self {
        DmaTiming {
            read_latency: 250,
            write_latency: 125,
            bytes_per_cycle: 16,
        }
    }
}

/// Storage-port latency and bandwidth model (the remote storage behind the blk engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreTiming {
    /// Cycles from a read request to its first beat.
    pub read_latency: u64,
    /// Cycles from a write beat to its acknowledgement.
    pub write_latency: u64,
    /// Bytes per cycle (0: unlimited).
    pub bytes_per_cycle: u64,
}

impl Default for StoreTiming {
    /// 2 µs reads and 1 µs write acknowledgements at 250 MHz (a fast NVMe-oF target), 32 B/cycle.
    fn default() -> Self {
        StoreTiming {
            read_latency: 500,
            write_latency: 250,
            bytes_per_cycle: 32,
        }
    }
}

/// A fault of the storage port, for tests of the device's timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFault {
    /// Never answer the next `n` storage accesses (read requests or write beats).
    Drop(u32),
    /// Answer the next `n` storage accesses `cycles` late.
    Delay(u32, u64),
}

/// Storage-port traffic so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub reads: u64,
    pub read_bytes: u64,
    pub write_beats: u64,
    pub write_bytes: u64,
    pub errors: u64,
    /// Accesses never answered or answered late (injected faults).
    pub dropped: u64,
    pub delayed: u64,
}

/// How to build a [`Simulator`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub timing: DmaTiming,
    /// The flash behind the flash controller; None: a blank one. Pass the same model to a new
    /// simulator to power the device up again on what its flash holds.
    pub flash: Option<Arc<FlashModel>>,
    pub flash_timing: FlashTiming,
    pub store_timing: StoreTiming,
    /// Guest memory size in bytes.
    pub memory: u64,
    /// FST waveform to write; `None` reads `FV_SIM_TRACE`.
    pub trace: Option<PathBuf>,
    /// Random initial flop values from this seed; `None` reads `FV_SIM_SEED` (needs a build
    /// with `FV_SIM_X=unique` to matter: the fast build starts flops at zero).
    pub x_seed: Option<u32>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            timing: DmaTiming::default(),
            flash: None,
            flash_timing: FlashTiming::default(),
            store_timing: StoreTiming::default(),
            memory: 64 << 20,
            trace: None,
            x_seed: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("the RTL stopped: {0}")]
    Finished(String),
    #[error("MMIO read of {bar} offset {offset:#x} got no response in {MMIO_TIMEOUT} cycles")]
    MmioTimeout { bar: Bar, offset: u64 },
    #[error("eventfd: {0}")]
    EventFd(std::io::Error),
    #[error("the RTL issued a DMA of {len} bytes, more than its {max}-byte datapath allows")]
    BadDma { len: u32, max: usize },
}

/// A DMA the IOMMU refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaFault {
    pub cycle: u64,
    pub iova: u64,
    pub len: u32,
    pub write: bool,
    pub reason: String,
}

/// An MSI message the device wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiEvent {
    pub cycle: u64,
    pub addr: u64,
    pub data: u32,
}

/// DMA traffic so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaStats {
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
    pub msis: u64,
    pub faults: u64,
}

type MsiHook = Box<dyn FnMut(&GuestMemoryMmap, &MsiEvent) + Send>;

/// The device side of one DMA.
enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

static TRACE_COUNT: AtomicU32 = AtomicU32::new(0);

fn trace_path(cfg: &SimConfig) -> Option<PathBuf> {
    let base = cfg
        .trace
        .clone()
        .or_else(|| std::env::var_os("FV_SIM_TRACE").map(PathBuf::from))?;
    let n = TRACE_COUNT.fetch_add(1, Ordering::Relaxed);
    if n == 0 {
        return Some(base);
    }
    let stem = base
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Some(base.with_file_name(format!("{stem}.{n}.fst")))
}

/// The simulated device with its memory, IOMMU and interrupt routing. See the module docs.
pub struct Simulator {
    model: Model,
    memory: GuestMemory,
    iommu: IommuMap,
    timing: DmaTiming,
    rd_link_free: u64,
    wr_link_free: u64,
    mmio_reads: VecDeque<u32>,
    irqfds: BTreeMap<u32, EventFd>,
    log_limit: Option<usize>,
    msi_hook: Option<MsiHook>,
    msis: Vec<MsiEvent>,
    faults: Vec<DmaFault>,
    stats: DmaStats,
    store: Option<Arc<dyn BlockStore>>,
    store_timing: StoreTiming,
    st_rd_free: u64,
    st_wr_free: u64,
    store_stats: StoreStats,
    store_fault: Option<StoreFault>,
    /// Injected: DMA reads touching this range are answered late or never (see
    /// [`Simulator::dma_read_fault`]).
    dma_read_fault: Option<Box<(std::ops::Range<u64>, StoreFault)>>,
    flash: Arc<FlashModel>,
    flash_timing: FlashTiming,
    /// The packet port: the uplink's frame buffer of each slot, and the far side of the wire.
    pk_bufs: Vec<Vec<u8>>,
    uplink: Option<Arc<dyn Uplink>>,
    packet_stats: PacketStats,
}

/// What the packet port (the net engines' side of the uplink) carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Frames sent (also without an uplink attached, when they go nowhere).
    pub frames: u64,
    pub bytes: u64,
    /// Frame-buffer writes (beats and checksum patches).
    pub writes: u64,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("cycle", &self.cycle())
            .field("timing", &self.timing)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        let trace = trace_path(&cfg);
        let seed = cfg.x_seed.or_else(|| {
            std::env::var("FV_SIM_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
        });
        Ok(Simulator {
            model: Model::new(trace.as_deref(), seed)?,
            memory: GuestMemory::new(cfg.memory)?,
            iommu: IommuMap::new(),
            timing: cfg.timing,
            rd_link_free: 0,
            wr_link_free: 0,
            mmio_reads: VecDeque::new(),
            irqfds: BTreeMap::new(),
            log_limit: None,
            msi_hook: None,
            msis: Vec::new(),
            faults: Vec::new(),
            stats: DmaStats::default(),
            store: None,
            store_timing: cfg.store_timing,
            st_rd_free: 0,
            st_wr_free: 0,
            store_stats: StoreStats::default(),
            store_fault: None,
            dma_read_fault: None,
            flash: cfg.flash.unwrap_or_else(FlashModel::new),
            flash_timing: cfg.flash_timing,
            pk_bufs: Vec::new(),
            uplink: None,
            packet_stats: PacketStats::default(),
        })
    }

    /// Connect the net engines' packet port to `uplink` (a [`fpga_virtio_wire::Wire`]). Without
    /// one, frames sent are counted and go nowhere.
    pub fn attach_uplink(&mut self, uplink: Arc<dyn Uplink>) {
        self.uplink = Some(uplink);
    }

    pub fn packet_stats(&self) -> PacketStats {
        self.packet_stats
    }

    /// Connect the blk engine's storage port to `store`. Without a store every storage access
    /// fails (the requests complete with VIRTIO_BLK_S_IOERR).
    pub fn attach_store(&mut self, store: Arc<dyn BlockStore>) {
        self.store = Some(store);
    }

    /// The flash model behind the flash controller.
    pub fn flash(&self) -> &Arc<FlashModel> {
        &self.flash
    }

    /// Inject a storage-port fault (see [`StoreFault`]).
    pub fn store_fault(&mut self, fault: StoreFault) {
        self.store_fault = Some(fault);
    }

    /// Inject a fault of the DMA port: the next reads touching `range` (`Drop(n)`: n reads never
    /// answered, an engine that waits forever; `Delay(n, cycles)`: answered that much later).
    pub fn dma_read_fault(&mut self, range: std::ops::Range<u64>, fault: StoreFault) {
        self.dma_read_fault = Some(Box::new((range, fault)));
    }

    /// What the injected DMA fault does to a read of `[addr, +len)`: None, or extra cycles
    /// (`u64::MAX`: never).
    fn take_dma_read_fault(&mut self, addr: u64, len: u64) -> Option<u64> {
        let (range, fault) = self.dma_read_fault.as_deref().cloned()?;
        if addr >= range.end || addr.saturating_add(len) <= range.start {
            return None;
        }
        let (left, delay) = match fault {
            StoreFault::Drop(n) => (n, u64::MAX),
            StoreFault::Delay(n, c) => (n, c),
        };
        if left <= 1 {
            self.dma_read_fault = None;
        } else {
            let next = match fault {
                StoreFault::Drop(_) => StoreFault::Drop(left - 1),
                StoreFault::Delay(_, c) => StoreFault::Delay(left - 1, c),
            };
            self.dma_read_fault = Some(Box::new((range, next)));
        }
        (left > 0).then_some(delay)
    }

    /// What the injected fault does to the next access: None (answer), or extra cycles
    /// (`u64::MAX`: never answer).
    fn take_store_fault(&mut self) -> Option<u64> {
        let (left, delay) = match self.store_fault? {
            StoreFault::Drop(n) => (n, u64::MAX),
            StoreFault::Delay(n, c) => (n, c),
        };
        if left == 0 {
            self.store_fault = None;
            return None;
        }
        self.store_fault = match self.store_fault {
            Some(StoreFault::Drop(_)) => Some(StoreFault::Drop(left - 1)),
            Some(StoreFault::Delay(_, c)) => Some(StoreFault::Delay(left - 1, c)),
            None => None,
        };
        if delay == u64::MAX {
            self.store_stats.dropped += 1;
        } else {
            self.store_stats.delayed += 1;
        }
        Some(delay)
    }

    pub fn store_stats(&self) -> StoreStats {
        self.store_stats
    }

    /// Cycles simulated since reset.
    pub fn cycle(&self) -> u64 {
        self.model.cycle()
    }

    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    /// Replace the memory the device's DMA reaches (through the IOMMU map, which the caller
    /// updates to match): a vhost-user backend serves the guest's own memory this way.
    pub fn set_memory(&mut self, memory: GuestMemory) {
        self.memory = memory;
    }

    /// Keep at most `n` entries in the MSI and fault logs (the oldest go first; the counts in
    /// [`DmaStats`] keep counting). A long-running device sets this; tests keep everything.
    pub fn set_log_limit(&mut self, n: usize) {
        self.log_limit = Some(n);
        self.trim_logs();
    }

    fn trim_logs(&mut self) {
        if let Some(n) = self.log_limit {
            if self.msis.len() > n {
                let drop = self.msis.len() - n;
                self.msis.drain(..drop);
            }
            if self.faults.len() > n {
                let drop = self.faults.len() - n;
                self.faults.drain(..drop);
            }
        }
    }

    pub fn iommu(&self) -> &IommuMap {
        &self.iommu
    }

    /// The IOMMU map (map and unmap the runtime's memory).
    pub fn iommu_mut(&mut self) -> &mut IommuMap {
        &mut self.iommu
    }

    pub fn timing(&self) -> DmaTiming {
        self.timing
    }

    pub fn set_timing(&mut self, timing: DmaTiming) {
        self.timing = timing;
    }

    /// DMA faults so far, oldest first.
    pub fn faults(&self) -> &[DmaFault] {
        &self.faults
    }

    /// MSI messages so far, oldest first.
    pub fn msis(&self) -> &[MsiEvent] {
        &self.msis
    }

    pub fn stats(&self) -> DmaStats {
        self.stats
    }

    /// An eventfd signalled by every MSI message whose data is `data` (the MSI-X table entry's
    /// data, e.g. the vector number). The same eventfd is returned on every call.
    pub fn irqfd(&mut self, data: u32) -> Result<EventFd, SimError> {
        let fd = match self.irqfds.entry(data) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(EventFd::new(libc::EFD_NONBLOCK).map_err(SimError::EventFd)?)
            }
        };
        fd.try_clone().map_err(SimError::EventFd)
    }

    /// Called at each MSI message with guest memory as it is at that moment (tests use it to
    /// check that what the interrupt announces is already visible).
    pub fn set_msi_hook(&mut self, hook: impl FnMut(&GuestMemoryMmap, &MsiEvent) + Send + 'static) {
        self.msi_hook = Some(Box::new(hook));
    }

    /// Run `cycles` cycles, answering every DMA on the way.
    pub fn run(&mut self, cycles: u64) -> Result<(), SimError> {
        let end = self.cycle() + cycles;
        while self.cycle() < end {
            let left = end - self.cycle();
            self.step(left)?;
        }
        Ok(())
    }

    /// Run until `done(self)` holds (checked whenever the model stops on events, and at least
    /// every `poll` cycles) or `max` cycles passed. Returns whether `done` held.
    pub fn run_until(
        &mut self,
        max: u64,
        poll: u64,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, SimError> {
        let end = self.cycle() + max;
        while self.cycle() < end {
            if done(self) {
                return Ok(true);
            }
            let left = (end - self.cycle()).min(poll.max(1));
            self.step(left)?;
        }
        Ok(done(self))
    }

    /// Queue an MMIO write; it reaches the device on the next cycle.
    pub fn mmio_write(&mut self, bar: Bar, offset: u64, value: u32) -> Result<(), SimError> {
        if !self.flash.powered() {
            // The card lost power (its flash with it): a write goes nowhere.
            return Ok(());
        }
        self.model.mmio(true, bar.0, offset as u32, value);
        self.step(1)
    }

    /// An MMIO read: runs until the device answers.
    pub fn mmio_read(&mut self, bar: Bar, offset: u64) -> Result<u32, SimError> {
        if !self.flash.powered() {
            // The card lost power: a PCIe read of it completes with all ones (master abort).
            return Ok(u32::MAX);
        }
        self.model.mmio(false, bar.0, offset as u32, 0);
        let deadline = self.cycle() + MMIO_TIMEOUT;
        while self.cycle() < deadline {
            if let Some(v) = self.mmio_reads.pop_front() {
                return Ok(v);
            }
            self.step(deadline - self.cycle())?;
        }
        self.mmio_reads
            .pop_front()
            .ok_or(SimError::MmioTimeout { bar, offset })
    }

    /// Run at most `max` cycles, stopping early when events arrive, and handle them.
    fn step(&mut self, max: u64) -> Result<(), SimError> {
        // A model stopped by $finish/$stop/$fatal does not run again: say so every time (time
        // would otherwise never advance and callers would spin).
        if let Some(msg) = self.model.error() {
            return Err(SimError::Finished(msg));
        }
        let n = self.model.run(max);
        for i in 0..n {
            // A copy: answering the event schedules completions on the model.
            let e = &self.model.event(i);
            match e.kind {
                ffi::EV_MMIO_RDATA => self.mmio_reads.push_back(e.data32),
                ffi::EV_DMA_READ => self.dma_read(e)?,
                ffi::EV_DMA_WRITE => self.dma_write(e)?,
                ffi::EV_STORE_READ => self.store_read(e),
                ffi::EV_STORE_WRITE => self.store_write(e),
                ffi::EV_FLASH => self.flash_request(e),
                ffi::EV_PACKET => self.packet(e),
                ffi::EV_FINISH => {
                    return Err(SimError::Finished(
                        self.model.error().unwrap_or_else(|| "unknown".into()),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn link_slot(free: &mut u64, now: u64, latency: u64, len: u64, bpc: u64) -> u64 {
        let due = (now + latency).max(*free);
        if bpc > 0 {
            *free = due + len.div_ceil(bpc);
        }
        due
    }

    fn fault(&mut self, cycle: u64, iova: u64, len: u32, write: bool, reason: String) {
        self.stats.faults += 1;
        self.faults.push(DmaFault {
            cycle,
            iova,
            len,
            write,
            reason,
        });
        if self
            .log_limit
            .is_some_and(|n| self.faults.len() > 2 * n.max(1))
        {
            self.trim_logs();
        }
    }

    /// Move the bytes of one DMA between the device and guest memory through the IOMMU. On a
    /// refused access nothing is written, the fault is logged, and the result is false.
    fn dma_access(&mut self, e: &ffi::FvEvent, mut access: Access<'_>) -> bool {
        let write = matches!(access, Access::Write(_));
        let pieces = match self.iommu.translate(e.addr, u64::from(e.len), write) {
            Ok(p) => p,
            Err(err) => {
                self.fault(e.cycle, e.addr, e.len, write, err.to_string());
                return false;
            }
        };
        let mem = self.memory.mem();
        let mut at = 0usize;
        let mut ok = true;
        for (gpa, n) in pieces {
            let n = n as usize;
            let done = match &mut access {
                Access::Read(buf) => mem.read_slice(&mut buf[at..at + n], GuestAddress(gpa)),
                Access::Write(buf) => mem.write_slice(&buf[at..at + n], GuestAddress(gpa)),
            };
            ok &= done.is_ok();
            at += n;
        }
        if !ok {
            self.fault(e.cycle, e.addr, e.len, write, "outside guest memory".into());
        }
        ok
    }

    fn dma_read(&mut self, e: &ffi::FvEvent) -> Result<(), SimError> {
        let bw = dma_bytes();
        let len = e.len as usize;
        if len == 0 || len > 4096 {
            return Err(SimError::BadDma {
                len: e.len,
                max: 4096,
            });
        }
        let mut data = vec![0u8; len.div_ceil(bw) * bw];
        let error = !self.dma_access(e, Access::Read(&mut data[..len]));
        if error {
            data.fill(0);
        }
        self.stats.reads += 1;
        self.stats.read_bytes += len as u64;
        let due = Self::link_slot(
            &mut self.rd_link_free,
            e.cycle,
            self.timing.read_latency,
            len as u64,
            self.timing.bytes_per_cycle,
        );
        let due = match self.take_dma_read_fault(e.addr, len as u64) {
            None => due,
            Some(u64::MAX) => return Ok(()), // never answered
            Some(extra) => due + extra,
        };
        let beats = data.len() / bw;
        for (i, chunk) in data.chunks(bw).enumerate() {
            self.model
                .read_beat(due, e.tag, chunk, i + 1 == beats, error);
        }
        Ok(())
    }

    fn dma_write(&mut self, e: &ffi::FvEvent) -> Result<(), SimError> {
        let len = e.len as usize;
        if len == 0 || len > dma_bytes() {
            return Err(SimError::BadDma {
                len: e.len,
                max: dma_bytes(),
            });
        }
        let payload = &e.data[..len];
        let mut error = false;
        if MSI_WINDOW.contains(&e.addr) {
            let mut d = [0u8; 4];
            d[..len.min(4)].copy_from_slice(&payload[..len.min(4)]);
            let msi = MsiEvent {
                cycle: e.cycle,
                addr: e.addr,
                data: u32::from_le_bytes(d),
            };
            self.stats.msis += 1;
            self.msis.push(msi);
            if self
                .log_limit
                .is_some_and(|n| self.msis.len() > 2 * n.max(1))
            {
                self.trim_logs();
            }
            if let Some(hook) = self.msi_hook.as_mut() {
                hook(self.memory.mem(), &msi);
            }
            if let Some(fd) = self.irqfds.get(&msi.data) {
                fd.write(1).map_err(SimError::EventFd)?;
            }
        } else {
            error = !self.dma_access(e, Access::Write(payload));
            self.stats.writes += 1;
            self.stats.write_bytes += len as u64;
        }
        let due = Self::link_slot(
            &mut self.wr_link_free,
            e.cycle,
            self.timing.write_latency,
            len as u64,
            self.timing.bytes_per_cycle,
        );
        self.model.write_ack(due, e.tag, error);
        Ok(())
    }
}

impl Simulator {
    /// A storage-port read: beats from the store after the latency model; on a store error
    /// every beat carries the error flag (the engine answers IOERR).
    fn store_read(&mut self, e: &ffi::FvEvent) {
        let bw = dma_bytes();
        let len = (e.len as usize).max(1);
        let mut data = vec![0u8; len.div_ceil(bw) * bw];
        let error = match &self.store {
            Some(store) => store.read_at(e.addr, &mut data[..e.len as usize]).is_err(),
            None => true,
        };
        self.store_stats.reads += 1;
        self.store_stats.read_bytes += u64::from(e.len);
        self.store_stats.errors += u64::from(error);
        let extra = match self.take_store_fault() {
            Some(u64::MAX) => return,
            Some(c) => c,
            None => 0,
        };
        let t = self.store_timing;
        let due = Self::link_slot(
            &mut self.st_rd_free,
            e.cycle,
            t.read_latency,
            len as u64,
            t.bytes_per_cycle,
        ) + extra;
        let beats = data.len() / bw;
        for (i, chunk) in data.chunks(bw).enumerate() {
            self.model
                .store_beat(due, e.tag, chunk, i + 1 == beats, error);
        }
    }

    /// A packet-port operation: a write into the slot's frame buffer, or a send of it.
    fn packet(&mut self, e: &ffi::FvEvent) {
        let slot = (e.tag & 0xff) as usize;
        let func = ((e.tag >> 8) & 0xff) as u8;
        let send = e.tag & (1 << 16) != 0;
        if self.pk_bufs.len() <= slot {
            self.pk_bufs.resize_with(slot + 1, Vec::new);
        }
        // Offsets and lengths are 16-bit: a buffer of 64 KiB and a beat holds every write.
        let buf = &mut self.pk_bufs[slot];
        if buf.is_empty() {
            buf.resize((1 << 16) + e.data.len(), 0);
        }
        let len = e.len as usize;
        if send {
            self.packet_stats.frames += 1;
            self.packet_stats.bytes += len as u64;
            if let Some(up) = &self.uplink {
                up.transmit(Source::Fpga { func }, &buf[..len], e.cycle);
            }
        } else {
            let (off, len) = (e.addr as usize, len.min(e.data.len()));
            buf[off..off + len].copy_from_slice(&e.data[..len]);
            self.packet_stats.writes += 1;
        }
    }

    /// A flash-port request, answered after the page latency (never, when the power is cut).
    fn flash_request(&mut self, e: &ffi::FvEvent) {
        let data = self.model.flash_take();
        let (op, slot) = (e.tag & 0xff, e.tag >> 8);
        let Some((error, page)) = self.flash.serve(op, slot, e.addr, &data) else {
            return;
        };
        let t = self.flash_timing;
        let latency = match op {
            crate::flash::OP_PROGRAM => t.program,
            crate::flash::OP_ERASE => t.erase,
            _ => t.read,
        };
        self.model.flash_rsp(e.cycle + latency.max(1), error, &page);
    }

    /// A storage-port write beat, acknowledged after the latency model.
    fn store_write(&mut self, e: &ffi::FvEvent) {
        let len = (e.len as usize).min(dma_bytes());
        let extra = match self.take_store_fault() {
            // A lost write: neither applied nor acknowledged.
            Some(u64::MAX) => return,
            Some(c) => c,
            None => 0,
        };
        let error = match &self.store {
            Some(store) => store.write_at(e.addr, &e.data[..len]).is_err(),
            None => true,
        };
        self.store_stats.write_beats += 1;
        self.store_stats.write_bytes += len as u64;
        self.store_stats.errors += u64::from(error);
        let t = self.store_timing;
        let due = Self::link_slot(
            &mut self.st_wr_free,
            e.cycle,
            t.write_latency,
            len as u64,
            t.bytes_per_cycle,
        ) + extra;
        self.model.store_ack(due, e.tag, error);
    }
}

/// A [`Simulator`] behind the [`RegisterIo`] seam: driver code runs on it unchanged. Each access
/// advances simulated time (a read waits for the device's answer).
#[derive(Debug)]
pub struct SimDevice {
    sim: Mutex<Simulator>,
}

impl SimDevice {
    pub fn new(sim: Simulator) -> Self {
        SimDevice {
            sim: Mutex::new(sim),
        }
    }

    /// Exclusive access to the simulator (run time, map memory, read the logs).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Simulator> {
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn into_inner(self) -> Simulator {
        self.sim.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn bar_size(bar: Bar) -> Result<u64, IoError> {
        match bar {
            regs::BAR_MGMT => Ok(regs::BAR_MGMT_SIZE),
            regs::BAR_DOORBELL => Ok(regs::BAR_DOORBELL_SIZE),
            regs::BAR_MSIX => Ok(regs::BAR_MSIX_SIZE),
            _ => Err(IoError::NoSuchBar { bar }),
        }
    }
}

fn backend(bar: Bar, offset: u64, e: SimError) -> IoError {
    IoError::Backend {
        bar,
        offset,
        reason: e.to_string(),
    }
}

impl RegisterIo for SimDevice {
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
        check_access(bar, offset, Self::bar_size(bar)?)?;
        self.lock()
            .mmio_read(bar, offset)
            .map_err(|e| backend(bar, offset, e))
    }

    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        check_access(bar, offset, Self::bar_size(bar)?)?;
        self.lock()
            .mmio_write(bar, offset, value)
            .map_err(|e| backend(bar, offset, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A completion nobody asked for is a bridge bug: the RTL's protocol check stops the model
    /// ($finish), and the simulator reports it as an error instead of exiting the process.
    #[test]
    fn rtl_finish_becomes_an_error() {
        let mut sim = Simulator::new(SimConfig::default()).unwrap();
        sim.run(50).unwrap();
        let beat = vec![0u8; dma_bytes()];
        let now = sim.cycle();
        sim.model.read_beat(now + 1, 1, &beat, true, false);
        match sim.run(20) {
            Err(SimError::Finished(msg)) => {
                // The check's text goes to stdout; the error names the RTL source line.
                assert!(
                    msg.contains("$finish") && msg.contains("fv_dma_mux.sv"),
                    "{msg}"
                );
            }
            other => panic!("expected the RTL to stop, got {other:?}"),
        }
        // The model stays stopped: later calls say so again instead of hanging.
        assert!(matches!(sim.run(10), Err(SimError::Finished(_))));
        assert!(matches!(
            sim.mmio_read(fpga_virtio_hw::regs::BAR_MGMT, 0),
            Err(SimError::Finished(_))
        ));
    }
}
