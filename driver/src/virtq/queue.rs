//! A queue's rings as the runtime knows them ([`QueueInfo`]), and the glue to virtio-queue for
//! the queues the CPU serves.

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Where a queue's rings are (IOVA = address in the runtime's view of guest memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    pub func: u8,
    /// The queue's number in its function (the virtio queue index: a net function's RX and
    /// TX queues, a blk function's request queues).
    pub vq: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub size: u16,
    pub indirect: bool,
    pub event_idx: bool,
    /// VIRTIO_F_NOTIFICATION_DATA: doorbells carry the avail idx (the FPGA then skips a read).
    pub notification_data: bool,
}

/// virtio-queue's state of the split ring `info`, ready, at (`next_avail`, `next_used`).
pub fn split_queue(
    info: &QueueInfo,
    next_avail: u16,
    next_used: u16,
) -> Result<Queue, virtio_queue::Error> {
    let mut vq = Queue::new(info.size)?;
    vq.try_set_size(info.size)?;
    vq.try_set_desc_table_address(GuestAddress(info.desc))?;
    vq.try_set_avail_ring_address(GuestAddress(info.avail))?;
    vq.try_set_used_ring_address(GuestAddress(info.used))?;
    vq.set_event_idx(info.event_idx);
    vq.set_next_avail(next_avail);
    vq.set_next_used(next_used);
    vq.set_ready(true);
    Ok(vq)
}

/// Whether the guest wants an interrupt for what was just published: EVENT_IDX through
/// virtio-queue (used_event), otherwise the avail ring's NO_INTERRUPT flag (virtio-queue's
/// `needs_notification` ignores it).
pub fn wants_interrupt(queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
    if queue.event_idx_enabled() {
        return queue.needs_notification(mem).unwrap_or(true);
    }
    let flags: u16 = mem
        .load(
            GuestAddress(queue.avail_ring()),
            std::sync::atomic::Ordering::Acquire,
        )
        .unwrap_or(0);
    flags & 1 == 0
}
