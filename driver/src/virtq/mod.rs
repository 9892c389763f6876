//! What every device type's CPU path shares: descriptor chains walked and validated once
//! ([`chain`]), the tenant's DMA windows they must stay inside ([`window`]), the done log that
//! lets a restarted runtime finish what a dead one left in flight ([`done_log`]), and the rings
//! of a queue with the virtio-queue glue for the queues the CPU serves ([`queue`]).

pub mod chain;
pub mod done_log;
pub mod queue;
pub mod window;

pub use chain::{ChainError, Segment};
pub use done_log::DoneLogError;
pub use queue::QueueInfo;
pub use window::{DmaWindows, WindowError};

/// Virtio descriptor flags: the register map's (`hw/regmap.toml`, which the RTL and the test
/// driver use too), checked against the virtio headers.
pub const VRING_DESC_F_NEXT: u16 = 1 << fpga_virtio_hw::regs::VIRTQ_DESC_F_NEXT_BIT;
pub const VRING_DESC_F_WRITE: u16 = 1 << fpga_virtio_hw::regs::VIRTQ_DESC_F_WRITE_BIT;
pub const VRING_DESC_F_INDIRECT: u16 = 1 << fpga_virtio_hw::regs::VIRTQ_DESC_F_INDIRECT_BIT;
const _: () = assert!(
    VRING_DESC_F_NEXT as u32 == virtio_bindings::virtio_ring::VRING_DESC_F_NEXT
        && VRING_DESC_F_WRITE as u32 == virtio_bindings::virtio_ring::VRING_DESC_F_WRITE
        && VRING_DESC_F_INDIRECT as u32 == virtio_bindings::virtio_ring::VRING_DESC_F_INDIRECT,
    "the register map's descriptor flags are virtio's"
);

/// Most bytes one chain may describe, on both paths (`MAX_CHAIN_BYTES` in the register map).
pub const MAX_CHAIN_BYTES: u64 = fpga_virtio_hw::regs::MAX_CHAIN_BYTES as u64;

/// Longest indirect table the engines take (bytes): 32768 descriptors, the largest queue.
pub const MAX_INDIRECT_BYTES: u32 = 0x8_0000;
