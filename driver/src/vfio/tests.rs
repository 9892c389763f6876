//! The backend's logic against the fake kernel (fake.rs) and a fake sysfs tree.

use super::fake::{FakeVfio, RW, RW_MMAP};
use super::sysfs::fake::FakeSysfs;
use super::*;
use std::sync::Arc;
use vm_memory::{GuestAddress, GuestMemoryMmap};

const ADDR: &str = "0000:01:00.0";

fn setup(tag: &str, fake: &FakeVfio) -> (FakeSysfs, OpenOptions) {
    let _ = fake;
    let fs = FakeSysfs::new(tag);
    fs.add(ADDR, 0x1234, 0x11e8, Some("vfio-pci"), 5);
    let opts = OpenOptions {
        sysfs: fs.sysfs(),
        mmap: true,
    };
    (fs, opts)
}

fn addr() -> PciAddress {
    ADDR.parse().unwrap()
}

#[test]
fn open_maps_the_bar_and_turns_on_memory_and_bus_mastering() {
    let fake = FakeVfio::new("open", 0x4000, RW_MMAP, None, 4);
    let (_fs, opts) = setup("open", &fake);
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    assert_eq!(dev.bar(Bar(0)).unwrap().mapped_bytes(), 0x4000);
    assert!(dev.bar(Bar(2)).is_none());
    let cmd = u16::from_le_bytes(fake.peek(7, PCI_COMMAND, 2).try_into().unwrap());
    assert_eq!(cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER), 0b110);
    dev.write32(Bar(0), 0x10, 0xdead_beef).unwrap();
    assert_eq!(fake.peek(0, 0x10, 4), 0xdead_beef_u32.to_le_bytes());
    assert_eq!(dev.read32(Bar(0), 0x10).unwrap(), 0xdead_beef);
    assert!(matches!(
        dev.read32(Bar(0), 0x4000),
        Err(IoError::OutOfRange { .. })
    ));
    assert!(matches!(
        dev.read32(Bar(1), 0),
        Err(IoError::NoSuchBar { .. })
    ));
}

#[test]
fn sparse_areas_are_mapped_and_the_hole_goes_through_pread() {
    // The MSI-X table at 0x1000..0x2000 is not mappable.
    let sparse = Some(vec![(0, 0x1000), (0x2000, 0x2000)]);
    let fake = FakeVfio::new("sparse", 0x4000, RW_MMAP, sparse, 4);
    let (_fs, opts) = setup("sparse", &fake);
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    assert_eq!(dev.bar(Bar(0)).unwrap().mapped_bytes(), 0x3000);
    for off in [0x0, 0x1004, 0x2ffc, 0x3ffc] {
        dev.write32(Bar(0), off, off as u32 ^ 0x5a5a).unwrap();
        assert_eq!(fake.peek(0, off, 4), (off as u32 ^ 0x5a5a).to_le_bytes());
        assert_eq!(dev.read32(Bar(0), off).unwrap(), off as u32 ^ 0x5a5a);
    }
    // Without mmap, every access is a pread/pwrite and sees the same bytes.
    drop(dev);
    let opts = OpenOptions {
        mmap: false,
        ..opts
    };
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    assert_eq!(dev.bar(Bar(0)).unwrap().mapped_bytes(), 0);
    assert_eq!(dev.read32(Bar(0), 0x3ffc).unwrap(), 0x3ffc ^ 0x5a5a);
}

#[test]
fn a_region_without_mmap_or_read_is_honoured() {
    let fake = FakeVfio::new("flags", 0x1000, uapi::VFIO_REGION_INFO_FLAG_WRITE, None, 1);
    let (_fs, opts) = setup("flags", &fake);
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    assert_eq!(dev.bar(Bar(0)).unwrap().mapped_bytes(), 0);
    dev.write32(Bar(0), 0, 7).unwrap();
    let e = dev.read32(Bar(0), 0).unwrap_err();
    assert!(e.to_string().contains("not readable"), "{e}");
}

#[test]
fn a_sparse_area_outside_the_region_is_refused() {
    let fake = FakeVfio::new("badarea", 0x1000, RW_MMAP, Some(vec![(0, 0x2000)]), 1);
    let (_fs, opts) = setup("badarea", &fake);
    let e = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Region {
                source: RegionError::BadArea { .. },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn open_explains_unbound_devices_missing_groups_and_blocking_drivers() {
    let fake = FakeVfio::new("why", 0x1000, RW, None, 1);
    let fs = FakeSysfs::new("why");
    fs.add("0000:02:00.0", 0x1234, 0x11e8, Some("virtio-pci"), 2);
    fs.add("0000:03:00.0", 0x1234, 0x11e8, None, 3);
    fs.add("0000:04:00.0", 0x1234, 0x11e8, Some("vfio-pci"), 4);
    fs.add("0000:04:00.1", 0x1af4, 0x1041, Some("virtio-pci"), 4);
    fs.add("0000:04:00.2", 0x1b36, 0x000e, None, 4);
    let opts = OpenOptions {
        sysfs: fs.sysfs(),
        mmap: true,
    };
    let open = |a: &str| VfioPciDevice::open_with(a.parse().unwrap(), &fake, &opts).unwrap_err();
    let e = open("0000:02:00.0");
    assert!(matches!(e, OpenError::NotBound { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("not bound to vfio-pci") && msg.contains("drivers/virtio-pci/unbind"),
        "{msg}"
    );
    let msg = open("0000:03:00.0").to_string();
    assert!(
        msg.contains("driver: none") && !msg.contains("unbind"),
        "{msg}"
    );
    let e = open("0000:04:00.0");
    let msg = e.to_string();
    assert!(
        matches!(e, OpenError::GroupNotViable { group: 4, ref blockers, .. } if blockers.len() == 1),
        "{msg}"
    );
    assert!(
        msg.contains("0000:04:00.1 [1af4:1041] (driver: virtio-pci)"),
        "{msg}"
    );
    assert!(!msg.contains("0000:04:00.2"), "{msg}");
    let e = open("0000:09:00.0");
    assert!(
        matches!(e, OpenError::Sysfs(SysfsError::NoDevice { .. })),
        "{e}"
    );
    // Nothing was opened on the way.
    assert!(fake.state.log().is_empty());
}

#[test]
fn a_kernel_that_finds_the_group_not_viable_is_reported_as_such() {
    let mut fake = FakeVfio::new("kernel-viable", 0x1000, RW, None, 1);
    Arc::get_mut(&mut fake.state).unwrap().group_not_viable = true;
    let (_fs, opts) = setup("kernel-viable", &fake);
    let e = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap_err();
    assert!(
        matches!(e, OpenError::GroupNotViable { group: 5, .. }),
        "{e}"
    );
}

fn two_regions() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0x10_0000), 0x4000),
        (GuestAddress(0x40_0000), 0x2000),
    ])
    .unwrap()
}

#[test]
fn dma_maps_every_region_at_its_guest_address_and_checks_first() {
    let fake = FakeVfio::new("dma", 0x1000, RW, None, 1);
    let (_fs, opts) = setup("dma", &fake);
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    dev.map_dma(&two_regions()).unwrap();
    assert_eq!(
        dev.dma_mappings(),
        vec![(0x10_0000, 0x4000), (0x40_0000, 0x2000)]
    );
    let log = fake.state.log();
    assert!(
        log.contains(&"dma_map 0x100000 0x4000".to_string()),
        "{log:?}"
    );
    // Overlap with what is mapped: refused before the kernel sees it.
    let again = GuestMemoryMmap::from_ranges(&[(GuestAddress(0x10_2000), 0x1000)]).unwrap();
    assert!(matches!(
        dev.map_dma(&again),
        Err(DmaError::Overlap {
            other: 0x10_0000,
            ..
        })
    ));
    let odd = GuestMemoryMmap::from_ranges(&[(GuestAddress(0x80_0000), 0x1800)]).unwrap();
    assert!(matches!(
        dev.map_dma(&odd),
        Err(DmaError::Unaligned {
            what: "the size",
            ..
        })
    ));
    assert_eq!(fake.state.log().len(), log.len());
    dev.unmap_dma(0x40_0000).unwrap();
    assert!(matches!(
        dev.unmap_dma(0x40_0000),
        Err(DmaError::NotMapped { .. })
    ));
    assert_eq!(dev.dma_mappings(), vec![(0x10_0000, 0x4000)]);
}

#[test]
fn a_memlock_refusal_is_explained_and_rolled_back() {
    let fake = FakeVfio::new("memlock", 0x1000, RW, None, 1);
    let (_fs, opts) = setup("memlock", &fake);
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    *fake.state.fail_dma_map.lock().unwrap() = Some((1, libc::ENOMEM));
    let e = dev.map_dma(&two_regions()).unwrap_err();
    assert!(
        matches!(
            e,
            DmaError::MemlockLimit {
                iova: 0x40_0000,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("RLIMIT_MEMLOCK"), "{e}");
    // The first region, mapped by this call, was unmapped again.
    assert!(fake
        .state
        .log()
        .contains(&"dma_unmap 0x100000 0x4000".to_string()));
    assert!(dev.dma_mappings().is_empty());
    *fake.state.fail_dma_map.lock().unwrap() = Some((0, libc::EINVAL));
    assert!(matches!(
        dev.map_dma(&two_regions()),
        Err(DmaError::Map { .. })
    ));
}

#[test]
fn interrupts_are_checked_against_what_the_device_offers() {
    let fake = FakeVfio::new("irq", 0x1000, RW, None, 4);
    let (_fs, opts) = setup("irq", &fake);
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    assert_eq!(dev.irq_count(IrqKind::Msix), 4);
    assert!(matches!(
        dev.enable_interrupts(IrqKind::Msix, 5),
        Err(IrqError::TooMany { available: 4, .. })
    ));
    let fds = dev.enable_interrupts(IrqKind::Msix, 3).unwrap();
    assert_eq!(fds.len(), 3);
    assert!(matches!(
        dev.enable_interrupts(IrqKind::Msi, 1),
        Err(IrqError::AlreadyEnabled {
            kind: IrqKind::Msix
        })
    ));
    dev.disable_interrupts().unwrap();
    dev.enable_interrupts(IrqKind::Msi, 1).unwrap();
    let log = fake.state.log();
    assert!(
        log.ends_with(&[
            "enable_irq 2 x3".into(),
            "disable_irq 2".into(),
            "enable_irq 1 x1".into()
        ]),
        "{log:?}"
    );
}

#[test]
fn teardown_stops_interrupts_then_dma_then_resets() {
    let fake = FakeVfio::new("teardown", 0x1000, RW, None, 2);
    let (_fs, opts) = setup("teardown", &fake);
    let dev = VfioPciDevice::open_with(addr(), &fake, &opts).unwrap();
    dev.map_dma(&two_regions()).unwrap();
    dev.enable_interrupts(IrqKind::Msix, 2).unwrap();
    dev.reset().unwrap();
    dev.close().unwrap();
    let log = fake.state.log();
    let tail: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .skip_while(|l| !l.starts_with("disable_irq"))
        .collect();
    assert_eq!(
        tail,
        [
            "disable_irq 2",
            "dma_unmap 0x100000 0x4000",
            "dma_unmap 0x400000 0x2000",
            "reset"
        ]
    );
    let cmd = u16::from_le_bytes(fake.peek(7, PCI_COMMAND, 2).try_into().unwrap());
    assert_eq!(cmd & PCI_COMMAND_MASTER, 0, "bus mastering left on");
}
