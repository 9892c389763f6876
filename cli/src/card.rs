//! An fpga-virtio card through the kernel's VFIO: open it (bound to vfio-pci) and check that it
//! is one before anything writes to it. A device that is not is named by its ids and what its
//! BAR0 starts with.

use crate::error::{CliError, NotOurs};
use fpga_virtio_driver::hw::{regs, RegisterIo};
use fpga_virtio_driver::probe::probe;
use fpga_virtio_driver::vfio::{sysfs::PciAddress, VfioPciDevice};

pub fn open(address: PciAddress) -> Result<VfioPciDevice, CliError> {
    let dev = VfioPciDevice::open(address)?;
    let pci = dev.pci().clone();
    let not_ours = |why: NotOurs| CliError::NotOurs {
        address: pci.address,
        vendor: pci.vendor,
        device: pci.device,
        why,
    };
    let on_card = |e: CliError| CliError::Card {
        address,
        source: Box::new(e),
    };
    if dev.bar(regs::BAR_MGMT).is_none() {
        return Err(not_ours(NotOurs::NoBar(regs::BAR_MGMT)));
    }
    let first = dev
        .read32(regs::BAR_MGMT, 0)
        .map_err(|e| on_card(e.into()))?;
    if first != regs::fw_id::TYPE_ID {
        return Err(not_ours(NotOurs::FirstWord {
            bar: regs::BAR_MGMT,
            first,
            want: regs::fw_id::TYPE_ID,
        }));
    }
    probe(&dev).map_err(|e| on_card(e.into()))?;
    Ok(dev)
}
