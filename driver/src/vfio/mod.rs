//! The kernel VFIO backend: an fpga-virtio card (or any PCI device) bound to vfio-pci, opened from
//! user space by PCI address.
//!
//! At open, in order: sysfs is asked which driver the device is bound to and whether its IOMMU
//! group is viable (a clear error names what blocks it), the container, group and device fd are
//! opened ([`sys`]), the BARs are mapped where the kernel allows it (the sparse-mmap areas of a BAR
//! whose MSI-X table is excluded; pread/pwrite for the rest, [`region`]), and memory space and bus
//! mastering are switched on in the PCI command register, which vfio-pci leaves off. DMA mappings
//! ([`dma`]) and interrupt vectors ([`irq`]) are added afterwards. Teardown (drop, or
//! [`VfioPciDevice::close`]) runs the reverse: interrupts off, bus mastering off, DMA unmapped,
//! device reset when supported, fds closed.
//!
//! The device implements [`RegisterIo`], the same seam the simulator implements, so the probe,
//! the firmware loader and the runtime run over it unchanged. docs/vfio.md is the user's guide.

pub mod dma;
#[cfg(test)]
mod fake;
pub mod irq;
pub mod region;
pub mod sys;
pub mod sysfs;

use fpga_virtio_hw::{Bar, IoError, RegisterIo};
use region::{BarRegion, RegionError};
use std::path::PathBuf;
use std::sync::Mutex;
use sys::{KernelVfio, RegionInfo, VfioDeviceOps, VfioSys};
use sysfs::{PciAddress, PciDevice, Sysfs, SysfsError};
use vfio_bindings::bindings::vfio as uapi;
use vfio_ioctls::VfioError;

pub use dma::DmaError;
pub use irq::{IrqError, IrqKind};

/// PCI command register: offset in config space and the bits we own.
pub const PCI_COMMAND: u64 = 0x04;
pub const PCI_COMMAND_MEMORY: u16 = 1 << 1;
pub const PCI_COMMAND_MASTER: u16 = 1 << 2;

/// Why a device could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
    #[error(
        "{device} is not bound to vfio-pci; bind it first:\n  echo vfio-pci > /sys/bus/pci/devices/{}/driver_override\n  {}echo {} > /sys/bus/pci/drivers_probe\n(docs/vfio.md)",
        device.address,
        device.driver.as_ref().map(|d| format!("echo {} > /sys/bus/pci/drivers/{d}/unbind\n  ", device.address)).unwrap_or_default(),
        device.address
    )]
    NotBound { device: PciDevice },
    #[error("{device} is in no IOMMU group: the kernel runs without an IOMMU (boot with intel_iommu=on or amd_iommu=on) and VFIO refuses unprotected DMA")]
    NoIommuGroup { device: PciDevice },
    #[error(
        "IOMMU group {group} of {address} is not viable: {} must be unbound from {} or bound to vfio-pci too",
        blockers.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        if blockers.len() == 1 { "its driver" } else { "their drivers" }
    )]
    GroupNotViable {
        address: PciAddress,
        group: u32,
        blockers: Vec<PciDevice>,
    },
    #[error(
        "opening {address} through /dev/vfio failed: {source}{}",
        hint_for(source)
    )]
    Vfio {
        address: PciAddress,
        source: VfioError,
    },
    #[error("{address}: the device has no config-space region")]
    NoConfigRegion { address: PciAddress },
    #[error("{address}: {source}")]
    Region {
        address: PciAddress,
        source: RegionError,
    },
}

fn hint_for(e: &VfioError) -> &'static str {
    match e {
        VfioError::OpenContainer(io) if io.kind() == std::io::ErrorKind::NotFound => {
            " (no /dev/vfio/vfio: load the vfio-pci module)"
        }
        VfioError::OpenContainer(io) | VfioError::OpenGroup(io, _)
            if io.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            " (permission denied: run as root or give this user the /dev/vfio/<group> node; docs/vfio.md)"
        }
        VfioError::OpenGroup(io, _) if io.raw_os_error() == Some(libc::EBUSY) => {
            " (the group is already open: another process owns this device)"
        }
        _ => "",
    }
}

/// How to open.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Where sysfs is (tests point this at a fake tree).
    pub sysfs: Sysfs,
    /// Map BARs where the kernel allows it (default). Off: every access is a pread/pwrite.
    pub mmap: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            sysfs: Sysfs::default(),
            mmap: true,
        }
    }
}

/// An open PCI device bound to vfio-pci.
pub struct VfioPciDevice {
    pci: PciDevice,
    path: PathBuf,
    bars: Vec<Option<BarRegion>>,
    config: BarRegion,
    dma: dma::DmaMappings,
    irqs: Mutex<irq::IrqState>,
    closed: bool,
    // Last: the device fd closes after everything that uses it.
    ops: Box<dyn VfioDeviceOps>,
}

impl std::fmt::Debug for VfioPciDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPciDevice")
            .field("pci", &self.pci)
            .field("path", &self.path)
            .field("bars", &self.bars)
            .finish_non_exhaustive()
    }
}

impl VfioPciDevice {
    /// Open `address` through the kernel's VFIO.
    pub fn open(address: PciAddress) -> Result<Self, OpenError> {
        Self::open_with(address, &KernelVfio, &OpenOptions::default())
    }

    /// Open through `sys` (the kernel, or a fake in tests).
    pub fn open_with(
        address: PciAddress,
        sys: &dyn VfioSys,
        opts: &OpenOptions,
    ) -> Result<Self, OpenError> {
        let pci = opts.sysfs.device(address)?;
        if !pci
            .driver
            .as_deref()
            .is_some_and(|d| sysfs::VFIO_DRIVERS.contains(&d))
        {
            return Err(OpenError::NotBound { device: pci });
        }
        let Some(group) = pci.iommu_group else {
            return Err(OpenError::NoIommuGroup { device: pci });
        };
        let not_viable = |blockers| OpenError::GroupNotViable {
            address,
            group,
            blockers,
        };
        let blockers = opts.sysfs.group_blockers(group)?;
        if !blockers.is_empty() {
            return Err(not_viable(blockers));
        }
        let path = opts.sysfs.device_path(address);
        let ops = match sys.open(&path) {
            Ok(ops) => ops,
            // sysfs said viable but the kernel disagrees (a driver bound in between, or a
            // member sysfs does not show as a PCI device): name what sysfs sees now.
            Err(VfioError::GroupViable) => {
                return Err(not_viable(opts.sysfs.group_blockers(group)?));
            }
            Err(source) => return Err(OpenError::Vfio { address, source }),
        };
        let region_err = |source| OpenError::Region { address, source };
        let mut bars = Vec::new();
        for index in uapi::VFIO_PCI_BAR0_REGION_INDEX..=uapi::VFIO_PCI_BAR5_REGION_INDEX {
            let bar = match ops.region(index) {
                Some(info) if info.size > 0 => Some(
                    BarRegion::new(Bar(index as u8), info, ops.file(), opts.mmap)
                        .map_err(region_err)?,
                ),
                _ => None,
            };
            bars.push(bar);
        }
        let config_info: RegionInfo = ops
            .region(uapi::VFIO_PCI_CONFIG_REGION_INDEX)
            .filter(|r| r.size >= 0x40)
            .ok_or(OpenError::NoConfigRegion { address })?;
        // Config space is never mapped: the kernel virtualizes parts of it on every access.
        let config =
            BarRegion::new(Bar(0xff), config_info, ops.file(), false).map_err(region_err)?;
        let dev = VfioPciDevice {
            pci,
            path,
            bars,
            config,
            dma: dma::DmaMappings::default(),
            irqs: Mutex::new(irq::IrqState::default()),
            closed: false,
            ops,
        };
        dev.set_command_bits(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, true)
            .map_err(region_err)?;
        Ok(dev)
    }

    /// What sysfs said about the device at open.
    pub fn pci(&self) -> &PciDevice {
        &self.pci
    }

    /// The device's sysfs directory.
    pub fn sysfs_path(&self) -> &std::path::Path {
        &self.path
    }

    /// BAR `bar`'s size and how it is reached, or None if the device has no such BAR.
    pub fn bar(&self, bar: Bar) -> Option<&BarRegion> {
        self.bars.get(usize::from(bar.0)).and_then(Option::as_ref)
    }

    /// Read `buf.len()` bytes of PCI config space at `offset`.
    pub fn config_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), RegionError> {
        self.config.read(self.ops.file(), offset, buf)
    }

    /// Write `buf` to PCI config space at `offset`.
    pub fn config_write(&self, offset: u64, buf: &[u8]) -> Result<(), RegionError> {
        self.config.write(self.ops.file(), offset, buf)
    }

    /// The PCI command register.
    pub fn command(&self) -> Result<u16, RegionError> {
        let mut b = [0u8; 2];
        self.config_read(PCI_COMMAND, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn set_command_bits(&self, bits: u16, on: bool) -> Result<(), RegionError> {
        let cmd = self.command()?;
        let new = if on { cmd | bits } else { cmd & !bits };
        if new != cmd {
            self.config_write(PCI_COMMAND, &new.to_le_bytes())?;
        }
        Ok(())
    }

    /// Switch bus mastering (the device's DMA and MSI writes) on or off.
    pub fn set_bus_master(&self, on: bool) -> Result<(), RegionError> {
        self.set_command_bits(PCI_COMMAND_MASTER, on)
    }

    /// Reset the device (`VFIO_DEVICE_RESET`). Errors when the device has no reset method; bus
    /// mastering and memory space are switched on again afterwards.
    pub fn reset(&self) -> Result<(), RegionError> {
        if !self.pci.resettable {
            return Err(RegionError::NoReset);
        }
        self.ops.reset();
        self.set_command_bits(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, true)
    }

    /// Tear down in order and report the first error: interrupts off, bus mastering off (no
    /// more DMA), every DMA mapping removed, the device reset if it can be. Drop does the same
    /// and ignores errors.
    pub fn close(mut self) -> Result<(), CloseError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), CloseError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let mut first: Option<CloseError> = None;
        let mut note = |e: CloseError| {
            first.get_or_insert(e);
        };
        if let Err(e) = self.disable_interrupts() {
            note(CloseError::Irq(e));
        }
        if let Err(e) = self.set_bus_master(false) {
            note(CloseError::Region(e));
        }
        for e in self.dma.unmap_all(self.ops.as_ref()) {
            note(CloseError::Dma(e));
        }
        if self.pci.resettable {
            self.ops.reset();
        }
        first.map_or(Ok(()), Err)
    }
}

/// What went wrong during teardown (the rest of it still ran).
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("disabling interrupts: {0}")]
    Irq(IrqError),
    #[error("clearing bus mastering: {0}")]
    Region(RegionError),
    #[error("removing a DMA mapping: {0}")]
    Dma(DmaError),
}

impl Drop for VfioPciDevice {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

impl RegisterIo for VfioPciDevice {
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
        self.bar(bar)
            .ok_or(IoError::NoSuchBar { bar })?
            .read32(self.ops.file(), offset)
    }

    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        self.bar(bar)
            .ok_or(IoError::NoSuchBar { bar })?
            .write32(self.ops.file(), offset, value)
    }
}

#[cfg(test)]
mod tests;
