//! The VFIO backend against a real kernel: a Debian kernel boots under QEMU (TCG) with an emulated
//! IOMMU (intel-iommu) and QEMU's `edu` PCI device (BAR0 registers, a DMA engine, MSI), binds edu
//! to vfio-pci, and runs this very test binary inside the guest ([`in_guest_vfio_edu_checks`])
//! plus the `fpga-virtio` CLI. How it was done on these machines: ../shared/notes/qemu-guests.md.
//!
//! Guest PCI layout (q35):
//! - 00:02.0 edu, alone in its IOMMU group, bound to vfio-pci: the device under test.
//! - 00:04.0 edu left without a driver: "not bound to vfio-pci".
//! - 01:01.0 edu bound to vfio-pci behind a PCIe-to-PCI bridge, sharing the bridge's IOMMU group
//!   with 01:02.0, a virtio-rng bound to virtio-pci: "group not viable".

use fpga_virtio_driver::hw::{Bar, RegisterIo};
use fpga_virtio_driver::vfio::{sysfs::PciAddress, IrqKind, OpenError, VfioPciDevice};
use fpga_virtio_qemu_tests::{Guest, GuestKit, Initramfs};
use std::time::{Duration, Instant};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const EDU: &str = "0000:00:02.0";
const UNBOUND: &str = "0000:00:04.0";
const NOT_VIABLE: &str = "0000:01:01.0";
const BLOCKER: &str = "0000:01:02.0";

/// edu's registers (QEMU docs/specs/edu.rst).
const EDU_ID: u64 = 0x00;
const EDU_LIVENESS: u64 = 0x04;
const EDU_IRQ_STATUS: u64 = 0x24;
const EDU_IRQ_RAISE: u64 = 0x60;
const EDU_IRQ_ACK: u64 = 0x64;
const EDU_DMA_SRC: u64 = 0x80;
const EDU_DMA_DST: u64 = 0x88;
const EDU_DMA_COUNT: u64 = 0x90;
const EDU_DMA_CMD: u64 = 0x98;
/// edu's DMA buffer, in the device's own address space; DMA must stay inside its 4 KiB.
const EDU_BUF: u64 = 0x40000;
/// Our buffer's IOVA (edu masks DMA addresses to 28 bits), and one nothing is mapped at.
const IOVA: u64 = 0x0100_0000;
const UNMAPPED_IOVA: u64 = 0x0200_0000;

const MODULES: &[&str] = &[
    "irqbypass",
    "vfio",
    "vfio_iommu_type1",
    "vfio_virqfd",
    "vfio-pci-core",
    "vfio-pci",
    "virtio",
    "virtio_ring",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
];

const SCRIPT: &str = r#"
for d in 0000:00:02.0 0000:01:01.0; do
  echo vfio-pci > /sys/bus/pci/devices/$d/driver_override
  echo $d > /sys/bus/pci/drivers_probe
done
for d in /sys/bus/pci/devices/*; do
  echo "PCI $(basename $d) $(cat $d/vendor):$(cat $d/device) group $(basename $(readlink $d/iommu_group)) driver $(basename "$(readlink $d/driver)")"
done
FV_IN_GUEST=1 /bin/vfio_edu --ignored --exact in_guest_vfio_edu_checks --nocapture --test-threads=1
checks=$?
/bin/fpga-virtio info --device 0000:00:02.0
echo "CLI-EXIT $?"
/bin/fpga-virtio info --device 0000:00:04.0
echo "CLI-EXIT $?"
/bin/fpga-virtio vhost-user-blk --device 0000:00:02.0 --socket /tmp/blk.sock --disk /tmp/disk.img --size-mib 1
echo "VHOST-EXIT $?"
dmesg | grep -i "DMAR.*fault" | sed 's/^/KMSG /'
exit $checks
"#;

#[test]
fn vfio_backend_against_a_real_kernel_with_qemu_edu() {
    let kit = GuestKit::find().unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().expect("test binary path");
    let mut initramfs = Initramfs::new(&kit, "vfio-edu").unwrap();
    initramfs
        .modules(&kit, MODULES)
        .unwrap()
        .binary(&exe, "vfio_edu")
        .unwrap()
        .binary(env!("CARGO_BIN_EXE_fpga-virtio").as_ref(), "fpga-virtio")
        .unwrap()
        .script(SCRIPT)
        .unwrap();
    let image = initramfs.build().unwrap();
    let guest = Guest {
        machine: "q35,accel=tcg,kernel-irqchip=split".into(),
        args: [
            "-device",
            "intel-iommu,intremap=on,caching-mode=on",
            "-device",
            "edu,addr=02.0",
            "-device",
            "pcie-pci-bridge,id=br1,addr=03.0",
            "-device",
            "edu,addr=04.0",
            "-device",
            "edu,bus=br1,addr=01.0",
            "-device",
            "virtio-rng-pci,bus=br1,addr=02.0",
        ]
        .map(String::from)
        .to_vec(),
        cmdline: "intel_iommu=on".into(),
        memory_mib: 512,
        timeout: Duration::from_secs(120),
        ..Guest::default()
    };
    let out = guest.run(&kit, &image).unwrap();
    let c = &out.console;
    let show = || format!("guest console ({:?}):\n{c}", out.elapsed);
    assert!(!c.contains("insmod"), "a module failed to load\n{}", show());
    for step in [
        "identity",
        "dma-round-trip",
        "dma-blocked",
        "msi",
        "not-bound",
        "not-viable",
        "teardown",
        "reopen",
    ] {
        assert!(
            c.contains(&format!("EDU-OK {step}:")),
            "step {step} did not pass\n{}",
            show()
        );
    }
    assert!(c.contains("test result: ok. 1 passed"), "{}", show());
    // The CLI over VFIO: edu is named by its ids and what its BAR0 holds; an unbound device
    // gets the binding instructions.
    assert!(
        c.contains(
            "0000:00:02.0 [1234:11e8] is not an fpga-virtio device: BAR0 starts with 0x010000ed"
        ),
        "{}",
        show()
    );
    assert!(
        c.contains("0000:00:04.0 [1234:11e8] (driver: none) is not bound to vfio-pci"),
        "{}",
        show()
    );
    assert_eq!(c.matches("CLI-EXIT 1").count(), 2, "{}", show());
    // The vhost-user backend with a card as its data plane checks the card before it writes
    // anything to it (the happy path needs an fpga-virtio card: docs/vhost-user.md).
    assert!(
        c.contains(
            "error: vhost-user-blk: 0000:00:02.0 [1234:11e8] is not an fpga-virtio device: BAR0 starts with 0x010000ed"
        ),
        "{}",
        show()
    );
    assert!(c.contains("VHOST-EXIT 1"), "{}", show());
    // The IOMMU blocked edu's write to the unmapped IOVA, and the kernel saw the fault.
    assert!(
        c.lines()
            .any(|l| l.starts_with("KMSG") && l.contains(&format!("fault addr {UNMAPPED_IOVA:#x}"))),
        "no DMAR fault for {UNMAPPED_IOVA:#x}\n{}",
        show()
    );
    assert_eq!(out.status, Some(0), "{}", show());
    // Shown with --nocapture.
    eprintln!("{}", show());
}

fn edu_dma(dev: &VfioPciDevice, src: u64, dst: u64, len: u32, to_ram: bool) {
    let bar = Bar(0);
    dev.write32(bar, EDU_DMA_SRC, src as u32).unwrap();
    dev.write32(bar, EDU_DMA_DST, dst as u32).unwrap();
    dev.write32(bar, EDU_DMA_COUNT, len).unwrap();
    dev.write32(bar, EDU_DMA_CMD, 1 | (u32::from(to_ram) << 1))
        .unwrap();
    let start = Instant::now();
    while dev.read32(bar, EDU_DMA_CMD).unwrap() & 1 != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "edu DMA never finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn step(name: &str, detail: impl std::fmt::Display) {
    println!("EDU-OK {name}: {detail}");
}

/// Runs inside the guest the test above boots (FV_IN_GUEST=1); on a host it does nothing.
#[test]
#[ignore = "runs inside the QEMU guest that vfio_backend_against_a_real_kernel_with_qemu_edu boots"]
fn in_guest_vfio_edu_checks() {
    if std::env::var_os("FV_IN_GUEST").is_none() {
        eprintln!("not in the guest: nothing to do");
        return;
    }
    let addr: PciAddress = EDU.parse().unwrap();
    let bar = Bar(0);

    // Identity through the BAR mapping, and the registers answer (liveness inverts).
    let dev = VfioPciDevice::open(addr).unwrap_or_else(|e| panic!("open {EDU}: {e}"));
    let mapped = dev.bar(bar).unwrap().mapped_bytes();
    assert!(mapped > 0, "BAR0 was not mmap'd");
    let id = dev.read32(bar, EDU_ID).unwrap();
    assert_eq!(id, 0x0100_00ed, "edu identification register");
    dev.write32(bar, EDU_LIVENESS, 0x1234_5678).unwrap();
    assert_eq!(dev.read32(bar, EDU_LIVENESS).unwrap(), !0x1234_5678);
    let cmd = dev.command().unwrap();
    assert_eq!(cmd & 0b110, 0b110, "memory space and bus mastering on");
    step(
        "identity",
        format!("id {id:#010x} through an mmap of {mapped:#x} bytes, command {cmd:#06x}"),
    );

    // DMA both ways through the IOMMU: our page 0 -> edu's buffer -> our page 1.
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(IOVA), 0x2000)]).unwrap();
    dev.map_dma(&mem).unwrap();
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    mem.write_slice(&pattern, GuestAddress(IOVA)).unwrap();
    edu_dma(&dev, IOVA, EDU_BUF, 4096, false);
    edu_dma(&dev, EDU_BUF, IOVA + 0x1000, 4096, true);
    let mut back = vec![0u8; 4096];
    mem.read_slice(&mut back, GuestAddress(IOVA + 0x1000))
        .unwrap();
    assert!(back == pattern, "data came back different");
    step(
        "dma-round-trip",
        format!("4 KiB to the device and back at IOVA {IOVA:#x}"),
    );

    // Blocked: a write to an IOVA never mapped, and one to our page after it was unmapped.
    let zeros = vec![0u8; 4096];
    mem.write_slice(&zeros, GuestAddress(IOVA + 0x1000))
        .unwrap();
    edu_dma(&dev, EDU_BUF, UNMAPPED_IOVA, 4096, true);
    dev.unmap_dma(IOVA).unwrap();
    assert!(dev.dma_mappings().is_empty());
    edu_dma(&dev, EDU_BUF, IOVA + 0x1000, 4096, true);
    mem.read_slice(&mut back, GuestAddress(IOVA + 0x1000))
        .unwrap();
    assert!(back == zeros, "a DMA to an unmapped IOVA reached memory");
    step(
        "dma-blocked",
        format!("writes to {UNMAPPED_IOVA:#x} and to {IOVA:#x} after unmap never landed"),
    );

    // MSI: edu raises its interrupt; our eventfd sees it.
    assert!(dev.irq_count(IrqKind::Msi) >= 1);
    let fds = dev.enable_interrupts(IrqKind::Msi, 1).unwrap();
    dev.write32(bar, EDU_IRQ_RAISE, 0x1).unwrap();
    let start = Instant::now();
    let count = loop {
        match fds[0].read() {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "no MSI on the eventfd"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("eventfd read: {e}"),
        }
    };
    assert_eq!(dev.read32(bar, EDU_IRQ_STATUS).unwrap() & 1, 1);
    dev.write32(bar, EDU_IRQ_ACK, 0x1).unwrap();
    dev.disable_interrupts().unwrap();
    step("msi", format!("eventfd counted {count} interrupt(s)"));

    // The errors for devices we cannot have.
    match VfioPciDevice::open(UNBOUND.parse().unwrap()) {
        Err(e @ OpenError::NotBound { .. }) => {
            step("not-bound", e.to_string().lines().next().unwrap_or(""))
        }
        other => panic!("{UNBOUND}: expected NotBound, got {other:?}"),
    }
    match VfioPciDevice::open(NOT_VIABLE.parse().unwrap()) {
        Err(e @ OpenError::GroupNotViable { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(BLOCKER) && msg.contains("virtio-pci"), "{msg}");
            step("not-viable", msg);
        }
        other => panic!("{NOT_VIABLE}: expected GroupNotViable, got {other:?}"),
    }

    // Teardown, then the group is free again: a second open works.
    dev.close().unwrap();
    step(
        "teardown",
        "interrupts off, bus mastering off, DMA unmapped, reset, fds closed",
    );
    let again = VfioPciDevice::open(addr).unwrap_or_else(|e| panic!("reopen {EDU}: {e}"));
    assert_eq!(again.read32(bar, EDU_ID).unwrap(), id);
    again.close().unwrap();
    step("reopen", "the device opened again after teardown");
}
