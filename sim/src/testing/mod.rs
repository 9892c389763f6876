//! Test utilities (feature `test-utils`): a split-ring virtio driver that plays the guest, and
//! helpers that program the device through [`RegisterIo`](fpga_virtio_hw::RegisterIo) like a driver would.

mod split_ring;

pub use split_ring::{
    Buffer, RingError, SplitRing, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};

use fpga_virtio_hw::regs::{self, dma_window, global, msix_table, queue, QueueOwner};
use fpga_virtio_hw::{IoError, RegisterIo};

/// Options of one queue's context.
#[derive(Clone, Copy, Debug)]
pub struct QueueSetup {
    pub event_idx: bool,
    pub indirect: bool,
    pub owner: QueueOwner,
    /// MSI-X vector, or `regs::NO_VECTOR`.
    pub vector: u32,
    /// Function the queue belongs to.
    pub func: u32,
    /// VIRTIO_F_NOTIFICATION_DATA: doorbells carry the avail idx.
    pub notification_data: bool,
    /// IOVA of the queue's done log (0: none; see the DONE_LOG registers).
    pub done_log: u64,
}

impl Default for QueueSetup {
    fn default() -> Self {
        QueueSetup {
            event_idx: false,
            indirect: true,
            owner: QueueOwner::Fpga,
            vector: regs::NO_VECTOR,
            func: 0,
            notification_data: false,
            done_log: 0,
        }
    }
}

/// Program queue `q` with `ring`'s addresses (IOVA = guest physical here) and enable it.
pub fn setup_queue(
    io: &(impl RegisterIo + ?Sized),
    q: u32,
    ring: &SplitRing,
    opts: QueueSetup,
) -> Result<(), IoError> {
    let r = |a: fpga_virtio_hw::RegArray| a.at(q);
    // Disable first and wait for the handshake: the queue may be running an old ring.
    r(queue::q::CTRL)?.write(io, 0)?;
    let mut tries = 0;
    while queue::q::status::ENABLED.is_set(r(queue::q::STATUS)?.read(io)?) {
        tries += 1;
        if tries > 10_000 {
            return Err(IoError::Backend {
                bar: regs::BAR_MGMT,
                offset: r(queue::q::STATUS)?.offset,
                reason: format!("queue {q} did not confirm the disable"),
            });
        }
    }
    let (d, a, u) = (ring.desc_addr(), ring.avail_addr(), ring.used_addr());
    r(queue::q::DESC_LO)?.write(io, d as u32)?;
    r(queue::q::DESC_HI)?.write(io, (d >> 32) as u32)?;
    r(queue::q::AVAIL_LO)?.write(io, a as u32)?;
    r(queue::q::AVAIL_HI)?.write(io, (a >> 32) as u32)?;
    r(queue::q::USED_LO)?.write(io, u as u32)?;
    r(queue::q::USED_HI)?.write(io, (u >> 32) as u32)?;
    r(queue::q::SIZE)?.write(io, u32::from(ring.size()))?;
    r(queue::q::MSIX)?.write(io, opts.vector)?;
    r(queue::q::STATE)?.write(io, 0)?;
    r(queue::q::DONE_LOG_LO)?.write(io, opts.done_log as u32)?;
    r(queue::q::DONE_LOG_HI)?.write(io, (opts.done_log >> 32) as u32)?;
    let ctrl = queue::q::ctrl::ENABLE.mask()
        | (opts.owner.raw() << queue::q::ctrl::OWNER.lsb)
        | (u32::from(opts.event_idx) << queue::q::ctrl::EVENT_IDX.lsb)
        | (u32::from(opts.indirect) << queue::q::ctrl::INDIRECT.lsb)
        | (u32::from(opts.notification_data) << queue::q::ctrl::NOTIFICATION_DATA.lsb)
        | queue::q::ctrl::FUNC.value(opts.func)?;
    r(queue::q::CTRL)?.write(io, ctrl)
}

/// Point MSI-X vector `v` at the simulator's MSI window with data `v`, unmasked.
pub fn setup_vector(io: &(impl RegisterIo + ?Sized), v: u32) -> Result<(), IoError> {
    let at = |a: fpga_virtio_hw::RegArray| a.at(v);
    at(msix_table::vec::ADDR_LO)?.write(io, crate::MSI_WINDOW.start as u32)?;
    at(msix_table::vec::ADDR_HI)?.write(io, 0)?;
    at(msix_table::vec::DATA)?.write(io, v)?;
    at(msix_table::vec::CTRL)?.write(io, 0)
}

/// Window `w` of function `func`'s DMA windows: `[base, end)` (`end` 0: disabled). The engines
/// refuse any buffer or indirect table outside its function's windows (queue error
/// `dma_window`); a function with none reaches nothing.
pub fn set_dma_window(
    io: &(impl RegisterIo + ?Sized),
    func: u32,
    w: u32,
    base: u64,
    end: u64,
) -> Result<(), IoError> {
    let at = |a: fpga_virtio_hw::RegArray| a.at(func * regs::DMA_WINDOWS_PER_FUNCTION + w);
    at(dma_window::win::END_LO)?.write(io, 0)?;
    at(dma_window::win::END_HI)?.write(io, 0)?;
    at(dma_window::win::BASE_LO)?.write(io, base as u32)?;
    at(dma_window::win::BASE_HI)?.write(io, (base >> 32) as u32)?;
    at(dma_window::win::END_HI)?.write(io, (end >> 32) as u32)?;
    at(dma_window::win::END_LO)?.write(io, end as u32)
}

/// Give every function one DMA window, `[base, end)`: for tests in which all of that memory
/// is the tenants'.
pub fn open_dma_windows(
    io: &(impl RegisterIo + ?Sized),
    base: u64,
    end: u64,
) -> Result<(), IoError> {
    for f in 0..regs::NUM_FUNCTIONS {
        set_dma_window(io, f, 0, base, end)?;
    }
    Ok(())
}

/// Let the engines run.
pub fn enable_device(io: &(impl RegisterIo + ?Sized)) -> Result<(), IoError> {
    global::CTRL.write(io, global::ctrl::ENABLE.mask())
}

/// Ring queue `q`'s doorbell.
pub fn kick(io: &(impl RegisterIo + ?Sized), q: u32, avail_idx: u16) -> Result<(), IoError> {
    regs::doorbell::db::NOTIFY
        .at(q)?
        .write(io, u32::from(avail_idx))
}
