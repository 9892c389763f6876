//! A device region (a BAR or config space) reached through the VFIO device fd: mmap'd where the
//! kernel allows (the region's MMAP flag, and only the sparse-mmap areas when it lists them; the
//! MSI-X table is typically excluded), pread/pwrite everywhere else.

use super::sys::RegionInfo;
use crate::mmio::{MapError, MappedBar};
use fpga_virtio_hw::{check_access, Bar, IoError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use vfio_bindings::bindings::vfio as uapi;

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("{region} is not {what} (region flags {flags:#x})")]
    NotAllowed {
        region: String,
        what: &'static str,
        flags: u32,
    },
    #[error("{region}: {len} bytes at {offset:#x} are outside the region ({size:#x} bytes)")]
    OutOfRange {
        region: String,
        offset: u64,
        len: usize,
        size: u64,
    },
    #[error("{region}: {op} of {len} bytes at {offset:#x}: {source}")]
    Io {
        region: String,
        op: &'static str,
        offset: u64,
        len: usize,
        source: std::io::Error,
    },
    #[error("{region}: mmap area at {offset:#x} (+{size:#x}) lies outside the region")]
    BadArea {
        region: String,
        offset: u64,
        size: u64,
    },
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("the device has no reset method (no `reset` attribute in sysfs)")]
    NoReset,
}

/// One region of the device and how each part of it is reached.
#[derive(Debug)]
pub struct BarRegion {
    bar: Bar,
    info: RegionInfo,
    /// Mapped areas: (offset in the region, mapping).
    maps: Vec<(u64, MappedBar)>,
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions; it only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

impl BarRegion {
    /// Describe region `info` of the device whose fd is `file`; with `mmap`, map every area the
    /// kernel allows. Areas that are not page aligned are left to pread/pwrite.
    pub fn new(bar: Bar, info: RegionInfo, file: &File, mmap: bool) -> Result<Self, RegionError> {
        let mut maps = Vec::new();
        if mmap && info.flags & uapi::VFIO_REGION_INFO_FLAG_MMAP != 0 {
            let areas = info
                .sparse_areas
                .clone()
                .unwrap_or_else(|| vec![(0, info.size)]);
            let page = page_size();
            for (offset, size) in areas {
                if offset.checked_add(size).is_none_or(|end| end > info.size) {
                    return Err(RegionError::BadArea {
                        region: bar.to_string(),
                        offset,
                        size,
                    });
                }
                if size == 0 || !offset.is_multiple_of(page) || !size.is_multiple_of(4) {
                    continue;
                }
                maps.push((
                    offset,
                    MappedBar::map(bar, file, info.offset + offset, size)?,
                ));
            }
        }
        Ok(BarRegion { bar, info, maps })
    }

    pub fn size(&self) -> u64 {
        self.info.size
    }

    pub fn info(&self) -> &RegionInfo {
        &self.info
    }

    /// Bytes of the region reached through mmap (the rest goes through pread/pwrite).
    pub fn mapped_bytes(&self) -> u64 {
        self.maps.iter().map(|(_, m)| m.len()).sum()
    }

    fn name(&self) -> String {
        if self.bar.0 == 0xff {
            "config space".to_string()
        } else {
            self.bar.to_string()
        }
    }

    fn area(&self, offset: u64) -> Option<(&MappedBar, u64)> {
        self.maps
            .iter()
            .find(|(start, m)| offset >= *start && offset + 4 <= start + m.len())
            .map(|(start, m)| (m, offset - start))
    }

    fn check(
        &self,
        offset: u64,
        len: usize,
        flag: u32,
        what: &'static str,
    ) -> Result<(), RegionError> {
        if self.info.flags & flag == 0 {
            return Err(RegionError::NotAllowed {
                region: self.name(),
                what,
                flags: self.info.flags,
            });
        }
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.info.size)
        {
            return Err(RegionError::OutOfRange {
                region: self.name(),
                offset,
                len,
                size: self.info.size,
            });
        }
        Ok(())
    }

    /// pread `buf.len()` bytes at `offset` of the region.
    pub fn read(&self, file: &File, offset: u64, buf: &mut [u8]) -> Result<(), RegionError> {
        self.check(
            offset,
            buf.len(),
            uapi::VFIO_REGION_INFO_FLAG_READ,
            "readable",
        )?;
        file.read_exact_at(buf, self.info.offset + offset)
            .map_err(|source| RegionError::Io {
                region: self.name(),
                op: "read",
                offset,
                len: buf.len(),
                source,
            })
    }

    /// pwrite `buf` at `offset` of the region.
    pub fn write(&self, file: &File, offset: u64, buf: &[u8]) -> Result<(), RegionError> {
        self.check(
            offset,
            buf.len(),
            uapi::VFIO_REGION_INFO_FLAG_WRITE,
            "writable",
        )?;
        file.write_all_at(buf, self.info.offset + offset)
            .map_err(|source| RegionError::Io {
                region: self.name(),
                op: "write",
                offset,
                len: buf.len(),
                source,
            })
    }

    fn backend(&self, offset: u64, e: RegionError) -> IoError {
        IoError::Backend {
            bar: self.bar,
            offset,
            reason: e.to_string(),
        }
    }

    /// A 32-bit register read: a volatile load when the word is mapped, else a 4-byte pread.
    pub fn read32(&self, file: &File, offset: u64) -> Result<u32, IoError> {
        check_access(self.bar, offset, self.info.size)?;
        if let Some((map, at)) = self.area(offset) {
            return map.read32(at);
        }
        let mut b = [0u8; 4];
        self.read(file, offset, &mut b)
            .map_err(|e| self.backend(offset, e))?;
        Ok(u32::from_le_bytes(b))
    }

    /// A 32-bit register write: a volatile store when mapped, else a 4-byte pwrite.
    pub fn write32(&self, file: &File, offset: u64, value: u32) -> Result<(), IoError> {
        check_access(self.bar, offset, self.info.size)?;
        if let Some((map, at)) = self.area(offset) {
            return map.write32(at, value);
        }
        self.write(file, offset, &value.to_le_bytes())
            .map_err(|e| self.backend(offset, e))
    }
}
