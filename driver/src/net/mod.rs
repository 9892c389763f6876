//! virtio-net: the software engine (the CPU path and the reference model of the FPGA's net
//! engines) and the function setup.
//!
//! | file | what |
//! |---|---|
//! | `features.rs` | offered features, configuration space, queue roles |
//! | `csum.rs` | the Internet checksum the TX path inserts |
//! | `tx.rs` | the TX decision (the RTL's, `fv_net_tx_engine.sv`) and GSO segmentation |
//! | `engine.rs` | [`NetEngine`]: serves TX chains, counts drops by reason |
//! | `function.rs` | [`NetFunction`] → the runtime's [`crate::device::Function`] |

pub mod csum;
pub mod engine;
pub mod features;
pub mod function;
pub mod tx;

pub use engine::{NetCounters, NetEngine, NetStats};
pub use features::NetConfig;
pub use function::NetFunction;
