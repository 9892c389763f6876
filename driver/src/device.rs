//! The device-type seam: everything the runtime, its CPU workers and its statistics know of a
//! device type is [`DeviceEngine`]. A function is a [`Function`]: its number, its engine and
//! the tenant's DMA windows. virtio-blk ([`crate::blk`]) is one implementation; the echo test
//! device ([`crate::echo`], the reference of `fv_echo_engine.sv`) is another, and virtio-net
//! goes in beside them without the runtime changing.
//!
//! The split of work: the runtime owns the rings, the queues and the DMA windows (device-type
//! independent registers); an engine names the registers of its own function (device type,
//! features, its configuration), serves a walked chain on the CPU, and says how the request
//! ended in the generic [`Status`] the statistics count.

use crate::virtq::{DmaWindows, Segment};
use fpga_virtio_hw::regs::VirtioDevice;
use fpga_virtio_hw::{FieldError, IndexError, Reg};
use virtio_bindings::virtio_config as vc;
use vm_memory::GuestMemoryMmap;

/// How a request ended, in the terms every device type shares (the statistics count these;
/// the completion ring carries "ok or not").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Served (virtio-blk `OK`; a frame sent or delivered).
    Ok,
    /// The device answered with an error (virtio-blk `IOERR`).
    Error,
    /// The device does not do what was asked (virtio-blk `UNSUPP`).
    Unsupported,
    /// No answer could be given: the chain had nowhere to put one, or the engine failed (a
    /// worker panicked). The used length is 0.
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Ok,
        Status::Error,
        Status::Unsupported,
        Status::Failed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Unsupported => "unsupported",
            Status::Failed => "failed",
        }
    }
}

/// What [`DeviceEngine::serve`] did with one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Completion {
    pub status: Status,
    /// Bytes written into the chain's device-writable buffers (the used element's length).
    pub used_len: u32,
}

impl Completion {
    /// A request that got no answer (used length 0).
    pub const FAILED: Completion = Completion {
        status: Status::Failed,
        used_len: 0,
    };
}

/// Why a function could not be set up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("the driver asked for features the device does not offer: {0:#x}")]
    FeaturesNotOffered(u64),
    #[error("the driver did not accept required feature bit {0}")]
    FeatureRequired(u32),
    #[error("virtqueue {vq}: {why}")]
    QueueNotServed { vq: u16, why: &'static str },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// Check a driver's accepted features against what a device offers: any subset that includes
/// VERSION_1 and ACCESS_PLATFORM (all DMA goes through the IOMMU; a driver that cannot honour
/// that is refused, as the virtio spec asks). Returns the negotiated set.
pub fn negotiate(offered: u64, driver: u64) -> Result<u64, SetupError> {
    let extra = driver & !offered;
    if extra != 0 {
        return Err(SetupError::FeaturesNotOffered(extra));
    }
    for bit in [vc::VIRTIO_F_VERSION_1, vc::VIRTIO_F_ACCESS_PLATFORM] {
        if driver & (1 << bit) == 0 {
            return Err(SetupError::FeatureRequired(bit));
        }
    }
    Ok(driver)
}

/// The chains of a device-driven queue (net RX), handed out one at a time as the device needs
/// them. Each is walked and checked like any other (inside the function's DMA windows, within
/// the chain limits); a chain taken is answered with a used element, unless it is given back.
pub trait ChainSource {
    /// The next chain the guest made available, or None when there is none now.
    fn next_chain(&mut self) -> Option<Vec<Segment>>;
    /// Give back the last `n` chains taken (they stay available, in order).
    fn give_back(&mut self, n: usize);
}

/// One device type's part of a function: what the runtime holds for it.
///
/// An engine is the CPU path of its device type and the reference model of the FPGA's engine
/// for that type: for what the FPGA serves, both give byte-identical results.
pub trait DeviceEngine: Send + Sync + std::fmt::Debug {
    /// The virtio device type the function presents.
    fn device_type(&self) -> VirtioDevice;

    /// The function's device registers and their values: DEVICE_TYPE, the negotiated features
    /// and the type's configuration (`FUNCTIONS.FUNC[func]`). The runtime writes them, then the
    /// function's DMA windows, then enables the function.
    fn registers(&self, func: u8) -> Result<Vec<(Reg, u32)>, SetupError>;

    /// Whether the engine serves the function's virtqueue `vq` (its virtio queue number) on
    /// the FPGA (`on_fpga`) or the CPU path; the runtime refuses to set up a queue it does not.
    fn check_queue(&self, vq: u16, on_fpga: bool) -> Result<(), SetupError> {
        let _ = (vq, on_fpga);
        Ok(())
    }

    /// Serve one request from the function's virtqueue `vq`, a chain the walker already
    /// checked (inside the function's DMA windows, within the chain limits).
    fn serve(&mut self, mem: &GuestMemoryMmap, vq: u16, chain: &[Segment]) -> Completion;

    /// Whether the requests the FPGA punts from the function's virtqueue `vq` must be served
    /// in the order they were punted (one at a time: a net TX queue's frames leave in order).
    /// Other queues' punts are served by any free worker at once.
    fn ordered(&self, vq: u16) -> bool {
        let _ = vq;
        false
    }

    /// Whether the function's virtqueue `vq` is driven by the device (net RX: buffers wait
    /// for frames) rather than by the guest's requests. The CPU path serves such a queue with
    /// [`DeviceEngine::fill`] when [`DeviceEngine::has_work`] says so.
    fn device_driven(&self, vq: u16) -> bool {
        let _ = vq;
        false
    }

    /// The device has something for its device-driven queue `vq` (a frame waiting).
    fn has_work(&self, vq: u16) -> bool {
        let _ = vq;
        false
    }

    /// Serve a device-driven queue: take chains from `chains` for what the device has, and
    /// return the used length of each chain taken (not given back), in the order taken.
    fn fill(&mut self, mem: &GuestMemoryMmap, vq: u16, chains: &mut dyn ChainSource) -> Vec<u32> {
        let _ = (mem, vq, chains);
        Vec::new()
    }

    /// A copy for another worker thread (state shared with this one, such as a block store,
    /// stays shared; scratch buffers do not).
    fn fork(&self) -> Box<dyn DeviceEngine>;
}

/// A function of the device: its number, its device type's engine and the tenant's memory.
#[derive(Debug)]
pub struct Function {
    pub func: u8,
    pub engine: Box<dyn DeviceEngine>,
    /// The tenant's memory: every buffer and indirect table of the function's chains must lie
    /// in these (the device and the CPU workers check; see [`crate::virtq::window`]). Never the
    /// runtime's rings or anything else of the backend's.
    pub windows: DmaWindows,
}

impl Clone for Function {
    fn clone(&self) -> Self {
        Function {
            func: self.func,
            engine: self.engine.fork(),
            windows: self.windows.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let offered = (1 << vc::VIRTIO_F_VERSION_1) | (1 << vc::VIRTIO_F_ACCESS_PLATFORM) | 1;
        assert_eq!(negotiate(offered, offered), Ok(offered));
        let min = offered & !1;
        assert_eq!(negotiate(offered, min), Ok(min));
        assert_eq!(
            negotiate(offered, 1 << vc::VIRTIO_F_ACCESS_PLATFORM),
            Err(SetupError::FeatureRequired(vc::VIRTIO_F_VERSION_1))
        );
        assert_eq!(
            negotiate(offered, min | 1 << 63),
            Err(SetupError::FeaturesNotOffered(1 << 63))
        );
    }
}
