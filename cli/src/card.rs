//! An fpga-virtio card through the kernel's VFIO: open it (bound to vfio-pci) and check that it
//! is one before anything writes to it. A device that is not is named by its ids and what its
//! BAR0 starts with.

use fpga_virtio_driver::hw::{regs, RegisterIo};
use fpga_virtio_driver::probe::probe;
use fpga_virtio_driver::vfio::{sysfs::PciAddress, VfioPciDevice};

pub fn open(address: PciAddress) -> Result<VfioPciDevice, String> {
    let dev = VfioPciDevice::open(address).map_err(|e| e.to_string())?;
    let pci = dev.pci().clone();
    let not_ours = |why: String| {
        format!(
            "{} [{:04x}:{:04x}] is not an fpga-virtio device: {why}",
            pci.address, pci.vendor, pci.device
        )
    };
    if dev.bar(regs::BAR_MGMT).is_none() {
        return Err(not_ours(format!("it has no {}", regs::BAR_MGMT)));
    }
    let first = dev
        .read32(regs::BAR_MGMT, 0)
        .map_err(|e| format!("{address}: {e}"))?;
    if first != regs::fw_id::TYPE_ID {
        return Err(not_ours(format!(
            "{} starts with {first:#010x}, not the firmware-id block ({:#010x})",
            regs::BAR_MGMT,
            regs::fw_id::TYPE_ID
        )));
    }
    probe(&dev).map_err(|e| format!("{address}: {e}"))?;
    Ok(dev)
}
