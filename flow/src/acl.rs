//! Access control: per-tenant rules compiled into a classifier.
//!
//! A rule matches a 5-tuple by source and destination prefix (IPv4 or IPv6; none: any address of
//! either family), IP protocol (none: any) and source and destination port ranges (only looked
//! at for TCP and UDP; a rule with ports set matches TCP and UDP only). The matching rule of the
//! highest priority decides (ties: the rule added first); no match: the tenant's default.
//!
//! Compilation (tuple space search, as in Open vSwitch's classifier, with ports as a second
//! level): every rule goes into the hash table of its *shape* (family, source and destination
//! prefix lengths, protocol given or not), keyed by its masked addresses and protocol. A key's
//! rules are kept best first, those for one destination port indexed by that port, the others
//! (port ranges, any port) in a list. A lookup masks the packet's addresses with each table's
//! shape and probes it; tables are visited in order of the best priority they hold, and the
//! search stops once nothing left can beat the match found. Rules sharing a shape share a table:
//! the cost per packet grows with the number of distinct shapes (a few tens for real rule sets),
//! not with the number of rules.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A tenant's ACL, and the verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
}

/// An IPv4 or IPv6 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpNet {
    V4(Ipv4Addr, u8),
    V6(Ipv6Addr, u8),
}

impl IpNet {
    fn family(&self) -> Family {
        match self {
            IpNet::V4(..) => Family::V4,
            IpNet::V6(..) => Family::V6,
        }
    }

    fn len(&self) -> u8 {
        match *self {
            IpNet::V4(_, l) | IpNet::V6(_, l) => l,
        }
    }

    /// The prefix's address bits in the family's width, host bits cleared.
    fn bits(&self) -> u128 {
        match *self {
            IpNet::V4(a, l) => mask_bits(u128::from(u32::from(a)), l, 32),
            IpNet::V6(a, l) => mask_bits(u128::from(a), l, 128),
        }
    }
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub const ANY: PortRange = PortRange {
        lo: 0,
        hi: u16::MAX,
    };

    pub fn one(port: u16) -> PortRange {
        PortRange { lo: port, hi: port }
    }

    fn is_any(&self) -> bool {
        *self == PortRange::ANY
    }

    fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Higher wins; among equal priorities, the rule added first.
    pub priority: u32,
    pub src: Option<IpNet>,
    pub dst: Option<IpNet>,
    /// The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6); none: any.
    pub proto: Option<u8>,
    pub src_ports: PortRange,
    pub dst_ports: PortRange,
    pub verdict: Verdict,
}

impl Rule {
    /// A rule matching everything, with this priority and verdict.
    pub fn any(priority: u32, verdict: Verdict) -> Rule {
        Rule {
            priority,
            src: None,
            dst: None,
            proto: None,
            src_ports: PortRange::ANY,
            dst_ports: PortRange::ANY,
            verdict,
        }
    }

    fn has_ports(&self) -> bool {
        !self.src_ports.is_any() || !self.dst_ports.is_any()
    }

    /// The rule against a tuple, field by field: the reference the classifier is tested against.
    pub fn matches(&self, t: &Tuple) -> bool {
        let net_ok = |net: &Option<IpNet>, addr: IpAddr| match (net, addr) {
            (None, _) => true,
            (Some(n @ IpNet::V4(..)), IpAddr::V4(a)) => {
                mask_bits(u128::from(u32::from(a)), n.len(), 32) == n.bits()
            }
            (Some(n @ IpNet::V6(..)), IpAddr::V6(a)) => {
                mask_bits(u128::from(a), n.len(), 128) == n.bits()
            }
            _ => false,
        };
        if !net_ok(&self.src, t.src) || !net_ok(&self.dst, t.dst) {
            return false;
        }
        if self.proto.is_some_and(|p| p != t.proto) {
            return false;
        }
        if self.has_ports() {
            if !has_ports(t.proto) {
                return false;
            }
            return self.src_ports.contains(t.src_port) && self.dst_ports.contains(t.dst_port);
        }
        true
    }
}

/// What a packet is classified by. Ports are looked at only for TCP and UDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

fn has_ports(proto: u8) -> bool {
    proto == 6 || proto == 17
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AclError {
    #[error("rule {index}: source and destination prefixes of different IP families")]
    MixedFamilies { index: usize },
    #[error("rule {index}: prefix length {len} is longer than the address")]
    PrefixTooLong { index: usize, len: u8 },
    #[error("rule {index}: port range {lo}..={hi} is empty")]
    EmptyRange { index: usize, lo: u16, hi: u16 },
    #[error("rule {index}: ports given for protocol {proto}, which has none")]
    PortsWithoutPorts { index: usize, proto: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Family {
    V4,
    V6,
}

/// A table's shape: which bits of the addresses its rules look at, and the protocol or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Shape {
    family: Family,
    src_len: u8,
    dst_len: u8,
    proto: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: u128,
    dst: u128,
    proto: u8,
}

/// A rule in a table: its order (priority, then rule index) and its ports.
#[derive(Clone, Copy, Debug)]
struct Cand {
    priority: u32,
    index: usize,
    ports: Option<(PortRange, PortRange)>,
}

impl Cand {
    fn beats(&self, other: &Cand) -> bool {
        self.priority > other.priority
            || (self.priority == other.priority && self.index < other.index)
    }

    fn ports_match(&self, t: &Tuple) -> bool {
        match self.ports {
            None => true,
            Some((s, d)) => has_ports(t.proto) && s.contains(t.src_port) && d.contains(t.dst_port),
        }
    }
}

/// The first candidate of a best-first list that matches and beats `found`.
fn first_match(list: &[Cand], t: &Tuple, found: Option<Cand>) -> Option<Cand> {
    for c in list {
        if found.is_some_and(|f| !c.beats(&f)) {
            return None; // best first: nothing after it beats `found` either
        }
        if c.ports_match(t) {
            return Some(*c);
        }
    }
    None
}

/// A fast hasher for the tables' keys (a multiply-rotate over the words; the tables are built
/// from the operator's rules, and a packet costs one probe per table).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

type Fast<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// The rules of one key, best first: those for a single destination port by that port, the
/// others in a list.
#[derive(Default)]
struct Bucket {
    by_dport: Fast<u16, Vec<Cand>>,
    rest: Vec<Cand>,
}

struct SubTable {
    shape: Shape,
    best: u32,
    table: Fast<Key, Bucket>,
}

/// A tenant's rules, compiled.
pub struct Classifier {
    rules: Vec<Rule>,
    default: Verdict,
    tables: Vec<SubTable>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("rules", &self.rules.len())
            .field("tables", &self.tables.len())
            .field("default", &self.default)
            .finish()
    }
}

/// The low `width` bits of `v` with all but the first `len` of them cleared.
fn mask_bits(v: u128, len: u8, width: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = if len >= 128 {
        u128::MAX
    } else {
        !(u128::MAX >> len)
    };
    v & (keep >> (128 - u32::from(width)))
}

impl Classifier {
    /// Compiles rules (checked first: a rule that cannot match as written is refused).
    pub fn new(rules: Vec<Rule>, default: Verdict) -> Result<Classifier, AclError> {
        let mut tables: HashMap<Shape, SubTable> = HashMap::new();
        for (index, r) in rules.iter().enumerate() {
            let families: &[Family] = match (r.src.map(|n| n.family()), r.dst.map(|n| n.family())) {
                (Some(a), Some(b)) if a != b => return Err(AclError::MixedFamilies { index }),
                (Some(Family::V4), _) | (_, Some(Family::V4)) => &[Family::V4],
                (Some(Family::V6), _) | (_, Some(Family::V6)) => &[Family::V6],
                (None, None) => &[Family::V4, Family::V6],
            };
            for n in [r.src, r.dst].into_iter().flatten() {
                let max = if n.family() == Family::V4 { 32 } else { 128 };
                if n.len() > max {
                    return Err(AclError::PrefixTooLong {
                        index,
                        len: n.len(),
                    });
                }
            }
            for p in [r.src_ports, r.dst_ports] {
                if p.lo > p.hi {
                    return Err(AclError::EmptyRange {
                        index,
                        lo: p.lo,
                        hi: p.hi,
                    });
                }
            }
            let protos: Vec<Option<u8>> = match (r.has_ports(), r.proto) {
                (true, Some(p)) if !has_ports(p) => {
                    return Err(AclError::PortsWithoutPorts { index, proto: p })
                }
                (true, None) => vec![Some(6), Some(17)], // ports mean TCP or UDP
                (_, p) => vec![p],
            };
            let cand = Cand {
                priority: r.priority,
                index,
                ports: r.has_ports().then_some((r.src_ports, r.dst_ports)),
            };
            let (src_len, src) = r.src.map_or((0, 0), |n| (n.len(), n.bits()));
            let (dst_len, dst) = r.dst.map_or((0, 0), |n| (n.len(), n.bits()));
            for &family in families {
                for proto in &protos {
                    let shape = Shape {
                        family,
                        src_len,
                        dst_len,
                        proto: proto.is_some(),
                    };
                    let key = Key {
                        src,
                        dst,
                        proto: proto.unwrap_or(0),
                    };
                    let sub = tables.entry(shape).or_insert_with(|| SubTable {
                        shape,
                        best: 0,
                        table: Fast::default(),
                    });
                    sub.best = sub.best.max(r.priority);
                    let bucket = sub.table.entry(key).or_default();
                    match cand.ports {
                        Some((_, d)) if d.lo == d.hi => {
                            bucket.by_dport.entry(d.lo).or_default().push(cand)
                        }
                        _ => bucket.rest.push(cand),
                    }
                }
            }
        }
        // Best first everywhere.
        let order = |a: &Cand, b: &Cand| b.priority.cmp(&a.priority).then(a.index.cmp(&b.index));
        for sub in tables.values_mut() {
            for bucket in sub.table.values_mut() {
                bucket.rest.sort_by(order);
                for list in bucket.by_dport.values_mut() {
                    list.sort_by(order);
                }
            }
        }
        let mut tables: Vec<SubTable> = tables.into_values().collect();
        tables.sort_by(|a, b| b.best.cmp(&a.best).then(a.shape.cmp(&b.shape)));
        Ok(Classifier {
            rules,
            default,
            tables,
        })
    }

    /// The verdict for a tuple and the rule that gave it (none: the default).
    pub fn classify(&self, t: &Tuple) -> (Verdict, Option<usize>) {
        let (family, src, dst) = match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (
                Family::V4,
                u128::from(u32::from(s)),
                u128::from(u32::from(d)),
            ),
            (IpAddr::V6(s), IpAddr::V6(d)) => (Family::V6, u128::from(s), u128::from(d)),
            // Mixed families do not occur in a parsed packet; nothing matches them.
            _ => return (self.default, None),
        };
        let width = if family == Family::V4 { 32 } else { 128 };
        let mut found: Option<Cand> = None;
        for sub in &self.tables {
            if found.is_some_and(|f| sub.best < f.priority) {
                break; // sorted: no table left can beat it
            }
            let s = sub.shape;
            if s.family != family {
                continue;
            }
            let key = Key {
                src: mask_bits(src, s.src_len, width),
                dst: mask_bits(dst, s.dst_len, width),
                proto: if s.proto { t.proto } else { 0 },
            };
            let Some(bucket) = sub.table.get(&key) else {
                continue;
            };
            if has_ports(t.proto) {
                if let Some(list) = bucket.by_dport.get(&t.dst_port) {
                    if let Some(c) = first_match(list, t, found) {
                        found = Some(c);
                    }
                }
            }
            if let Some(c) = first_match(&bucket.rest, t, found) {
                found = Some(c);
            }
        }
        match found {
            Some(c) => (self.rules[c.index].verdict, Some(c.index)),
            None => (self.default, None),
        }
    }

    /// The tables a lookup may probe (distinct rule shapes).
    pub fn tables(&self) -> usize {
        self.tables.len()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Tenants' classifiers. A tenant without rules gets `Deny`: nothing passes that nobody allowed.
#[derive(Debug, Default)]
pub struct Acl {
    tenants: HashMap<u32, Classifier>,
}

impl Acl {
    pub fn new() -> Acl {
        Acl::default()
    }

    /// Replaces a tenant's rules (unchanged if they do not compile).
    pub fn set(&mut self, tenant: u32, rules: Vec<Rule>, default: Verdict) -> Result<(), AclError> {
        let c = Classifier::new(rules, default)?;
        self.tenants.insert(tenant, c);
        Ok(())
    }

    pub fn remove(&mut self, tenant: u32) {
        self.tenants.remove(&tenant);
    }

    pub fn classify(&self, tenant: u32, t: &Tuple) -> (Verdict, Option<usize>) {
        match self.tenants.get(&tenant) {
            Some(c) => c.classify(t),
            None => (Verdict::Deny, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], len: u8) -> Option<IpNet> {
        Some(IpNet::V4(Ipv4Addr::from(a), len))
    }

    fn t4(s: [u8; 4], d: [u8; 4], proto: u8, sp: u16, dp: u16) -> Tuple {
        Tuple {
            src: IpAddr::V4(Ipv4Addr::from(s)),
            dst: IpAddr::V4(Ipv4Addr::from(d)),
            proto,
            src_port: sp,
            dst_port: dp,
        }
    }

    #[test]
    fn priority_prefixes_ports_and_default() {
        let rules = vec![
            Rule {
                dst_ports: PortRange::one(22),
                proto: Some(6),
                ..Rule::any(10, Verdict::Allow)
            },
            Rule {
                src: v4([10, 0, 0, 0], 8),
                ..Rule::any(5, Verdict::Allow)
            },
            Rule {
                src: v4([10, 1, 0, 0], 16),
                ..Rule::any(7, Verdict::Deny)
            },
            Rule {
                dst_ports: PortRange { lo: 8000, hi: 8999 },
                ..Rule::any(20, Verdict::Deny)
            },
        ];
        let c = Classifier::new(rules, Verdict::Deny).unwrap();
        assert_eq!(
            c.classify(&t4([1, 2, 3, 4], [5, 6, 7, 8], 6, 999, 22)),
            (Verdict::Allow, Some(0))
        );
        assert_eq!(
            c.classify(&t4([1, 2, 3, 4], [5, 6, 7, 8], 17, 999, 22)),
            (Verdict::Deny, None),
            "UDP is not TCP"
        );
        assert_eq!(
            c.classify(&t4([10, 9, 0, 1], [5, 6, 7, 8], 1, 0, 0)),
            (Verdict::Allow, Some(1))
        );
        assert_eq!(
            c.classify(&t4([10, 1, 0, 1], [5, 6, 7, 8], 1, 0, 0)),
            (Verdict::Deny, Some(2)),
            "longer prefix, higher priority"
        );
        assert_eq!(
            c.classify(&t4([10, 1, 0, 1], [5, 6, 7, 8], 17, 1, 8500)),
            (Verdict::Deny, Some(3))
        );
        assert_eq!(
            c.classify(&t4([10, 9, 0, 1], [5, 6, 7, 8], 1, 0, 8500)),
            (Verdict::Allow, Some(1)),
            "ICMP has no ports"
        );
        assert_eq!(
            c.classify(&t4([11, 0, 0, 1], [5, 6, 7, 8], 17, 1, 9000)),
            (Verdict::Deny, None)
        );
    }

    #[test]
    fn ties_go_to_the_rule_added_first_and_families_stay_apart() {
        let v6 = IpNet::V6("2001:db8::".parse().unwrap(), 32);
        let rules = vec![
            Rule {
                src: Some(v6),
                ..Rule::any(1, Verdict::Deny)
            },
            Rule::any(1, Verdict::Allow),
            Rule {
                src: v4([10, 0, 0, 0], 8),
                ..Rule::any(1, Verdict::Deny)
            },
        ];
        let c = Classifier::new(rules, Verdict::Deny).unwrap();
        assert_eq!(
            c.classify(&t4([10, 0, 0, 1], [1, 1, 1, 1], 6, 1, 2)).1,
            Some(1),
            "rule 1 came first"
        );
        let t = Tuple {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db9::1".parse().unwrap(),
            proto: 17,
            src_port: 1,
            dst_port: 2,
        };
        assert_eq!(c.classify(&t), (Verdict::Deny, Some(0)));
        let t = Tuple {
            src: "2001:db9::1".parse().unwrap(),
            ..t
        };
        assert_eq!(c.classify(&t), (Verdict::Allow, Some(1)));
    }

    #[test]
    fn bad_rules_are_refused() {
        let mixed = Rule {
            src: v4([1, 0, 0, 0], 8),
            dst: Some(IpNet::V6(Ipv6Addr::LOCALHOST, 128)),
            ..Rule::any(1, Verdict::Allow)
        };
        assert_eq!(
            Classifier::new(vec![mixed], Verdict::Deny).err(),
            Some(AclError::MixedFamilies { index: 0 })
        );
        let long = Rule {
            src: v4([1, 0, 0, 0], 33),
            ..Rule::any(1, Verdict::Allow)
        };
        assert!(matches!(
            Classifier::new(vec![long], Verdict::Deny),
            Err(AclError::PrefixTooLong { .. })
        ));
        let empty = Rule {
            dst_ports: PortRange { lo: 9, hi: 8 },
            ..Rule::any(1, Verdict::Allow)
        };
        assert!(matches!(
            Classifier::new(vec![empty], Verdict::Deny),
            Err(AclError::EmptyRange { .. })
        ));
        let icmp = Rule {
            proto: Some(1),
            dst_ports: PortRange::one(1),
            ..Rule::any(1, Verdict::Allow)
        };
        assert!(matches!(
            Classifier::new(vec![icmp], Verdict::Deny),
            Err(AclError::PortsWithoutPorts { .. })
        ));
    }

    #[test]
    fn tenants_do_not_share_rules() {
        let mut acl = Acl::new();
        acl.set(1, vec![Rule::any(1, Verdict::Allow)], Verdict::Deny)
            .unwrap();
        let t = t4([1, 1, 1, 1], [2, 2, 2, 2], 6, 1, 2);
        assert_eq!(acl.classify(1, &t).0, Verdict::Allow);
        assert_eq!(
            acl.classify(2, &t),
            (Verdict::Deny, None),
            "a tenant without rules passes nothing"
        );
        acl.remove(1);
        assert_eq!(acl.classify(1, &t).0, Verdict::Deny);
    }
}
