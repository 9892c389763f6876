//! Simulated cycles per request on the echo path, and simulated cycles per second of the model
//! with its harness.
//!
//! `cargo run --release -p fpga-virtio-sim --features test-utils --example echo_perf -- [REQUESTS] [PAYLOAD] [READ_LATENCY]`

use fpga_virtio_sim::testing::{
    enable_device, kick, open_dma_windows, setup_queue, Buffer, QueueSetup, SplitRing,
};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, Simulator};
use std::time::Instant;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let total = args.first().copied().unwrap_or(20_000) as usize;
    let payload = args.get(1).copied().unwrap_or(64) as u32;
    let latency = args.get(2).copied().unwrap_or(250);
    let timing = DmaTiming {
        read_latency: latency,
        write_latency: latency / 2,
        bytes_per_cycle: 16,
    };
    for depth in [1usize, 32] {
        let mut sim = Simulator::new(SimConfig {
            timing,
            ..SimConfig::default()
        })
        .unwrap();
        sim.iommu_mut().map(0, 0, 32 << 20, Perm::RW).unwrap();
        let mem = sim.memory().mem().clone();
        let dev = SimDevice::new(sim);
        enable_device(&dev).unwrap();
        open_dma_windows(&dev, 0, 32 << 20).unwrap();
        let mut ring = SplitRing::new(&mem, 0x10_0000, 256, false).unwrap();
        setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
        let start_cycle = dev.lock().cycle();
        let wall = Instant::now();
        let (mut posted, mut done) = (0usize, 0usize);
        while done < total {
            while posted < total && ring.in_flight() < depth {
                let a = 0x40_0000 + (posted as u64 % 256) * 0x2000;
                ring.add_chain(&[
                    Buffer {
                        addr: a,
                        len: payload,
                        write: false,
                    },
                    Buffer {
                        addr: a + 0x1000,
                        len: payload,
                        write: true,
                    },
                ])
                .unwrap();
                posted += 1;
            }
            if ring.publish().unwrap() {
                kick(&dev, 0, ring.avail_idx()).unwrap();
            }
            let target = ring.avail_idx();
            dev.lock()
                .run_until(10_000_000, 4096, |_| ring.used_idx().unwrap() == target)
                .unwrap();
            done += ring.reap().unwrap().len();
        }
        let cycles = dev.lock().cycle() - start_cycle;
        let secs = wall.elapsed().as_secs_f64();
        println!(
            "echo: {total} requests, {payload} B, queue depth {depth}, DMA read latency {latency} cycles, DW {} bits: \
             {:.0} cycles/request ({:.2} us at 250 MHz), {:.2} M simulated cycles/s, {:.0} requests/s wall",
            fpga_virtio_sim::dma_bytes() * 8,
            cycles as f64 / total as f64,
            cycles as f64 / total as f64 / 250.0,
            cycles as f64 / secs / 1e6,
            total as f64 / secs
        );
    }
}
