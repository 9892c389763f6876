//! `fpga-virtio demo`: the main job on the simulated FPGA.
//!
//! Today that is the virtqueue path: several queues of a function, each kept full of echo
//! requests (random sizes, multi-descriptor and indirect chains), served by the FPGA's
//! virtqueue engine through real DMA into guest memory, with interrupts. Every echoed byte is
//! checked. The blk engine and the CPU workers take the echo engine's place with the virtio-blk
//! work.

use fpga_virtio_hw::regs::{counters, global};
use fpga_virtio_sim::testing::{
    enable_device, kick, setup_queue, setup_vector, Buffer, QueueSetup, SplitRing,
};
use fpga_virtio_sim::{DmaTiming, Perm, SimConfig, SimDevice, Simulator};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;
use vm_memory::{Bytes, GuestAddress};

#[derive(Debug, serde::Serialize)]
pub struct QueueSummary {
    pub queue: u32,
    pub requests: u64,
    pub bytes: u64,
    pub interrupts: u32,
    pub errors: u32,
    /// Requests per latency bucket (<64, <128, ... cycles, >= 4096), from the device counters.
    pub latency_buckets: Vec<u32>,
}

#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub path: &'static str,
    pub requests: u64,
    pub verified_bytes: u64,
    pub simulated_cycles: u64,
    pub cycles_per_request: f64,
    pub simulated_us_at_250mhz: f64,
    pub wall_seconds: f64,
    pub simulated_cycles_per_second: f64,
    pub dma_read_latency_cycles: u64,
    pub msis: u64,
    pub dma_reads: u64,
    pub dma_writes: u64,
    pub dma_faults: u64,
    pub queues: Vec<QueueSummary>,
}

fn err(what: &str, x: impl std::fmt::Display) -> String {
    format!("{what}: {x}")
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

pub fn run(requests: u64, queues: u32, seed: u64, quiet: bool) -> Result<Summary, String> {
    let timing = DmaTiming::default();
    let mut sim = Simulator::new(SimConfig {
        timing,
        ..SimConfig::default()
    })
    .map_err(|x| format!("simulator: {x}"))?;
    sim.iommu_mut()
        .map(0, 0, 48 << 20, Perm::RW)
        .map_err(|x| format!("IOMMU map: {x}"))?;
    let mem = sim.memory().mem().clone();
    let dev = SimDevice::new(sim);
    let blocks = fpga_virtio_driver::probe::probe(&dev).map_err(|x| format!("probe: {x}"))?;
    if !quiet {
        eprintln!(
            "fpga-virtio demo: simulated FPGA probed ({} register blocks), {queues} queues, {requests} echo requests",
            blocks.len()
        );
    }
    enable_device(&dev).map_err(|x| err("enable", x))?;
    let mut rings = Vec::new();
    for q in 0..queues {
        let ring = SplitRing::new(&mem, 0x10_0000 + u64::from(q) * 0x10_0000, 64, false)
            .map_err(|x| err("ring", x))?;
        setup_vector(&dev, q).map_err(|x| err("MSI-X", x))?;
        setup_queue(
            &dev,
            q,
            &ring,
            QueueSetup {
                vector: q,
                ..Default::default()
            },
        )
        .map_err(|x| err("queue setup", x))?;
        rings.push(ring);
    }
    let mut rng = Rng(seed | 1);
    let mut expect: Vec<BTreeMap<u16, (u64, Vec<u8>)>> = vec![BTreeMap::new(); queues as usize];
    let mut slot = vec![0u64; queues as usize];
    let (mut posted, mut done, mut verified) = (0u64, 0u64, 0u64);
    let start_cycle = dev.lock().cycle();
    let wall = Instant::now();
    let mut next_report = requests / 10;
    while done < requests {
        for (q, ring) in rings.iter_mut().enumerate() {
            while posted < requests && ring.in_flight() < 16 && ring.free_descriptors() >= 3 {
                let area = 0x80_0000 + (q as u64) * 0x40_0000 + (slot[q] % 32) * 0x2000;
                slot[q] += 1;
                let len = 1 + (rng.next() % 256) as usize;
                let src: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                mem.write_slice(&src, GuestAddress(area))
                    .map_err(|x| err("memory", x))?;
                let bufs = [
                    Buffer {
                        addr: area,
                        len: len as u32,
                        write: false,
                    },
                    Buffer {
                        addr: area + 0x1000,
                        len: 1024,
                        write: true,
                    },
                ];
                let head = if rng.next().is_multiple_of(2) {
                    ring.add_indirect(area + 0x1800, &bufs)
                } else {
                    ring.add_chain(&bufs)
                }
                .map_err(|x| err("post", x))?;
                expect[q].insert(head, (area + 0x1000, src));
                posted += 1;
            }
            if ring.publish().map_err(|x| err("publish", x))? {
                kick(&dev, q as u32, ring.avail_idx()).map_err(|x| err("kick", x))?;
            }
        }
        dev.lock()
            .run_until(50_000_000, 256, |_| {
                rings.iter().any(|r| r.has_used().unwrap_or(true))
            })
            .map_err(|x| format!("simulation: {x}"))?;
        for (q, ring) in rings.iter_mut().enumerate() {
            for (head, len) in ring.reap().map_err(|x| err("reap", x))? {
                let (addr, src) = expect[q]
                    .remove(&head)
                    .ok_or_else(|| format!("queue {q}: used id {head} was not in flight"))?;
                if len as usize != src.len() {
                    return Err(format!(
                        "queue {q}: head {head} used length {len}, expected {}",
                        src.len()
                    ));
                }
                let mut got = vec![0u8; src.len()];
                mem.read_slice(&mut got, GuestAddress(addr))
                    .map_err(|x| err("memory", x))?;
                if got != src {
                    return Err(format!("queue {q}: head {head}: echoed bytes differ"));
                }
                verified += src.len() as u64;
                done += 1;
            }
        }
        if !quiet && done >= next_report {
            eprint!(
                "\r  {done}/{requests} requests, {} simulated cycles",
                dev.lock().cycle() - start_cycle
            );
            let _ = std::io::stderr().flush();
            next_report = done + requests / 10;
        }
    }
    if !quiet {
        eprintln!();
    }
    let cycles = dev.lock().cycle() - start_cycle;
    let secs = wall.elapsed().as_secs_f64();
    // Let the last acknowledgements land before reading the device's counters.
    dev.lock()
        .run(2_000)
        .map_err(|x| format!("simulation: {x}"))?;
    let mut qs = Vec::new();
    for q in 0..queues {
        let rd = |a: fpga_virtio_hw::RegArray| -> Result<u32, String> {
            a.at(q)
                .map_err(|x| x.to_string())?
                .read(&dev)
                .map_err(|x| x.to_string())
        };
        let lat = [
            counters::qstat::LAT0,
            counters::qstat::LAT1,
            counters::qstat::LAT2,
            counters::qstat::LAT3,
            counters::qstat::LAT4,
            counters::qstat::LAT5,
            counters::qstat::LAT6,
            counters::qstat::LAT7,
        ];
        qs.push(QueueSummary {
            queue: q,
            requests: u64::from(rd(counters::qstat::REQUESTS_LO)?)
                | (u64::from(rd(counters::qstat::REQUESTS_HI)?) << 32),
            bytes: u64::from(rd(counters::qstat::BYTES_LO)?)
                | (u64::from(rd(counters::qstat::BYTES_HI)?) << 32),
            interrupts: rd(counters::qstat::IRQS)?,
            errors: rd(counters::qstat::ERRORS)?,
            latency_buckets: lat.iter().map(|a| rd(*a)).collect::<Result<_, _>>()?,
        });
    }
    let faults = global::DMA_FAULT_COUNT
        .read(&dev)
        .map_err(|x| x.to_string())?;
    let stats = dev.lock().stats();
    Ok(Summary {
        path: "FPGA (virtqueue engine + echo engine)",
        requests,
        verified_bytes: verified,
        simulated_cycles: cycles,
        cycles_per_request: cycles as f64 / requests as f64,
        simulated_us_at_250mhz: cycles as f64 / 250.0,
        wall_seconds: secs,
        simulated_cycles_per_second: cycles as f64 / secs,
        dma_read_latency_cycles: timing.read_latency,
        msis: stats.msis,
        dma_reads: stats.reads,
        dma_writes: stats.writes,
        dma_faults: u64::from(faults),
        queues: qs,
    })
}

pub fn print(s: &Summary) {
    println!(
        "fpga-virtio demo: {} requests on the {}",
        s.requests, s.path
    );
    println!(
        "  simulated: {} cycles, {:.0} cycles/request ({:.2} us/request at 250 MHz, DMA read latency {} cycles)",
        s.simulated_cycles,
        s.cycles_per_request,
        s.cycles_per_request / 250.0,
        s.dma_read_latency_cycles
    );
    println!(
        "  wall: {:.2} s, {:.2} M simulated cycles/s; {} bytes echoed and verified",
        s.wall_seconds,
        s.simulated_cycles_per_second / 1e6,
        s.verified_bytes
    );
    println!(
        "  DMA: {} reads, {} writes, {} MSI-X messages, {} faults",
        s.dma_reads, s.dma_writes, s.msis, s.dma_faults
    );
    println!("  queue  requests      bytes  irqs  errors  latency buckets (<64 .. >=4096 cycles)");
    for q in &s.queues {
        println!(
            "  {:>5} {:>9} {:>10} {:>5} {:>7}  {:?}",
            q.queue, q.requests, q.bytes, q.interrupts, q.errors, q.latency_buckets
        );
    }
    println!(
        "  (the virtio-blk engine, CPU workers and the FPGA/CPU split arrive with the blk work)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_runs_verifies_and_is_deterministic() {
        let a = run(60, 3, 7, true).unwrap();
        assert_eq!(a.requests, 60);
        assert_eq!(a.queues.iter().map(|q| q.requests).sum::<u64>(), 60);
        assert!(a.verified_bytes > 0);
        assert_eq!(
            a.queues.iter().map(|q| q.bytes).sum::<u64>(),
            a.verified_bytes
        );
        assert_eq!(a.dma_faults, 0);
        let b = run(60, 3, 7, true).unwrap();
        assert_eq!(a.simulated_cycles, b.simulated_cycles);
    }
}
