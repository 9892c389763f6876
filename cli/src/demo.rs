//! `fpga-virtio demo`: the main job on the simulated FPGA.
//!
//! A virtio-blk function whose queues are split between the FPGA's blk engine and the CPU's
//! software engine by a split policy (embedded default, or `--policy FILE`). A seeded workload of
//! reads, writes, flush, discard, write-zeroes, get-id and malformed requests runs through the
//! RTL (real DMA into guest memory, a RAM block store behind the storage port) and the runtime's
//! CPU workers; the summary shows each path's share, throughput and latency.
//!
//! The net half (`demo net`, and after blk in a plain `demo`): two virtio-net vports on the
//! card; vport A sends seeded traffic (plain frames, checksum offload, TSO/USO, malformed ones)
//! to vport B on two TX queues, the first FPGA-owned (its frames leave on the uplink, which
//! loops back to the card), the second CPU-owned (its frames cross the runtime's switch); B
//! receives on a CPU-owned RX queue with mergeable buffers. The summary shows each path's
//! frames, the punts and drops by reason, the FPGA's packet rate at 250 MHz, and whether every
//! frame reached B once, byte for byte.

use crate::error::CliError;
use fpga_virtio_driver::hw::regs::PuntReason;
use fpga_virtio_driver::runtime::{Path, SplitPolicy};
use fpga_virtio_workload::{run as run_workload, Report, WorkloadConfig};
use std::collections::BTreeMap;
use std::io::Write;

/// The embedded default split policy.
pub const DEFAULT_POLICY: &str = include_str!("default-policy.toml");
/// The demo's blk function punts reads and writes larger than this many sectors
/// (`--max-hw-sectors`), so that the split shows on the default workload.
pub const DEFAULT_MAX_HW_SECTORS: u32 = 64;

/// Clock the simulated cycles are converted at.
const MHZ: f64 = 250.0;

#[derive(Debug, serde::Serialize)]
pub struct PathSummary {
    pub path: &'static str,
    pub requests: u64,
    /// Bytes moved between guest buffers and the disk (reads and writes).
    pub bytes: u64,
    /// Simulated throughput at 250 MHz over the whole run.
    pub iops_at_250mhz: f64,
    /// Doorbell to used entry seen by the guest, simulated cycles.
    pub latency_p50_cycles: u64,
    pub latency_p99_cycles: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct QueueSummary {
    pub queue: u16,
    pub path: Path,
    pub requests: u64,
    /// Requests the CPU completed for this queue (all of them on a CPU queue; punts otherwise).
    pub cpu_requests: u64,
    pub punts: BTreeMap<&'static str, u64>,
    pub errors: u64,
    /// The queue's error state (the guest broke the ring protocol), if any.
    pub queue_error: Option<String>,
    /// The device's DMA faults for this queue.
    pub dma_faults: u32,
    /// The device's latency histogram for this queue (avail fetch to used->idx written):
    /// requests under 64, 128, ... 4096 cycles, and 4096 or more.
    pub device_latency_buckets: Vec<u32>,
    /// MSI-X messages the guest got for this queue (raised by the FPGA or, for a CPU-owned
    /// queue, by the runtime through the device).
    pub interrupts: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub requests: u64,
    pub seed: u64,
    pub fpga: PathSummary,
    pub cpu: PathSummary,
    /// Share of requests the FPGA served itself.
    pub split_ratio_fpga: f64,
    pub statuses: BTreeMap<String, u64>,
    pub simulated_cycles: u64,
    pub simulated_ms_at_250mhz: f64,
    pub wall_seconds: f64,
    pub simulated_cycles_per_second: f64,
    pub dma_faults: u64,
    pub disk_fnv1a: String,
    pub queues: Vec<QueueSummary>,
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Whether the FPGA served a request itself: a plain read or write on an FPGA queue (the
/// workload's other kinds are all punted by the blk engine).
fn on_fpga(r: &fpga_virtio_workload::RequestRecord, paths: &[Path]) -> bool {
    paths[usize::from(r.queue)] == Path::Fpga && matches!(r.kind, "read" | "write")
}

fn summarize(report: &Report, seed: u64) -> Summary {
    let secs = report.simulated_cycles as f64 / (MHZ * 1e6);
    let mut per: [(u64, u64, Vec<u64>); 2] = Default::default();
    let mut statuses = BTreeMap::new();
    for r in &report.records {
        let p = &mut per[usize::from(!on_fpga(r, &report.paths))];
        p.0 += 1;
        if matches!(r.kind, "read" | "write") && r.status == 0 {
            p.1 += if r.kind == "read" {
                u64::from(r.used_len.saturating_sub(1))
            } else {
                0
            };
        }
        p.2.push(r.cycles);
        let name = match r.status {
            0 => "ok",
            1 => "ioerr",
            2 => "unsupp",
            _ => "none",
        };
        *statuses.entry(name.to_string()).or_insert(0u64) += 1;
    }
    let mk = |path, (n, bytes, mut lat): (u64, u64, Vec<u64>)| {
        lat.sort_unstable();
        PathSummary {
            path,
            requests: n,
            bytes,
            iops_at_250mhz: if secs > 0.0 { n as f64 / secs } else { 0.0 },
            latency_p50_cycles: quantile(&lat, 0.5),
            latency_p99_cycles: quantile(&lat, 0.99),
        }
    };
    let [f, c] = per;
    let total = report.records.len() as u64;
    let queues = report
        .paths
        .iter()
        .enumerate()
        .map(|(q, &path)| {
            let st = report
                .stats
                .queues
                .get(&(q as u16))
                .cloned()
                .unwrap_or_default();
            let punts = st
                .punts
                .iter()
                .filter(|&(r, _)| r != PuntReason::Doorbell)
                .map(|(r, n)| (r.name(), n))
                .collect();
            QueueSummary {
                queue: q as u16,
                path,
                requests: report
                    .records
                    .iter()
                    .filter(|r| usize::from(r.queue) == q)
                    .count() as u64,
                cpu_requests: st.requests,
                punts,
                errors: st.errors,
                queue_error: st.error(),
                interrupts: report.msis.get(q).copied().unwrap_or(0),
                dma_faults: report.device.get(q).map_or(0, |d| d.dma_faults),
                device_latency_buckets: report
                    .device
                    .get(q)
                    .map(|d| d.latency_buckets.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let fpga = mk("fpga", f);
    Summary {
        requests: total,
        seed,
        split_ratio_fpga: if total > 0 {
            fpga.requests as f64 / total as f64
        } else {
            0.0
        },
        fpga,
        cpu: mk("cpu", c),
        statuses,
        simulated_cycles: report.simulated_cycles,
        simulated_ms_at_250mhz: secs * 1e3,
        wall_seconds: report.wall_seconds,
        simulated_cycles_per_second: report.simulated_cycles as f64 / report.wall_seconds.max(1e-9),
        dma_faults: report.dma_faults,
        disk_fnv1a: format!("{:016x}", report.disk_hash()),
        queues,
    }
}

/// What to run.
#[derive(Debug)]
pub struct DemoOptions<'a> {
    pub requests: u64,
    pub queues: u16,
    pub seed: u64,
    /// Split policy, TOML.
    pub policy: &'a str,
    /// Reads and writes larger than this many sectors are punted by the FPGA's blk engine.
    pub max_hw_sectors: u32,
    /// Disk image file (created or resized); RAM when None.
    pub disk: Option<std::path::PathBuf>,
    pub quiet: bool,
}

pub fn run(o: DemoOptions<'_>) -> Result<Summary, CliError> {
    let DemoOptions {
        requests,
        queues,
        seed,
        policy,
        max_hw_sectors,
        disk,
        quiet,
    } = o;
    let policy = SplitPolicy::from_toml(policy)?;
    let cfg = WorkloadConfig {
        seed,
        requests,
        queues,
        policy,
        max_hw_sectors,
        disk,
        ..WorkloadConfig::default()
    };
    if !quiet {
        let cpu: Vec<u16> = (0..queues)
            .filter(|&q| cfg.policy.path(q) == Path::Cpu)
            .collect();
        eprintln!(
            "fpga-virtio demo: virtio-blk on the simulated FPGA, {requests} requests on {queues} queues \
             (CPU-owned: {cpu:?}, {} workers), {} MiB disk in {}, seed {seed}",
            cfg.policy.workers,
            cfg.capacity_sectors / 2048,
            cfg.disk
                .as_ref()
                .map_or_else(|| "RAM".to_string(), |p| p.display().to_string())
        );
    }
    let mut next = requests / 10;
    let report = run_workload(&cfg, |done, total| {
        if !quiet && (done >= next || done == total) {
            eprint!("\r  {done}/{total} requests");
            let _ = std::io::stderr().flush();
            next = done + total / 10;
        }
    })?;
    if !quiet {
        eprintln!();
    }
    Ok(summarize(&report, seed))
}

/// Run the net half.
pub fn run_net(
    seed: u64,
    frames: usize,
    quiet: bool,
) -> Result<fpga_virtio_workload::net::NetReport, CliError> {
    if !quiet {
        eprintln!(
            "fpga-virtio demo net: two virtio-net vports, {frames} TX requests on each of A's two queues \
             (FPGA-owned and CPU-owned) to B, seed {seed}"
        );
    }
    Ok(fpga_virtio_workload::net::run(
        &fpga_virtio_workload::net::NetRunConfig { seed, frames },
    )?)
}

pub fn print_net(r: &fpga_virtio_workload::net::NetReport) {
    println!(
        "virtio-net: {} TX requests in {} simulated cycles ({:.2} ms at 250 MHz), {:.1} s wall",
        r.tx_requests,
        r.simulated_cycles,
        r.simulated_cycles as f64 / 250e3,
        r.wall_seconds
    );
    println!(
        "  fpga  {:>6} frames sent, {:>9} bytes: {:.3} Mpps, {:.3} Gbit/s at 250 MHz over the run",
        r.fpga_frames, r.fpga_bytes, r.fpga_mpps_at_250mhz, r.fpga_gbits_at_250mhz
    );
    println!(
        "  cpu   {:>6} frames sent ({} GSO frames cut into {} segments)",
        r.cpu_frames, r.cpu_gso_frames, r.cpu_segments
    );
    println!("  punted by the FPGA: {:?}", r.punts);
    println!("  dropped (counted):  {:?}", r.drops);
    println!(
        "  vport B received {} frames, {} bytes ({} over several mergeable buffers); every frame once, byte for byte: {}",
        r.rx_frames, r.rx_bytes, r.rx_merged, r.verified
    );
    for (q, e) in &r.queue_errors {
        println!("  queue {q} stopped: {e}");
    }
}

/// Sessions of the flow part.
pub const FLOW_SESSIONS: usize = 600;

/// Run the flow-offload part: two tenants' seeded sessions through the offload loop, learning,
/// all-CPU and with a full flow table, each checked against the traffic.
pub fn run_flow(seed: u64, quiet: bool) -> fpga_virtio_workload::flow::FlowReport {
    if !quiet {
        eprintln!(
            "fpga-virtio demo flow: {FLOW_SESSIONS} TCP/UDP sessions of two tenants (vports, the uplink, \
             a VxLAN tunnel; ACL-denied ones among them) through the flow-offload loop, seed {seed}"
        );
    }
    fpga_virtio_workload::flow::run_modes(seed, FLOW_SESSIONS)
}

pub fn print_flow(r: &fpga_virtio_workload::flow::FlowReport) {
    println!(
        "flow offload: {} sessions, {} packets ({} accepted), {} connections, {:.1} s wall",
        r.sessions, r.packets, r.accepted, r.connections, r.wall_seconds
    );
    println!("  mode         table hits  punted  installed  refused  removed  dropped  as the traffic says");
    for m in &r.modes {
        println!(
            "  {:<11}  {:>10}  {:>6}  {:>9}  {:>7}  {:>7}  {:>7}  {}",
            format!("{:?}", m.mode),
            m.hits,
            m.punts.values().sum::<u64>(),
            m.installed,
            m.refused,
            m.removed,
            m.dropped,
            match &m.verified {
                Ok(()) => "yes".to_string(),
                Err(e) => format!("NO: {e}"),
            }
        );
    }
    println!(
        "  the three modes put the same frames out in the same order: {}",
        r.modes_agree
    );
}

pub fn print(s: &Summary) {
    println!(
        "virtio-blk: {} requests in {} simulated cycles ({:.2} ms at 250 MHz), {:.1} s wall ({:.2} M cycles/s)",
        s.requests,
        s.simulated_cycles,
        s.simulated_ms_at_250mhz,
        s.wall_seconds,
        s.simulated_cycles_per_second / 1e6
    );
    println!("  path  requests   read bytes   IOPS@250MHz   latency p50 / p99 (cycles)");
    for p in [&s.fpga, &s.cpu] {
        println!(
            "  {:<4}  {:>8}  {:>11}  {:>12.0}   {:>7} / {}",
            p.path,
            p.requests,
            p.bytes,
            p.iops_at_250mhz,
            p.latency_p50_cycles,
            p.latency_p99_cycles
        );
    }
    println!(
        "  split: {:.1} % of requests served by the FPGA; statuses {:?}; DMA faults {}",
        s.split_ratio_fpga * 100.0,
        s.statuses,
        s.dma_faults
    );
    println!("  queue  path  requests  on CPU  errors  DMA faults  MSI-X  punts by reason");
    for q in &s.queues {
        println!(
            "  {:>5}  {:<4}  {:>8}  {:>6}  {:>6}  {:>10}  {:>5}  {:?}",
            q.queue,
            q.path.as_str(),
            q.requests,
            q.cpu_requests,
            q.errors,
            q.dma_faults,
            q.interrupts,
            q.punts
        );
    }
    for q in s.queues.iter().filter(|q| q.queue_error.is_some()) {
        println!(
            "  queue {} stopped: {}",
            q.queue,
            q.queue_error.as_deref().unwrap_or("")
        );
    }
    println!("  device latency histogram (avail fetch to used->idx; <64 <128 <256 <512 <1K <2K <4K >=4K cycles):");
    for q in &s.queues {
        println!("  {:>5}  {:?}", q.queue, q.device_latency_buckets);
    }
    println!("  disk image FNV-1a {}", s.disk_fnv1a);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_runs_with_the_embedded_policy_and_is_deterministic() {
        let opts = || DemoOptions {
            requests: 120,
            queues: 4,
            seed: 7,
            policy: DEFAULT_POLICY,
            max_hw_sectors: DEFAULT_MAX_HW_SECTORS,
            disk: None,
            quiet: true,
        };
        let a = run(opts()).unwrap();
        assert_eq!(a.requests, 120);
        assert_eq!(a.fpga.requests + a.cpu.requests, 120);
        assert!(a.fpga.requests > 0 && a.cpu.requests > 0);
        assert_eq!(a.queues.iter().map(|q| q.requests).sum::<u64>(), 120);
        assert_eq!(a.queues[3].path, Path::Cpu);
        assert_eq!(a.queues[3].cpu_requests, a.queues[3].requests);
        assert_eq!(a.dma_faults, 0);
        let b = run(opts()).unwrap();
        assert_eq!(a.disk_fnv1a, b.disk_fnv1a);
        assert_eq!(a.statuses, b.statuses);
        // The same run on a file-backed disk ends with the same image.
        let dir = std::env::temp_dir().join(format!("fv-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = run(DemoOptions {
            disk: Some(dir.join("disk.img")),
            ..opts()
        })
        .unwrap();
        assert_eq!(a.disk_fnv1a, c.disk_fnv1a);
        assert_eq!(
            std::fs::metadata(dir.join("disk.img")).unwrap().len(),
            64 << 20
        );
        std::fs::remove_dir_all(&dir).unwrap();
        // The FPGA queues' latency histograms count what the device published.
        let fpga_q0: u32 = a.queues[0].device_latency_buckets.iter().sum();
        assert_eq!(u64::from(fpga_q0), a.queues[0].requests);
    }

    #[test]
    fn net_demo_delivers_every_frame_and_shows_both_paths() {
        let r = run_net(3, 48, true).unwrap();
        assert!(r.verified && r.queue_errors.is_empty(), "{r:?}");
        assert!(r.rx_merged > 0, "{r:?}");
        assert!(r.fpga_frames > 0 && r.cpu_frames > 0, "{r:?}");
        assert!(
            r.punts.values().sum::<u64>() > 0 && !r.drops.is_empty(),
            "{r:?}"
        );
        let again = run_net(3, 48, true).unwrap();
        assert_eq!(
            (r.fpga_frames, r.cpu_frames, r.rx_bytes),
            (again.fpga_frames, again.cpu_frames, again.rx_bytes)
        );
    }

    #[test]
    fn flow_demo_offloads_and_matches_the_traffic() {
        let r = run_flow(5, true);
        assert!(r.verified(), "{r:?}");
        assert!(r.modes[0].hits > 0 && r.modes[0].installed > 0, "{r:?}");
    }

    #[test]
    fn a_bad_policy_is_a_clear_error() {
        let e = run(DemoOptions {
            requests: 10,
            queues: 4,
            seed: 1,
            policy: "workers = 0",
            max_hw_sectors: DEFAULT_MAX_HW_SECTORS,
            disk: None,
            quiet: true,
        })
        .unwrap_err();
        assert!(matches!(e, CliError::EmbeddedPolicy(_)), "{e}");
        assert!(e.to_string().contains("workers"), "{e}");
    }
}
