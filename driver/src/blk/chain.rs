//! Descriptor chains as segment lists, validated once.
//!
//! The software engine works on a chain's buffers as a list of [`Segment`]s. CPU-owned queues get
//! their chains from virtio-queue ([`from_descriptor_chain`]); requests the FPGA punted arrive as
//! a head index, and [`walk`] follows the chain from there (virtio-queue builds chains only from
//! its own avail-ring pops) with the same limits the RTL applies: at most `queue_size`
//! descriptors, one level of indirection, indices inside the table, device-readable before
//! device-writable.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;

/// One guest buffer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

/// Why a chain was refused. The guest broke the ring protocol: the queue goes to its error state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("descriptor index {index} outside a table of {size}")]
    BadIndex { index: u16, size: u32 },
    #[error("chain longer than {limit} descriptors (a loop?)")]
    TooLong { limit: u32 },
    #[error("descriptor table at {addr:#x} not readable")]
    Unreadable { addr: u64 },
    #[error("bad indirect descriptor (len {len}, nested or not negotiated)")]
    BadIndirect { len: u32 },
    #[error("zero-length descriptor {index}")]
    ZeroLength { index: u16 },
    #[error("device-readable descriptor after a device-writable one")]
    BadDirection,
    #[error("chain from virtio-queue: {0}")]
    Queue(String),
}

fn read_desc(
    mem: &GuestMemoryMmap,
    table: u64,
    i: u32,
) -> Result<(u64, u32, u16, u16), ChainError> {
    let at = table
        .checked_add(u64::from(i) * 16)
        .ok_or(ChainError::Unreadable { addr: table })?;
    let mut d = [0u8; 16];
    mem.read_slice(&mut d, GuestAddress(at))
        .map_err(|_| ChainError::Unreadable { addr: at })?;
    let addr = u64::from_le_bytes(d[0..8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(d[8..12].try_into().expect("4 bytes"));
    let flags = u16::from_le_bytes([d[12], d[13]]);
    let next = u16::from_le_bytes([d[14], d[15]]);
    Ok((addr, len, flags, next))
}

/// Walk the chain at `head` of the descriptor table at `desc_table` (a queue of `queue_size`).
pub fn walk(
    mem: &GuestMemoryMmap,
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
    let mut limit = u32::from(queue_size);
    let mut count = 0u32;
    loop {
        if idx >= size {
            return Err(ChainError::BadIndex {
                index: idx as u16,
                size,
            });
        }
        count += 1;
        if count > limit {
            return Err(ChainError::TooLong { limit });
        }
        let (addr, len, flags, next) = read_desc(mem, table, idx)?;
        if flags & F_INDIRECT != 0 {
            if !indirect_ok || in_indirect || flags & F_NEXT != 0 || len == 0 || len % 16 != 0 {
                return Err(ChainError::BadIndirect { len });
            }
            in_indirect = true;
            table = addr;
            size = len / 16;
            limit = size;
            count = 0;
            idx = 0;
            continue;
        }
        if len == 0 {
            return Err(ChainError::ZeroLength { index: idx as u16 });
        }
        let write = flags & F_WRITE != 0;
        if !write && segs.last().is_some_and(|s: &Segment| s.write) {
            return Err(ChainError::BadDirection);
        }
        segs.push(Segment { addr, len, write });
        if flags & F_NEXT == 0 {
            return Ok(segs);
        }
        idx = u32::from(next);
    }
}

/// The segments of a chain popped by virtio-queue (it follows NEXT and INDIRECT itself).
pub fn from_descriptor_chain<M>(
    chain: virtio_queue::DescriptorChain<M>,
) -> Result<Vec<Segment>, ChainError>
where
    M: std::ops::Deref,
    M::Target: vm_memory::GuestMemory,
{
    let mut segs: Vec<Segment> = Vec::new();
    for d in chain {
        if d.len() == 0 {
            return Err(ChainError::ZeroLength { index: 0 });
        }
        if !d.is_write_only() && segs.last().is_some_and(|s| s.write) {
            return Err(ChainError::BadDirection);
        }
        segs.push(Segment {
            addr: d.addr().0,
            len: d.len(),
            write: d.is_write_only(),
        });
    }
    if segs.is_empty() {
        return Err(ChainError::Queue("empty or broken chain".into()));
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let segs = walk(&m, 0x1000, 8, 3, true).unwrap();
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
        assert_eq!(walk(&m, 0x1000, 8, 0, true).unwrap().len(), 2);
        assert!(matches!(
            walk(&m, 0x1000, 8, 0, false),
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
            walk(&m, 0x1000, 4, 0, true),
            Err(ChainError::TooLong { limit: 4 })
        );
        // Index outside the table.
        put(&m, 0x1000, 1, 0x8000, 16, F_NEXT, 9);
        assert!(matches!(
            walk(&m, 0x1000, 4, 0, true),
            Err(ChainError::BadIndex { .. })
        ));
        assert!(matches!(
            walk(&m, 0x1000, 4, 7, true),
            Err(ChainError::BadIndex { .. })
        ));
        // Readable after writable.
        put(&m, 0x1000, 0, 0x8000, 16, F_NEXT | F_WRITE, 1);
        put(&m, 0x1000, 1, 0x8000, 16, 0, 0);
        assert_eq!(walk(&m, 0x1000, 4, 0, true), Err(ChainError::BadDirection));
        // Zero length.
        put(&m, 0x1000, 0, 0x8000, 0, 0, 0);
        assert!(matches!(
            walk(&m, 0x1000, 4, 0, true),
            Err(ChainError::ZeroLength { .. })
        ));
        // Table outside memory.
        assert!(matches!(
            walk(&m, 1 << 30, 4, 0, true),
            Err(ChainError::Unreadable { .. })
        ));
        // Nested indirect.
        put(&m, 0x1000, 0, 0x2000, 16, F_INDIRECT, 0);
        put(&m, 0x2000, 0, 0x3000, 16, F_INDIRECT, 0);
        assert!(matches!(
            walk(&m, 0x1000, 4, 0, true),
            Err(ChainError::BadIndirect { .. })
        ));
    }
}
