//! Block stores behind fpga-virtio's virtio-blk devices.
//!
//! In hardware the blk engine's storage port faces remote storage; in the simulator it faces a
//! [`BlockStore`], and the CPU's software engine (punted requests, CPU-owned queues) uses the same
//! store, so both paths see one disk. Stores take byte offsets; range checks against the
//! device's capacity are the engines' job, and a store refuses anything past its own end.
//!
//! - [`RamStore`]: a byte vector (the reference and the benchmark store).
//! - [`FileStore`]: a file or block device through `pread`/`pwrite`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::RwLock;

/// Errors of a store access.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("access of {len} bytes at offset {offset} is past the store's end ({size} bytes)")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store's lock was poisoned by a panicking user")]
    Poisoned,
    #[error("the disk image is in use by another process (or another store in this one)")]
    InUse,
    #[error("the disk image has {size} bytes: resizing it to {asked} would cut off data (make a new image, or grow it)")]
    WouldShrink { size: u64, asked: u64 },
}

/// A disk, addressed in bytes. Shared between threads (the simulator and the CPU workers).
pub trait BlockStore: Send + Sync + std::fmt::Debug {
    /// Size in bytes.
    fn size(&self) -> u64;
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError>;
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), StoreError>;
    /// Make every completed write durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Zero `len` bytes at `offset` (WRITE_ZEROES, and DISCARD, which reads back as zeroes).
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), StoreError> {
        check(offset, len, self.size())?;
        let zeroes = [0u8; 4096];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(zeroes.len() as u64);
            self.write_at(offset + at, &zeroes[..n as usize])?;
            at += n;
        }
        Ok(())
    }
}

fn check(offset: u64, len: u64, size: u64) -> Result<(), StoreError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(StoreError::OutOfRange { offset, len, size }),
    }
}

/// A disk in RAM.
#[derive(Debug)]
pub struct RamStore {
    data: RwLock<Vec<u8>>,
}

impl RamStore {
    /// A zeroed disk of `size` bytes.
    pub fn new(size: u64) -> Self {
        RamStore {
            data: RwLock::new(vec![0; size as usize]),
        }
    }

    /// A disk holding `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        RamStore {
            data: RwLock::new(bytes),
        }
    }

    /// A copy of the whole disk.
    pub fn snapshot(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.data.read().map_err(|_| StoreError::Poisoned)?.clone())
    }
}

impl BlockStore for RamStore {
    fn size(&self) -> u64 {
        self.data.read().map_or(0, |d| d.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let data = self.data.read().map_err(|_| StoreError::Poisoned)?;
        check(offset, buf.len() as u64, data.len() as u64)?;
        let at = offset as usize;
        buf.copy_from_slice(&data[at..at + buf.len()]);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), StoreError> {
        let mut data = self.data.write().map_err(|_| StoreError::Poisoned)?;
        check(offset, buf.len() as u64, data.len() as u64)?;
        let at = offset as usize;
        data[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), StoreError> {
        let mut data = self.data.write().map_err(|_| StoreError::Poisoned)?;
        check(offset, len, data.len() as u64)?;
        data[offset as usize..(offset + len) as usize].fill(0);
        Ok(())
    }
}

/// A disk in a file (or a block device), of the file's size at open.
#[derive(Debug)]
pub struct FileStore {
    file: File,
    size: u64,
}

impl FileStore {
    /// Open `path` read-write and lock it (an exclusive `flock`, as QEMU locks its images: two
    /// backends never serve one disk). With `create_size`, create it or grow it to that many
    /// bytes; an existing image is never shrunk ([`StoreError::WouldShrink`]).
    pub fn open(path: &Path, create_size: Option<u64>) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create_size.is_some())
            .truncate(false)
            .open(path)?;
        // SAFETY: flock takes the fd of `file`, open for the call, and an int; no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                StoreError::InUse
            } else {
                StoreError::Io(e)
            });
        }
        if let Some(size) = create_size {
            let now = file.metadata()?.len();
            if now > size {
                return Err(StoreError::WouldShrink {
                    size: now,
                    asked: size,
                });
            }
            if now < size {
                file.set_len(size)?;
            }
        }
        let size = file.metadata()?.len();
        Ok(FileStore { file, size })
    }
}

impl BlockStore for FileStore {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        check(offset, buf.len() as u64, self.size)?;
        Ok(self.file.read_exact_at(buf, offset)?)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), StoreError> {
        check(offset, buf.len() as u64, self.size)?;
        Ok(self.file.write_all_at(buf, offset)?)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(self.file.sync_data()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn BlockStore) {
        assert_eq!(store.size(), 8192);
        store.write_at(510, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 6];
        store.read_at(509, &mut b).unwrap();
        assert_eq!(b, [0, 1, 2, 3, 4, 0]);
        store.write_zeroes(511, 2).unwrap();
        store.read_at(509, &mut b).unwrap();
        assert_eq!(b, [0, 1, 0, 0, 4, 0]);
        store.flush().unwrap();
        // Past the end: refused, nothing written.
        assert!(matches!(
            store.write_at(8190, &[9, 9, 9]),
            Err(StoreError::OutOfRange { .. })
        ));
        assert!(store.read_at(u64::MAX, &mut b).is_err());
        assert!(store.write_zeroes(8000, 500).is_err());
        let mut tail = [0u8; 2];
        store.read_at(8190, &mut tail).unwrap();
        assert_eq!(tail, [0, 0]);
    }

    #[test]
    fn a_file_image_is_locked_and_never_shrunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let a = FileStore::open(&path, Some(8192)).unwrap();
        a.write_at(8000, &[5; 8]).unwrap();
        // A second user of the same image (another backend) is refused while the first lives.
        assert!(matches!(
            FileStore::open(&path, None),
            Err(StoreError::InUse)
        ));
        drop(a);
        // Asking for less than the image holds: refused, the data stays.
        assert!(matches!(
            FileStore::open(&path, Some(4096)),
            Err(StoreError::WouldShrink {
                size: 8192,
                asked: 4096
            })
        ));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
        // Growing is fine, and keeps the data.
        let b = FileStore::open(&path, Some(16384)).unwrap();
        let mut x = [0u8; 8];
        b.read_at(8000, &mut x).unwrap();
        assert_eq!((b.size(), x), (16384, [5; 8]));
    }

    #[test]
    fn ram_store() {
        exercise(&RamStore::new(8192));
    }

    #[test]
    fn file_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(&dir.path().join("disk.img"), Some(8192)).unwrap();
        exercise(&store);
        drop(store);
        let again = FileStore::open(&dir.path().join("disk.img"), None).unwrap();
        let mut b = [0u8; 2];
        again.read_at(510, &mut b).unwrap();
        assert_eq!(b, [1, 0], "the write and the zeroing survive a reopen");
    }
}
