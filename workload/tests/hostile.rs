//! Hostile chains through the RTL and through the software engine (issue 15): seeded random
//! and adversarial descriptor chains (wrapping and huge lengths, overlapping buffers, buffers
//! on the backend's memory or past the address space, loops, bad indices, indirect tables that
//! are nested, misaligned, huge or on the backend's memory, chains longer than the FPGA's
//! segment table, wrong directions, odd headers and status buffers) are posted on an all-FPGA
//! rig and on an all-CPU rig with the same memory and disk. Per seed:
//!
//! - both paths end the same way: the same queue error cause, or the same used entries, status
//!   byte and bytes in the guest's buffers, and the same disk;
//! - nothing outside the tenant's DMA windows changed (the canary below the runtime's rings),
//!   and no byte of it reached the disk or the guest's buffers;
//! - the disk changed only inside `[sector * 512, + data length)` of a write.
//!
//! `FV_HOSTILE_SEEDS=N` runs N seeds (default 1000), `FV_HOSTILE_FIRST=K` starts at seed K.

use fpga_virtio_driver::runtime::{Path, SplitPolicy};
use fpga_virtio_hw::regs::QueueError;
use fpga_virtio_sim::testing::kick;
use fpga_virtio_workload::{Rig, WorkloadConfig, PUNT_RING};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;
const HDR: u64 = 0x20_0000;
const STATUS: u64 = 0x20_1000;
const IND: u64 = 0x21_0000;
const DATA: u64 = 0x30_0000; // data buffers, 128 KiB apart
const DATA_STRIDE: u64 = 0x2_0000;
/// Mapped for the device, outside the tenant's window (which starts at the guest rings).
const CANARY: u64 = 0x1_0000;
const CANARY_LEN: usize = 0x8_0000;
const CANARY_BYTE: u8 = 0xc3;
const DISK_SECTORS: u64 = 2048; // 1 MiB
const TABLE_BASE: u16 = 10;

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
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One descriptor as posted.
#[derive(Clone, Copy, Debug)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// What a seed posts: descriptors at table indices TABLE_BASE.., the head the avail ring names,
/// the header, and where the request's data may touch the disk.
#[derive(Debug)]
struct Case {
    descs: Vec<Desc>,
    indirect: Option<(u64, Vec<Desc>)>,
    head: u16,
    header: [u8; 16],
    avail_jump: bool,
    /// Sector and data bytes of a write (the only disk range that may change).
    write_range: Option<(u64, u64)>,
}

fn data_len(rng: &mut Rng) -> u32 {
    match rng.below(100) {
        0..=69 => 512 * (1 + rng.below(16) as u32),
        70..=79 => rng.next() as u32,
        80..=89 => 1 + rng.below(4096) as u32,
        90..=92 => 0xFFFF_FE00,
        93..=97 => 0x80_0000, // two or three of these pass MAX_CHAIN_BYTES inside the window
        _ => 0,
    }
}

fn data_addr(rng: &mut Rng, i: u64) -> u64 {
    match rng.below(100) {
        0..=87 => DATA + i * DATA_STRIDE + 512 * rng.below(8),
        88..=90 => CANARY + 512 * rng.below(64),
        91..=92 => u64::MAX - rng.below(0x1000),
        93..=94 => HDR,
        95 => PUNT_RING,
        _ => 1 << 46,
    }
}

fn generate(seed: u64) -> Case {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let rtype: u32 = match rng.below(100) {
        0..=39 => 0,  // IN
        40..=79 => 1, // OUT
        80..=84 => 4, // FLUSH
        85..=89 => 8, // GET_ID
        _ => rng.next() as u32,
    };
    let sector = if rng.chance(90) {
        rng.below(DISK_SECTORS)
    } else {
        rng.next()
    };
    let mut header = [0u8; 16];
    header[..4].copy_from_slice(&rtype.to_le_bytes());
    header[8..].copy_from_slice(&sector.to_le_bytes());
    let n_data = if rng.chance(10) {
        16 + rng.below(8)
    } else {
        rng.below(5)
    };
    let data_write = (rtype == 0 || rtype == 8) != rng.chance(5);
    let mut descs = vec![Desc {
        addr: HDR,
        len: if rng.chance(90) {
            16
        } else {
            [8u32, 24, 512][rng.below(3) as usize]
        },
        flags: 0,
        next: 0,
    }];
    let mut total = 0u64;
    for i in 0..n_data {
        let len = data_len(&mut rng);
        total += u64::from(len);
        descs.push(Desc {
            addr: data_addr(&mut rng, i),
            len,
            flags: if data_write { F_WRITE } else { 0 },
            next: 0,
        });
    }
    descs.push(Desc {
        addr: STATUS,
        len: if rng.chance(90) {
            1
        } else {
            [0u32, 2][rng.below(2) as usize]
        },
        flags: F_WRITE,
        next: 0,
    });
    let n = descs.len();
    for (i, d) in descs.iter_mut().enumerate() {
        if i + 1 < n {
            d.flags |= F_NEXT;
            d.next = TABLE_BASE + i as u16 + 1;
        }
    }
    match rng.below(100) {
        // A loop back to the head.
        0..=3 => {
            let last = descs.last_mut().expect("status");
            last.flags |= F_NEXT;
            last.next = TABLE_BASE;
        }
        // A NEXT outside the table.
        4..=6 => {
            let i = rng.below(n as u64) as usize;
            descs[i].flags |= F_NEXT;
            descs[i].next = 300 + rng.below(1000) as u16;
        }
        _ => {}
    }
    let mut head = TABLE_BASE;
    let mut indirect = None;
    if rng.chance(20) {
        // The chain in an indirect table (indices from 0), named by one descriptor.
        let table: Vec<Desc> = descs
            .iter()
            .map(|d| Desc {
                next: d.next.wrapping_sub(TABLE_BASE),
                ..*d
            })
            .collect();
        let at = match rng.below(100) {
            0..=79 => IND,
            80..=89 => CANARY,
            _ => IND + 8,
        };
        let mut len = 16 * table.len() as u32;
        match rng.below(100) {
            0..=4 => len += 8,
            5..=9 => len = 0x10_0000,
            10..=14 => len = 0,
            _ => {}
        }
        let flags = if rng.chance(5) {
            F_INDIRECT | F_NEXT
        } else {
            F_INDIRECT
        };
        let mut table = table;
        if rng.chance(5) {
            table[0].flags |= F_INDIRECT;
        }
        indirect = Some((at, table));
        descs = vec![Desc {
            addr: at,
            len,
            flags,
            next: TABLE_BASE + 1,
        }];
    }
    if rng.chance(3) {
        head = 200 + rng.below(1000) as u16;
    }
    let avail_jump = rng.chance(2);
    let write_range = (rtype == 1).then_some((sector, total));
    Case {
        descs,
        indirect,
        head,
        header,
        avail_jump,
        write_range,
    }
}

fn disk_pattern() -> &'static [u8] {
    static P: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        (0..DISK_SECTORS * 512)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x7f)
            .collect()
    })
}

/// How a run ended, as the guest sees it.
#[derive(Debug, PartialEq, Eq)]
struct End {
    error: Option<QueueError>,
    used: Vec<(u16, u32)>,
    status: u8,
    /// The first bytes of each in-window data buffer and of the header.
    buffers: Vec<Vec<u8>>,
}

fn rig(path: Path) -> Rig {
    let cfg = WorkloadConfig {
        queues: 1,
        depth: 1,
        capacity_sectors: DISK_SECTORS,
        policy: SplitPolicy {
            workers: 1,
            ..SplitPolicy::all(path)
        },
        interrupts: false,
        ..WorkloadConfig::default()
    };
    let rig = Rig::new(&cfg).unwrap();
    rig.store.write_at(0, disk_pattern()).unwrap();
    rig.mem
        .write_slice(&vec![CANARY_BYTE; CANARY_LEN], GuestAddress(CANARY))
        .unwrap();
    rig
}

fn put(mem: &GuestMemoryMmap, table: u64, i: u16, d: &Desc) {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&d.addr.to_le_bytes());
    b[8..12].copy_from_slice(&d.len.to_le_bytes());
    b[12..14].copy_from_slice(&d.flags.to_le_bytes());
    b[14..16].copy_from_slice(&d.next.to_le_bytes());
    mem.write_slice(&b, GuestAddress(table + u64::from(i) * 16))
        .unwrap();
}

fn in_buffers(case: &Case) -> Vec<(u64, usize)> {
    let all = case
        .descs
        .iter()
        .chain(case.indirect.iter().flat_map(|(_, t)| t.iter()));
    all.filter(|d| (DATA..DATA + 32 * DATA_STRIDE).contains(&d.addr) || d.addr == HDR)
        .map(|d| (d.addr, (d.len as usize).min(4096)))
        .collect()
}

fn run(seed: u64, path: Path) -> (End, Vec<u8>, Rig) {
    let case = generate(seed);
    let mut rig = rig(path);
    let mem = rig.mem.clone();
    mem.write_slice(&case.header, GuestAddress(HDR)).unwrap();
    mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    let table = rig.rings[0].desc_addr();
    for (i, d) in case.descs.iter().enumerate() {
        put(&mem, table, TABLE_BASE + i as u16, d);
    }
    if let Some((at, t)) = &case.indirect {
        for (i, d) in t.iter().enumerate() {
            put(&mem, *at, i as u16, d);
        }
    }
    // The canary holds no descriptors the test wrote there.
    mem.write_slice(&vec![CANARY_BYTE; CANARY_LEN], GuestAddress(CANARY))
        .unwrap();
    let ring = &mut rig.rings[0];
    ring.push_raw_head(case.head).unwrap();
    if case.avail_jump {
        ring.publish_idx(ring.avail_idx().wrapping_add(200))
            .unwrap();
    } else {
        ring.publish().unwrap();
    }
    kick(&rig.dev, 0, rig.rings[0].avail_idx()).unwrap();
    let mut used = Vec::new();
    let mut error = None;
    let used_at = rig.rings[0].used_addr();
    // Raw heads are not the test driver's own chains: read the used ring by hand.
    let reap = |used: &mut Vec<(u16, u32)>| {
        let idx: u16 = mem.read_obj(GuestAddress(used_at + 2)).unwrap();
        while used.len() < usize::from(idx) {
            let at = used_at + 4 + 8 * (used.len() as u64 % 128);
            let id: u32 = mem.read_obj(GuestAddress(at)).unwrap();
            let len: u32 = mem.read_obj(GuestAddress(at + 4)).unwrap();
            used.push((id as u16, len));
        }
    };
    for _ in 0..400 {
        rig.step(1000).unwrap();
        reap(&mut used);
        error = rig.rt.queue_error(&rig.dev, 0).unwrap();
        if (!used.is_empty() || error.is_some()) && rig.rt.outstanding() == 0 {
            break;
        }
    }
    // A little more time: nothing else may happen after the end.
    rig.step(5000).unwrap();
    reap(&mut used);
    error = error.or(rig.rt.queue_error(&rig.dev, 0).unwrap());
    let status = mem.read_obj(GuestAddress(STATUS)).unwrap();
    let buffers = in_buffers(&case)
        .into_iter()
        .map(|(a, n)| {
            let mut v = vec![0u8; n];
            mem.read_slice(&mut v, GuestAddress(a)).unwrap();
            v
        })
        .collect();
    let disk = rig.store.read_all();
    (
        End {
            error,
            used,
            status,
            buffers,
        },
        disk,
        rig,
    )
}

trait ReadAll {
    fn read_all(&self) -> Vec<u8>;
}

impl ReadAll for std::sync::Arc<dyn fpga_virtio_storage::BlockStore> {
    fn read_all(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.size() as usize];
        self.read_at(0, &mut v).unwrap();
        v
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn hostile_chains_end_the_same_on_the_fpga_and_the_cpu_and_stay_inside() {
    let first = env("FV_HOSTILE_FIRST", 0);
    let seeds = env("FV_HOSTILE_SEEDS", 1000);
    let pattern = disk_pattern();
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    for seed in first..first + seeds {
        let case = generate(seed);
        let (fpga, fpga_disk, fpga_rig) = run(seed, Path::Fpga);
        let (cpu, cpu_disk, cpu_rig) = run(seed, Path::Cpu);
        assert_eq!(fpga, cpu, "seed {seed}: the paths differ\n{case:#?}");
        assert!(
            fpga_disk == cpu_disk,
            "seed {seed}: disks differ\n{case:#?}"
        );
        for (name, rig, disk) in [
            ("fpga", &fpga_rig, &fpga_disk),
            ("cpu", &cpu_rig, &cpu_disk),
        ] {
            let mut canary = vec![0u8; CANARY_LEN];
            rig.mem
                .read_slice(&mut canary, GuestAddress(CANARY))
                .unwrap();
            assert!(
                canary.iter().all(|&b| b == CANARY_BYTE),
                "seed {seed} ({name}): memory outside the tenant's window changed\n{case:#?}"
            );
            // The canary byte is not in the disk pattern (< 0x80): none of it was read.
            assert!(
                disk == pattern || !disk.contains(&CANARY_BYTE),
                "seed {seed} ({name}): the backend's memory reached the disk"
            );
            let (lo, hi) = case.write_range.map_or((0, 0), |(s, n)| {
                (
                    s.saturating_mul(512),
                    s.saturating_mul(512).saturating_add(n),
                )
            });
            // Everything outside [lo, hi) as it was (compared as slices: memcmp).
            let (lo, hi) = (
                lo.min(disk.len() as u64) as usize,
                hi.min(disk.len() as u64) as usize,
            );
            assert!(
                disk[..lo] == pattern[..lo] && disk[hi..] == pattern[hi..],
                "seed {seed} ({name}): the disk changed outside the write\n{case:#?}"
            );
        }
        // The data buffers start zeroed and may receive only disk data (< 0x80) or the device
        // ID (ASCII): a canary byte there came from the backend's memory.
        for (a, n) in in_buffers(&case).into_iter().filter(|&(a, _)| a != HDR) {
            let mut v = vec![0u8; n];
            fpga_rig.mem.read_slice(&mut v, GuestAddress(a)).unwrap();
            assert!(
                !v.contains(&CANARY_BYTE),
                "seed {seed}: the backend's memory reached the guest at {a:#x}\n{case:#?}"
            );
        }
        *errors.entry(format!("{:?}", fpga.error)).or_default() += 1;
    }
    eprintln!("hostile chains: {seeds} seeds from {first}, ends by queue error: {errors:?}");
    // The generator reaches the interesting ends.
    if seeds >= 500 {
        for want in [
            "None",
            "Some(DmaWindow)",
            "Some(ChainTooLong)",
            "Some(DescLoop)",
            "Some(BadIndex)",
        ] {
            assert!(
                errors.contains_key(want),
                "no seed ended {want}: {errors:?}"
            );
        }
    }
}
