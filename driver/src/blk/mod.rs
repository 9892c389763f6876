//! virtio-blk on the CPU: request parsing ([`request`]), the software engine ([`engine`]) that
//! is both the CPU path and the FPGA's reference model, and the function's setup behind the
//! runtime's device seam ([`function`]); chains come from [`crate::virtq::chain`].

pub mod engine;
pub mod features;
pub mod function;
pub mod request;

pub use crate::virtq::{ChainError, Segment};
pub use engine::{BlkConfig, Outcome, SoftwareEngine};
pub use function::BlkFunction;
pub use request::{RequestType, Status};
