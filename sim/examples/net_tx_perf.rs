//! virtio-net TX on the FPGA: simulated cycles per frame (and packets per cycle, Mpps and
//! Gbit/s at 250 MHz) for frames of a given size on a known destination, header and frame in
//! one descriptor, no checksum offload; and the latency of one frame, doorbell to the wire
//! (the cycle its first byte leaves), at queue depth 1.
//!
//! `cargo run --release -p fpga-virtio-sim --features test-utils --example net_tx_perf -- [FRAMES] [SIZE] [READ_LATENCY] [DEPTH]`

use fpga_virtio_hw::regs::{functions::func, VirtioDevice};
use fpga_virtio_sim::testing::{
    enable_device, kick, open_dma_windows, setup_queue, Buffer, QueueSetup, SplitRing,
};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, Simulator};
use fpga_virtio_wire::{LinkTiming, Wire};
use std::sync::Arc;
use std::time::Instant;
use vm_memory::{Bytes, GuestAddress};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let total = args.first().copied().unwrap_or(4000) as usize;
    let size = args.get(1).copied().unwrap_or(64) as u32;
    let latency = args.get(2).copied().unwrap_or(250);
    let depth = args.get(3).copied().unwrap_or(128) as usize;
    let timing = DmaTiming {
        read_latency: latency,
        write_latency: latency / 2,
        bytes_per_cycle: fpga_virtio_sim::dma_bytes() as u64,
    };
    for depth in [1usize, depth] {
        let mut sim = Simulator::new(SimConfig {
            timing,
            ..SimConfig::default()
        })
        .unwrap();
        sim.iommu_mut().map(0, 0, 32 << 20, Perm::RW).unwrap();
        // The wire at 100 GbE (50 bytes per cycle), so the link is not what limits.
        let wire = Arc::new(Wire::new(LinkTiming {
            latency: 0,
            bytes_per_cycle: 0,
        }));
        sim.attach_uplink(wire.clone());
        let mem = sim.memory().mem().clone();
        let dev = SimDevice::new(sim);
        enable_device(&dev).unwrap();
        open_dma_windows(&dev, 0, 32 << 20).unwrap();
        func::DEVICE_TYPE
            .at(0)
            .unwrap()
            .write(&dev, VirtioDevice::Net as u32)
            .unwrap();
        func::NET_MTU.at(0).unwrap().write(&dev, 9000).unwrap();
        let mut ring = SplitRing::new(&mem, 0x10_0000, 256, false).unwrap();
        setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
        // 256 frames in memory: a zero header, then the frame.
        for i in 0..256u64 {
            let a = 0x40_0000 + i * 0x4000;
            mem.write_slice(&[0u8; 12], GuestAddress(a)).unwrap();
            let frame: Vec<u8> = (0..size).map(|b| (b as u64 * 7 + i) as u8).collect();
            mem.write_slice(&frame, GuestAddress(a + 12)).unwrap();
        }
        let start_cycle = dev.lock().cycle();
        let wall = Instant::now();
        let (mut posted, mut done) = (0usize, 0usize);
        let mut first_latency = None;
        while done < total {
            while posted < total && ring.in_flight() < depth {
                let a = 0x40_0000 + (posted as u64 % 256) * 0x4000;
                ring.add_chain(&[Buffer {
                    addr: a,
                    len: 12 + size,
                    write: false,
                }])
                .unwrap();
                posted += 1;
            }
            let kicked = dev.lock().cycle();
            if ring.publish().unwrap() {
                kick(&dev, 0, ring.avail_idx()).unwrap();
            }
            let target = ring.avail_idx();
            dev.lock()
                .run_until(10_000_000, 4096, |_| ring.used_idx().unwrap() == target)
                .unwrap();
            done += ring.reap().unwrap().len();
            if first_latency.is_none() {
                first_latency = wire.sent().first().map(|f| f.cycle - kicked);
            }
        }
        let cycles = dev.lock().cycle() - start_cycle;
        let secs = wall.elapsed().as_secs_f64();
        let sent = wire.frames_sent() as usize;
        assert_eq!(sent, total, "every frame on the wire");
        let per = cycles as f64 / total as f64;
        println!(
            "net TX: {total} frames of {size} B, queue depth {depth}, DMA read latency {latency} cycles, DW {} bits: \
             {per:.1} cycles/frame ({:.3} packets/cycle, {:.2} Mpps, {:.2} Gbit/s at 250 MHz); \
             first frame doorbell -> wire {} cycles; {:.2} M simulated cycles/s",
            fpga_virtio_sim::dma_bytes() * 8,
            1.0 / per,
            250.0 / per,
            250e6 / per * f64::from(size) * 8.0 / 1e9,
            first_latency.unwrap_or(0),
            cycles as f64 / secs / 1e6,
        );
    }
}
