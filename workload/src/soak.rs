//! Soak: every queue kept full for a wall-clock time, sampled once a second: requests done per
//! queue, the process's resident memory, the device's requests in flight per queue, the punt
//! ring's occupancy and the runtime's outstanding jobs. A stall (a queue that completes
//! nothing for a whole interval), a queue over its depth, or memory that keeps growing after
//! the warm-up is a failure. `fpga-virtio soak --seconds 600` is the long run;
//! `cargo test -p fpga-virtio-workload --test soak` runs 30 s of it.

use crate::{build, kick, mem_err, Rig, Rng, WorkloadConfig, WorkloadError};
use fpga_virtio_hw::regs::{punt_ring, queue};
use std::time::{Duration, Instant};
use vm_memory::{Bytes, GuestAddress};

/// One second of a soak.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    pub second: u64,
    /// Requests completed in this interval, per queue.
    pub done: Vec<u64>,
    /// Resident set size of the process, KiB.
    pub rss_kib: u64,
    /// The device's requests in flight per queue (QUEUE.STATUS.inflight), at the sample.
    pub device_inflight: Vec<u32>,
    /// Punt-ring entries written and not yet consumed.
    pub punt_ring: u32,
    /// Jobs the runtime handed to its workers and has not heard back from.
    pub outstanding: usize,
    pub simulated_cycles: u64,
}

/// What a soak found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SoakReport {
    pub samples: Vec<Sample>,
    pub requests: u64,
    /// Requests whose status byte was not OK (malformed ones are in the mix on purpose).
    pub failed: u64,
    /// RSS at the end of the warm-up (the first fifth) and at its highest after, KiB.
    pub rss_after_warmup_kib: u64,
    pub rss_max_kib: u64,
}

fn rss_kib() -> u64 {
    // /proc/self/statm: size resident shared ... in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

/// Keep every queue of a rig built from `cfg` at its depth for `seconds`; `each` sees every
/// sample. Fails on a stall, an over-deep queue, or RSS growth past `rss_slack_kib` after the
/// warm-up.
pub fn soak(
    cfg: &WorkloadConfig,
    seconds: u64,
    rss_slack_kib: u64,
    mut each: impl FnMut(&Sample),
) -> Result<SoakReport, WorkloadError> {
    let mut rig = Rig::new(cfg)?;
    // The simulator keeps bounded logs of MSIs and faults, as a long-running backend does.
    rig.dev.lock().set_log_limit(1024);
    let nq = usize::from(cfg.queues);
    let depth = u64::from(cfg.depth);
    let mut rng = Rng(cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    // Per queue: the heads in flight, the slot each one uses and where its status byte is;
    // free slots.
    let mut inflight: Vec<Vec<(u16, u64, Option<u64>)>> = vec![Vec::new(); nq];
    let mut free: Vec<Vec<u64>> = (0..nq as u64)
        .map(|q| (0..depth).map(|i| q * depth + i).collect())
        .collect();
    let (mut id, mut requests, mut failed) = (0u64, 0u64, 0u64);
    let mut samples = Vec::new();
    let start = Instant::now();
    let mut next = start + Duration::from_secs(1);
    let mut done = vec![0u64; nq];
    let mut last_cycle = rig.dev.lock().cycle();
    while start.elapsed() < Duration::from_secs(seconds) {
        for q in 0..nq {
            let mut posted = false;
            while let Some(slot) = free[q].pop() {
                let (bufs, p) =
                    build(&mut rng, &rig.mem, cfg, id, slot, slot * rig.span, rig.span)?;
                let head = rig.rings[q].add_chain(&bufs)?;
                inflight[q].push((head, slot, p.status_addr));
                id += 1;
                posted = true;
            }
            if posted {
                rig.rings[q].publish()?;
                kick(&rig.dev, q as u32, rig.rings[q].avail_idx())?;
            }
        }
        rig.dev.lock().run(4096)?;
        rig.rt.poll(&rig.dev)?;
        for q in 0..nq {
            for (head, _) in rig.rings[q].reap()? {
                let Some(pos) = inflight[q].iter().position(|(h, _, _)| *h == head) else {
                    return Err(WorkloadError::Config(format!(
                        "queue {q}: used entry for head {head} that is not in flight"
                    )));
                };
                let (_, slot, status_addr) = inflight[q].swap_remove(pos);
                // A request without a status byte (malformed on purpose) counts as failed.
                let status: u8 = match status_addr {
                    Some(a) => rig.mem.read_obj(GuestAddress(a)).map_err(mem_err)?,
                    None => 0xff,
                };
                failed += u64::from(status != 0);
                requests += 1;
                done[q] += 1;
                free[q].push(slot);
            }
        }
        if Instant::now() >= next {
            next += Duration::from_secs(1);
            let mut device_inflight = Vec::with_capacity(nq);
            for q in 0..nq as u32 {
                let st = queue::q::STATUS.at(q)?.read(&rig.dev)?;
                device_inflight.push(queue::q::status::INFLIGHT.get(st));
            }
            let prod = punt_ring::PROD.read(&rig.dev)?;
            let cons = punt_ring::CONS.read(&rig.dev)?;
            let cycle = rig.dev.lock().cycle();
            let s = Sample {
                second: samples.len() as u64 + 1,
                done: std::mem::replace(&mut done, vec![0; nq]),
                rss_kib: rss_kib(),
                device_inflight,
                punt_ring: prod.wrapping_sub(cons),
                outstanding: rig.rt.outstanding(),
                simulated_cycles: cycle - last_cycle,
            };
            last_cycle = cycle;
            each(&s);
            for (q, n) in s.done.iter().enumerate() {
                if *n == 0 {
                    return Err(WorkloadError::Config(format!(
                        "soak: queue {q} completed nothing in second {} (stall); {s:?}",
                        s.second
                    )));
                }
                if u64::from(s.device_inflight[q]) > depth {
                    return Err(WorkloadError::Config(format!(
                        "soak: queue {q} has {} requests in the device, depth {depth}",
                        s.device_inflight[q]
                    )));
                }
            }
            samples.push(s);
        }
    }
    let warm = (samples.len() / 5).max(1);
    let rss_after_warmup_kib = samples.get(warm - 1).map_or(0, |s| s.rss_kib);
    let rss_max_kib = samples
        .iter()
        .skip(warm)
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(0);
    if rss_max_kib > rss_after_warmup_kib + rss_slack_kib {
        return Err(WorkloadError::Config(format!(
            "soak: resident memory grew from {rss_after_warmup_kib} KiB after the warm-up to {rss_max_kib} KiB"
        )));
    }
    Ok(SoakReport {
        samples,
        requests,
        failed,
        rss_after_warmup_kib,
        rss_max_kib,
    })
}
