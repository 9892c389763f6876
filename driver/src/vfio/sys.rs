//! The syscall seam: everything the VFIO backend asks of the kernel, behind two traits, so its
//! logic (mapping choices, alignment and limit checks, bus mastering, teardown order) is tested
//! without /dev/vfio. [`KernelVfio`] is the real thing, built on vfio-ioctls; the tests use a fake
//! (`fake.rs`) whose "device fd" is an ordinary file. vfio-ioctls' own `vfio_syscall` real/fake
//! pair is the model.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;
use vfio_ioctls::{VfioContainer, VfioDevice, VfioError, VfioRegionInfoCap};
use vmm_sys_util::eventfd::EventFd;

/// A region of the device (a BAR, the ROM, config space), from `VFIO_DEVICE_GET_REGION_INFO`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionInfo {
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Where the region starts in the device fd (for pread/pwrite and mmap).
    pub offset: u64,
    pub size: u64,
    /// The sparse-mmap capability's areas `(offset in region, size)`, when the kernel gave one:
    /// then only these may be mapped (the MSI-X table is typically left out).
    pub sparse_areas: Option<Vec<(u64, u64)>>,
}

/// Open VFIO devices: the kernel's /dev/vfio, or a fake.
pub trait VfioSys: Send + Sync + std::fmt::Debug {
    /// Open the device whose sysfs directory is `device_path`: a container, its group (which
    /// must be viable) attached, the IOMMU type set, the device fd.
    fn open(&self, device_path: &Path) -> Result<Box<dyn VfioDeviceOps>, VfioError>;
}

/// One open VFIO device.
pub trait VfioDeviceOps: Send + Sync {
    /// Region `index`, or None if the device has no such region.
    fn region(&self, index: u32) -> Option<RegionInfo>;
    /// How many vectors interrupt index `index` (INTx, MSI, MSI-X, ...) has.
    fn irq_count(&self, index: u32) -> u32;
    /// The device fd: regions are read, written and mapped through it.
    fn file(&self) -> &File;
    /// Map `size` bytes at `hva` for device DMA at `iova`.
    ///
    /// # Safety
    /// `[hva, hva + size)` must be mapped memory of this process that stays mapped until
    /// `dma_unmap(iova, size)`, and that no Rust reference covers while it is mapped: the device
    /// may read and write it at any time (vfio-ioctls' `VfioOps::vfio_dma_map` contract).
    unsafe fn dma_map(&self, iova: u64, size: usize, hva: *mut u8) -> Result<(), VfioError>;
    fn dma_unmap(&self, iova: u64, size: usize) -> Result<(), VfioError>;
    /// Signal vectors `0..fds.len()` of interrupt index `index` on these eventfds.
    fn enable_irq(&self, index: u32, fds: &[&EventFd]) -> Result<(), VfioError>;
    fn disable_irq(&self, index: u32) -> Result<(), VfioError>;
    /// `VFIO_DEVICE_RESET` (a no-op for a device without reset support).
    fn reset(&self);
}

/// The kernel's VFIO container/group interface, through vfio-ioctls.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelVfio;

struct KernelDevice {
    // Field order is drop order: our duplicate of the device fd must close before vfio-ioctls
    // closes its own and puts the group, or putting the group fails with EBUSY.
    file: File,
    device: VfioDevice,
    container: Arc<VfioContainer>,
}

impl VfioSys for KernelVfio {
    fn open(&self, device_path: &Path) -> Result<Box<dyn VfioDeviceOps>, VfioError> {
        let container = Arc::new(VfioContainer::new(None)?);
        let device = VfioDevice::new(device_path, container.clone(), false)?;
        // SAFETY: the fd belongs to `device`, which is alive for this whole statement; we only
        // borrow it long enough to duplicate it (F_DUPFD_CLOEXEC) into a descriptor of our own.
        let borrowed = unsafe { BorrowedFd::borrow_raw(device.as_raw_fd()) };
        let file = File::from(
            borrowed
                .try_clone_to_owned()
                .map_err(|_| VfioError::VfioDeviceDupFd)?,
        );
        Ok(Box::new(KernelDevice {
            file,
            device,
            container,
        }))
    }
}

impl VfioDeviceOps for KernelDevice {
    fn region(&self, index: u32) -> Option<RegionInfo> {
        // vfio-ioctls keeps regions in a Vec that skips indices whose info failed (VGA on a
        // non-VGA device), so only BARs, ROM and config (0..=7) are looked up by index here.
        if index > vfio_bindings::bindings::vfio::VFIO_PCI_CONFIG_REGION_INDEX {
            return None;
        }
        let size = self.device.get_region_size(index);
        let flags = self.device.get_region_flags(index);
        if size == 0 && flags == 0 {
            return None;
        }
        let sparse_areas = self
            .device
            .get_region_caps(index)
            .into_iter()
            .find_map(|c| match c {
                VfioRegionInfoCap::SparseMmap(s) => {
                    Some(s.areas.iter().map(|a| (a.offset, a.size)).collect())
                }
                _ => None,
            });
        Some(RegionInfo {
            flags,
            offset: self.device.get_region_offset(index),
            size,
            sparse_areas,
        })
    }

    fn irq_count(&self, index: u32) -> u32 {
        self.device.get_irq_info(index).map_or(0, |i| i.count)
    }

    fn file(&self) -> &File {
        &self.file
    }

    unsafe fn dma_map(&self, iova: u64, size: usize, hva: *mut u8) -> Result<(), VfioError> {
        // SAFETY: the caller upholds `VfioDeviceOps::dma_map`'s contract, which is vfio-ioctls'.
        unsafe { self.container.vfio_dma_map(iova, size, hva) }
    }

    fn dma_unmap(&self, iova: u64, size: usize) -> Result<(), VfioError> {
        self.container.vfio_dma_unmap(iova, size)
    }

    fn enable_irq(&self, index: u32, fds: &[&EventFd]) -> Result<(), VfioError> {
        self.device.enable_irq(index, fds.to_vec())
    }

    fn disable_irq(&self, index: u32) -> Result<(), VfioError> {
        self.device.disable_irq(index)
    }

    fn reset(&self) {
        self.device.reset();
    }
}
