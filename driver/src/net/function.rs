//! Setting up a virtio-net function: the configuration and the driver's features, checked,
//! become the [`Function`] the runtime holds.

use super::engine::{NetCounters, NetEngine};
use super::features::{NetConfig, OFFERED};
use super::switch::Switch;
use crate::device::{negotiate, Function, SetupError};
use crate::virtq::DmaWindows;
use std::sync::Arc;

/// A net function to set up.
#[derive(Debug)]
pub struct NetFunction {
    pub func: u8,
    pub config: NetConfig,
    /// The features the driver accepted.
    pub features: u64,
    pub windows: DmaWindows,
    /// The card's switch (its vports and uplink): the CPU path's frames go through it (the
    /// FPGA's go through the device's packet port).
    pub switch: Arc<Switch>,
}

impl NetFunction {
    /// Negotiate, and build the runtime's function and the counters of its CPU path.
    pub fn build(self) -> Result<(Function, Arc<NetCounters>), SetupError> {
        let features = negotiate(OFFERED, self.features)?;
        let engine = NetEngine::new(self.func, self.config, features, self.switch);
        let counters = engine.counters();
        Ok((
            Function {
                func: self.func,
                engine: Box::new(engine),
                windows: self.windows,
            },
            counters,
        ))
    }
}
