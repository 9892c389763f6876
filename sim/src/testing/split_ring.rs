//! A split-ring virtio driver for tests: the guest side of a virtqueue in guest memory.
//!
//! Chains are built from a free list of descriptors, published with a release store of
//! avail->idx, kicked when EVENT_IDX (avail_event) or VRING_USED_F_NO_NOTIFY allow, and reaped
//! from the used ring with wrap-around; each used id must be a chain that is in flight.
//! virtio-queue's MockSplitQueue cannot do this (see ../shared notes); this one can.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub const VRING_DESC_F_NEXT: u16 = 1 << fpga_virtio_hw::regs::VIRTQ_DESC_F_NEXT_BIT;
pub const VRING_DESC_F_WRITE: u16 = 1 << fpga_virtio_hw::regs::VIRTQ_DESC_F_WRITE_BIT;
pub const VRING_DESC_F_INDIRECT: u16 = 1 << fpga_virtio_hw::regs::VIRTQ_DESC_F_INDIRECT_BIT;
const VRING_USED_F_NO_NOTIFY: u16 = 1;
const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// One buffer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub addr: u64,
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    #[error("queue size {0} is not a power of two in 1..=32768")]
    BadSize(u32),
    #[error("a chain needs at least one buffer")]
    Empty,
    #[error("{need} descriptors needed, {free} free")]
    Full { need: usize, free: usize },
    #[error("guest memory access at {0:#x} failed")]
    Memory(u64),
    #[error("the device used id {id}, which is not a chain in flight")]
    BogusId { id: u32 },
    #[error("the device moved used->idx by {moved}, more than the {in_flight} chains in flight")]
    UsedJump { moved: u16, in_flight: usize },
}

/// The driver side of one split virtqueue.
#[derive(Debug)]
pub struct SplitRing {
    mem: GuestMemoryMmap,
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    free: Vec<u16>,
    /// Head -> descriptors of the chain, for freeing.
    in_flight: BTreeMap<u16, Vec<u16>>,
    avail_idx: u16,
    /// avail_idx at the last kick decision.
    kicked_idx: u16,
    last_used: u16,
    event_idx: bool,
}

impl SplitRing {
    /// Bytes the rings of a queue of `size` take at `base` (desc, avail, used, 4 KiB aligned).
    pub fn footprint(size: u16) -> u64 {
        let s = u64::from(size);
        let desc = 16 * s;
        let avail = (6 + 2 * s).next_multiple_of(4);
        let used = 6 + 8 * s;
        (desc + avail + used).next_multiple_of(4096)
    }

    /// A ring of `size` entries laid out at guest physical `base` (16-byte aligned), zeroed.
    pub fn new(
        mem: &GuestMemoryMmap,
        base: u64,
        size: u32,
        event_idx: bool,
    ) -> Result<Self, RingError> {
        if size == 0 || size > 32768 || !size.is_power_of_two() {
            return Err(RingError::BadSize(size));
        }
        let size16 = size as u16;
        let s = u64::from(size);
        let desc = base;
        let avail = desc + 16 * s;
        let used = (avail + 6 + 2 * s).next_multiple_of(4);
        let zero = vec![0u8; Self::footprint(size16) as usize];
        mem.write_slice(&zero, GuestAddress(base))
            .map_err(|_| RingError::Memory(base))?;
        Ok(SplitRing {
            mem: mem.clone(),
            size: size16,
            desc,
            avail,
            used,
            free: (0..size16).rev().collect(),
            in_flight: BTreeMap::new(),
            avail_idx: 0,
            kicked_idx: 0,
            last_used: 0,
            event_idx,
        })
    }

    pub fn size(&self) -> u16 {
        self.size
    }
    pub fn desc_addr(&self) -> u64 {
        self.desc
    }
    pub fn avail_addr(&self) -> u64 {
        self.avail
    }
    pub fn used_addr(&self) -> u64 {
        self.used
    }
    pub fn avail_idx(&self) -> u16 {
        self.avail_idx
    }
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    fn w<T: vm_memory::ByteValued>(&self, addr: u64, v: T) -> Result<(), RingError> {
        self.mem
            .write_obj(v, GuestAddress(addr))
            .map_err(|_| RingError::Memory(addr))
    }

    fn r<T: vm_memory::ByteValued>(&self, addr: u64) -> Result<T, RingError> {
        self.mem
            .read_obj(GuestAddress(addr))
            .map_err(|_| RingError::Memory(addr))
    }

    /// Write descriptor `i` of the table at `table`.
    pub fn write_desc(
        &self,
        table: u64,
        i: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) -> Result<(), RingError> {
        let at = table + 16 * u64::from(i);
        self.w(at, addr)?;
        self.w(at + 8, len)?;
        self.w(at + 12, flags)?;
        self.w(at + 14, next)
    }

    /// Add a chain of `bufs` (device-readable first) and put it in the avail ring (not yet
    /// published). Returns its head.
    pub fn add_chain(&mut self, bufs: &[Buffer]) -> Result<u16, RingError> {
        if bufs.is_empty() {
            return Err(RingError::Empty);
        }
        if bufs.len() > self.free.len() {
            return Err(RingError::Full {
                need: bufs.len(),
                free: self.free.len(),
            });
        }
        let ids: Vec<u16> = (0..bufs.len())
            .map(|_| self.free.pop().unwrap_or(0))
            .collect();
        for (k, b) in bufs.iter().enumerate() {
            let mut flags = if b.write { VRING_DESC_F_WRITE } else { 0 };
            let next = ids.get(k + 1).copied().unwrap_or(0);
            if k + 1 < bufs.len() {
                flags |= VRING_DESC_F_NEXT;
            }
            self.write_desc(self.desc, ids[k], b.addr, b.len, flags, next)?;
        }
        self.push_avail(ids[0], ids)
    }

    /// Add a chain as one INDIRECT descriptor pointing at a table of `bufs` written at `table`
    /// (16-byte aligned guest memory the caller owns).
    pub fn add_indirect(&mut self, table: u64, bufs: &[Buffer]) -> Result<u16, RingError> {
        if bufs.is_empty() {
            return Err(RingError::Empty);
        }
        let head = self
            .free
            .pop()
            .ok_or(RingError::Full { need: 1, free: 0 })?;
        for (k, b) in bufs.iter().enumerate() {
            let mut flags = if b.write { VRING_DESC_F_WRITE } else { 0 };
            if k + 1 < bufs.len() {
                flags |= VRING_DESC_F_NEXT;
            }
            self.write_desc(table, k as u16, b.addr, b.len, flags, (k + 1) as u16)?;
        }
        self.write_desc(
            self.desc,
            head,
            table,
            16 * bufs.len() as u32,
            VRING_DESC_F_INDIRECT,
            0,
        )?;
        self.push_avail(head, vec![head])
    }

    /// Put an arbitrary head in the avail ring (malformed-chain tests).
    pub fn push_raw_head(&mut self, head: u16) -> Result<(), RingError> {
        let slot = self.avail + 4 + 2 * u64::from(self.avail_idx % self.size);
        self.w(slot, head)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Ok(())
    }

    fn push_avail(&mut self, head: u16, ids: Vec<u16>) -> Result<u16, RingError> {
        let slot = self.avail + 4 + 2 * u64::from(self.avail_idx % self.size);
        self.w(slot, head)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.in_flight.insert(head, ids);
        Ok(head)
    }

    /// Publish the avail entries added so far (release store of avail->idx), and say whether
    /// the device wants a kick (EVENT_IDX: avail_event; otherwise !VRING_USED_F_NO_NOTIFY).
    pub fn publish(&mut self) -> Result<bool, RingError> {
        self.publish_idx(self.avail_idx)
    }

    /// Store any value as avail->idx (malformed-ring tests), with the same kick decision.
    pub fn publish_idx(&mut self, idx: u16) -> Result<bool, RingError> {
        self.mem
            .store(idx, GuestAddress(self.avail + 2), Ordering::Release)
            .map_err(|_| RingError::Memory(self.avail + 2))?;
        std::sync::atomic::fence(Ordering::SeqCst);
        let old = self.kicked_idx;
        self.kicked_idx = idx;
        if self.event_idx {
            let event: u16 = self
                .mem
                .load(
                    GuestAddress(self.used + 4 + 8 * u64::from(self.size)),
                    Ordering::Acquire,
                )
                .map_err(|_| RingError::Memory(self.used))?;
            Ok(need_event(event, idx, old))
        } else {
            let flags: u16 = self
                .mem
                .load(GuestAddress(self.used), Ordering::Acquire)
                .map_err(|_| RingError::Memory(self.used))?;
            Ok(flags & VRING_USED_F_NO_NOTIFY == 0)
        }
    }

    /// Ask for (or suppress) interrupts: EVENT_IDX sets used_event, otherwise avail->flags.
    pub fn set_interrupt(&mut self, enabled: bool, used_event: u16) -> Result<(), RingError> {
        if self.event_idx {
            self.w(self.avail + 4 + 2 * u64::from(self.size), used_event)
        } else {
            self.w(
                self.avail,
                if enabled {
                    0u16
                } else {
                    VRING_AVAIL_F_NO_INTERRUPT
                },
            )
        }
    }

    /// Whether the device published used entries not reaped yet.
    pub fn has_used(&self) -> Result<bool, RingError> {
        Ok(self.used_idx()? != self.last_used)
    }

    /// The device's used->idx (acquire).
    pub fn used_idx(&self) -> Result<u16, RingError> {
        self.mem
            .load(GuestAddress(self.used + 2), Ordering::Acquire)
            .map_err(|_| RingError::Memory(self.used + 2))
    }

    /// Reap every used entry: (head, used length), oldest first; their descriptors go back to the
    /// free list. An id that is not in flight is an error.
    pub fn reap(&mut self) -> Result<Vec<(u16, u32)>, RingError> {
        let idx = self.used_idx()?;
        let moved = idx.wrapping_sub(self.last_used);
        if usize::from(moved) > self.in_flight.len() {
            return Err(RingError::UsedJump {
                moved,
                in_flight: self.in_flight.len(),
            });
        }
        let mut out = Vec::new();
        while self.last_used != idx {
            let at = self.used + 4 + 8 * u64::from(self.last_used % self.size);
            let id: u32 = self.r(at)?;
            let len: u32 = self.r(at + 4)?;
            let head = u16::try_from(id).map_err(|_| RingError::BogusId { id })?;
            let ids = self
                .in_flight
                .remove(&head)
                .ok_or(RingError::BogusId { id })?;
            // Like Linux's virtio_ring, a freed chain goes back to the head of the free list in
            // its own order, so the next chain gets the same (often consecutive) descriptors.
            self.free.extend(ids.iter().rev());
            out.push((head, len));
            self.last_used = self.last_used.wrapping_add(1);
        }
        Ok(out)
    }
}

/// vring_need_event from the virtio spec.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}
