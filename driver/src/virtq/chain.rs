//! Descriptor chains as segment lists, validated once.
//!
//! The software engines work on a chain's buffers as a list of [`Segment`]s. [`walk`] follows a
//! chain from its head (a punted request's, or one popped from a CPU-owned queue's avail ring)
//! with the limits the RTL walk applies, so the same chain fails the same way on both paths: at
//! most `queue_size` descriptors per table, one level of indirection with a table of at most
//! [`MAX_INDIRECT_BYTES`], indices inside the table, device-readable before device-writable, no
//! zero length, at most [`MAX_CHAIN_BYTES`] in all, and every buffer and indirect table inside
//! the function's [`DmaWindows`] — checked before anything of the chain is used.

use super::{
    DmaWindows, MAX_CHAIN_BYTES, MAX_INDIRECT_BYTES, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
};
use fpga_virtio_hw::formats::VirtqDesc;
use fpga_virtio_hw::regs::QueueError;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// One guest buffer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

/// Why a chain was refused. The guest broke the ring protocol: the queue goes to its error state
/// with [`ChainError::cause`], the cause the RTL gives for the same chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("descriptor index {index} outside a table of {size}")]
    BadIndex { index: u16, size: u32 },
    #[error("chain longer than {limit} descriptors (a loop?)")]
    Loop { limit: u32 },
    #[error("chain describes more than {limit} bytes")]
    TooManyBytes { limit: u64 },
    #[error("descriptor table at {addr:#x} not readable")]
    Unreadable { addr: u64 },
    #[error("bad indirect descriptor {index} (len {len}: nested, not negotiated, misaligned or too long)")]
    BadIndirect { index: u16, len: u32 },
    #[error("zero-length descriptor {index}")]
    ZeroLength { index: u16 },
    #[error("device-readable descriptor {index} after a device-writable one")]
    BadDirection { index: u16 },
    #[error("descriptor {index}: [{addr:#x}, +{len:#x}) is outside the function's DMA windows")]
    OutsideWindow { index: u16, addr: u64, len: u32 },
}

impl ChainError {
    /// The queue error cause (the register map's `queue_error`).
    pub fn cause(&self) -> QueueError {
        match self {
            ChainError::BadIndex { .. } => QueueError::BadIndex,
            ChainError::Loop { .. } => QueueError::DescLoop,
            ChainError::TooManyBytes { .. } => QueueError::ChainTooLong,
            ChainError::Unreadable { .. } => QueueError::DmaFault,
            ChainError::BadIndirect { .. } => QueueError::BadIndirect,
            ChainError::ZeroLength { .. } => QueueError::ZeroLen,
            ChainError::BadDirection { .. } => QueueError::BadDirection,
            ChainError::OutsideWindow { .. } => QueueError::DmaWindow,
        }
    }
}

fn read_desc(mem: &GuestMemoryMmap, table: u64, i: u32) -> Result<VirtqDesc, ChainError> {
    let at = table
        .checked_add(u64::from(i) * VirtqDesc::SIZE as u64)
        .ok_or(ChainError::Unreadable { addr: table })?;
    let mut d = [0u8; VirtqDesc::SIZE];
    mem.read_slice(&mut d, GuestAddress(at))
        .map_err(|_| ChainError::Unreadable { addr: at })?;
    Ok(VirtqDesc::from_le_bytes(&d))
}

/// Walk the chain at `head` of the descriptor table at `desc_table` (a queue of `queue_size`),
/// every buffer inside `windows`.
pub fn walk(
    mem: &GuestMemoryMmap,
    windows: &DmaWindows,
    desc_table: u64,
    queue_size: u16,
    head: u16,
    indirect_ok: bool,
) -> Result<Vec<Segment>, ChainError> {
    let mut segs = Vec::new();
    let mut table = desc_table;
    let mut size = u32::from(queue_size);
    let mut idx = u32::from(head);
    let mut in_indirect = false;
    let mut count = 0u32;
    let mut bytes = 0u64;
    loop {
        if idx >= size {
            return Err(ChainError::BadIndex {
                index: idx as u16,
                size,
            });
        }
        count += 1;
        if count > size {
            return Err(ChainError::Loop { limit: size });
        }
        let d = read_desc(mem, table, idx)?;
        let index = idx as u16;
        if d.flags & VRING_DESC_F_INDIRECT != 0 {
            if !indirect_ok
                || in_indirect
                || d.flags & VRING_DESC_F_NEXT != 0
                || d.len == 0
                || d.len % 16 != 0
                || d.len > MAX_INDIRECT_BYTES
                || d.addr % 16 != 0
            {
                return Err(ChainError::BadIndirect { index, len: d.len });
            }
            if !windows.contains(d.addr, u64::from(d.len)) {
                return Err(ChainError::OutsideWindow {
                    index,
                    addr: d.addr,
                    len: d.len,
                });
            }
            in_indirect = true;
            table = d.addr;
            size = d.len / 16;
            count = 0;
            idx = 0;
            continue;
        }
        if d.len == 0 {
            return Err(ChainError::ZeroLength { index });
        }
        let write = d.flags & VRING_DESC_F_WRITE != 0;
        if !write && segs.last().is_some_and(|s: &Segment| s.write) {
            return Err(ChainError::BadDirection { index });
        }
        if d.flags & VRING_DESC_F_NEXT != 0 && u32::from(d.next) >= size {
            return Err(ChainError::BadIndex {
                index: d.next,
                size,
            });
        }
        if !windows.contains(d.addr, u64::from(d.len)) {
            return Err(ChainError::OutsideWindow {
                index,
                addr: d.addr,
                len: d.len,
            });
        }
        bytes += u64::from(d.len);
        if bytes > MAX_CHAIN_BYTES {
            return Err(ChainError::TooManyBytes {
                limit: MAX_CHAIN_BYTES,
            });
        }
        segs.push(Segment {
            addr: d.addr,
            len: d.len,
            write,
        });
        if d.flags & VRING_DESC_F_NEXT == 0 {
            return Ok(segs);
        }
        idx = u32::from(d.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F_NEXT: u16 = VRING_DESC_F_NEXT;
    const F_WRITE: u16 = VRING_DESC_F_WRITE;
    const F_INDIRECT: u16 = VRING_DESC_F_INDIRECT;

    fn all() -> DmaWindows {
        DmaWindows::new(&[(0, 1 << 20)]).unwrap()
    }

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    fn put(mem: &GuestMemoryMmap, table: u64, i: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        mem.write_slice(&d, GuestAddress(table + i * 16)).unwrap();
    }

    #[test]
    fn direct_and_indirect_chains() {
        let m = mem();
        put(&m, 0x1000, 3, 0x8000, 16, F_NEXT, 5);
        put(&m, 0x1000, 5, 0x9000, 1, F_WRITE, 0);
        let segs = walk(&m, &all(), 0x1000, 8, 3, true).unwrap();
        assert_eq!(
            segs,
            vec![
                Segment {
                    addr: 0x8000,
                    len: 16,
                    write: false
                },
                Segment {
                    addr: 0x9000,
                    len: 1,
                    write: true
                }
            ]
        );
        put(&m, 0x1000, 0, 0x2000, 32, F_INDIRECT, 0);
        put(&m, 0x2000, 0, 0x8000, 16, F_NEXT, 1);
        put(&m, 0x2000, 1, 0x9000, 512, F_WRITE, 0);
        assert_eq!(walk(&m, &all(), 0x1000, 8, 0, true).unwrap().len(), 2);
        assert!(matches!(
            walk(&m, &all(), 0x1000, 8, 0, false),
            Err(ChainError::BadIndirect { .. })
        ));
    }

    #[test]
    fn broken_chains_are_refused() {
        let m = mem();
        // A loop.
        put(&m, 0x1000, 0, 0x8000, 16, F_NEXT, 1);
        put(&m, 0x1000, 1, 0x8000, 16, F_NEXT, 0);
        assert_eq!(
            walk(&m, &all(), 0x1000, 4, 0, true),
            Err(ChainError::Loop { limit: 4 })
        );
        // Index outside the table.
        put(&m, 0x1000, 1, 0x8000, 16, F_NEXT, 9);
        assert!(matches!(
            walk(&m, &all(), 0x1000, 4, 0, true),
            Err(ChainError::BadIndex { .. })
        ));
        assert!(matches!(
            walk(&m, &all(), 0x1000, 4, 7, true),
            Err(ChainError::BadIndex { .. })
        ));
        // Readable after writable.
        put(&m, 0x1000, 0, 0x8000, 16, F_NEXT | F_WRITE, 1);
        put(&m, 0x1000, 1, 0x8000, 16, 0, 0);
        assert_eq!(
            walk(&m, &all(), 0x1000, 4, 0, true),
            Err(ChainError::BadDirection { index: 1 })
        );
        // Zero length.
        put(&m, 0x1000, 0, 0x8000, 0, 0, 0);
        assert!(matches!(
            walk(&m, &all(), 0x1000, 4, 0, true),
            Err(ChainError::ZeroLength { .. })
        ));
        // Table outside memory.
        assert!(matches!(
            walk(&m, &all(), 1 << 30, 4, 0, true),
            Err(ChainError::Unreadable { .. })
        ));
        // Nested indirect.
        put(&m, 0x1000, 0, 0x2000, 16, F_INDIRECT, 0);
        put(&m, 0x2000, 0, 0x3000, 16, F_INDIRECT, 0);
        assert!(matches!(
            walk(&m, &all(), 0x1000, 4, 0, true),
            Err(ChainError::BadIndirect { .. })
        ));
    }

    #[test]
    fn buffers_and_tables_outside_the_windows_are_refused() {
        let m = mem();
        // The tenant owns [0x8000, 0x10000); the rest of memory is the backend's.
        let w = DmaWindows::new(&[(0x8000, 0x1_0000)]).unwrap();
        put(&m, 0x1000, 0, 0x8000, 16, F_NEXT, 1);
        put(&m, 0x1000, 1, 0x9000, 1, F_WRITE, 0);
        assert_eq!(walk(&m, &w, 0x1000, 4, 0, true).unwrap().len(), 2);
        // A data buffer on the backend's memory (say, the punt ring).
        put(&m, 0x1000, 1, 0x4000, 512, F_WRITE, 0);
        assert_eq!(
            walk(&m, &w, 0x1000, 4, 0, true),
            Err(ChainError::OutsideWindow {
                index: 1,
                addr: 0x4000,
                len: 512
            })
        );
        // One that starts inside and runs out of the window.
        put(&m, 0x1000, 1, 0xf000, 0x1001, F_WRITE, 0);
        assert!(matches!(
            walk(&m, &w, 0x1000, 4, 0, true),
            Err(ChainError::OutsideWindow { .. })
        ));
        // One whose end wraps the address space.
        put(&m, 0x1000, 1, u64::MAX - 0xff, 0x200, F_WRITE, 0);
        assert_eq!(
            walk(&m, &w, 0x1000, 4, 0, true).map_err(|e| e.cause()),
            Err(QueueError::DmaWindow)
        );
        // An indirect table outside the windows is not even read.
        put(&m, 0x1000, 0, 0x2000, 32, F_INDIRECT, 0);
        put(&m, 0x2000, 0, 0x8000, 16, F_NEXT, 1);
        put(&m, 0x2000, 1, 0x9000, 1, F_WRITE, 0);
        assert!(matches!(
            walk(&m, &w, 0x1000, 4, 0, true),
            Err(ChainError::OutsideWindow { addr: 0x2000, .. })
        ));
    }

    #[test]
    fn byte_and_indirect_limits_match_the_rtl() {
        let m = mem();
        let w = DmaWindows::new(&[(0, u64::MAX)]).unwrap();
        // The RTL blk engine's wrapping sums (issue 15): 0xFFFFFE00 + 0x400 + 0xFFFFFFFF + 0x201.
        let lens = [0xFFFF_FE00u32, 0x400, 0xFFFF_FFFF, 0x201];
        put(&m, 0x1000, 0, 0x8000, 16, F_NEXT, 1);
        for (i, len) in lens.iter().enumerate() {
            put(
                &m,
                0x1000,
                i as u64 + 1,
                0x10_0000,
                *len,
                F_NEXT | F_WRITE,
                i as u16 + 2,
            );
        }
        put(&m, 0x1000, 5, 0x9000, 1, F_WRITE, 0);
        assert_eq!(
            walk(&m, &w, 0x1000, 8, 0, true),
            Err(ChainError::TooManyBytes {
                limit: MAX_CHAIN_BYTES
            })
        );
        // Exactly the limit is fine.
        put(
            &m,
            0x1000,
            1,
            0x10_0000,
            (MAX_CHAIN_BYTES - 17) as u32,
            F_NEXT | F_WRITE,
            5,
        );
        assert_eq!(walk(&m, &w, 0x1000, 8, 0, true).unwrap().len(), 3);
        // An indirect table longer than the largest queue.
        put(
            &m,
            0x1000,
            0,
            0x2000,
            MAX_INDIRECT_BYTES + 16,
            F_INDIRECT,
            0,
        );
        assert_eq!(
            walk(&m, &w, 0x1000, 8, 0, true).map_err(|e| e.cause()),
            Err(QueueError::BadIndirect)
        );
    }
}
