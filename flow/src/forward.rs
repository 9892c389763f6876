//! Forwarding state: where a packet goes once the slow path lets it through.
//!
//! Per zone (a tenant's network):
//! - a **MAC table**: the static MAC of each of the tenant's vports (set by the runtime from
//!   the device's configuration), and addresses learnt from the vports' traffic, aged out after
//!   [`MAC_AGEING`]. A learnt address never replaces a static one (a tenant cannot take another
//!   vport's address by sending from it) and learning is per zone.
//! - a **router MAC**: frames sent to it are routed by their destination IP address;
//! - **routes**: longest-prefix match over IPv4 and IPv6 prefixes (`prefix-trie`), each to a
//!   vport, the uplink, a VxLAN tunnel or a drop;
//! - a **default** for other frames (unknown unicast): the uplink, a tunnel, or a drop.
//!
//! And across zones, the **VxLAN tunnels**: each a VNI, the local and the remote VTEP, the
//! outer MAC addresses and the UDP port; a VNI maps to one zone, which is how a decapsulated
//! packet finds its tenant ([`crate::vxlan`] builds and takes apart the headers).

use crate::acl::IpNet;
use crate::conntrack::Millis;
use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A vport of the card (a tenant's virtio-net function).
pub type VportId = u16;
/// An index into [`Forwarding`]'s tunnel table.
pub type TunnelId = u16;

/// How long a learnt MAC address lives without traffic (Linux's bridge default).
pub const MAC_AGEING: Millis = 300_000;

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Egress {
    /// To a vport of this card: the FPGA puts it on one of the vport's RX queues.
    Vport(VportId),
    /// Out of the uplink as it is.
    Uplink,
    /// Out of the uplink in a VxLAN tunnel.
    Tunnel(TunnelId),
    Drop,
}

/// A VxLAN tunnel end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// The VxLAN network identifier (24 bits).
    pub vni: u32,
    /// This card's VTEP address and the remote one (the same family).
    pub local: IpAddr,
    pub remote: IpAddr,
    /// The outer Ethernet addresses: the card's uplink and the next hop toward the remote.
    pub local_mac: [u8; 6],
    pub next_hop_mac: [u8; 6],
    /// The UDP destination port (4789).
    pub port: u16,
    pub ttl: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForwardError {
    #[error("VNI {0:#x} does not fit 24 bits")]
    VniRange(u32),
    #[error("the tunnel's VTEP addresses are of two families")]
    MixedFamilies,
    #[error("VNI {vni:#x} already belongs to zone {zone}")]
    VniTaken { vni: u32, zone: u32 },
    #[error("tunnel {0} does not exist")]
    NoTunnel(TunnelId),
    #[error("prefix length {0} longer than the address")]
    PrefixLength(u8),
    #[error("too many tunnels")]
    TooManyTunnels,
}

#[derive(Clone, Copy, Debug)]
struct MacEntry {
    vport: VportId,
    /// None: static.
    seen: Option<Millis>,
}

#[derive(Debug, Default)]
struct Zone {
    macs: HashMap<[u8; 6], MacEntry>,
    router_mac: Option<[u8; 6]>,
    v4: PrefixMap<Ipv4Net, Egress>,
    v6: PrefixMap<Ipv6Net, Egress>,
    default: Option<Egress>,
}

/// The forwarding state of every zone, and the tunnels.
#[derive(Debug, Default)]
pub struct Forwarding {
    zones: HashMap<u32, Zone>,
    tunnels: Vec<Tunnel>,
    /// VNI to (zone, tunnel).
    vnis: HashMap<u32, (u32, TunnelId)>,
}

impl Forwarding {
    pub fn new() -> Forwarding {
        Forwarding::default()
    }

    fn zone(&mut self, zone: u32) -> &mut Zone {
        self.zones.entry(zone).or_default()
    }

    /// A vport's own address (static: never aged, never taken over by learning). A group
    /// address is refused (false): it would capture the zone's broadcasts.
    pub fn set_vport_mac(&mut self, zone: u32, mac: [u8; 6], vport: VportId) -> bool {
        if mac[0] & 1 != 0 {
            return false;
        }
        self.zone(zone)
            .macs
            .insert(mac, MacEntry { vport, seen: None });
        true
    }

    /// Where a zone's frames for no known address go (none set: dropped).
    pub fn default_egress(&self, zone: u32) -> Egress {
        self.zones
            .get(&zone)
            .and_then(|z| z.default)
            .unwrap_or(Egress::Drop)
    }

    /// Forgets a vport: its static and learnt addresses in every zone.
    pub fn remove_vport(&mut self, vport: VportId) {
        for z in self.zones.values_mut() {
            z.macs.retain(|_, e| e.vport != vport);
        }
    }

    /// Learns a source address seen on a vport's traffic. A static address stays its vport's;
    /// returns whether the table holds `mac` on `vport` now.
    pub fn learn(&mut self, zone: u32, mac: [u8; 6], vport: VportId, now: Millis) -> bool {
        if mac[0] & 1 != 0 {
            return false; // a group address is never a source
        }
        let z = self.zone(zone);
        match z.macs.get_mut(&mac) {
            Some(MacEntry {
                seen: None,
                vport: v,
            }) => *v == vport,
            Some(e) => {
                e.vport = vport;
                e.seen = Some(now);
                true
            }
            None => {
                z.macs.insert(
                    mac,
                    MacEntry {
                        vport,
                        seen: Some(now),
                    },
                );
                true
            }
        }
    }

    /// Drops learnt addresses idle for [`MAC_AGEING`]; returns how many went.
    pub fn age(&mut self, now: Millis) -> usize {
        let mut n = 0;
        for z in self.zones.values_mut() {
            z.macs.retain(|_, e| {
                let keep = e.seen.is_none_or(|s| now < s + MAC_AGEING);
                n += usize::from(!keep);
                keep
            });
        }
        n
    }

    /// The zone's router: frames to this MAC are routed by IP.
    pub fn set_router_mac(&mut self, zone: u32, mac: [u8; 6]) {
        self.zone(zone).router_mac = Some(mac);
    }

    /// Where frames to an unknown unicast MAC go (none set: dropped).
    pub fn set_default(&mut self, zone: u32, egress: Egress) {
        self.zone(zone).default = Some(egress);
    }

    /// Adds or replaces a route.
    pub fn add_route(
        &mut self,
        zone: u32,
        prefix: IpNet,
        egress: Egress,
    ) -> Result<(), ForwardError> {
        let z = self.zone(zone);
        match prefix {
            IpNet::V4(a, l) => {
                let p = Ipv4Net::new(a, l).map_err(|_| ForwardError::PrefixLength(l))?;
                z.v4.insert(p.trunc(), egress);
            }
            IpNet::V6(a, l) => {
                let p = Ipv6Net::new(a, l).map_err(|_| ForwardError::PrefixLength(l))?;
                z.v6.insert(p.trunc(), egress);
            }
        }
        Ok(())
    }

    pub fn remove_route(&mut self, zone: u32, prefix: IpNet) -> bool {
        let Some(z) = self.zones.get_mut(&zone) else {
            return false;
        };
        match prefix {
            IpNet::V4(a, l) => Ipv4Net::new(a, l)
                .ok()
                .and_then(|p| z.v4.remove(&p.trunc()))
                .is_some(),
            IpNet::V6(a, l) => Ipv6Net::new(a, l)
                .ok()
                .and_then(|p| z.v6.remove(&p.trunc()))
                .is_some(),
        }
    }

    /// The longest prefix holding `addr` in the zone's routes.
    pub fn route(&self, zone: u32, addr: IpAddr) -> Option<Egress> {
        let z = self.zones.get(&zone)?;
        match addr {
            IpAddr::V4(a) => {
                z.v4.get_lpm(&Ipv4Net::new(a, 32).expect("a host prefix"))
                    .map(|(_, e)| *e)
            }
            IpAddr::V6(a) => {
                z.v6.get_lpm(&Ipv6Net::new(a, 128).expect("a host prefix"))
                    .map(|(_, e)| *e)
            }
        }
    }

    /// Where a frame of `zone` to `dst_mac` (and, if IP, to `dst_ip`) goes: a vport that owns
    /// the MAC; routed by IP if sent to the zone's router; the zone's default otherwise.
    /// Group addresses are the switch's (flooded or punted there), not the routes'.
    pub fn resolve(&self, zone: u32, dst_mac: [u8; 6], dst_ip: Option<IpAddr>) -> Egress {
        let Some(z) = self.zones.get(&zone) else {
            return Egress::Drop;
        };
        if let Some(e) = z.macs.get(&dst_mac) {
            return Egress::Vport(e.vport);
        }
        if z.router_mac == Some(dst_mac) {
            return dst_ip
                .and_then(|ip| self.route(zone, ip))
                .unwrap_or(Egress::Drop);
        }
        z.default.unwrap_or(Egress::Drop)
    }

    /// Adds a tunnel of `zone`; its VNI then names that zone for decapsulated packets.
    pub fn add_tunnel(&mut self, zone: u32, t: Tunnel) -> Result<TunnelId, ForwardError> {
        if t.vni >= 1 << 24 {
            return Err(ForwardError::VniRange(t.vni));
        }
        if t.local.is_ipv4() != t.remote.is_ipv4() {
            return Err(ForwardError::MixedFamilies);
        }
        if let Some(&(z, _)) = self.vnis.get(&t.vni) {
            if z != zone {
                return Err(ForwardError::VniTaken {
                    vni: t.vni,
                    zone: z,
                });
            }
        }
        let id =
            TunnelId::try_from(self.tunnels.len()).map_err(|_| ForwardError::TooManyTunnels)?;
        self.tunnels.push(t);
        self.vnis.entry(t.vni).or_insert((zone, id));
        Ok(id)
    }

    pub fn tunnel(&self, id: TunnelId) -> Result<&Tunnel, ForwardError> {
        self.tunnels
            .get(usize::from(id))
            .ok_or(ForwardError::NoTunnel(id))
    }

    /// The zone a decapsulated packet of this VNI belongs to.
    pub fn zone_of_vni(&self, vni: u32) -> Option<u32> {
        self.vnis.get(&vni).map(|&(z, _)| z)
    }
}

/// The reference longest-prefix match (a scan of every route), for tests.
pub fn lpm_scan(routes: &[(IpNet, Egress)], addr: IpAddr) -> Option<Egress> {
    let mut best: Option<(u8, Egress)> = None;
    for &(net, e) in routes {
        let (hit, len) = match (net, addr) {
            (IpNet::V4(p, l), IpAddr::V4(a)) => (prefix4(a, l) == prefix4(p, l), l),
            (IpNet::V6(p, l), IpAddr::V6(a)) => (prefix6(a, l) == prefix6(p, l), l),
            _ => (false, 0),
        };
        // A later route of the same prefix replaces an earlier one, as `add_route` does.
        if hit && best.is_none_or(|(b, _)| len >= b) {
            best = Some((len, e));
        }
    }
    best.map(|(_, e)| e)
}

fn prefix4(a: Ipv4Addr, l: u8) -> u32 {
    u32::from(a).checked_shr(32 - u32::from(l)).unwrap_or(0)
}

fn prefix6(a: Ipv6Addr, l: u8) -> u128 {
    u128::from(a).checked_shr(128 - u32::from(l)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM1: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const VM2: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const GW: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

    #[test]
    fn macs_static_learnt_aged_and_per_zone() {
        let mut f = Forwarding::new();
        f.set_vport_mac(1, VM1, 10);
        assert_eq!(f.resolve(1, VM1, None), Egress::Vport(10));
        // Another zone does not see it.
        assert_eq!(f.resolve(2, VM1, None), Egress::Drop);
        // A vport sending from another vport's static address does not take it.
        assert!(!f.learn(1, VM1, 11, 0));
        assert_eq!(f.resolve(1, VM1, None), Egress::Vport(10));
        // Learnt, moved, aged.
        assert!(f.learn(1, VM2, 11, 0));
        assert_eq!(f.resolve(1, VM2, None), Egress::Vport(11));
        assert!(f.learn(1, VM2, 12, 1000));
        assert_eq!(f.resolve(1, VM2, None), Egress::Vport(12));
        assert!(
            !f.learn(1, [1, 0, 0, 0, 0, 1], 12, 0),
            "group addresses are not learnt"
        );
        assert_eq!(f.age(1000 + MAC_AGEING - 1), 0);
        assert_eq!(f.age(1000 + MAC_AGEING), 1);
        assert_eq!(f.resolve(1, VM2, None), Egress::Drop);
        assert_eq!(
            f.resolve(1, VM1, None),
            Egress::Vport(10),
            "static entries stay"
        );
        f.set_default(1, Egress::Uplink);
        assert_eq!(f.resolve(1, VM2, None), Egress::Uplink);
        f.remove_vport(10);
        assert_eq!(f.resolve(1, VM1, None), Egress::Uplink);
    }

    #[test]
    fn routed_by_the_longest_prefix() {
        let mut f = Forwarding::new();
        f.set_router_mac(1, GW);
        let v4 = |a: [u8; 4], l| IpNet::V4(Ipv4Addr::from(a), l);
        f.add_route(1, v4([0, 0, 0, 0], 0), Egress::Uplink).unwrap();
        f.add_route(1, v4([10, 0, 0, 0], 8), Egress::Tunnel(0))
            .unwrap();
        f.add_route(1, v4([10, 1, 2, 0], 24), Egress::Vport(3))
            .unwrap();
        f.add_route(1, v4([10, 1, 2, 7], 32), Egress::Drop).unwrap();
        let ip = |a: [u8; 4]| Some(IpAddr::V4(Ipv4Addr::from(a)));
        assert_eq!(f.resolve(1, GW, ip([10, 1, 2, 3])), Egress::Vport(3));
        assert_eq!(f.resolve(1, GW, ip([10, 1, 2, 7])), Egress::Drop);
        assert_eq!(f.resolve(1, GW, ip([10, 9, 9, 9])), Egress::Tunnel(0));
        assert_eq!(f.resolve(1, GW, ip([8, 8, 8, 8])), Egress::Uplink);
        assert_eq!(
            f.resolve(1, GW, None),
            Egress::Drop,
            "not IP: nothing to route by"
        );
        // A host part in the prefix is cut, as a router's table does.
        f.add_route(1, v4([10, 1, 2, 99], 24), Egress::Vport(4))
            .unwrap();
        assert_eq!(f.resolve(1, GW, ip([10, 1, 2, 3])), Egress::Vport(4));
        assert!(f.remove_route(1, v4([10, 1, 2, 0], 24)));
        assert_eq!(f.resolve(1, GW, ip([10, 1, 2, 3])), Egress::Tunnel(0));
        assert_eq!(
            f.add_route(1, v4([1, 2, 3, 4], 33), Egress::Drop),
            Err(ForwardError::PrefixLength(33))
        );
        // IPv6.
        let v6 = |s: &str, l| IpNet::V6(s.parse().unwrap(), l);
        f.add_route(1, v6("2001:db8::", 32), Egress::Vport(5))
            .unwrap();
        f.add_route(1, v6("2001:db8:1::", 48), Egress::Vport(6))
            .unwrap();
        let ip6 = |s: &str| Some(IpAddr::V6(s.parse().unwrap()));
        assert_eq!(f.resolve(1, GW, ip6("2001:db8:1::5")), Egress::Vport(6));
        assert_eq!(f.resolve(1, GW, ip6("2001:db8:2::5")), Egress::Vport(5));
        assert_eq!(f.resolve(1, GW, ip6("2001:db9::1")), Egress::Drop);
    }

    #[test]
    fn tunnels_name_their_zone() {
        let mut f = Forwarding::new();
        let t = Tunnel {
            vni: 5001,
            local: "192.0.2.1".parse().unwrap(),
            remote: "192.0.2.2".parse().unwrap(),
            local_mac: VM1,
            next_hop_mac: VM2,
            port: 4789,
            ttl: 64,
        };
        let id = f.add_tunnel(7, t).unwrap();
        assert_eq!(f.tunnel(id).unwrap().vni, 5001);
        assert_eq!(f.zone_of_vni(5001), Some(7));
        assert_eq!(f.zone_of_vni(5002), None);
        assert_eq!(
            f.add_tunnel(8, t),
            Err(ForwardError::VniTaken { vni: 5001, zone: 7 })
        );
        assert!(f
            .add_tunnel(
                7,
                Tunnel {
                    remote: "192.0.2.3".parse().unwrap(),
                    ..t
                }
            )
            .is_ok());
        assert_eq!(
            f.add_tunnel(7, Tunnel { vni: 1 << 24, ..t }),
            Err(ForwardError::VniRange(1 << 24))
        );
        assert_eq!(
            f.add_tunnel(
                7,
                Tunnel {
                    remote: "2001:db8::1".parse().unwrap(),
                    ..t
                }
            ),
            Err(ForwardError::MixedFamilies)
        );
        assert_eq!(f.tunnel(9), Err(ForwardError::NoTunnel(9)));
    }
}
