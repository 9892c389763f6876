//! fpga-virtio user-space driver.
//!
//! Everything here talks to the device through [`fpga_virtio_hw::RegisterIo`], so the same code
//! runs over a VFIO BAR mapping ([`mmio::MappedBars`]), the simulator and
//! [`fpga_virtio_hw::mock::MockRegisters`].
//!
//! - [`mmio`]: BARs mapped into the process (memmap2) with volatile 32-bit access.
//! - [`probe`]: walk the self-describing register blocks and check their versions.
//! - [`runtime`]: the FPGA/CPU split, punt and completion rings, CPU workers, statistics; it
//!   knows device types only through [`device::DeviceEngine`].
//! - [`virtq`]: what every device type shares (chain walker, DMA windows, done log, queues).
//! - [`blk`], [`net`], [`echo`]: the device types' CPU engines (the FPGA engines' reference models).

pub mod blk;
pub mod device;
pub mod echo;
pub mod mmio;
pub mod net;
pub mod probe;
pub mod runtime;
pub mod vfio;
pub mod virtq;

pub use fpga_virtio_hw as hw;
