//! `fpga-virtio`: the command-line tool.

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

#[derive(Subcommand, Debug)]
enum Command {
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
    }
    ExitCode::SUCCESS
}
