//! The punt → worker → completion handoff, in wall time, without the simulator: the runtime reads
//! a punt entry from memory (as the FPGA writes it), a CPU worker walks the chain and serves it (a
//! FLUSH on a RAM store: no data), and the runtime writes the completion-ring entry. Registers
//! are the mock register file.
//!
//! `cargo bench -p fpga-virtio-benches --bench handoff` (prints p50/p99 of 100 000 handoffs
//! first, then criterion's mean).

use criterion::{criterion_group, criterion_main, Criterion};
use fpga_virtio_driver::blk::BlkConfig;
use fpga_virtio_driver::runtime::{
    BlkFunction, Path, QueueInfo, QueueSpec, Rings, Runtime, SplitPolicy,
};
use fpga_virtio_driver::virtq::DmaWindows;
use fpga_virtio_hw::formats::PuntEntry;
use fpga_virtio_hw::mock::MockRegisters;
use fpga_virtio_hw::regs::{self, PuntReason};
use fpga_virtio_storage::RamStore;
use std::sync::Arc;
use std::time::Instant;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const PUNT: u64 = 0x1_0000;
const CPL: u64 = 0x2_0000;
const DESC: u64 = 0x3_0000;
const LOG2: u32 = 6;

struct Bench {
    io: MockRegisters,
    mem: GuestMemoryMmap,
    rt: Runtime,
    prod: u32,
}

impl Bench {
    fn new() -> Self {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let io = MockRegisters::new();
        let policy = SplitPolicy {
            workers: 1,
            ..SplitPolicy::all(Path::Fpga)
        };
        let mut rt = Runtime::start(
            &io,
            mem.clone(),
            policy,
            vec![BlkFunction {
                func: 0,
                store: Arc::new(RamStore::new(1 << 20)),
                config: BlkConfig::new(2048, "bench"),
                // The guest's memory: above the runtime's rings.
                windows: DmaWindows::new(&[(DESC, 1 << 20)]).unwrap(),
            }
            .into()],
            Rings {
                punt: PUNT,
                punt_log2: LOG2,
                cpl: CPL,
                cpl_log2: LOG2,
                punt_vector: regs::NO_VECTOR,
            },
        )
        .unwrap();
        rt.add_queue(
            &io,
            QueueSpec {
                last_avail: 0,
                used_idx: 0,
                qid: 0,
                info: QueueInfo {
                    func: 0,
                    vq: 0,
                    desc: DESC,
                    avail: DESC + 0x1000,
                    used: DESC + 0x2000,
                    size: 64,
                    indirect: false,
                    event_idx: false,
                    notification_data: false,
                },
                vector: regs::NO_VECTOR,
                done_log: None,
            },
        )
        .unwrap();
        // Chain at head 0: a FLUSH header and a status byte.
        let desc = |i: u64, addr: u64, len: u32, flags: u16, next: u16| {
            let mut d = [0u8; 16];
            d[0..8].copy_from_slice(&addr.to_le_bytes());
            d[8..12].copy_from_slice(&len.to_le_bytes());
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            d[14..16].copy_from_slice(&next.to_le_bytes());
            mem.write_slice(&d, GuestAddress(DESC + 16 * i)).unwrap();
        };
        desc(0, 0x8000, 16, 1, 1);
        desc(1, 0x9000, 1, 2, 0);
        mem.write_slice(&4u32.to_le_bytes(), GuestAddress(0x8000))
            .unwrap();
        Bench {
            io,
            mem,
            rt,
            prod: 0,
        }
    }

    /// One handoff: the "FPGA" writes a punt entry; poll until its completion is written.
    fn once(&mut self) {
        let slot = self.prod & ((1 << LOG2) - 1);
        let e = PuntEntry {
            qid: 0,
            head: 0,
            reason: PuntReason::BlkFlush as u8,
            func: 0,
            flags: u8::from((self.prod >> LOG2) & 1 == 0),
            rsvd: 0,
            tag: self.prod & 15,
            len: 16,
            addr: 0x8000,
            arg: 0,
        };
        self.mem
            .write_slice(
                &e.to_le_bytes(),
                GuestAddress(PUNT + u64::from(slot) * PuntEntry::SIZE as u64),
            )
            .unwrap();
        self.prod = self.prod.wrapping_add(1);
        let want = self.rt.stats().completions + 1;
        while self.rt.stats().completions < want {
            self.rt.poll(&self.io).unwrap();
        }
        // The completion ring never fills: the "FPGA" consumes at once.
        let cpl_prod = self.rt.stats().completions as u32;
        self.io
            .set_hw(
                fpga_virtio_hw::regs::cpl_ring::CONS.bar,
                fpga_virtio_hw::regs::cpl_ring::CONS.offset,
                cpl_prod,
            )
            .unwrap();
        if self.prod.is_multiple_of(1024) {
            self.io.with_state(|s| s.writes.clear());
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut b = Bench::new();
    let mut ns: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            b.once();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    ns.sort_unstable();
    println!(
        "handoff: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns over {} handoffs (1 worker)",
        ns[ns.len() / 2],
        ns[ns.len() * 99 / 100],
        ns[ns.len() * 999 / 1000],
        ns[ns.len() - 1],
        ns.len()
    );
    c.bench_function("handoff/punt_worker_completion", |bn| bn.iter(|| b.once()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
