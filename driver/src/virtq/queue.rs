//! A queue's rings as the runtime knows them ([`QueueInfo`]), and the glue to virtio-queue for
//! the queues the CPU serves.

use fpga_virtio_hw::formats::VirtqUsedElem;
use std::sync::atomic::Ordering;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

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

/// Publish `elems` (head, used length) as one batch: every element written, then the used idx
/// stored once (Release). A driver never sees part of the batch, so the buffers of a merged RX
/// frame reach it together, as vhost's `vhost_add_used_n` hands them over (virtio-queue's
/// `add_used` stores the idx after each element: a driver reaping meanwhile would find a frame
/// with buffers missing, which Linux's virtio_net drops as a length error).
pub fn add_used_batch(
    queue: &mut Queue,
    mem: &GuestMemoryMmap,
    elems: &[(u16, u32)],
) -> Result<(), virtio_queue::Error> {
    let size = queue.size();
    let first = queue.next_used();
    for (i, &(head, len)) in elems.iter().enumerate() {
        if head >= size {
            return Err(virtio_queue::Error::InvalidDescriptorIndex);
        }
        let slot = u64::from(first.wrapping_add(i as u16) % size);
        let addr = GuestAddress(queue.used_ring())
            .checked_add(4 + 8 * slot)
            .ok_or(virtio_queue::Error::AddressOverflow)?;
        let elem = VirtqUsedElem {
            id: head.into(),
            len,
        };
        mem.write_slice(&elem.to_le_bytes(), addr)
            .map_err(virtio_queue::Error::GuestMemory)?;
    }
    let next = first.wrapping_add(elems.len() as u16);
    let idx = GuestAddress(queue.used_ring())
        .checked_add(2)
        .ok_or(virtio_queue::Error::AddressOverflow)?;
    mem.store(u16::to_le(next), idx, Ordering::Release)
        .map_err(virtio_queue::Error::GuestMemory)?;
    queue.set_next_used(next);
    Ok(())
}

/// Whether the guest wants an interrupt for what was published since the last decision
/// (`*signalled`, the used idx then; updated here): with EVENT_IDX, whether `used_event` lies in
/// the published span (Linux's `vring_need_event`); otherwise the avail ring's NO_INTERRUPT flag
/// (virtio-queue's `needs_notification` ignores it, and counts only what its own `add_used`
/// published).
pub fn wants_interrupt(queue: &Queue, mem: &GuestMemoryMmap, signalled: &mut u16) -> bool {
    let new = queue.next_used();
    let old = std::mem::replace(signalled, new);
    // The used idx is visible before the guest's event index or flags are read.
    std::sync::atomic::fence(Ordering::SeqCst);
    if queue.event_idx_enabled() {
        // used_event sits after the avail ring's entries.
        let at = GuestAddress(queue.avail_ring()).checked_add(4 + 2 * u64::from(queue.size()));
        let Some(Ok(event)) = at.map(|a| mem.load::<u16>(a, Ordering::Relaxed)) else {
            return true;
        };
        let event = u16::from_le(event);
        return new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old);
    }
    let flags: u16 = mem
        .load(GuestAddress(queue.avail_ring()), Ordering::Acquire)
        .unwrap_or(0);
    flags & 1 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn ring(event_idx: bool) -> (GuestMemoryMmap, Queue) {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        let info = QueueInfo {
            func: 0,
            vq: 0,
            desc: 0x1000,
            avail: 0x2000,
            used: 0x3000,
            size: 16,
            indirect: false,
            event_idx,
            notification_data: false,
        };
        (mem, split_queue(&info, 0, 0).unwrap())
    }

    #[test]
    fn a_batch_is_written_whole_then_published_once() {
        let (mem, mut q) = ring(false);
        // 20 elements over a 16-entry ring: slots wrap.
        for round in 0..20u16 {
            let elems: Vec<(u16, u32)> = (0..3).map(|i| (i, u32::from(round) * 10 + 1)).collect();
            add_used_batch(&mut q, &mem, &elems).unwrap();
            let idx: u16 = mem.read_obj(GuestAddress(0x3002)).unwrap();
            assert_eq!(idx, (round + 1) * 3);
            for (i, &(head, len)) in elems.iter().enumerate() {
                let slot = u64::from((round * 3 + i as u16) % 16);
                let mut b = [0u8; 8];
                mem.read_slice(&mut b, GuestAddress(0x3004 + 8 * slot))
                    .unwrap();
                let e = VirtqUsedElem::from_le_bytes(&b);
                assert_eq!((e.id, e.len), (u32::from(head), len));
            }
        }
        // A head outside the ring is refused and publishes nothing.
        assert!(add_used_batch(&mut q, &mem, &[(16, 0)]).is_err());
        assert_eq!(q.next_used(), 60);
    }

    /// A driver polling the used idx meanwhile sees only batch boundaries (virtio-queue's
    /// `add_used` stores the idx per element: a merged frame's first buffer alone would show).
    #[test]
    fn a_polling_driver_never_sees_part_of_a_batch() {
        let (mem, mut q) = ring(false);
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (mem, stop) = (mem.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Acquire) {
                    let idx: u16 = mem.load(GuestAddress(0x3002), Ordering::Acquire).unwrap();
                    seen.insert(idx);
                }
                seen
            })
        };
        for _ in 0..20_000 {
            add_used_batch(&mut q, &mem, &[(0, 1), (1, 1), (2, 1), (3, 1)]).unwrap();
        }
        stop.store(true, Ordering::Release);
        let seen = watcher.join().unwrap();
        assert!(seen.iter().all(|i| i % 4 == 0), "{seen:?}");
    }

    #[test]
    fn event_idx_interrupts_when_used_event_was_passed() {
        let (mem, mut q) = ring(true);
        let used_event = GuestAddress(0x2000 + 4 + 2 * 16);
        let mut signalled = 0u16;
        // The driver wants an interrupt once entry 2 is used.
        mem.write_obj(2u16.to_le(), used_event).unwrap();
        add_used_batch(&mut q, &mem, &[(0, 0), (1, 0)]).unwrap();
        assert!(!wants_interrupt(&q, &mem, &mut signalled));
        add_used_batch(&mut q, &mem, &[(2, 0), (3, 0)]).unwrap();
        assert!(wants_interrupt(&q, &mem, &mut signalled));
        // Already signalled for that span: nothing more until used_event moves.
        add_used_batch(&mut q, &mem, &[(4, 0)]).unwrap();
        assert!(!wants_interrupt(&q, &mem, &mut signalled));
        // Across the u16 wrap.
        q.set_next_used(0xfffe);
        signalled = 0xfffe;
        mem.write_obj(0xffffu16.to_le(), used_event).unwrap();
        add_used_batch(&mut q, &mem, &[(0, 0), (1, 0), (2, 0)]).unwrap();
        assert_eq!(q.next_used(), 1);
        assert!(wants_interrupt(&q, &mem, &mut signalled));
    }

    #[test]
    fn without_event_idx_the_no_interrupt_flag_decides() {
        let (mem, mut q) = ring(false);
        let mut signalled = 0u16;
        add_used_batch(&mut q, &mem, &[(0, 0)]).unwrap();
        assert!(wants_interrupt(&q, &mem, &mut signalled));
        mem.write_obj(1u16.to_le(), GuestAddress(0x2000)).unwrap();
        add_used_batch(&mut q, &mem, &[(1, 0)]).unwrap();
        assert!(!wants_interrupt(&q, &mem, &mut signalled));
    }
}
