//! The slow path's decision for a punted packet: connection tracking first, the tenant's ACL
//! for a packet that would open a connection (so the ACL runs once per connection, not once
//! per packet), as a stateful firewall's `ct state established,related accept; ct state
//! invalid drop; <the tenant's rules>` does.

use crate::acl::{Acl, Verdict};
use crate::conntrack::{Conntrack, Decision, Limits, Millis, Packet};
use crate::packet;

#[derive(Debug, Default)]
pub struct SlowPath {
    /// The tenants' rules (the zone of a packet is its tenant).
    pub acl: Acl,
    pub conntrack: Conntrack,
}

impl SlowPath {
    pub fn new(limits: Limits) -> SlowPath {
        SlowPath {
            acl: Acl::new(),
            conntrack: Conntrack::new(limits),
        }
    }

    /// Decides one packet at `now`.
    pub fn decide(&mut self, p: &Packet, now: Millis) -> Decision {
        let acl = &self.acl;
        self.conntrack.process(p, now, |p| {
            acl.classify(p.zone, &packet::tuple(p)).0 == Verdict::Allow
        })
    }
}
