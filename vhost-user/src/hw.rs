//! The hardware behind the vhost-user device: the simulated FPGA (the default; the `sim`
//! feature) or an fpga-virtio card through the kernel's VFIO (`--device BDF`). To the device both are register
//! access, a DMA map of what the guest and the runtime address (IOVA = guest physical address),
//! and one interrupt eventfd per queue; the simulator also needs its clock turned.

use crate::device::DeviceError;
#[cfg(feature = "sim")]
use fpga_virtio_driver::hw::regs::{global, msix_table};
use fpga_virtio_driver::hw::RegisterIo;
use fpga_virtio_driver::vfio::irq::IrqKind;
use fpga_virtio_driver::vfio::VfioPciDevice;
#[cfg(feature = "sim")]
use fpga_virtio_sim::{GuestMemory, IommuMap, Perm, SimConfig, SimDevice, Simulator, MSI_WINDOW};
#[cfg(feature = "sim")]
use fpga_virtio_storage::BlockStore;
#[cfg(feature = "sim")]
use std::sync::Arc;
use std::sync::Mutex;
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

/// Cycles the simulator runs per turn (4 µs of device time at 250 MHz); kicks and the runtime
/// get in between turns.
pub(crate) const TURN: u64 = 1000;

// One per backend, never moved around: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Hw {
    #[cfg(feature = "sim")]
    Sim(SimDevice),
    Vfio {
        dev: VfioPciDevice,
        /// IOVAs of the current DMA mappings.
        mapped: Mutex<Vec<u64>>,
    },
}

/// The simulator's MSI window stands for the interrupt controller: point vector q there.
#[cfg(feature = "sim")]
fn sim_vectors(dev: &SimDevice, queues: u16) -> Result<(), DeviceError> {
    for q in 0..u32::from(queues) {
        let at = |a: fpga_virtio_driver::hw::RegArray| a.at(q);
        at(msix_table::vec::ADDR_LO)?.write(dev, MSI_WINDOW.start as u32)?;
        at(msix_table::vec::ADDR_HI)?.write(dev, (MSI_WINDOW.start >> 32) as u32)?;
        at(msix_table::vec::DATA)?.write(dev, q)?;
        at(msix_table::vec::CTRL)?.write(dev, 0)?;
    }
    Ok(())
}

impl Hw {
    /// The simulated FPGA with `store` behind its storage port; MSI-X vector q of `queues` on
    /// the returned eventfd q.
    #[cfg(feature = "sim")]
    pub(crate) fn simulated(
        store: Option<Arc<dyn BlockStore>>,
        queues: u16,
    ) -> Result<(Hw, Vec<EventFd>), DeviceError> {
        let mut sim = Simulator::new(SimConfig {
            // The device's own memory is unused: the guest's replaces it.
            memory: 1 << 16,
            ..SimConfig::default()
        })?;
        sim.set_log_limit(1024);
        if let Some(store) = store {
            sim.attach_store(store);
        }
        let irqfds = (0..queues)
            .map(|q| sim.irqfd(u32::from(q)))
            .collect::<Result<Vec<_>, _>>()?;
        let dev = SimDevice::new(sim);
        sim_vectors(&dev, queues)?;
        Ok((Hw::Sim(dev), irqfds))
    }

    /// Reset the whole device (GLOBAL.CTRL.reset: every function, queue, ring and table back to
    /// its reset value) and make it what [`Hw::simulated`] made it: the way out of a device
    /// error. A card's MSI-X table belongs to the kernel's VFIO driver, which this reset would
    /// undo: a card is not reset here (restart the backend).
    pub(crate) fn reset_device(&self, queues: u16) -> Result<(), DeviceError> {
        match self {
            #[cfg(feature = "sim")]
            Hw::Sim(dev) => Self::reset_sim(dev, queues),
            Hw::Vfio { .. } => {
                let _ = queues;
                Err(DeviceError::CardReset)
            }
        }
    }

    #[cfg(feature = "sim")]
    fn reset_sim(dev: &SimDevice, queues: u16) -> Result<(), DeviceError> {
        global::CTRL.write(dev, global::ctrl::RESET.mask())?;
        let mut polls = 0u32;
        while global::status::RESET_BUSY.is_set(global::STATUS.read(dev)?) {
            dev.lock().run(100)?;
            polls += 1;
            if polls > 10_000 {
                return Err(DeviceError::ResetTimeout);
            }
        }
        sim_vectors(dev, queues)?;
        fpga_virtio_driver::probe::probe(dev)?;
        global::CTRL.write(dev, global::ctrl::ENABLE.mask())?;
        Ok(())
    }

    /// A card opened through VFIO: MSI-X vector q of `queues` on the returned eventfd q (the
    /// kernel programs the card's MSI-X table).
    pub(crate) fn vfio(dev: VfioPciDevice, queues: u16) -> Result<(Hw, Vec<EventFd>), DeviceError> {
        let irqfds = dev.enable_interrupts(IrqKind::Msix, u32::from(queues))?;
        Ok((
            Hw::Vfio {
                dev,
                mapped: Mutex::new(Vec::new()),
            },
            irqfds,
        ))
    }

    pub(crate) fn io(&self) -> &dyn RegisterIo {
        match self {
            #[cfg(feature = "sim")]
            Hw::Sim(d) => d,
            Hw::Vfio { dev, .. } => dev,
        }
    }

    /// Make `dma` (every region at IOVA = its address) what the device may DMA, and nothing
    /// else. Call with the device's queues stopped.
    pub(crate) fn map(&self, dma: &GuestMemoryMmap) -> Result<(), DeviceError> {
        match self {
            #[cfg(feature = "sim")]
            Hw::Sim(d) => {
                let mut iommu = IommuMap::new();
                for r in dma.iter() {
                    iommu.map(r.start_addr().0, r.start_addr().0, r.len(), Perm::RW)?;
                }
                let mut sim = d.lock();
                *sim.iommu_mut() = iommu;
                sim.set_memory(GuestMemory::from_mmap(dma.clone()));
                Ok(())
            }
            Hw::Vfio { dev, mapped } => {
                let mut mapped = mapped.lock().unwrap_or_else(|p| p.into_inner());
                for iova in mapped.drain(..) {
                    dev.unmap_dma(iova)?;
                }
                dev.map_dma(dma)?;
                mapped.extend(dma.iter().map(|r| r.start_addr().0));
                Ok(())
            }
        }
    }

    /// Let device time pass: the simulator runs a turn; a card runs by itself (the caller
    /// polls the runtime and naps).
    pub(crate) fn turn(&self) -> Result<(), DeviceError> {
        match self {
            #[cfg(feature = "sim")]
            Hw::Sim(d) => Ok(d.lock().run(TURN)?),
            Hw::Vfio { .. } => Ok(()),
        }
    }

    /// A count that moves whenever the device does something (DMA, storage, MSI), if the
    /// hardware can tell.
    pub(crate) fn activity(&self) -> Option<u64> {
        match self {
            #[cfg(feature = "sim")]
            Hw::Sim(d) => {
                let sim = d.lock();
                let s = sim.stats();
                let st = sim.store_stats();
                Some(s.reads + s.writes + s.msis + st.reads + st.write_beats)
            }
            Hw::Vfio { .. } => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            #[cfg(feature = "sim")]
            Hw::Sim(_) => "the simulated FPGA".into(),
            Hw::Vfio { dev, .. } => format!("{} over VFIO", dev.pci().address),
        }
    }
}
