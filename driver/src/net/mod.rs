//! virtio-net: the software engine (the CPU path and the reference model of the FPGA's net
//! engines) and the function setup.
//!
//! | file | what |
//! |---|---|
//! | `features.rs` | offered features, configuration space, queue roles |
//! | `csum.rs` | the Internet checksum the TX path inserts |
//! | `tx.rs` | the TX decision (the RTL's, `fv_net_tx_engine.sv`) and GSO segmentation |
//! | `parse.rs` | a frame's metadata (Ethernet, VLAN, IPv4/6, TCP/UDP/ICMP, VxLAN) |
//! | `rss.rs` | the Toeplitz hash and indirection table |
//! | `switch.rs` | the card's switch between vports and the uplink, RX backlogs |
//! | `fastpath.rs` | the FPGA's flow stage (exact-match flow table, actions, punts, counters) |
//! | `offload.rs` | the flow-offload loop: punt → decide → install → reinject, aging |
//! | `rx.rs` | a frame into RX buffers (DATA_VALID, MRG_RXBUF) |
//! | `ctrl.rs` | the control queue's commands |
//! | `engine.rs` | [`NetEngine`]: TX, RX and control queues, counters |
//! | `function.rs` | [`NetFunction`] → the runtime's [`crate::device::Function`] |

pub mod csum;
pub mod ctrl;
pub mod engine;
pub mod fastpath;
pub mod features;
pub mod function;
pub mod offload;
pub mod parse;
pub mod rss;
pub mod rx;
pub mod switch;
pub mod tx;

pub use engine::{NetCounters, NetEngine, NetStats};
pub use features::NetConfig;
pub use function::NetFunction;
pub use switch::Switch;
