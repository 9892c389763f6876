//! What sysfs says about a PCI device before we touch /dev/vfio: its ids, which driver it is bound
//! to, its IOMMU group and which of the group's members keep the group from being viable.
//!
//! Every path is relative to a sysfs root (`/sys` on a machine, a directory tree in tests), so the
//! checks run without a kernel.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A PCI address `dddd:bb:dd.f` (domain, bus, device, function).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    pub domain: u16,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{input:?} is not a PCI address: expected dddd:bb:dd.f (hex, device < 0x20, function < 8), e.g. 0000:03:00.0")]
pub struct BadPciAddress {
    pub input: String,
}

impl FromStr for PciAddress {
    type Err = BadPciAddress;

    /// Parse `dddd:bb:dd.f`; the domain may be left out (`bb:dd.f` means domain 0), as lspci does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPciAddress {
            input: s.to_string(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (domain, bus, devfn) = match parts.as_slice() {
            [d, b, df] => (*d, *b, *df),
            [b, df] => ("0000", *b, *df),
            _ => return Err(bad()),
        };
        let (dev, func) = devfn.split_once('.').ok_or_else(bad)?;
        let hex = |t: &str, max_len: usize| -> Result<u32, BadPciAddress> {
            if t.is_empty() || t.len() > max_len || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            u32::from_str_radix(t, 16).map_err(|_| bad())
        };
        let (domain, bus, device, function) =
            (hex(domain, 4)?, hex(bus, 2)?, hex(dev, 2)?, hex(func, 1)?);
        if device >= 0x20 || function >= 8 {
            return Err(bad());
        }
        Ok(PciAddress {
            domain: domain as u16,
            bus: bus as u8,
            device: device as u8,
            function: function as u8,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// Drivers a device may be bound to for VFIO to hand it out.
pub const VFIO_DRIVERS: &[&str] = &["vfio-pci"];

/// Drivers that share a group without claiming DMA (the kernel's `driver_managed_dma`): a group
/// holding devices bound to these, to a VFIO driver or to nothing is viable.
pub const DMA_NEUTRAL_DRIVERS: &[&str] = &["pcieport", "pci-stub", "vfio-pci"];

/// One PCI device as sysfs describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    pub address: PciAddress,
    pub vendor: u16,
    pub device: u16,
    /// The bound driver's name, if any.
    pub driver: Option<String>,
    /// The IOMMU group number, if the device is in one.
    pub iommu_group: Option<u32>,
    /// Whether the kernel can reset the device (the `reset` attribute exists).
    pub resettable: bool,
}

impl fmt::Display for PciDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{:04x}:{:04x}] (driver: {})",
            self.address,
            self.vendor,
            self.device,
            self.driver.as_deref().unwrap_or("none")
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    #[error("no PCI device {address} ({path} does not exist)")]
    NoDevice { address: PciAddress, path: PathBuf },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: expected a hex id, found {found:?}")]
    BadId { path: PathBuf, found: String },
}

/// A sysfs tree: `/sys` or a test's stand-in.
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::new("/sys")
    }
}

impl Sysfs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    /// `<root>/bus/pci/devices/<address>`: the path vfio-ioctls opens the device by.
    pub fn device_path(&self, address: PciAddress) -> PathBuf {
        self.root.join("bus/pci/devices").join(address.to_string())
    }

    fn link_name(path: &Path) -> Option<String> {
        std::fs::read_link(path)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    fn read_id(path: &Path) -> Result<u16, SysfsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SysfsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let t = text.trim();
        u16::from_str_radix(t.trim_start_matches("0x"), 16).map_err(|_| SysfsError::BadId {
            path: path.to_path_buf(),
            found: t.to_string(),
        })
    }

    /// Read a device's ids, driver, group and reset support.
    pub fn device(&self, address: PciAddress) -> Result<PciDevice, SysfsError> {
        let dir = self.device_path(address);
        if !dir.exists() {
            return Err(SysfsError::NoDevice { address, path: dir });
        }
        Ok(PciDevice {
            address,
            vendor: Self::read_id(&dir.join("vendor"))?,
            device: Self::read_id(&dir.join("device"))?,
            driver: Self::link_name(&dir.join("driver")),
            iommu_group: Self::link_name(&dir.join("iommu_group")).and_then(|n| n.parse().ok()),
            resettable: dir.join("reset").exists(),
        })
    }

    /// Every device in IOMMU group `group`, sorted by address.
    pub fn group_devices(&self, group: u32) -> Result<Vec<PciDevice>, SysfsError> {
        let dir = self
            .root
            .join("kernel/iommu_groups")
            .join(group.to_string())
            .join("devices");
        let entries = std::fs::read_dir(&dir).map_err(|source| SysfsError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut devices = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SysfsError::Read {
                path: dir.clone(),
                source,
            })?;
            // Non-PCI members (platform devices) have names that are not PCI addresses: they
            // cannot be bound to vfio-pci, so they are not ours to judge; skip them.
            if let Ok(address) = entry.file_name().to_string_lossy().parse::<PciAddress>() {
                devices.push(self.device(address)?);
            }
        }
        devices.sort_by_key(|d| d.address);
        Ok(devices)
    }

    /// The members of `group` that make it not viable: bound to a driver that owns DMA.
    pub fn group_blockers(&self, group: u32) -> Result<Vec<PciDevice>, SysfsError> {
        Ok(self
            .group_devices(group)?
            .into_iter()
            .filter(|d| {
                d.driver
                    .as_deref()
                    .is_some_and(|drv| !DMA_NEUTRAL_DRIVERS.contains(&drv))
            })
            .collect())
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A sysfs tree in a temporary directory.
    use super::*;
    use std::os::unix::fs::symlink;

    pub struct FakeSysfs {
        pub root: PathBuf,
    }

    impl FakeSysfs {
        pub fn new(tag: &str) -> Self {
            let root = std::env::temp_dir().join(format!(
                "fv-sysfs-{}-{tag}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
            std::fs::create_dir_all(root.join("bus/pci/drivers")).unwrap();
            FakeSysfs { root }
        }

        pub fn sysfs(&self) -> Sysfs {
            Sysfs::new(&self.root)
        }

        /// Add a device with ids, an optional driver and an IOMMU group.
        pub fn add(&self, addr: &str, vendor: u16, device: u16, driver: Option<&str>, group: u32) {
            let dev = self.root.join("bus/pci/devices").join(addr);
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::write(dev.join("vendor"), format!("{vendor:#06x}\n")).unwrap();
            std::fs::write(dev.join("device"), format!("{device:#06x}\n")).unwrap();
            std::fs::write(dev.join("reset"), "").unwrap();
            if let Some(drv) = driver {
                let d = self.root.join("bus/pci/drivers").join(drv);
                std::fs::create_dir_all(&d).unwrap();
                symlink(&d, dev.join("driver")).unwrap();
            }
            let g = self
                .root
                .join("kernel/iommu_groups")
                .join(group.to_string());
            std::fs::create_dir_all(g.join("devices")).unwrap();
            symlink(&g, dev.join("iommu_group")).unwrap();
            symlink(&dev, g.join("devices").join(addr)).unwrap();
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSysfs;
    use super::*;

    #[test]
    fn pci_addresses_parse_and_print() {
        let a: PciAddress = "0000:3b:00.1".parse().unwrap();
        assert_eq!((a.domain, a.bus, a.device, a.function), (0, 0x3b, 0, 1));
        assert_eq!(a.to_string(), "0000:3b:00.1");
        assert_eq!(
            "3b:1f.7".parse::<PciAddress>().unwrap().to_string(),
            "0000:3b:1f.7"
        );
        for bad in [
            "",
            "0000:3b:00",
            "0000:3b:20.0",
            "0000:3b:00.8",
            "x:3b:00.0",
            "00000:00:00.0",
            "0:0:0:0.0",
            "0000:3b:00.+1",
        ] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn device_facts_and_group_blockers_come_from_sysfs() {
        let fs = FakeSysfs::new("blockers");
        fs.add("0000:01:01.0", 0x1234, 0x11e8, Some("vfio-pci"), 3);
        fs.add("0000:01:02.0", 0x1af4, 0x1000, Some("virtio-pci"), 3);
        fs.add("0000:00:03.0", 0x1b36, 0x000e, None, 3);
        fs.add("0000:00:1c.0", 0x8086, 0x2922, Some("pcieport"), 3);
        let sys = fs.sysfs();
        let d = sys.device("0000:01:01.0".parse().unwrap()).unwrap();
        assert_eq!((d.vendor, d.device), (0x1234, 0x11e8));
        assert_eq!(d.driver.as_deref(), Some("vfio-pci"));
        assert_eq!(d.iommu_group, Some(3));
        assert!(d.resettable);
        assert_eq!(sys.group_devices(3).unwrap().len(), 4);
        let blockers = sys.group_blockers(3).unwrap();
        assert_eq!(blockers.len(), 1);
        assert_eq!(
            blockers[0].to_string(),
            "0000:01:02.0 [1af4:1000] (driver: virtio-pci)"
        );
        assert!(matches!(
            sys.device("0000:09:00.0".parse().unwrap()),
            Err(SysfsError::NoDevice { .. })
        ));
    }
}
