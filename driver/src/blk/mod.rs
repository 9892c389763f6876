//! virtio-blk on the CPU: chains as segment lists ([`chain`]), request parsing ([`request`]) and
//! the software engine ([`engine`]) that is both the CPU path and the FPGA's reference model.

pub mod chain;
pub mod engine;
pub mod features;
pub mod request;

pub use chain::{ChainError, Segment};
pub use engine::{BlkConfig, Outcome, SoftwareEngine};
pub use request::{RequestType, Status};
