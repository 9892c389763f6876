//! fpga-virtio's network slow path, as pure logic: no I/O, no clocks, no threads, so that it can
//! be tested against a reference, fuzzed and benchmarked on its own (docs/FLOW.md).
//!
//! - [`acl`]: per-tenant access-control rules (priority, IPv4/IPv6 prefixes, protocol, port
//!   ranges, allow/deny) compiled into a tuple-space classifier that looks at a few hash tables
//!   per packet instead of every rule.

pub mod acl;

pub use acl::{Acl, AclError, Classifier, IpNet, PortRange, Rule, Tuple, Verdict};
