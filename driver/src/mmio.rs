//! Memory-mapped BARs.
//!
//! A BAR is mapped from a file descriptor at an offset: the VFIO device fd at the region offset
//! `VFIO_REGION_INFO` gives (the VFIO backend), a sysfs `resourceN` file, or any other file in
//! tests. Accesses are 32-bit volatile loads and stores, checked for alignment and range first.

use fpga_virtio_hw::{check_access, Bar, IoError, RegisterIo};
use memmap2::{MmapOptions, MmapRaw};
use std::collections::BTreeMap;
use std::fs::File;

/// Why a BAR could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{bar}: length {len:#x} must be a non-zero multiple of 4")]
    BadLength { bar: Bar, len: u64 },
    #[error("{bar}: offset {offset:#x} in the file must be page aligned")]
    Unaligned { bar: Bar, offset: u64 },
    #[error("{bar}: mmap of {len:#x} bytes at file offset {offset:#x} failed: {source}")]
    Mmap {
        bar: Bar,
        offset: u64,
        len: u64,
        source: std::io::Error,
    },
    #[error("{bar} is mapped twice")]
    Duplicate { bar: Bar },
}

/// One mapped BAR.
#[derive(Debug)]
pub struct MappedBar {
    bar: Bar,
    map: MmapRaw,
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions; it only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

impl MappedBar {
    /// Map `len` bytes of `file` at `offset` (shared, read-write) as `bar`.
    pub fn map(bar: Bar, file: &File, offset: u64, len: u64) -> Result<Self, MapError> {
        if len == 0 || !len.is_multiple_of(4) {
            return Err(MapError::BadLength { bar, len });
        }
        if !offset.is_multiple_of(page_size()) {
            return Err(MapError::Unaligned { bar, offset });
        }
        let map_len = usize::try_from(len).map_err(|_| MapError::BadLength { bar, len })?;
        let map = MmapOptions::new()
            .offset(offset)
            .len(map_len)
            .map_raw(file)
            .map_err(|source| MapError::Mmap {
                bar,
                offset,
                len,
                source,
            })?;
        Ok(MappedBar { bar, map })
    }

    pub fn bar(&self) -> Bar {
        self.bar
    }

    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    fn ptr(&self, offset: u64) -> Result<*mut u32, IoError> {
        check_access(self.bar, offset, self.len())?;
        // `check_access` proved offset + 4 <= len, so the cast cannot truncate.
        let off = offset as usize;
        Ok(self.map.as_mut_ptr().wrapping_add(off).cast::<u32>())
    }

    pub fn read32(&self, offset: u64) -> Result<u32, IoError> {
        let p = self.ptr(offset)?;
        // SAFETY: `ptr` checked that [offset, offset + 4) lies inside the mapping, which lives as
        // long as `self`; the mapping is page aligned and offset is a multiple of 4, so `p` is
        // aligned for u32. A volatile load is how MMIO must be read: exactly one 32-bit access,
        // never elided or merged. Any bit pattern is a valid u32.
        let v = unsafe { p.read_volatile() };
        Ok(u32::from_le(v))
    }

    pub fn write32(&self, offset: u64, value: u32) -> Result<(), IoError> {
        let p = self.ptr(offset)?;
        // SAFETY: as in `read32`: in bounds, aligned, alive for `self`. The mapping is shared
        // device memory nobody else in this process references as a Rust object, so a volatile
        // store through a raw pointer creates no aliasing violation.
        unsafe { p.write_volatile(value.to_le()) };
        Ok(())
    }
}

/// The BARs of one device, mapped.
#[derive(Debug, Default)]
pub struct MappedBars {
    bars: BTreeMap<Bar, MappedBar>,
}

impl MappedBars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, bar: MappedBar) -> Result<(), MapError> {
        let b = bar.bar();
        if self.bars.contains_key(&b) {
            return Err(MapError::Duplicate { bar: b });
        }
        self.bars.insert(b, bar);
        Ok(())
    }

    fn get(&self, bar: Bar) -> Result<&MappedBar, IoError> {
        self.bars.get(&bar).ok_or(IoError::NoSuchBar { bar })
    }
}

impl RegisterIo for MappedBars {
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
        self.get(bar)?.read32(offset)
    }
    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        self.get(bar)?.write32(offset, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    fn temp_file(len: usize) -> File {
        let path = std::env::temp_dir().join(format!("fv-mmio-{}-{len}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(&vec![0u8; len]).unwrap();
        f
    }

    #[test]
    fn reads_and_writes_reach_the_file_little_endian() {
        let mut f = temp_file(8192);
        f.seek(SeekFrom::Start(4096 + 8)).unwrap();
        f.write_all(&[0x44, 0x33, 0x22, 0x11]).unwrap();
        let bar = MappedBar::map(Bar(0), &f, 4096, 4096).unwrap();
        assert_eq!(bar.read32(8).unwrap(), 0x1122_3344);
        bar.write32(12, 0xaabb_ccdd).unwrap();
        let mut back = [0u8; 4];
        f.seek(SeekFrom::Start(4096 + 12)).unwrap();
        f.read_exact(&mut back).unwrap();
        assert_eq!(back, [0xdd, 0xcc, 0xbb, 0xaa]);
    }

    #[test]
    fn bad_accesses_and_maps_are_errors() {
        let f = temp_file(4096);
        assert!(matches!(
            MappedBar::map(Bar(0), &f, 12, 4),
            Err(MapError::Unaligned { .. })
        ));
        assert!(matches!(
            MappedBar::map(Bar(0), &f, 0, 6),
            Err(MapError::BadLength { .. })
        ));
        let mut bars = MappedBars::new();
        bars.insert(MappedBar::map(Bar(2), &f, 0, 4096).unwrap())
            .unwrap();
        assert!(matches!(
            bars.insert(MappedBar::map(Bar(2), &f, 0, 4096).unwrap()),
            Err(MapError::Duplicate { .. })
        ));
        assert!(matches!(
            bars.read32(Bar(0), 0),
            Err(IoError::NoSuchBar { .. })
        ));
        assert!(matches!(
            bars.read32(Bar(2), 4096),
            Err(IoError::OutOfRange { .. })
        ));
        assert!(matches!(
            bars.read32(Bar(2), u64::MAX - 1),
            Err(IoError::Unaligned { .. })
        ));
        assert!(matches!(
            bars.read32(Bar(2), u64::MAX - 3),
            Err(IoError::OutOfRange { .. })
        ));
        assert!(matches!(
            bars.write32(Bar(2), 2, 0),
            Err(IoError::Unaligned { .. })
        ));
    }
}
