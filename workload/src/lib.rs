//! Seeded virtio-blk workloads on the simulated FPGA with the runtime on the CPU.
//!
//! One guest (the simulator's test split-ring driver) posts a seeded mix of requests on several
//! queues: reads, writes, flush, discard, write-zeroes, get-id, and requests the spec calls
//! malformed or the FPGA does not take (unknown types, out-of-range sectors, lengths that are
//! not sector multiples, split headers, oversized transfers). Requests go in batches; the
//! requests of one batch touch disjoint sectors, so the result does not depend on the order the
//! device serves them in. The [`Report`] holds every request's status, used length and a hash of
//! the data it read, and the final disk image: the same seed gives the same report whatever the
//! split between FPGA and CPU.

use fpga_virtio_driver::blk::BlkConfig;
use fpga_virtio_driver::runtime::{
    BlkFunction, Path, QueueInfo, QueueSpec, Rings, Runtime, RuntimeError, SplitPolicy, Stats,
};
pub mod flow;
pub mod net;
pub mod soak;

use fpga_virtio_driver::virtq::DmaWindows;
use fpga_virtio_hw::regs::{self, counters};
use fpga_virtio_sim::testing::{enable_device, kick, setup_vector, Buffer, RingError, SplitRing};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, SimError, Simulator, StoreTiming};
use fpga_virtio_storage::{BlockStore, FileStore, RamStore, StoreError};
use std::sync::Arc;
use std::time::Instant;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

const RINGS: u64 = 0x10_0000; // guest rings, 64 KiB apart
/// The runtime's rings: in the device's IOMMU map, below the tenant's memory (never in its
/// DMA windows: [`tenant_windows`]).
pub const PUNT_RING: u64 = 0x0f_0000;
pub const CPL_RING: u64 = 0x0f_8000;
const SLOTS: u64 = 0x100_0000; // request slots, SLOT_SIZE apart
const SLOT_SIZE: u64 = 0x2_0000;
const DATA_OFF: u64 = 0x1000;
const MAX_DATA: u64 = 0x1_8000; // 96 KiB
const RING_SIZE: u16 = 128;

/// What to run.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub requests: u64,
    pub queues: u16,
    /// Requests per queue per batch.
    pub depth: u16,
    pub capacity_sectors: u64,
    pub policy: SplitPolicy,
    /// Reads and writes larger than this many sectors are punted by the FPGA's blk engine
    /// (`BlkConfig::max_hw_sectors`).
    pub max_hw_sectors: u32,
    pub dma: DmaTiming,
    pub store: StoreTiming,
    /// Include malformed and unsupported requests.
    pub malformed: bool,
    /// Include flush, discard, write-zeroes and get-id.
    pub slow_path: bool,
    /// Fault injection: CPU workers panic on every request of this queue they serve.
    pub panic_queue: Option<u16>,
    /// Back the disk with this file (created or resized to the capacity) instead of RAM.
    pub disk: Option<std::path::PathBuf>,
    /// Give queue q MSI-X vector q (FPGA and CPU-owned queues alike); the guest still polls,
    /// and the report counts the interrupts per queue.
    pub interrupts: bool,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            seed: 1,
            requests: 2000,
            queues: 4,
            depth: 8,
            capacity_sectors: 64 << 11, // 64 MiB
            policy: SplitPolicy::default(),
            max_hw_sectors: 256,
            dma: DmaTiming::default(),
            store: StoreTiming::default(),
            malformed: true,
            slow_path: true,
            panic_queue: None,
            interrupts: true,
            disk: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("simulator: {0}")]
    Sim(#[from] SimError),
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("guest ring: {0}")]
    Ring(#[from] RingError),
    #[error("register access: {0}")]
    Io(#[from] fpga_virtio_hw::IoError),
    #[error(transparent)]
    Index(#[from] fpga_virtio_hw::IndexError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("guest memory: {0}")]
    Memory(String),
    #[error("batch {batch}: {missing} requests not completed after {cycles} cycles (device or runtime hung)")]
    Hang {
        batch: u64,
        missing: usize,
        cycles: u64,
    },
    #[error("configuration: {0}")]
    Config(String),
    /// The device published part of a merged RX frame (Linux's virtio_net: "rx error: N buffers
    /// out of M missing"): a device bug, never the guest's.
    #[error("rx error: {missing} buffers out of {announced} missing")]
    RxBuffersMissing { missing: u16, announced: u16 },
}

/// What happened to one request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestRecord {
    pub id: u64,
    pub queue: u16,
    pub kind: &'static str,
    /// Status byte (0xff: none written).
    pub status: u8,
    pub used_len: u32,
    /// FNV-1a of the data an IN or GET_ID request received (0 otherwise).
    pub data_hash: u64,
    /// Simulated cycles from the batch's doorbell to the used entry being seen.
    pub cycles: u64,
}

/// The result of a run.
#[derive(Debug)]
pub struct Report {
    pub records: Vec<RequestRecord>,
    pub disk: Vec<u8>,
    pub stats: Stats,
    pub paths: Vec<Path>,
    pub simulated_cycles: u64,
    pub wall_seconds: f64,
    /// Device counters per queue: requests the FPGA published itself (punted ones excluded).
    pub fpga_requests: Vec<u64>,
    pub dma_faults: u64,
    /// MSI-X messages per queue (vector q = queue q; all zero without `interrupts`).
    pub msis: Vec<u64>,
    /// The device's own counters per queue.
    pub device: Vec<DeviceCounters>,
}

/// A queue's counters in the device's counters block.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceCounters {
    /// Used entries the device wrote (its own and the CPU's completions it merged).
    pub requests: u64,
    pub errors: u32,
    pub dma_faults: u32,
    pub punts: u32,
    /// Requests by latency (avail fetch to used->idx written): < 64, < 128, ... < 4096, >= 4096
    /// cycles.
    pub latency_buckets: Vec<u32>,
}

impl Report {
    pub fn disk_hash(&self) -> u64 {
        fnv(&self.disk)
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The workloads' seeded generator (xorshift64*; the seed must not be 0).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value in 0..n (0 for n = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A request being built: its chain and what the guest checks afterwards.
struct Posted {
    id: u64,
    kind: &'static str,
    status_addr: Option<u64>,
    /// Writable data buffers to hash after completion (IN, GET_ID).
    read_back: Vec<(u64, u32)>,
}

fn mem_err(e: impl std::fmt::Display) -> WorkloadError {
    WorkloadError::Memory(e.to_string())
}

/// Build one random request in `slot` (its own sectors: `region` = first sector, `span` sectors).
fn build(
    rng: &mut Rng,
    mem: &GuestMemoryMmap,
    cfg: &WorkloadConfig,
    id: u64,
    slot: u64,
    region: u64,
    span: u64,
) -> Result<(Vec<Buffer>, Posted), WorkloadError> {
    let base = SLOTS + slot * SLOT_SIZE;
    let hdr = base;
    let status = base + 16;
    let ranges = base + 32;
    let data = base + DATA_OFF;
    let max_hw = u64::from(cfg.max_hw_sectors).max(1);
    let roll = rng.below(100);
    let (t, kind): (u32, &'static str) = match roll {
        0..=39 => (0, "read"),
        40..=79 => (1, "write"),
        80..=82 if cfg.slow_path => (4, "flush"),
        83..=84 if cfg.slow_path => (8, "get_id"),
        85..=87 if cfg.slow_path => (11, "discard"),
        88..=90 if cfg.slow_path => (13, "write_zeroes"),
        91..=92 if cfg.malformed => (0, "read_too_large"),
        93 if cfg.malformed => (1, "write_out_of_range"),
        94 if cfg.malformed => (0, "read_odd_length"),
        95 if cfg.malformed => (0x77, "unknown_type"),
        96 if cfg.malformed => (1, "write_split_header"),
        97 if cfg.malformed => (0, "read_no_status"),
        98 if cfg.malformed => (11, "discard_bad_flags"),
        _ if roll.is_multiple_of(2) => (0, "read"),
        _ => (1, "write"),
    };
    let max_sectors = (MAX_DATA / 512).min(span).min(max_hw);
    let mut sectors = 1 + rng.below(max_sectors);
    let mut sector = region + rng.below(span - sectors + 1);
    match kind {
        "read_too_large" => {
            sectors = (max_hw + 1 + rng.below(8)).min(MAX_DATA / 512).min(span);
            sector = region;
        }
        "write_out_of_range" => sector = cfg.capacity_sectors - 1 + rng.below(3),
        _ => {}
    }
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&t.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    mem.write_slice(&h, GuestAddress(hdr)).map_err(mem_err)?;
    mem.write_obj(0xffu8, GuestAddress(status))
        .map_err(mem_err)?;
    let mut len = (sectors * 512) as u32;
    if kind == "read_odd_length" {
        len -= 1 + rng.below(511) as u32;
    }
    // Data split into 1..=3 buffers at random points.
    let split = |rng: &mut Rng, len: u32, write: bool| -> Vec<Buffer> {
        let n = 1 + rng.below(3) as u32;
        let mut out = Vec::new();
        let mut at = 0u32;
        for i in 0..n {
            let left = len - at;
            if left == 0 {
                break;
            }
            let take = if i + 1 == n {
                left
            } else {
                1 + rng.below(u64::from(left)) as u32
            };
            out.push(Buffer {
                addr: data + u64::from(at),
                len: take,
                write,
            });
            at += take;
        }
        out
    };
    let mut bufs = Vec::new();
    let mut posted = Posted {
        id,
        kind,
        status_addr: Some(status),
        read_back: Vec::new(),
    };
    if kind == "write_split_header" {
        bufs.push(Buffer {
            addr: hdr,
            len: 8,
            write: false,
        });
        bufs.push(Buffer {
            addr: hdr + 8,
            len: 8,
            write: false,
        });
    } else {
        bufs.push(Buffer {
            addr: hdr,
            len: 16,
            write: false,
        });
    }
    match t {
        0 | 0x77 => {
            let d = split(rng, len, true);
            posted.read_back = d.iter().map(|b| (b.addr, b.len)).collect();
            for b in &d {
                let zero = vec![0u8; b.len as usize];
                mem.write_slice(&zero, GuestAddress(b.addr))
                    .map_err(mem_err)?;
            }
            bufs.extend(d);
        }
        1 => {
            let payload: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            mem.write_slice(&payload, GuestAddress(data))
                .map_err(mem_err)?;
            bufs.extend(split(rng, len, false));
        }
        8 => {
            let zero = [0u8; 20];
            mem.write_slice(&zero, GuestAddress(data))
                .map_err(mem_err)?;
            bufs.push(Buffer {
                addr: data,
                len: 20,
                write: true,
            });
            posted.read_back.push((data, 20));
        }
        11 | 13 => {
            let n = 1 + rng.below(3);
            let mut b = Vec::new();
            for _ in 0..n {
                let cnt = 1 + rng.below(span.min(64));
                let s = region + rng.below(span - cnt + 1);
                b.extend_from_slice(&s.to_le_bytes());
                b.extend_from_slice(&(cnt as u32).to_le_bytes());
                let flags: u32 = if kind == "discard_bad_flags" {
                    2
                } else if t == 13 {
                    (rng.below(2)) as u32
                } else {
                    0
                };
                b.extend_from_slice(&flags.to_le_bytes());
            }
            mem.write_slice(&b, GuestAddress(ranges)).map_err(mem_err)?;
            bufs.push(Buffer {
                addr: ranges,
                len: b.len() as u32,
                write: false,
            });
        }
        _ => {}
    }
    if kind == "read_no_status" {
        // Only readable buffers: there is nowhere to put a status.
        bufs.retain(|b| !b.write);
        posted.read_back.clear();
        posted.status_addr = None;
    } else {
        bufs.push(Buffer {
            addr: status,
            len: 1,
            write: true,
        });
    }
    Ok((bufs, posted))
}

/// The guest's memory as its function's DMA windows: everything from its rings up, never
/// the runtime's punt and completion rings below them.
pub fn tenant_windows(mem: &GuestMemoryMmap) -> DmaWindows {
    let end = mem.last_addr().0 + 1;
    DmaWindows::new(&[(RINGS, end)]).expect("one window")
}

/// The runtime of a rig: one virtio-blk function over `store`, rings in the rig's memory.
fn start_runtime(
    dev: &SimDevice,
    mem: &GuestMemoryMmap,
    store: &Arc<dyn BlockStore>,
    policy: SplitPolicy,
    max_hw_sectors: u32,
) -> Result<Runtime, WorkloadError> {
    let mut config = BlkConfig::new(store.size() / 512, "fpga-virtio-blk0");
    config.max_hw_sectors = max_hw_sectors;
    Ok(Runtime::start(
        dev,
        mem.clone(),
        policy,
        vec![BlkFunction {
            func: 0,
            store: store.clone(),
            config,
            windows: tenant_windows(mem),
        }
        .into()],
        Rings {
            punt: PUNT_RING,
            punt_log2: 6,
            cpl: CPL_RING,
            cpl_log2: 6,
            punt_vector: regs::NO_VECTOR,
        },
    )?)
}

/// Queue `q` of a rig on `ring`, resuming at (`last_avail`, `used_idx`).
fn queue_spec(q: u16, ring: &SplitRing, vector: u32, last_avail: u16, used_idx: u16) -> QueueSpec {
    QueueSpec {
        qid: q,
        info: QueueInfo {
            func: 0,
            vq: q,
            desc: ring.desc_addr(),
            avail: ring.avail_addr(),
            used: ring.used_addr(),
            size: RING_SIZE,
            indirect: true,
            event_idx: false,
            notification_data: true,
        },
        vector,
        last_avail,
        used_idx,
        done_log: None,
    }
}

/// The whole stack for one virtio-blk function: the simulated FPGA with a block store behind its
/// storage port, the runtime with its CPU workers, and one guest split ring per queue.
pub struct Rig {
    pub dev: SimDevice,
    pub mem: GuestMemoryMmap,
    pub store: Arc<dyn BlockStore>,
    pub rt: Runtime,
    pub rings: Vec<SplitRing>,
    pub paths: Vec<Path>,
    vectors: Vec<u32>,
    span: u64,
    max_hw_sectors: u32,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Rig {
    /// Set everything up as `cfg` says (queues, depth, capacity, policy, timing).
    pub fn new(cfg: &WorkloadConfig) -> Result<Rig, WorkloadError> {
        if cfg.queues == 0
            || cfg.queues as u32 > regs::NUM_QUEUES
            || cfg.depth == 0
            || cfg.depth > 32
        {
            return Err(WorkloadError::Config(format!(
                "queues 1..={} and depth 1..=32 (got {} and {})",
                regs::NUM_QUEUES,
                cfg.queues,
                cfg.depth
            )));
        }
        let slots = u64::from(cfg.queues) * u64::from(cfg.depth);
        let span = cfg.capacity_sectors / slots;
        if span < 256 {
            return Err(WorkloadError::Config(
                "capacity too small for the queues x depth".into(),
            ));
        }
        let mut sim = Simulator::new(SimConfig {
            timing: cfg.dma,
            store_timing: cfg.store,
            memory: SLOTS + slots * SLOT_SIZE + (1 << 20), // see mem_size
            ..SimConfig::default()
        })?;
        let mem_size = SLOTS + slots * SLOT_SIZE + (1 << 20);
        sim.iommu_mut()
            .map(0, 0, mem_size, Perm::RW)
            .map_err(|e| WorkloadError::Config(e.to_string()))?;
        let bytes = cfg.capacity_sectors * 512;
        let store: Arc<dyn BlockStore> = match &cfg.disk {
            Some(path) => Arc::new(FileStore::open(path, Some(bytes))?),
            None => Arc::new(RamStore::new(bytes)),
        };
        sim.attach_store(store.clone());
        let mem = sim.memory().mem().clone();
        let dev = SimDevice::new(sim);
        fpga_virtio_driver::probe::probe(&dev).map_err(|e| WorkloadError::Config(e.to_string()))?;
        enable_device(&dev)?;
        let mut rt = start_runtime(&dev, &mem, &store, cfg.policy.clone(), cfg.max_hw_sectors)?;
        rt.inject_worker_panic(cfg.panic_queue);
        let mut rings = Vec::new();
        let mut paths = Vec::new();
        let mut vectors = Vec::new();
        for q in 0..cfg.queues {
            let ring = SplitRing::new(
                &mem,
                RINGS + u64::from(q) * 0x1_0000,
                u32::from(RING_SIZE),
                false,
            )?;
            let vector = if cfg.interrupts {
                setup_vector(&dev, u32::from(q))?;
                u32::from(q)
            } else {
                regs::NO_VECTOR
            };
            paths.push(rt.add_queue(&dev, queue_spec(q, &ring, vector, 0, 0))?);
            vectors.push(vector);
            rings.push(ring);
        }
        Ok(Rig {
            dev,
            mem,
            store,
            rt,
            rings,
            paths,
            vectors,
            span,
            max_hw_sectors: cfg.max_hw_sectors,
        })
    }

    /// Stop every queue, drop the runtime and start a new one on the same device, the queues
    /// resuming where they stopped: what a vhost-user backend does when its frontend sends a new
    /// memory table. The device's ring indices run on across runtimes.
    pub fn restart_runtime(&mut self) -> Result<(), WorkloadError> {
        let mut positions = Vec::new();
        for q in 0..self.rings.len() as u16 {
            positions.push(self.rt.stop_queue_and_error(&self.dev, q)?);
        }
        let policy = self.rt.policy().clone();
        self.rt = start_runtime(
            &self.dev,
            &self.mem,
            &self.store,
            policy,
            self.max_hw_sectors,
        )?;
        for (q, (pos, error)) in positions.into_iter().enumerate() {
            let spec = queue_spec(
                q as u16,
                &self.rings[q],
                self.vectors[q],
                pos.last_avail,
                pos.used_idx,
            );
            // A queue the guest broke stays broken (it is not run again from its position).
            match error {
                Some(cause) => self.rt.add_failed_queue(spec, cause)?,
                None => {
                    self.rt.add_queue(&self.dev, spec)?;
                }
            }
        }
        Ok(())
    }

    /// Run simulated time for `cycles` and let the runtime do what is ready.
    pub fn step(&mut self, cycles: u64) -> Result<(), WorkloadError> {
        self.dev.lock().run(cycles)?;
        self.rt.poll(&self.dev)?;
        Ok(())
    }

    /// One request on queue `q`: a read (`write` false) or write of `len` bytes (a multiple of
    /// 512) at `sector`, in the common layout, from doorbell to used entry. Returns the
    /// simulated cycles it took and the status byte. Used by the benches.
    pub fn one(
        &mut self,
        q: u16,
        write: bool,
        sector: u64,
        len: u32,
    ) -> Result<(u64, u8), WorkloadError> {
        let base = SLOTS + u64::from(q) * SLOT_SIZE;
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&u32::from(write).to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        self.mem
            .write_slice(&h, GuestAddress(base))
            .map_err(mem_err)?;
        self.mem
            .write_obj(0xffu8, GuestAddress(base + 16))
            .map_err(mem_err)?;
        let ring = &mut self.rings[usize::from(q)];
        ring.add_chain(&[
            Buffer {
                addr: base,
                len: 16,
                write: false,
            },
            Buffer {
                addr: base + DATA_OFF,
                len,
                write: !write,
            },
            Buffer {
                addr: base + 16,
                len: 1,
                write: true,
            },
        ])?;
        ring.publish()?;
        let start = self.dev.lock().cycle();
        kick(&self.dev, u32::from(q), ring.avail_idx())?;
        loop {
            self.dev.lock().run(16)?;
            self.rt.poll(&self.dev)?;
            let done = self.rings[usize::from(q)].reap()?;
            if !done.is_empty() {
                let cycles = self.dev.lock().cycle() - start;
                let status = self
                    .mem
                    .read_obj::<u8>(GuestAddress(base + 16))
                    .map_err(mem_err)?;
                return Ok((cycles, status));
            }
            if self.dev.lock().cycle() - start > 10_000_000 {
                return Err(WorkloadError::Hang {
                    batch: 0,
                    missing: 1,
                    cycles: 10_000_000,
                });
            }
        }
    }
}

/// Run the workload; `progress(done, total)` is called after each batch.
pub fn run(
    cfg: &WorkloadConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<Report, WorkloadError> {
    let Rig {
        dev,
        mem,
        store,
        mut rt,
        mut rings,
        paths,
        span,
        ..
    } = Rig::new(cfg)?;
    let mut rng = Rng(cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut records: Vec<RequestRecord> = Vec::with_capacity(cfg.requests as usize);
    let wall = Instant::now();
    let start_cycle = dev.lock().cycle();
    let mut id = 0u64;
    let mut batch = 0u64;
    while id < cfg.requests {
        // Post a batch: each slot (queue, i) gets at most one request, in its own sectors.
        let mut inflight: Vec<Vec<(u16, Posted)>> = (0..cfg.queues).map(|_| Vec::new()).collect();
        let mut count = 0usize;
        'post: for i in 0..u64::from(cfg.depth) {
            for q in 0..u64::from(cfg.queues) {
                if id >= cfg.requests {
                    break 'post;
                }
                let slot = q * u64::from(cfg.depth) + i;
                let (bufs, posted) = build(&mut rng, &mem, cfg, id, slot, slot * span, span)?;
                let head = rings[q as usize].add_chain(&bufs)?;
                inflight[q as usize].push((head, posted));
                id += 1;
                count += 1;
            }
        }
        let kick_cycle = dev.lock().cycle();
        for (q, ring) in rings.iter_mut().enumerate() {
            if !inflight[q].is_empty() {
                ring.publish()?;
                kick(&dev, q as u32, ring.avail_idx())?;
            }
        }
        let deadline = kick_cycle + 2_000_000 + 200_000 * count as u64;
        let mut left = count;
        while left > 0 {
            let now = dev.lock().cycle();
            if now > deadline {
                return Err(WorkloadError::Hang {
                    batch,
                    missing: left,
                    cycles: now - kick_cycle,
                });
            }
            dev.lock().run(256)?;
            rt.poll(&dev)?;
            let now = dev.lock().cycle();
            for (q, ring) in rings.iter_mut().enumerate() {
                for (head, used_len) in ring.reap()? {
                    let Some(pos) = inflight[q].iter().position(|(h, _)| *h == head) else {
                        return Err(WorkloadError::Config(format!(
                            "queue {q}: used entry for head {head} that is not in flight (completed twice?)"
                        )));
                    };
                    let (_, p) = inflight[q].swap_remove(pos);
                    let status = match p.status_addr {
                        Some(a) => mem.read_obj::<u8>(GuestAddress(a)).map_err(mem_err)?,
                        None => 0xff,
                    };
                    let mut h = Vec::new();
                    for &(a, l) in &p.read_back {
                        let mut b = vec![0u8; l as usize];
                        mem.read_slice(&mut b, GuestAddress(a)).map_err(mem_err)?;
                        h.extend_from_slice(&b);
                    }
                    records.push(RequestRecord {
                        id: p.id,
                        queue: q as u16,
                        kind: p.kind,
                        status,
                        used_len,
                        data_hash: if h.is_empty() { 0 } else { fnv(&h) },
                        cycles: now - kick_cycle,
                    });
                    left -= 1;
                }
            }
        }
        batch += 1;
        progress(id, cfg.requests);
    }
    let simulated_cycles = dev.lock().cycle() - start_cycle;
    rt.refresh_device_state(&dev)?;
    records.sort_by_key(|r| r.id);
    let mut fpga_requests = Vec::new();
    let mut device = Vec::new();
    for q in 0..u32::from(cfg.queues) {
        use counters::qstat as c;
        let rd = |r: fpga_virtio_hw::RegArray| -> Result<u32, WorkloadError> {
            Ok(r.at(q)?.read(&dev)?)
        };
        device.push(DeviceCounters {
            requests: u64::from(rd(c::REQUESTS_LO)?) | (u64::from(rd(c::REQUESTS_HI)?) << 32),
            errors: rd(c::ERRORS)?,
            dma_faults: rd(c::DMA_FAULTS)?,
            punts: rd(c::PUNTS)?,
            latency_buckets: [
                c::LAT0,
                c::LAT1,
                c::LAT2,
                c::LAT3,
                c::LAT4,
                c::LAT5,
                c::LAT6,
                c::LAT7,
            ]
            .into_iter()
            .map(rd)
            .collect::<Result<_, _>>()?,
        });
        let lo = counters::qstat::REQUESTS_LO.at(q)?.read(&dev)?;
        let hi = counters::qstat::REQUESTS_HI.at(q)?.read(&dev)?;
        let all = u64::from(lo) | (u64::from(hi) << 32);
        let cpu = rt.stats().queues.get(&(q as u16)).map_or(0, |s| s.requests);
        // The device counts every used entry it writes, including the CPU's completions it merged.
        fpga_requests.push(if paths[q as usize] == Path::Fpga {
            all.saturating_sub(cpu)
        } else {
            0
        });
    }
    let dma_faults = dev.lock().stats().faults;
    let mut msis = vec![0u64; usize::from(cfg.queues)];
    if cfg.interrupts {
        for m in dev.lock().msis() {
            if let Some(n) = msis.get_mut(m.data as usize) {
                *n += 1;
            }
        }
    }
    Ok(Report {
        records,
        disk: {
            let mut d = vec![0u8; store.size() as usize];
            store.read_at(0, &mut d)?;
            d
        },
        device,
        stats: rt.stats().clone(),
        paths,
        simulated_cycles,
        wall_seconds: wall.elapsed().as_secs_f64(),
        fpga_requests,
        dma_faults,
        msis,
    })
}
