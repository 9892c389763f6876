//! `fpga-virtio`: the command-line tool.

mod card;
mod demo;
mod error;
mod flash;
mod image;
mod vhost;

use clap::{Parser, Subcommand};
use fpga_virtio_hw::regs;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "fpga-virtio",
    version,
    about = "Drive, simulate and inspect fpga-virtio devices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DemoHalf {
    Blk,
    Net,
    /// Flow offload: two tenants' connections through the offload loop.
    Flow,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the main job on the simulated FPGA and print a summary: virtio-blk, virtio-net, then
    /// flow offload (or only the part named).
    Demo {
        /// Only this part: `blk`, `net` or `flow`.
        #[arg(value_enum)]
        only: Option<DemoHalf>,
        /// virtio-net: TX requests on each of vport A's two queues.
        #[arg(long, default_value_t = 400)]
        frames: usize,
        /// Requests to run.
        #[arg(long, default_value_t = 2000)]
        requests: u64,
        /// Queues of the virtio-blk function (1..=16).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
        queues: u16,
        /// Seed of the workload (same seed, same results and disk image).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Split policy (TOML); default: the embedded cli/src/default-policy.toml.
        #[arg(long)]
        policy: Option<std::path::PathBuf>,
        /// Reads and writes larger than this many 512-byte sectors are punted to the CPU by the
        /// FPGA's blk engine (blk_too_large).
        #[arg(long, default_value_t = demo::DEFAULT_MAX_HW_SECTORS)]
        max_hw_sectors: u32,
        /// Disk image file behind the device (created or resized to 64 MiB); default: RAM.
        #[arg(long)]
        disk: Option<std::path::PathBuf>,
        /// Print the summary as JSON (no progress).
        #[arg(long)]
        json: bool,
    },
    /// Keep every queue of a split virtio-blk function full for a while and watch it: requests
    /// per second per queue, resident memory, requests in the device, the punt ring. Fails on a
    /// stall, a queue over its depth, or memory that grows after the warm-up (docs/RELIABILITY.md).
    Soak {
        /// How long, in seconds.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Queues (the last one on the CPU, the others on the FPGA).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=16))]
        queues: u16,
        /// Requests each queue keeps posted.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=32))]
        depth: u16,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print the report as JSON at the end (one line per second still goes to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Show the device's identity, firmware version and flash slots.
    Info {
        /// The simulated device's flash file (default: ~/.cache/fpga-virtio/sim-flash.bin).
        #[arg(long, conflicts_with = "device")]
        flash_file: Option<std::path::PathBuf>,
        /// A card bound to vfio-pci, by PCI address (dddd:bb:dd.f), instead of the simulator.
        #[arg(long)]
        device: Option<fpga_virtio_driver::vfio::sysfs::PciAddress>,
        #[arg(long)]
        json: bool,
    },
    /// Load a firmware image into the inactive flash slot, boot it, confirm it, or roll back.
    Flash {
        image: std::path::PathBuf,
        /// Ed25519 public key (hex file): the image must be signed with its secret key.
        #[arg(long)]
        trusted_key: Option<std::path::PathBuf>,
        /// Allow a version older than the running one.
        #[arg(long)]
        force: bool,
        /// The simulated device's flash file (default: ~/.cache/fpga-virtio/sim-flash.bin).
        #[arg(long)]
        flash_file: Option<std::path::PathBuf>,
        /// Print the result as JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
    /// Serve a disk image to a VM over vhost-user, the simulated FPGA as the data plane
    /// (docs/vhost-user.md).
    VhostUserBlk(vhost::VhostOptions),
    /// Build, inspect and verify firmware images (docs/firmware.md).
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// Print the register map this build was generated from (blocks, or every register).
    Regmap {
        /// List every register, not only the blocks.
        #[arg(long)]
        registers: bool,
    },
}

fn regmap(registers: bool) {
    println!(
        "fpga-virtio register map {}.{} ({} queues, {} functions, {} MSI-X vectors)",
        regs::MAP_VERSION >> 16,
        regs::MAP_VERSION & 0xffff,
        regs::NUM_QUEUES,
        regs::NUM_FUNCTIONS,
        regs::NUM_MSIX
    );
    if registers {
        println!(
            "{:<5} {:>8} {:>6} {:>7} {:>10}  name",
            "bar", "offset", "count", "stride", "reset"
        );
        for r in regs::REGISTERS {
            println!(
                "{:<5} {:#8x} {:>6} {:>#7x} {:#010x}  {}",
                r.bar.to_string(),
                r.offset,
                r.count,
                r.stride,
                r.reset,
                r.name
            );
        }
        return;
    }
    println!("{:<5} {:>8}  block", "bar", "offset");
    let mut last = "";
    for r in regs::REGISTERS {
        let block = r.name.split('.').next().unwrap_or(r.name);
        if block != last {
            println!("{:<5} {:#8x}  {block}", r.bar.to_string(), r.offset);
            last = block;
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Regmap { registers } => regmap(registers),
        Command::Info {
            flash_file,
            device,
            json,
        } => {
            let result = match device {
                Some(address) => flash::run_info_device(address, json),
                None => {
                    flash::run_info(&flash_file.unwrap_or_else(flash::default_flash_file), json)
                }
            };
            if let Err(e) = result {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        Command::Flash {
            image,
            trusted_key,
            force,
            flash_file,
            json,
        } => {
            let f = flash_file.unwrap_or_else(flash::default_flash_file);
            if let Err(e) = flash::run_flash(&image, trusted_key.as_deref(), force, &f, json) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        Command::VhostUserBlk(options) => {
            if let Err(e) = vhost::run(options) {
                eprintln!("error: vhost-user-blk: {e}");
                return ExitCode::FAILURE;
            }
        }
        Command::Image { command } => {
            if let Err(e) = image::run(command) {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        Command::Demo {
            only,
            frames,
            requests,
            queues,
            seed,
            policy,
            max_hw_sectors,
            disk,
            json,
        } => {
            let part = |p: DemoHalf| only.is_none() || only == Some(p);
            let blk = part(DemoHalf::Blk).then(|| {
                policy
                    .map(|p| std::fs::read_to_string(&p).map_err(error::file(p)))
                    .unwrap_or_else(|| Ok(demo::DEFAULT_POLICY.to_string()))
                    .and_then(|policy| {
                        demo::run(demo::DemoOptions {
                            requests,
                            queues,
                            seed,
                            policy: &policy,
                            max_hw_sectors,
                            disk,
                            quiet: json,
                        })
                    })
            });
            let blk = match blk.transpose() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: demo failed: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let (Some(s), false) = (&blk, json) {
                demo::print(s);
            }
            let net = match part(DemoHalf::Net)
                .then(|| demo::run_net(seed, frames, json))
                .transpose()
            {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("error: demo net failed: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let (Some(n), false) = (&net, json) {
                demo::print_net(n);
            }
            let flow = part(DemoHalf::Flow).then(|| demo::run_flow(seed, json));
            if let (Some(f), false) = (&flow, json) {
                demo::print_flow(f);
            }
            if json {
                let text = match (&blk, &net, &flow) {
                    (Some(b), None, None) => serde_json::to_string_pretty(b),
                    (None, Some(n), None) => serde_json::to_string_pretty(n),
                    (None, None, Some(f)) => serde_json::to_string_pretty(f),
                    _ => serde_json::to_string_pretty(
                        &serde_json::json!({ "blk": blk, "net": net, "flow": flow }),
                    ),
                };
                match text {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            if net
                .as_ref()
                .is_some_and(|n| !n.verified || !n.queue_errors.is_empty())
            {
                eprintln!("error: demo net: frames were lost, duplicated or changed");
                return ExitCode::FAILURE;
            }
            if flow.as_ref().is_some_and(|f| !f.verified()) {
                eprintln!("error: demo flow: the frames or counters differ from the traffic's");
                return ExitCode::FAILURE;
            }
        }
        Command::Soak {
            seconds,
            queues,
            depth,
            seed,
            json,
        } => {
            let cfg = fpga_virtio_workload::WorkloadConfig {
                seed,
                queues,
                depth,
                capacity_sectors: 16 << 11,
                policy: match fpga_virtio_driver::runtime::SplitPolicy::from_toml(&format!(
                    "cpu_queues = [{}]",
                    queues - 1
                )) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                ..fpga_virtio_workload::WorkloadConfig::default()
            };
            let r = fpga_virtio_workload::soak::soak(&cfg, seconds, 16 << 10, |s| {
                eprintln!(
                    "{:>5} s  done/queue {:?}  rss {} KiB  in device {:?}  punt ring {}  outstanding {}  {} cycles",
                    s.second,
                    s.done,
                    s.rss_kib,
                    s.device_inflight,
                    s.punt_ring,
                    s.outstanding,
                    s.simulated_cycles
                );
            });
            match r {
                Ok(r) if json => match serde_json::to_string(&r) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                Ok(r) => println!(
                    "soak: {} s, {} requests ({} not OK: the malformed ones), resident memory {} KiB after the warm-up, {} KiB at most after",
                    r.samples.len(),
                    r.requests,
                    r.failed,
                    r.rss_after_warmup_kib,
                    r.rss_max_kib
                ),
                Err(e) => {
                    eprintln!("error: soak failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
