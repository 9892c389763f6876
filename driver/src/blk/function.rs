//! A virtio-blk function: its setup (the BLK_* registers of `FUNCTIONS.FUNC[n]`) and its
//! software engine behind the runtime's [`DeviceEngine`] seam.

use super::engine::{BlkConfig, SoftwareEngine};
use super::request;
use crate::device::{Completion, DeviceEngine, Function, SetupError, Status};
use crate::virtq::{DmaWindows, Segment};
use fpga_virtio_hw::regs::{functions::func, VirtioDevice};
use fpga_virtio_hw::Reg;
use fpga_virtio_storage::BlockStore;
use std::sync::Arc;
use vm_memory::GuestMemoryMmap;

/// What a virtio-blk function is made of; `.into()` gives the runtime's [`Function`].
#[derive(Clone, Debug)]
pub struct BlkFunction {
    pub func: u8,
    pub store: Arc<dyn BlockStore>,
    pub config: BlkConfig,
    /// The tenant's memory (see [`Function::windows`]).
    pub windows: DmaWindows,
}

impl From<BlkFunction> for Function {
    fn from(f: BlkFunction) -> Function {
        Function {
            func: f.func,
            engine: Box::new(SoftwareEngine::new(f.store, f.config)),
            windows: f.windows,
        }
    }
}

impl From<request::Status> for Status {
    fn from(s: request::Status) -> Status {
        match s {
            request::Status::Ok => Status::Ok,
            request::Status::IoErr => Status::Error,
            request::Status::Unsupp => Status::Unsupported,
        }
    }
}

impl DeviceEngine for SoftwareEngine {
    fn device_type(&self) -> VirtioDevice {
        VirtioDevice::Blk
    }

    fn registers(&self, f: u8) -> Result<Vec<(Reg, u32)>, SetupError> {
        let cfg = self.config();
        let negotiated = super::features::negotiate(cfg.features)?;
        let r = |a: fpga_virtio_hw::RegArray| a.at(u32::from(f));
        Ok(vec![
            (r(func::DEVICE_TYPE)?, VirtioDevice::Blk as u32),
            (r(func::FEATURES_LO)?, negotiated as u32),
            (r(func::FEATURES_HI)?, (negotiated >> 32) as u32),
            (r(func::BLK_CAPACITY_LO)?, cfg.capacity as u32),
            (r(func::BLK_CAPACITY_HI)?, (cfg.capacity >> 32) as u32),
            (r(func::BLK_MAX_SECTORS)?, cfg.max_hw_sectors),
        ])
    }

    fn serve(&mut self, mem: &GuestMemoryMmap, _vq: u16, chain: &[Segment]) -> Completion {
        let o = SoftwareEngine::serve(self, mem, chain);
        match o.status {
            Some(s) => Completion {
                status: s.into(),
                used_len: o.used_len,
            },
            None => Completion::FAILED,
        }
    }

    fn fork(&self) -> Box<dyn DeviceEngine> {
        Box::new(self.clone())
    }
}
