//! The seam between the vhost-user plumbing, which every device type shares (the protocol
//! handler, memory table, vrings, kick/call/error events, in-flight region, the card and its
//! runtime: [`crate::backend`], [`crate::device`]), and what a device type adds: its virtio
//! features, its configuration space and the function the card serves. virtio-blk is
//! [`crate::blk::Blk`]; virtio-net goes in beside it.

use fpga_virtio_driver::device::Function;
use fpga_virtio_driver::virtq::DmaWindows;
use fpga_virtio_storage::BlockStore;
use std::sync::Arc;

/// One vhost-user device type.
pub trait DeviceType: Send + Sync + std::fmt::Debug {
    /// The command's name, for the log ("vhost-user-blk").
    fn name(&self) -> &'static str;

    /// The virtio features a frontend may take (VHOST_USER_F_PROTOCOL_FEATURES is added by the
    /// plumbing).
    fn features(&self) -> u64;

    /// `size` bytes of the configuration space at `offset` (GET_CONFIG), for a device of
    /// `queues` queues of up to `queue_size` entries: zeros past its end, at most 256 bytes.
    fn config(&self, queues: u16, queue_size: u16, offset: u32, size: u32) -> Vec<u8>;

    /// The function the card runs as `func` for a frontend that accepted `features`, whose
    /// buffers must lie in `windows` (the guest's memory).
    fn function(&self, func: u8, features: u64, windows: DmaWindows) -> Function;

    /// The block store behind the card's storage port, if the type has one (the simulator
    /// attaches it; a card's storage port is the card's).
    fn store(&self) -> Option<Arc<dyn BlockStore>> {
        None
    }
}

/// `size` bytes of `bytes` from `offset`: zeros past the end (as a device with a shorter
/// configuration space reads), at most 256 bytes (the vhost-user limit).
pub fn config_read(bytes: &[u8], offset: u32, size: u32) -> Vec<u8> {
    (0..size.min(256))
        .map(|k| {
            offset
                .checked_add(k)
                .and_then(|i| bytes.get(i as usize).copied())
                .unwrap_or(0)
        })
        .collect()
}
