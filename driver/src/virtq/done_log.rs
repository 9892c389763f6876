//! The done log: what a runtime that died mid-I/O leaves behind so that the next one serves
//! exactly the requests that were not completed, even when they completed out of order (a punted
//! flush answered after later reads). vhost-user's in-flight tracking
//! (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) keeps such logs in memory that outlives the backend.
//!
//! One 32-bit record per ring entry (the DONE_LOG registers): whoever publishes a request's used
//! element (the FPGA's virtqueue engine, or a CPU worker for a CPU-owned queue) first writes
//! record `P mod size` = `P | (U << 16)`, where P is the avail position the request was fetched
//! from and U the used->idx its publish writes. Writes land in that order, so the request at
//! position P is complete iff its record names P and the ring's used->idx has reached U.
//!
//! What the log cannot say by itself is where it starts: records are meaningful for positions
//! from `base` (the position the queue started at when the log was set up; everything before it
//! was complete). A position more than a ring's size behind the guest's avail->idx is complete
//! too: a guest never has more requests outstanding than its ring has entries.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Bytes per record.
pub const RECORD_BYTES: u64 = 4;

/// Bytes of a log for a ring of `size` entries.
pub fn len(size: u16) -> u64 {
    RECORD_BYTES * u64::from(size)
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DoneLogError {
    #[error("the done log at {0:#x} is not in memory")]
    Memory(u64),
    #[error("ring size {0} is not a power of two in 1..=32768")]
    Size(u16),
}

fn check_size(size: u16) -> Result<(), DoneLogError> {
    if size == 0 || !size.is_power_of_two() || size > 32768 {
        return Err(DoneLogError::Size(size));
    }
    Ok(())
}

fn at(log: u64, size: u16, pos: u16) -> GuestAddress {
    GuestAddress(log + RECORD_BYTES * u64::from(pos & (size - 1)))
}

/// A record's value.
pub fn record(pos: u16, used_after: u16) -> u32 {
    u32::from(pos) | (u32::from(used_after) << 16)
}

/// Start a log for a ring that starts at avail position `base`: every record names a position
/// half the index space away, which no position the log will be asked about can be.
pub fn init(mem: &GuestMemoryMmap, log: u64, size: u16, base: u16) -> Result<(), DoneLogError> {
    check_size(size)?;
    let none = record(base.wrapping_add(0x8000), 0).to_le_bytes();
    let bytes: Vec<u8> = (0..size).flat_map(|_| none).collect();
    mem.write_slice(&bytes, GuestAddress(log))
        .map_err(|_| DoneLogError::Memory(log))
}

/// Record that the request fetched from position `pos` is published with used->idx
/// `used_after` (call before writing its used element).
pub fn write(
    mem: &GuestMemoryMmap,
    log: u64,
    size: u16,
    pos: u16,
    used_after: u16,
) -> Result<(), DoneLogError> {
    check_size(size)?;
    mem.write_obj(record(pos, used_after), at(log, size, pos))
        .map_err(|_| DoneLogError::Memory(log))
}

/// The positions of requests the guest posted (before `avail_idx`) that are not complete, in
/// avail order, for a ring whose used->idx is `used_idx` and whose log started at `base`.
pub fn in_flight(
    mem: &GuestMemoryMmap,
    log: u64,
    size: u16,
    base: u16,
    avail_idx: u16,
    used_idx: u16,
) -> Result<Vec<u16>, DoneLogError> {
    check_size(size)?;
    // Positions from max(base, avail_idx - size) to avail_idx (wrapping).
    let since_base = avail_idx.wrapping_sub(base);
    let n = if since_base > 0x8000 {
        // base is ahead of avail_idx: the guest moved its index back; nothing to look at.
        0
    } else {
        since_base.min(size)
    };
    let mut out = Vec::new();
    for k in (1..=n).rev() {
        let pos = avail_idx.wrapping_sub(k);
        let v: u32 = mem
            .read_obj(at(log, size, pos))
            .map_err(|_| DoneLogError::Memory(log))?;
        let (rpos, after) = (v as u16, (v >> 16) as u16);
        let published = rpos == pos && used_idx.wrapping_sub(after) < 0x8000;
        if !published {
            out.push(pos);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap()
    }

    #[test]
    fn out_of_order_completions_leave_exactly_the_others() {
        let m = mem();
        init(&m, 0x100, 8, 0).unwrap();
        // Positions 0..5 posted; 1, 2 and 4 published (used->idx 1, 2, 3), in that order.
        write(&m, 0x100, 8, 1, 1).unwrap();
        write(&m, 0x100, 8, 2, 2).unwrap();
        write(&m, 0x100, 8, 4, 3).unwrap();
        assert_eq!(in_flight(&m, 0x100, 8, 0, 5, 3).unwrap(), vec![0, 3]);
        // Position 4's record landed but its used->idx write did not: still in flight.
        assert_eq!(in_flight(&m, 0x100, 8, 0, 5, 2).unwrap(), vec![0, 3, 4]);
    }

    #[test]
    fn base_and_window_bound_what_is_asked() {
        let m = mem();
        // A log that starts at position 65530 (wrapping through 0).
        init(&m, 0, 4, 65530).unwrap();
        assert_eq!(
            in_flight(&m, 0, 4, 65530, 65530, 0).unwrap(),
            Vec::<u16>::new()
        );
        assert_eq!(
            in_flight(&m, 0, 4, 65530, 65532, 0).unwrap(),
            vec![65530, 65531]
        );
        for (i, p) in (65530u16..=65535).chain(0..2).enumerate() {
            write(&m, 0, 4, p, i as u16 + 1).unwrap();
        }
        // 8 published; the window is the last 4 positions.
        assert_eq!(in_flight(&m, 0, 4, 65530, 2, 8).unwrap(), Vec::<u16>::new());
        assert_eq!(in_flight(&m, 0, 4, 65530, 3, 8).unwrap(), vec![2]);
        // A stale record from the previous lap (position 65534 in entry 2) does not count.
        assert_eq!(in_flight(&m, 0, 4, 65530, 3, 100).unwrap(), vec![2]);
        // An avail index behind the base: nothing.
        assert_eq!(
            in_flight(&m, 0, 4, 65530, 65520, 8).unwrap(),
            Vec::<u16>::new()
        );
    }

    #[test]
    fn bad_sizes_and_memory_are_errors() {
        let m = mem();
        assert_eq!(init(&m, 0, 3, 0), Err(DoneLogError::Size(3)));
        assert_eq!(init(&m, 0xfff0, 8, 0), Err(DoneLogError::Memory(0xfff0)));
        assert_eq!(
            in_flight(&m, 0x2_0000, 8, 0, 1, 0),
            Err(DoneLogError::Memory(0x2_0000))
        );
    }
}
