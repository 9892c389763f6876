//! fpga-virtio's network slow path, as pure logic: no I/O, no clocks, no threads, so that it can
//! be tested against a reference, fuzzed and benchmarked on its own (docs/FLOW.md).
//!
//! - [`acl`]: per-tenant access-control rules (priority, IPv4/IPv6 prefixes, protocol, port
//!   ranges, allow/deny) compiled into a tuple-space classifier that looks at a few hash tables
//!   per packet instead of every rule.
//! - [`conntrack`]: connection tracking (TCP states and windows, UDP and ICMP, ICMP errors,
//!   per-tenant zones, timeouts) and what may go to the FPGA's flow table, with the install /
//!   remove / query protocol that keeps a closing connection from being re-installed and the
//!   counters exact across offload.
//! - [`packet`]: frames to what the two look at.
//! - [`slowpath`]: the two together, as a stateful firewall orders them.

pub mod acl;
pub mod conntrack;
pub mod forward;
pub mod packet;
pub mod slowpath;
pub mod table;
pub mod vxlan;

pub use acl::{Acl, AclError, Classifier, IpNet, PortRange, Rule, Tuple, Verdict};
pub use conntrack::{
    ConnId, Conntrack, CtState, CtStats, Decision, Dir, Event, HwCounters, HwOp, Key, Limits,
    Millis, Packet, Reject, TcpSeg, TcpState, L4,
};
pub use slowpath::SlowPath;
