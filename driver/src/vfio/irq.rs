//! Interrupts: MSI-X (the fpga-virtio device's) or MSI vectors, each signalled on an eventfd the
//! runtime waits on. The kernel programs the MSI-X table and the MSI capability; we hand it fds.

use super::{sys::VfioDeviceOps, VfioPciDevice};
use vfio_bindings::bindings::vfio as uapi;
use vfio_ioctls::VfioError;
use vmm_sys_util::eventfd::EventFd;

/// Which interrupt mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqKind {
    Msi,
    Msix,
}

impl IrqKind {
    fn index(self) -> u32 {
        match self {
            IrqKind::Msi => uapi::VFIO_PCI_MSI_IRQ_INDEX,
            IrqKind::Msix => uapi::VFIO_PCI_MSIX_IRQ_INDEX,
        }
    }
}

impl std::fmt::Display for IrqKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IrqKind::Msi => "MSI",
            IrqKind::Msix => "MSI-X",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IrqError {
    #[error("{kind}: {wanted} vectors asked for, the device has {available}")]
    TooMany {
        kind: IrqKind,
        wanted: u32,
        available: u32,
    },
    #[error("{kind} is already enabled; disable interrupts first")]
    AlreadyEnabled { kind: IrqKind },
    #[error("eventfd: {0}")]
    EventFd(std::io::Error),
    #[error("{kind}: {source}")]
    Vfio { kind: IrqKind, source: VfioError },
}

/// What is enabled now.
#[derive(Default)]
pub(crate) struct IrqState {
    enabled: Option<(IrqKind, Vec<EventFd>)>,
}

impl VfioPciDevice {
    fn irq_state(&self) -> std::sync::MutexGuard<'_, IrqState> {
        // Every update of the state is a single assignment: a poisoned lock is still consistent.
        self.irqs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many vectors of `kind` the device offers.
    pub fn irq_count(&self, kind: IrqKind) -> u32 {
        self.ops.irq_count(kind.index())
    }

    /// Enable `count` vectors of `kind`; vector `i` is signalled on the `i`th eventfd returned
    /// (duplicates of the ones the device keeps, so the caller may poll or drop them freely).
    pub fn enable_interrupts(&self, kind: IrqKind, count: u32) -> Result<Vec<EventFd>, IrqError> {
        let mut state = self.irq_state();
        if let Some((k, _)) = &state.enabled {
            return Err(IrqError::AlreadyEnabled { kind: *k });
        }
        let available = self.irq_count(kind);
        if count == 0 || count > available {
            return Err(IrqError::TooMany {
                kind,
                wanted: count,
                available,
            });
        }
        let fds = (0..count)
            .map(|_| EventFd::new(libc::EFD_NONBLOCK).map_err(IrqError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        let theirs = fds
            .iter()
            .map(|f| f.try_clone().map_err(IrqError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&EventFd> = fds.iter().collect();
        self.ops
            .enable_irq(kind.index(), &refs)
            .map_err(|source| IrqError::Vfio { kind, source })?;
        state.enabled = Some((kind, fds));
        Ok(theirs)
    }

    /// Turn interrupts off (nothing to do if none are on).
    pub fn disable_interrupts(&self) -> Result<(), IrqError> {
        let mut state = self.irq_state();
        if let Some((kind, _)) = &state.enabled {
            let kind = *kind;
            disable(self.ops.as_ref(), kind)?;
            state.enabled = None;
        }
        Ok(())
    }
}

fn disable(ops: &dyn VfioDeviceOps, kind: IrqKind) -> Result<(), IrqError> {
    ops.disable_irq(kind.index())
        .map_err(|source| IrqError::Vfio { kind, source })
}
