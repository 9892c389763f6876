//! The software virtio-blk engine: serves any request of any layout against a [`BlockStore`].
//!
//! It is the CPU path (CPU-owned queues, requests the FPGA punted) and the reference model: the
//! FPGA's blk engine must give byte-identical results for what it serves (`tests/differential.rs`).
//! Semantics, fixed here for both:
//! - IN / OUT: data length a multiple of 512 and inside the capacity, else IOERR. Used length:
//!   IN data + 1, OUT 1.
//! - FLUSH: the store's flush. GET_ID: up to 20 bytes of the device ID (used length n + 1).
//!   Data moves in pieces of at most [`PIECE`] bytes through one reused buffer, whatever
//!   length the guest claims: a request costs no more memory than that.
//! - DISCARD / WRITE_ZEROES: a list of 16-byte ranges (sector u64, sectors u32, flags u32), at
//!   most `max_discard_seg` of them, each of at most `max_discard_sectors` /
//!   `max_write_zeroes_sectors` (IOERR past it), all checked before any is applied; the ranges
//!   read back as zeroes. DISCARD takes no flags, WRITE_ZEROES only UNMAP; other flags are
//!   UNSUPP.
//! - A type whose feature was not negotiated, or unknown: UNSUPP.
//! - A header shorter than 16 bytes: IOERR. No writable byte at all: used length 0, no status.
//!   Guest memory that cannot be read or written: IOERR (and counted by the caller).

use super::request::{self, disk_range, ParseError, Request, RequestType, Status, RANGE, SECTOR};
use crate::virtq::Segment;
use fpga_virtio_storage::BlockStore;
use std::sync::Arc;
use virtio_bindings::virtio_blk as vb;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// What a function's virtio-blk device offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlkConfig {
    /// Capacity in 512-byte sectors.
    pub capacity: u64,
    /// Negotiated virtio feature bits.
    pub features: u64,
    /// GET_ID answer (NUL-padded).
    pub id: [u8; vb::VIRTIO_BLK_ID_BYTES as usize],
    /// Ranges per DISCARD / WRITE_ZEROES request.
    pub max_discard_seg: u32,
    /// Sectors per DISCARD range (the config space's `max_discard_sectors`).
    pub max_discard_sectors: u32,
    /// Sectors per WRITE_ZEROES range (`max_write_zeroes_sectors`).
    pub max_write_zeroes_sectors: u32,
    /// Largest read or write the FPGA's blk engine serves itself, in sectors (BLK_MAX_SECTORS):
    /// larger ones are punted to the CPU (`blk_too_large`).
    pub max_hw_sectors: u32,
}

/// Most bytes the engine holds for one request at a time (reads and writes move in pieces).
pub const PIECE: usize = 128 << 10;

/// Largest data segment the device advertises (virtio-blk `size_max`) and most data segments
/// per request (`seg_max`): a request the guest may send is inside
/// [`crate::virtq::MAX_CHAIN_BYTES`] with its header and status.
pub const SIZE_MAX: u32 = 64 << 10;
pub const SEG_MAX: u32 = 254;
const _: () = assert!(
    SIZE_MAX as u64 * SEG_MAX as u64 + 17 <= crate::virtq::MAX_CHAIN_BYTES,
    "the advertised request limits must fit the chain byte limit"
);

impl BlkConfig {
    pub fn new(capacity: u64, id: &str) -> Self {
        let mut idb = [0u8; vb::VIRTIO_BLK_ID_BYTES as usize];
        let n = id.len().min(idb.len());
        idb[..n].copy_from_slice(&id.as_bytes()[..n]);
        BlkConfig {
            capacity,
            // Everything the device offers; set what the guest driver accepted.
            features: super::features::OFFERED,
            id: idb,
            max_discard_seg: 16,
            // 32 MiB per range: long zeroing runs in the store, not in the engine's memory.
            max_discard_sectors: 1 << 16,
            max_write_zeroes_sectors: 1 << 16,
            max_hw_sectors: 256,
        }
    }

    fn has(&self, feature: u32) -> bool {
        self.features & (1 << feature) != 0
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Outcome {
    /// The status byte written (None: the chain had no writable byte).
    pub status: Option<Status>,
    /// Used length: bytes written into the chain's device-writable buffers.
    pub used_len: u32,
}

/// Copy between a stream (readable or writable segments) at `offset` and `buf`.
fn stream_io(
    mem: &GuestMemoryMmap,
    segs: &[Segment],
    write_stream: bool,
    mut offset: u64,
    buf: StreamBuf<'_>,
) -> Result<(), ()> {
    let (mut rd, mut wr, total) = match buf {
        StreamBuf::From(b) => (None, Some(b), b.len()),
        StreamBuf::Into(b) => {
            let n = b.len();
            (Some(b), None, n)
        }
    };
    let mut done = 0usize;
    for s in segs.iter().filter(|s| s.write == write_stream) {
        if done == total {
            break;
        }
        let len = u64::from(s.len);
        if offset >= len {
            offset -= len;
            continue;
        }
        let n = ((len - offset) as usize).min(total - done);
        let at = GuestAddress(s.addr.checked_add(offset).ok_or(())?);
        let r = match (&mut rd, &mut wr) {
            (Some(b), _) => mem.read_slice(&mut b[done..done + n], at),
            (_, Some(b)) => mem.write_slice(&b[done..done + n], at),
            _ => unreachable!("one of the two is set"),
        };
        r.map_err(|_| ())?;
        done += n;
        offset = 0;
    }
    if done == total {
        Ok(())
    } else {
        Err(())
    }
}

enum StreamBuf<'a> {
    /// Read guest memory into this buffer.
    Into(&'a mut [u8]),
    /// Write this buffer into guest memory.
    From(&'a [u8]),
}

/// The software engine of one virtio-blk function. Cheap to clone (the store is shared).
#[derive(Clone, Debug)]
pub struct SoftwareEngine {
    store: Arc<dyn BlockStore>,
    cfg: BlkConfig,
    buf: Vec<u8>,
}

impl SoftwareEngine {
    pub fn new(store: Arc<dyn BlockStore>, cfg: BlkConfig) -> Self {
        SoftwareEngine {
            store,
            cfg,
            buf: Vec::new(),
        }
    }

    pub fn config(&self) -> &BlkConfig {
        &self.cfg
    }

    /// Bytes of buffer the engine holds between requests (at most [`PIECE`], whatever the
    /// requests claimed).
    pub fn held_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Serve one request: move its data, write its status, say what was written.
    pub fn serve(&mut self, mem: &GuestMemoryMmap, segs: &[Segment]) -> Outcome {
        let mut header = [0u8; 16];
        let header = stream_io(mem, segs, false, 0, StreamBuf::Into(&mut header))
            .ok()
            .map(|()| header);
        let (status, data_written, status_at) = match request::parse(segs, header) {
            Err(ParseError::NoStatus { .. }) => {
                return Outcome {
                    status: None,
                    used_len: 0,
                }
            }
            Err(ParseError::ShortHeader { status_at }) => (Status::IoErr, 0, status_at),
            Ok(req) => {
                let (status, n) = self.execute(mem, segs, &req);
                (status, n, req.status_at)
            }
        };
        if stream_io(mem, segs, true, status_at, StreamBuf::From(&[status.raw()])).is_err() {
            return Outcome {
                status: None,
                used_len: 0,
            };
        }
        Outcome {
            status: Some(status),
            used_len: data_written + 1,
        }
    }

    /// Run a parsed request; returns the status and the data bytes written into the chain.
    fn execute(&mut self, mem: &GuestMemoryMmap, segs: &[Segment], req: &Request) -> (Status, u32) {
        let p = req.payload;
        if matches!(req.rtype, RequestType::In | RequestType::Out)
            && p.len > crate::virtq::MAX_CHAIN_BYTES
        {
            // Longer than any chain the walkers let through: refuse before touching the disk.
            return (Status::IoErr, 0);
        }
        match req.rtype {
            RequestType::In => {
                let Some((off, len)) = disk_range(req.sector, p.len, self.cfg.capacity) else {
                    return (Status::IoErr, 0);
                };
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(PIECE as u64) as usize;
                    self.buf.resize(n, 0);
                    if self.store.read_at(off + done, &mut self.buf).is_err()
                        || stream_io(mem, segs, true, done, StreamBuf::From(&self.buf)).is_err()
                    {
                        return (Status::IoErr, 0);
                    }
                    done += n as u64;
                }
                (Status::Ok, len as u32)
            }
            RequestType::Out => {
                let Some((off, len)) = disk_range(req.sector, p.len, self.cfg.capacity) else {
                    return (Status::IoErr, 0);
                };
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(PIECE as u64) as usize;
                    self.buf.resize(n, 0);
                    let from = p.offset + done;
                    if stream_io(mem, segs, false, from, StreamBuf::Into(&mut self.buf)).is_err()
                        || self.store.write_at(off + done, &self.buf).is_err()
                    {
                        return (Status::IoErr, 0);
                    }
                    done += n as u64;
                }
                (Status::Ok, 0)
            }
            RequestType::Flush if self.cfg.has(vb::VIRTIO_BLK_F_FLUSH) => {
                match self.store.flush() {
                    Ok(()) => (Status::Ok, 0),
                    Err(_) => (Status::IoErr, 0),
                }
            }
            RequestType::GetId => {
                let n = (p.len as usize).min(self.cfg.id.len());
                let id = self.cfg.id;
                match stream_io(mem, segs, true, 0, StreamBuf::From(&id[..n])) {
                    Ok(()) => (Status::Ok, n as u32),
                    Err(()) => (Status::IoErr, 0),
                }
            }
            RequestType::Discard if self.cfg.has(vb::VIRTIO_BLK_F_DISCARD) => {
                (self.zero_ranges(mem, segs, req, false), 0)
            }
            RequestType::WriteZeroes if self.cfg.has(vb::VIRTIO_BLK_F_WRITE_ZEROES) => {
                (self.zero_ranges(mem, segs, req, true), 0)
            }
            _ => (Status::Unsupp, 0),
        }
    }

    /// DISCARD / WRITE_ZEROES: check every range, then zero them.
    fn zero_ranges(
        &mut self,
        mem: &GuestMemoryMmap,
        segs: &[Segment],
        req: &Request,
        write_zeroes: bool,
    ) -> Status {
        let p = req.payload;
        let n = p.len / u64::from(RANGE);
        if p.len == 0
            || !p.len.is_multiple_of(u64::from(RANGE))
            || n > u64::from(self.cfg.max_discard_seg)
        {
            return Status::IoErr;
        }
        self.buf.resize(p.len as usize, 0);
        if stream_io(mem, segs, false, p.offset, StreamBuf::Into(&mut self.buf)).is_err() {
            return Status::IoErr;
        }
        let mut ranges = Vec::with_capacity(n as usize);
        for r in self.buf.chunks_exact(RANGE as usize) {
            let sector = u64::from_le_bytes(r[0..8].try_into().expect("8 bytes"));
            let sectors = u32::from_le_bytes(r[8..12].try_into().expect("4 bytes"));
            let flags = u32::from_le_bytes(r[12..16].try_into().expect("4 bytes"));
            let allowed = if write_zeroes {
                vb::VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
            } else {
                0
            };
            if flags & !allowed != 0 {
                return Status::Unsupp;
            }
            let max = if write_zeroes {
                self.cfg.max_write_zeroes_sectors
            } else {
                self.cfg.max_discard_sectors
            };
            if sectors > max {
                return Status::IoErr;
            }
            match disk_range(sector, u64::from(sectors) * SECTOR, self.cfg.capacity) {
                Some(r) => ranges.push(r),
                None => return Status::IoErr,
            }
        }
        for (off, len) in ranges {
            if self.store.write_zeroes(off, len).is_err() {
                return Status::IoErr;
            }
        }
        Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fpga_virtio_storage::RamStore;

    const HDR: u64 = 0x1000;
    const DATA: u64 = 0x2000;
    const ST: u64 = 0x8000;

    fn setup() -> (GuestMemoryMmap, Arc<RamStore>, SoftwareEngine) {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let store = Arc::new(RamStore::new(64 * 512));
        let eng = SoftwareEngine::new(store.clone(), BlkConfig::new(64, "disk-0"));
        (mem, store, eng)
    }

    fn hdr(mem: &GuestMemoryMmap, t: u32, sector: u64) {
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&t.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        mem.write_slice(&h, GuestAddress(HDR)).unwrap();
    }

    fn s(addr: u64, len: u32, write: bool) -> Segment {
        Segment { addr, len, write }
    }

    #[test]
    fn out_then_in_any_layout() {
        let (mem, store, mut eng) = setup();
        // OUT with header and data in one readable buffer, status at the end of an 4-byte buffer.
        hdr(&mem, vb::VIRTIO_BLK_T_OUT, 3);
        mem.write_slice(&[7u8; 1024], GuestAddress(HDR + 16))
            .unwrap();
        let o = eng.serve(&mem, &[s(HDR, 16 + 1024, false), s(ST, 4, true)]);
        assert_eq!(
            o,
            Outcome {
                status: Some(Status::Ok),
                used_len: 1
            }
        );
        assert_eq!(mem.read_obj::<u8>(GuestAddress(ST + 3)).unwrap(), 0);
        assert_eq!(
            &store.snapshot().unwrap()[3 * 512..5 * 512],
            &[7u8; 1024][..]
        );
        // IN of the same sectors into 3 buffers, status shares the last one.
        hdr(&mem, vb::VIRTIO_BLK_T_IN, 3);
        mem.write_obj(0xffu8, GuestAddress(ST + 512)).unwrap();
        let o = eng.serve(
            &mem,
            &[
                s(HDR, 16, false),
                s(DATA, 100, true),
                s(DATA + 100, 412, true),
                s(ST, 513, true),
            ],
        );
        assert_eq!(
            o,
            Outcome {
                status: Some(Status::Ok),
                used_len: 1025
            }
        );
        let mut got = [0u8; 512];
        mem.read_slice(&mut got, GuestAddress(ST)).unwrap();
        assert_eq!(got, [7u8; 512]);
        assert_eq!(mem.read_obj::<u8>(GuestAddress(ST + 512)).unwrap(), 0);
    }

    #[test]
    fn errors_and_unsupported() {
        let (mem, _store, mut eng) = setup();
        let io = |eng: &mut SoftwareEngine, t, sector, data: u32| {
            hdr(&mem, t, sector);
            eng.serve(
                &mem,
                &[s(HDR, 16, false), s(DATA, data, true), s(ST, 1, true)],
            )
        };
        assert_eq!(
            io(&mut eng, vb::VIRTIO_BLK_T_IN, 63, 1024).status,
            Some(Status::IoErr)
        );
        assert_eq!(
            io(&mut eng, vb::VIRTIO_BLK_T_IN, 0, 100).status,
            Some(Status::IoErr)
        );
        assert_eq!(
            io(&mut eng, vb::VIRTIO_BLK_T_IN, u64::MAX, 512).status,
            Some(Status::IoErr)
        );
        assert_eq!(
            io(&mut eng, 42, 0, 512),
            Outcome {
                status: Some(Status::Unsupp),
                used_len: 1
            }
        );
        let id = io(&mut eng, vb::VIRTIO_BLK_T_GET_ID, 0, 20);
        assert_eq!(
            id,
            Outcome {
                status: Some(Status::Ok),
                used_len: 21
            }
        );
        let mut b = [0u8; 6];
        mem.read_slice(&mut b, GuestAddress(DATA)).unwrap();
        assert_eq!(&b, b"disk-0");
        // A short header, no status byte, a buffer outside memory.
        let o = eng.serve(&mem, &[s(HDR, 8, false), s(ST, 1, true)]);
        assert_eq!(
            o,
            Outcome {
                status: Some(Status::IoErr),
                used_len: 1
            }
        );
        assert_eq!(eng.serve(&mem, &[s(HDR, 16, false)]).used_len, 0);
        hdr(&mem, vb::VIRTIO_BLK_T_IN, 0);
        let o = eng.serve(
            &mem,
            &[s(HDR, 16, false), s(1 << 40, 512, true), s(ST, 1, true)],
        );
        assert_eq!(o.status, Some(Status::IoErr));
        let o = eng.serve(&mem, &[s(HDR, 16, false), s(1 << 40, 1, true)]);
        assert_eq!(
            o,
            Outcome {
                status: None,
                used_len: 0
            }
        );
        // Features not negotiated.
        let mut cfg = eng.config().clone();
        cfg.features = 0;
        let mut bare = SoftwareEngine::new(Arc::new(RamStore::new(512)), cfg);
        hdr(&mem, vb::VIRTIO_BLK_T_FLUSH, 0);
        let o = bare.serve(&mem, &[s(HDR, 16, false), s(ST, 1, true)]);
        assert_eq!(o.status, Some(Status::Unsupp));
    }

    #[test]
    fn discard_and_write_zeroes_check_every_range_first() {
        let (mem, store, mut eng) = setup();
        store.write_at(0, &[0xaa; 64 * 512]).unwrap();
        let ranges = |list: &[(u64, u32, u32)]| {
            let mut b = Vec::new();
            for &(sector, n, flags) in list {
                b.extend_from_slice(&sector.to_le_bytes());
                b.extend_from_slice(&n.to_le_bytes());
                b.extend_from_slice(&flags.to_le_bytes());
            }
            mem.write_slice(&b, GuestAddress(DATA)).unwrap();
            b.len() as u32
        };
        let run = |eng: &mut SoftwareEngine, t, len| {
            hdr(&mem, t, 0);
            eng.serve(
                &mem,
                &[s(HDR, 16, false), s(DATA, len, false), s(ST, 1, true)],
            )
            .status
        };
        // The second range is out of range: nothing is zeroed.
        let n = ranges(&[(0, 2, 0), (63, 2, 0)]);
        assert_eq!(
            run(&mut eng, vb::VIRTIO_BLK_T_DISCARD, n),
            Some(Status::IoErr)
        );
        assert!(store.snapshot().unwrap().iter().all(|&b| b == 0xaa));
        let n = ranges(&[(0, 1, 1)]);
        assert_eq!(
            run(&mut eng, vb::VIRTIO_BLK_T_DISCARD, n),
            Some(Status::Unsupp)
        );
        assert_eq!(
            run(&mut eng, vb::VIRTIO_BLK_T_WRITE_ZEROES, n),
            Some(Status::Ok)
        );
        let n = ranges(&[(4, 2, 0), (10, 1, 0)]);
        assert_eq!(run(&mut eng, vb::VIRTIO_BLK_T_DISCARD, n), Some(Status::Ok));
        let disk = store.snapshot().unwrap();
        for (i, sector) in disk.chunks(512).enumerate() {
            let zero = matches!(i, 0 | 4 | 5 | 10);
            assert!(
                sector.iter().all(|&b| b == if zero { 0 } else { 0xaa }),
                "sector {i}"
            );
        }
        assert_eq!(
            run(&mut eng, vb::VIRTIO_BLK_T_DISCARD, 8),
            Some(Status::IoErr)
        );
    }

    #[test]
    fn huge_lengths_cost_one_piece_of_memory() {
        // A guest claims a 4 GiB read and a 4 GiB write on a disk that large (sparse file):
        // the engine fails them without ever holding more than a piece.
        let dir = std::env::temp_dir().join(format!("fv-engine-huge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("disk");
        let store = Arc::new(fpga_virtio_storage::FileStore::open(&path, Some(16 << 30)).unwrap());
        let mut eng = SoftwareEngine::new(store, BlkConfig::new(32 << 20, "huge"));
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        for t in [vb::VIRTIO_BLK_T_IN, vb::VIRTIO_BLK_T_OUT] {
            hdr(&mem, t, 0);
            let data = s(DATA, 0xFFFF_FE00, t == vb::VIRTIO_BLK_T_IN);
            let o = eng.serve(&mem, &[s(HDR, 16, false), data, s(ST, 1, true)]);
            assert_eq!(o.status, Some(Status::IoErr));
            assert!(eng.buf.capacity() <= PIECE, "{}", eng.buf.capacity());
        }
        // Below the chain limit but beyond guest memory: the first piece fails.
        hdr(&mem, vb::VIRTIO_BLK_T_IN, 0);
        let o = eng.serve(
            &mem,
            &[s(HDR, 16, false), s(DATA, 8 << 20, true), s(ST, 1, true)],
        );
        assert_eq!(o.status, Some(Status::IoErr));
        assert!(eng.buf.capacity() <= PIECE);
        // A large read inside memory moves in pieces and is right.
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        let pattern: Vec<u8> = (0..(1usize << 20))
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        mem.write_slice(&pattern, GuestAddress(0x10_0000)).unwrap();
        hdr(&mem, vb::VIRTIO_BLK_T_OUT, 8);
        let o = eng.serve(
            &mem,
            &[
                s(HDR, 16, false),
                s(0x10_0000, 1 << 20, false),
                s(ST, 1, true),
            ],
        );
        assert_eq!(o.status, Some(Status::Ok));
        hdr(&mem, vb::VIRTIO_BLK_T_IN, 8);
        let o = eng.serve(
            &mem,
            &[
                s(HDR, 16, false),
                s(0x20_0000, 1 << 20, true),
                s(ST, 1, true),
            ],
        );
        assert_eq!(o.status, Some(Status::Ok));
        let mut back = vec![0u8; 1 << 20];
        mem.read_slice(&mut back, GuestAddress(0x20_0000)).unwrap();
        assert!(back == pattern);
        assert!(eng.buf.capacity() <= PIECE);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn discard_and_write_zeroes_ranges_are_bounded() {
        let (mem, _store, _) = setup();
        let mut cfg = BlkConfig::new(64, "disk-0");
        cfg.max_discard_sectors = 4;
        cfg.max_write_zeroes_sectors = 8;
        let mut eng = SoftwareEngine::new(Arc::new(RamStore::new(64 * 512)), cfg);
        for (t, ok, too_many) in [
            (vb::VIRTIO_BLK_T_DISCARD, 4u32, 5u32),
            (vb::VIRTIO_BLK_T_WRITE_ZEROES, 8, 9),
        ] {
            for (n, want) in [(ok, Status::Ok), (too_many, Status::IoErr)] {
                let mut b = [0u8; 16];
                b[8..12].copy_from_slice(&n.to_le_bytes());
                mem.write_slice(&b, GuestAddress(DATA)).unwrap();
                hdr(&mem, t, 0);
                let o = eng.serve(
                    &mem,
                    &[s(HDR, 16, false), s(DATA, 16, false), s(ST, 1, true)],
                );
                assert_eq!(o.status, Some(want), "type {t}, {n} sectors");
            }
        }
    }
}
