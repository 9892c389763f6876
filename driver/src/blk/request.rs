//! virtio-blk request parsing: every guest-controlled field is validated here, once.
//!
//! The chain is read as two byte streams, like virtio-queue's `Reader`/`Writer`: the
//! device-readable segments (header, then OUT data or discard ranges) and the device-writable
//! ones (IN data or the ID, then the status byte, always the last writable byte). Any layout
//! the virtio spec allows is accepted; the FPGA's fast path takes only the common one and punts
//! the rest here.

use crate::virtq::Segment;
use virtio_bindings::virtio_blk as vb;

pub const SECTOR: u64 = 512;
/// Request header size (type, reserved, sector).
pub const HEADER: u32 = 16;
/// Size of one discard / write-zeroes range.
pub const RANGE: u32 = 16;

/// The status byte (virtio 1.2, 5.2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Status {
    Ok,
    IoErr,
    Unsupp,
}

impl Status {
    pub fn raw(self) -> u8 {
        match self {
            Status::Ok => vb::VIRTIO_BLK_S_OK as u8,
            Status::IoErr => vb::VIRTIO_BLK_S_IOERR as u8,
            Status::Unsupp => vb::VIRTIO_BLK_S_UNSUPP as u8,
        }
    }
}

/// A request type, as the header gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestType {
    In,
    Out,
    Flush,
    GetId,
    Discard,
    WriteZeroes,
    Unsupported(u32),
}

impl RequestType {
    pub fn from_raw(t: u32) -> Self {
        match t {
            vb::VIRTIO_BLK_T_IN => RequestType::In,
            vb::VIRTIO_BLK_T_OUT => RequestType::Out,
            vb::VIRTIO_BLK_T_FLUSH => RequestType::Flush,
            vb::VIRTIO_BLK_T_GET_ID => RequestType::GetId,
            vb::VIRTIO_BLK_T_DISCARD => RequestType::Discard,
            vb::VIRTIO_BLK_T_WRITE_ZEROES => RequestType::WriteZeroes,
            other => RequestType::Unsupported(other),
        }
    }
}

/// A byte range of a segment list (a stream position).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset into the stream of readable (or writable) bytes.
    pub offset: u64,
    pub len: u64,
}

/// A request whose layout has been checked; its payload still lies in guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub rtype: RequestType,
    pub sector: u64,
    /// OUT data / discard ranges: readable bytes after the header. IN data / ID: writable bytes
    /// before the status.
    pub payload: Span,
    /// Writable-stream offset of the status byte.
    pub status_at: u64,
}

/// A request that cannot be served, and how it must be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No device-writable byte for the status: the request completes with used length 0.
    #[error("no device-writable byte for the status")]
    NoStatus { status_at: Option<u64> },
    /// Fewer than 16 readable bytes for the header.
    #[error("request header shorter than 16 bytes")]
    ShortHeader { status_at: u64 },
}

/// Total bytes of the readable and writable streams.
pub fn stream_lens(segs: &[Segment]) -> (u64, u64) {
    segs.iter().fold((0, 0), |(r, w), s| {
        if s.write {
            (r, w + u64::from(s.len))
        } else {
            (r + u64::from(s.len), w)
        }
    })
}

/// Parse the layout: where the header, payload and status are. `header` is the 16 header bytes,
/// read by the caller from the readable stream.
pub fn parse(segs: &[Segment], header: Option<[u8; 16]>) -> Result<Request, ParseError> {
    let (readable, writable) = stream_lens(segs);
    if writable == 0 {
        return Err(ParseError::NoStatus { status_at: None });
    }
    let status_at = writable - 1;
    let header = match header {
        Some(h) if readable >= u64::from(HEADER) => h,
        _ => return Err(ParseError::ShortHeader { status_at }),
    };
    let t = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let sector = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let rtype = RequestType::from_raw(t);
    let payload = match rtype {
        RequestType::In | RequestType::GetId => Span {
            offset: 0,
            len: status_at,
        },
        _ => Span {
            offset: u64::from(HEADER),
            len: readable - u64::from(HEADER),
        },
    };
    Ok(Request {
        rtype,
        sector,
        payload,
        status_at,
    })
}

/// The byte range on the disk of `sectors` sectors at `sector`, if inside `capacity` sectors.
pub fn disk_range(sector: u64, bytes: u64, capacity: u64) -> Option<(u64, u64)> {
    if !bytes.is_multiple_of(SECTOR) {
        return None;
    }
    let end = sector.checked_add(bytes / SECTOR)?;
    (end <= capacity).then(|| (sector * SECTOR, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(len: u32, write: bool) -> Segment {
        Segment {
            addr: 0,
            len,
            write,
        }
    }

    fn hdr(t: u32, sector: u64) -> [u8; 16] {
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&t.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        h
    }

    #[test]
    fn layouts() {
        // The common IN layout.
        let r = parse(
            &[seg(16, false), seg(4096, true), seg(1, true)],
            Some(hdr(0, 7)),
        )
        .unwrap();
        assert_eq!(r.rtype, RequestType::In);
        assert_eq!(r.sector, 7);
        assert_eq!(
            r.payload,
            Span {
                offset: 0,
                len: 4096
            }
        );
        assert_eq!(r.status_at, 4096);
        // OUT with the header and data in one descriptor, status inside the last buffer.
        let r = parse(&[seg(16 + 1024, false), seg(8, true)], Some(hdr(1, 0))).unwrap();
        assert_eq!(
            r.payload,
            Span {
                offset: 16,
                len: 1024
            }
        );
        assert_eq!(r.status_at, 7);
        assert_eq!(
            parse(&[seg(16, false)], Some(hdr(1, 0))),
            Err(ParseError::NoStatus { status_at: None })
        );
        assert_eq!(
            parse(&[seg(8, false), seg(1, true)], None),
            Err(ParseError::ShortHeader { status_at: 0 })
        );
        assert_eq!(RequestType::from_raw(99), RequestType::Unsupported(99));
    }

    #[test]
    fn ranges() {
        assert_eq!(disk_range(2, 1024, 4), Some((1024, 1024)));
        assert_eq!(disk_range(3, 1024, 4), None);
        assert_eq!(disk_range(0, 100, 4), None);
        assert_eq!(disk_range(u64::MAX, 512, u64::MAX), None);
    }
}
