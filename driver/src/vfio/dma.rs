//! IOMMU DMA mappings of the runtime's memory: each region of a `GuestMemoryMmap` is mapped at
//! IOVA = its guest address, the identity the simulator's IOMMU map uses too. Checked before the
//! kernel sees them (page alignment, overlap) and explained when the kernel refuses (the
//! locked-memory limit is the usual reason).

use super::sys::VfioDeviceOps;
use std::sync::Mutex;
use vfio_ioctls::VfioError;
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};

#[derive(Debug, thiserror::Error)]
pub enum DmaError {
    #[error("DMA mapping at IOVA {iova:#x} (+{size:#x}): {what} is not a multiple of the page size ({page:#x})")]
    Unaligned {
        iova: u64,
        size: u64,
        what: &'static str,
        page: u64,
    },
    #[error("DMA mapping at IOVA {iova:#x} (+{size:#x}) overlaps the mapping at {other:#x} (+{other_size:#x})")]
    Overlap {
        iova: u64,
        size: u64,
        other: u64,
        other_size: u64,
    },
    #[error("memory region at {iova:#x} has no host address to map")]
    NoHostAddress { iova: u64 },
    #[error(
        "pinning {size:#x} bytes for DMA at IOVA {iova:#x} exceeds the locked-memory limit: RLIMIT_MEMLOCK is {} and this device already pins {pinned:#x} bytes; raise the limit (`ulimit -l`, LimitMEMLOCK= in a systemd unit, /etc/security/limits.conf) or run with CAP_IPC_LOCK (docs/vfio.md)",
        limit.map_or("unlimited".to_string(), |l| format!("{l:#x} bytes"))
    )]
    MemlockLimit {
        iova: u64,
        size: u64,
        limit: Option<u64>,
        pinned: u64,
    },
    #[error("IOMMU DMA map of IOVA {iova:#x} (+{size:#x}): {source}")]
    Map {
        iova: u64,
        size: u64,
        source: VfioError,
    },
    #[error("no DMA mapping starts at IOVA {iova:#x}")]
    NotMapped { iova: u64 },
    #[error("IOMMU DMA unmap of IOVA {iova:#x} (+{size:#x}): {source}")]
    Unmap {
        iova: u64,
        size: u64,
        source: VfioError,
    },
}

struct Mapping {
    iova: u64,
    size: u64,
    /// Keeps the mapped memory alive (mapped in this process) until the IOMMU mapping is gone.
    _memory: GuestMemoryMmap,
}

/// The DMA mappings of one device.
#[derive(Default)]
pub(crate) struct DmaMappings {
    maps: Mutex<Vec<Mapping>>,
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions; it only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

/// RLIMIT_MEMLOCK's soft limit, None when unlimited.
pub fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we pass, which lives on our stack.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(lim.rlim_cur)
    }
}

impl DmaMappings {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Mapping>> {
        // A panic while holding this lock cannot leave the list half-updated (every update is
        // one push or remove), so a poisoned lock is still a consistent list.
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (iova, size) of every mapping.
    pub fn list(&self) -> Vec<(u64, u64)> {
        self.lock().iter().map(|m| (m.iova, m.size)).collect()
    }

    /// Map every region of `mem` at IOVA = its guest address. All or nothing: if one region
    /// fails, the ones this call mapped are unmapped again.
    pub fn map(&self, ops: &dyn VfioDeviceOps, mem: &GuestMemoryMmap) -> Result<(), DmaError> {
        let page = page_size();
        let mut maps = self.lock();
        let mut planned: Vec<(u64, u64, *mut u8)> = Vec::new();
        for region in mem.iter() {
            let iova = region.start_addr().0;
            let size = region.len();
            let unaligned = |what| DmaError::Unaligned {
                iova,
                size,
                what,
                page,
            };
            if !iova.is_multiple_of(page) {
                return Err(unaligned("the IOVA"));
            }
            if size == 0 || !size.is_multiple_of(page) {
                return Err(unaligned("the size"));
            }
            let hva = region
                .get_host_address(MemoryRegionAddress(0))
                .map_err(|_| DmaError::NoHostAddress { iova })?;
            if !(hva as u64).is_multiple_of(page) {
                return Err(unaligned("the host address"));
            }
            let overlaps = |a: u64, s: u64| iova < a + s && a < iova + size;
            if let Some(m) = maps.iter().find(|m| overlaps(m.iova, m.size)) {
                return Err(DmaError::Overlap {
                    iova,
                    size,
                    other: m.iova,
                    other_size: m.size,
                });
            }
            if let Some(&(other, other_size, _)) = planned.iter().find(|p| overlaps(p.0, p.1)) {
                return Err(DmaError::Overlap {
                    iova,
                    size,
                    other,
                    other_size,
                });
            }
            planned.push((iova, size, hva));
        }
        let mut done: Vec<(u64, u64)> = Vec::new();
        for (iova, size, hva) in planned {
            let len = usize::try_from(size).map_err(|_| DmaError::Unaligned {
                iova,
                size,
                what: "the size",
                page,
            })?;
            // SAFETY: [hva, hva + len) is region memory of `mem`; a clone of `mem` is stored with
            // the mapping below and dropped only after the IOMMU mapping is removed, so the range
            // stays mapped for as long as the device can reach it. vm-memory touches guest memory
            // only through volatile slices and raw copies, never Rust references, which is the
            // access discipline `VfioOps::vfio_dma_map` requires.
            let result = unsafe { ops.dma_map(iova, len, hva) };
            if let Err(source) = result {
                for &(i, s) in &done {
                    let _ = ops.dma_unmap(i, s as usize);
                }
                let pinned: u64 = maps.iter().map(|m| m.size).sum();
                return Err(match &source {
                    VfioError::IommuDmaMap(e) if e.errno() == libc::ENOMEM => {
                        DmaError::MemlockLimit {
                            iova,
                            size,
                            limit: memlock_limit(),
                            pinned,
                        }
                    }
                    _ => DmaError::Map { iova, size, source },
                });
            }
            done.push((iova, size));
        }
        for (iova, size) in done {
            maps.push(Mapping {
                iova,
                size,
                _memory: mem.clone(),
            });
        }
        Ok(())
    }

    /// Remove the mapping that starts at `iova`.
    pub fn unmap(&self, ops: &dyn VfioDeviceOps, iova: u64) -> Result<(), DmaError> {
        let mut maps = self.lock();
        let i = maps
            .iter()
            .position(|m| m.iova == iova)
            .ok_or(DmaError::NotMapped { iova })?;
        let size = maps[i].size;
        ops.dma_unmap(iova, size as usize)
            .map_err(|source| DmaError::Unmap { iova, size, source })?;
        maps.remove(i);
        Ok(())
    }

    /// Remove every mapping; the errors of those that failed (their memory is kept alive).
    pub fn unmap_all(&self, ops: &dyn VfioDeviceOps) -> Vec<DmaError> {
        let mut maps = self.lock();
        let mut errors = Vec::new();
        maps.retain(|m| match ops.dma_unmap(m.iova, m.size as usize) {
            Ok(()) => false,
            Err(source) => {
                errors.push(DmaError::Unmap {
                    iova: m.iova,
                    size: m.size,
                    source,
                });
                true
            }
        });
        errors
    }
}

impl super::VfioPciDevice {
    /// Map every region of `mem` for device DMA at IOVA = its guest address (all or nothing).
    /// The device keeps a handle on the memory until the mapping is removed.
    pub fn map_dma(&self, mem: &GuestMemoryMmap) -> Result<(), DmaError> {
        self.dma.map(self.ops.as_ref(), mem)
    }

    /// Remove the mapping that starts at `iova`.
    pub fn unmap_dma(&self, iova: u64) -> Result<(), DmaError> {
        self.dma.unmap(self.ops.as_ref(), iova)
    }

    /// (IOVA, size) of every DMA mapping.
    pub fn dma_mappings(&self) -> Vec<(u64, u64)> {
        self.dma.list()
    }
}
