//! The simulated fpga-virtio FPGA.
//!
//! The device is the synthesizable RTL under `sim/rtl`, compiled by Verilator (see `build.rs`)
//! with a thin C++ shim (`csrc/fv_shim.cpp`) that turns MMIO, DMA and interrupts into a plain C
//! ABI. This crate owns time and memory:
//!
//! - [`Simulator`]: lockstep, deterministic time. The C++ side runs cycles and returns on events
//!   (DMA request, MMIO read data); Rust answers DMA from guest memory through an [`IommuMap`]
//!   with permissions, under a latency and bandwidth model ([`DmaTiming`]). MSI-X messages
//!   (DMA writes to the MSI window) go to eventfds.
//! - [`SimDevice`]: the simulator behind the same [`RegisterIo`](fpga_virtio_hw::RegisterIo) seam as
//!   a VFIO BAR mapping; every MMIO access advances simulated time.
//! - [`GuestMemory`]: guest memory on a memfd (vm-memory), shareable with another process.
//! - `testing` (feature `test-utils`): a split-ring virtio driver for tests.
//!
//! Set `FV_SIM_TRACE=/path/name.fst` to write an FST waveform of every simulator the process
//! creates (`name.fst`, `name.1.fst`, ...), for GTKWave or Surfer.

mod ffi;
pub mod flash;
mod iommu;
mod memory;
mod model;
mod simulator;

#[cfg(feature = "test-utils")]
pub mod testing;

pub use flash::{FlashModel, FlashTiming};
pub use iommu::{IommuError, IommuMap, Perm};
pub use memory::{GuestMemory, MemoryError};
pub use model::{dma_bytes, Model, ModelError};
pub use simulator::{
    DmaFault, DmaStats, DmaTiming, MsiEvent, PacketStats, SimConfig, SimDevice, SimError,
    Simulator, StoreFault, StoreStats, StoreTiming, MSI_WINDOW,
};
