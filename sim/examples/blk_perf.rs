//! Simulated cycles per 4 KiB request through the RTL blk engine (the FPGA path alone: no
//! runtime, the test plays the guest), at queue depth 1 and 32, with the default DMA timing
//! (1 µs reads, 16 B/cycle) and storage timing (2 µs reads, 32 B/cycle).
//!
//! `cargo run --release -p fpga-virtio-sim --features test-utils --example blk_perf -- [REQUESTS] [QUEUES] [READ_LATENCY] [DEPTH] [LINK] [NOTIFY] [STORE_LATENCY] [WRITES]`
//!
//! DEPTH (default 32, at most 128) replaces the second run's queue depth; LINK (default 16) is
//! the DMA link's bandwidth in bytes per cycle, each direction (16: PCIe Gen3 x4, roughly; 64:
//! Gen4 x16 or Gen5 x8); NOTIFY 1 negotiates VIRTIO_F_NOTIFICATION_DATA (doorbells carry the
//! avail index, as Linux's virtio-pci sends them when offered); STORE_LATENCY (default 500) is
//! the storage port's read latency in cycles; WRITES (default 50) the percentage of writes,
//! spread evenly (50: reads and writes alternate; 0: reads only).
//!
//! Reads and writes alternate over a 4 MiB RAM store; every request must complete with status OK.
//! With QUEUES > 1 the depth is spread over that many queues (the device publishes each queue's
//! results in order, so one queue's slow request holds back only that queue).

use fpga_virtio_hw::regs::{functions, VirtioDevice};
use fpga_virtio_hw::RegArray;
use fpga_virtio_sim::testing::{
    enable_device, kick, open_dma_windows, setup_queue, Buffer, QueueSetup, SplitRing,
};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, Simulator, StoreTiming};
use fpga_virtio_storage::RamStore;
use std::sync::Arc;
use std::time::Instant;
use vm_memory::{Bytes, GuestAddress};

const SECTORS: u64 = 8192;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let total = args.first().copied().unwrap_or(4000);
    let queues = args.get(1).copied().unwrap_or(1).clamp(1, 8);
    // Optional: the DMA read latency in cycles (default 250, 1 µs at 250 MHz).
    let mut timing = DmaTiming::default();
    if let Some(&l) = args.get(2) {
        timing.read_latency = l as u64;
    }
    if let Some(&b) = args.get(4) {
        timing.bytes_per_cycle = b as u64;
    }
    let notification_data = args.get(5).is_some_and(|&n| n != 0);
    let mut store_timing = StoreTiming::default();
    if let Some(&l) = args.get(6) {
        store_timing.read_latency = l as u64;
    }
    let writes = args.get(7).copied().unwrap_or(50).min(100);
    // Optional: the queue depth of the second run (the rings hold 512 entries, 3 per request,
    // and request n uses buffers n mod 256).
    let deep = args.get(3).copied().unwrap_or(32).clamp(1, 128);
    for depth in [1usize, deep] {
        let mut sim = Simulator::new(SimConfig {
            timing,
            store_timing,
            ..SimConfig::default()
        })
        .unwrap();
        sim.iommu_mut().map(0, 0, 64 << 20, Perm::RW).unwrap();
        sim.attach_store(Arc::new(RamStore::new(SECTORS * 512)));
        let mem = sim.memory().mem().clone();
        let dev = SimDevice::new(sim);
        enable_device(&dev).unwrap();
        open_dma_windows(&dev, 0, 64 << 20).unwrap();
        let f = |a: RegArray| a.at(0).unwrap();
        f(functions::func::DEVICE_TYPE)
            .write(&dev, VirtioDevice::Blk as u32)
            .unwrap();
        f(functions::func::BLK_CAPACITY_LO)
            .write(&dev, SECTORS as u32)
            .unwrap();
        let mut rings: Vec<SplitRing> = (0..queues)
            .map(|q| {
                let ring =
                    SplitRing::new(&mem, 0x10_0000 + q as u64 * 0x2_0000, 512, false).unwrap();
                let setup = QueueSetup {
                    notification_data,
                    ..QueueSetup::default()
                };
                setup_queue(&dev, q as u32, &ring, setup).unwrap();
                ring
            })
            .collect();
        let per_queue = depth.div_ceil(queues);
        // The guest looks at the used rings every `poll` cycles: often at depth 1, where the
        // figure is a latency; every 256 at depth, where a real driver batches behind interrupts.
        let poll = if depth == 1 { 8 } else { 256 };
        let start_cycle = dev.lock().cycle();
        let wall = Instant::now();
        let (mut posted, mut done) = (0usize, 0usize);
        while done < total {
            for (q, ring) in rings.iter_mut().enumerate() {
                while posted < total && ring.in_flight() < per_queue {
                    // Request n uses header, data and status slots of its own (n mod 256).
                    let n = (posted % 256) as u64;
                    let (hdr, data, status) =
                        (0x40_0000 + n * 16, 0x80_0000 + n * 0x1000, 0x48_0000 + n);
                    // Request n is a write when n * WRITES / 100 steps up at n + 1.
                    let write = (posted + 1) * writes / 100 > posted * writes / 100;
                    let sector = (posted as u64 * 8) % SECTORS;
                    let mut h = [0u8; 16];
                    h[..4].copy_from_slice(&u32::from(write).to_le_bytes());
                    h[8..].copy_from_slice(&sector.to_le_bytes());
                    mem.write_slice(&h, GuestAddress(hdr)).unwrap();
                    mem.write_obj(0xffu8, GuestAddress(status)).unwrap();
                    ring.add_chain(&[
                        Buffer {
                            addr: hdr,
                            len: 16,
                            write: false,
                        },
                        Buffer {
                            addr: data,
                            len: 4096,
                            write: !write,
                        },
                        Buffer {
                            addr: status,
                            len: 1,
                            write: true,
                        },
                    ])
                    .unwrap();
                    posted += 1;
                }
                if ring.publish().unwrap() {
                    kick(&dev, q as u32, ring.avail_idx()).unwrap();
                }
            }
            let before = done;
            dev.lock()
                .run_until(10_000_000, poll, |_| {
                    rings.iter().any(|r| r.has_used().unwrap())
                })
                .unwrap();
            for ring in rings.iter_mut() {
                for (_, len) in ring.reap().unwrap() {
                    assert!(len == 1 || len == 4097, "used length {len}");
                    done += 1;
                }
            }
            assert!(done > before, "no progress");
        }
        for n in 0..total.min(256) as u64 {
            let s: u8 = mem.read_obj(GuestAddress(0x48_0000 + n)).unwrap();
            assert_eq!(s, 0, "status of request slot {n}");
        }
        let cycles = dev.lock().cycle() - start_cycle;
        let secs = wall.elapsed().as_secs_f64();
        let per = cycles as f64 / total as f64;
        println!(
            "blk: {total} x 4 KiB ({writes} % writes), {} in flight over {queues} queue(s), DW {} bits, \
             link {} B/cycle, notification data {notification_data}, storage reads {} cycles: \
             {per:.0} cycles/request ({:.2} us at 250 MHz, {:.0} k IOPS), {:.2} M simulated cycles/s",
            per_queue * queues,
            fpga_virtio_sim::dma_bytes() * 8,
            timing.bytes_per_cycle,
            store_timing.read_latency,
            per / 250.0,
            250e3 / per,
            cycles as f64 / secs / 1e6,
        );
    }
}
