//! virtio-blk on the CPU: request parsing ([`request`]) and the software engine ([`engine`])
//! that is both the CPU path and the FPGA's reference model; chains come from
//! [`crate::virtq::chain`].

pub mod engine;
pub mod features;
pub mod request;

pub use crate::virtq::{ChainError, Segment};
pub use engine::{BlkConfig, Outcome, SoftwareEngine};
pub use request::{RequestType, Status};
