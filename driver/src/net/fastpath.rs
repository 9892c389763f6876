//! The FPGA's flow stage, as its software reference: what the exact-match flow table does to
//! each packet on the card. `sim/rtl/fv_net_flow_table.sv` is the table in RTL (same key, same
//! two Toeplitz hashes, same buckets, same writes, same per-entry counters); its place in the
//! RTL packet path comes with the RTL switch (docs/FLOW.md). This model is what the runtime's
//! loop ([`super::offload`]) drives today and what the RTL will be checked against.
//!
//! Per packet (TCP or UDP; anything else is punted, the CPU owns it):
//! - the key: the vport it came in on ([`UPLINK`] for the uplink), the VNI it was decapsulated
//!   from (0: none), addresses, protocol and ports;
//! - a TCP segment with SYN, FIN or RST is punted **even on a hit** (the CPU owns connection
//!   state), and so is an IP fragment;
//! - a hit counts packets, bytes, the time and the TCP flags on its entry and gives the
//!   entry's action; a miss is punted.
//!
//! The hardware takes whole-entry writes by (bucket, way) in the order
//! [`fpga_virtio_flow::table::FlowTable::insert`] computes them; a write over an occupied slot
//! (a move's clear, a remove, a replace) hands the old entry's counts out, so a moved flow's
//! counts are never lost (the RTL hands them out 3 cycles after the clear).

use fpga_virtio_flow::conntrack::Millis;
use fpga_virtio_flow::forward::{TunnelId, VportId};
use fpga_virtio_flow::table::{
    bucket_pair, Entry, FlowKey, Hasher, Write, HASH_KEY_BYTES, KEY_BYTES, WAYS,
};
use fpga_virtio_flow::{Packet, L4};

/// The uplink's number in a flow key's `vport`.
pub const UPLINK: VportId = 0xffff;

/// TCP flags the fast path never forwards on its own.
const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// What a hit does with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// To a vport's RX queues (RSS picks the queue).
    Vport(VportId),
    /// Out of the uplink as it is.
    Uplink,
    /// Out of the uplink in this VxLAN tunnel (outer headers from its template, the UDP
    /// source port from the flow hash).
    Encap(TunnelId),
    Drop,
}

/// Why a packet went to the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Punt {
    /// No entry for its key.
    Miss,
    /// A TCP SYN, FIN or RST (punted on a hit too).
    TcpControl,
    /// Not TCP or UDP, or not IP (ARP, ICMP, ...): the CPU's.
    Untracked,
    /// An IP fragment (never reassembled on the card).
    Fragment,
}

impl Punt {
    pub const ALL: [Punt; 4] = [
        Punt::Miss,
        Punt::TcpControl,
        Punt::Untracked,
        Punt::Fragment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Punt::Miss => "flow_miss",
            Punt::TcpControl => "flow_tcp_control",
            Punt::Untracked => "flow_untracked",
            Punt::Fragment => "flow_fragment",
        }
    }
}

/// One entry's counts, as the hardware keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryCounts {
    pub packets: u64,
    pub bytes: u64,
    /// The time of the last hit (the runtime's clock, as the hardware's timestamp register).
    pub last_seen: Millis,
    /// TCP flags of the hits, ORed.
    pub tcp_flags: u8,
}

impl EntryCounts {
    pub fn add(&mut self, o: &EntryCounts) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.last_seen = self.last_seen.max(o.last_seen);
        self.tcp_flags |= o.tcp_flags;
    }
}

/// An entry's counts handed out by a write over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandedOut {
    pub key: FlowKey,
    pub cookie: u64,
    pub counts: EntryCounts,
}

/// The flow key of a packet the fast path may forward, with its TCP flags; or why not.
pub fn flow_key(
    vport: VportId,
    vni: u32,
    p: &Result<Packet, fpga_virtio_flow::packet::ParseError>,
) -> Result<(FlowKey, u8), Punt> {
    use fpga_virtio_flow::packet::ParseError;
    let p = match p {
        Ok(p) => p,
        Err(ParseError::Fragment) => return Err(Punt::Fragment),
        Err(_) => return Err(Punt::Untracked),
    };
    let (sport, dport, flags) = match p.l4 {
        L4::Tcp(t) => (t.sport, t.dport, t.flags),
        L4::Udp { sport, dport } => (sport, dport, 0),
        _ => return Err(Punt::Untracked),
    };
    Ok((
        FlowKey {
            vport,
            vni,
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            sport,
            dport,
        },
        flags,
    ))
}

/// A valid slot: the entry and its counts.
type Slot = Option<(Entry<Action>, EntryCounts)>;

/// The hardware table: slots by (bucket, way), each an entry and its counts.
#[derive(Debug)]
pub struct HwFlowTable {
    slots: Vec<[Slot; WAYS]>,
    hashers: [Hasher; 2],
}

impl HwFlowTable {
    /// `buckets` buckets (a power of two, as the model's table), hashed under `keys`.
    pub fn new(buckets: usize, keys: [[u8; HASH_KEY_BYTES]; 2]) -> HwFlowTable {
        HwFlowTable::with_hashers(buckets, [Hasher::new(&keys[0]), Hasher::new(&keys[1])])
    }

    /// The same, with the model's hashers (the same keys).
    pub fn with_hashers(buckets: usize, hashers: [Hasher; 2]) -> HwFlowTable {
        HwFlowTable {
            slots: (0..buckets)
                .map(|_| std::array::from_fn(|_| None))
                .collect(),
            hashers,
        }
    }

    fn hashes(&self, packed: &[u8; KEY_BYTES]) -> (u32, u32) {
        (self.hashers[0].hash(packed), self.hashers[1].hash(packed))
    }

    fn find(&self, key: &FlowKey) -> Option<(usize, usize, u32)> {
        let packed = key.pack();
        let h = self.hashes(&packed);
        for b in bucket_pair(h, self.slots.len()) {
            for w in 0..WAYS {
                if self.slots[b][w]
                    .as_ref()
                    .is_some_and(|(e, _)| e.key == *key)
                {
                    return Some((b, w, h.0));
                }
            }
        }
        None
    }

    /// One packet: the action and the flow hash on a hit (counted), or why it is punted.
    pub fn lookup(
        &mut self,
        key: &FlowKey,
        tcp_flags: u8,
        len: u32,
        now: Millis,
    ) -> Result<(Action, u32), Punt> {
        let found = self.find(key);
        if key.proto == 6 && tcp_flags & (SYN | FIN | RST) != 0 {
            return Err(Punt::TcpControl);
        }
        let (b, w, hash) = found.ok_or(Punt::Miss)?;
        let (e, c) = self.slots[b][w].as_mut().expect("found");
        c.packets += 1;
        c.bytes += u64::from(len);
        c.last_seen = now;
        c.tcp_flags |= tcp_flags;
        Ok((e.action, hash))
    }

    /// A write from the CPU; the counts of the entry it replaces, if any.
    pub fn apply(&mut self, w: Write<Action>) -> Option<HandedOut> {
        let (b, way, new) = match w {
            Write::Set(b, way, e) => (b, way, Some((e, EntryCounts::default()))),
            Write::Clear(b, way) => (b, way, None),
        };
        let slot = self.slots.get_mut(b)?.get_mut(way)?;
        std::mem::replace(slot, new).map(|(e, counts)| HandedOut {
            key: e.key,
            cookie: e.cookie,
            counts,
        })
    }

    /// The counts of `key`'s entry if it carries `cookie` (a read leaves them).
    pub fn read(&self, key: &FlowKey, cookie: u64) -> Option<EntryCounts> {
        let (b, w, _) = self.find(key)?;
        let (e, c) = self.slots[b][w].as_ref()?;
        (e.cookie == cookie).then_some(*c)
    }

    /// Valid entries.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fpga_virtio_flow::table::FlowTable;
    use std::net::{IpAddr, Ipv4Addr};

    fn key(i: u16) -> FlowKey {
        FlowKey {
            vport: 1,
            vni: 0,
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            proto: 17,
            sport: 1000 + i,
            dport: 53,
        }
    }

    #[test]
    fn the_hardware_finds_what_the_model_placed_and_moves_keep_counts() {
        let keys = [[7u8; HASH_KEY_BYTES], [9u8; HASH_KEY_BYTES]];
        let mut model: FlowTable<Action> = FlowTable::new(16, keys);
        let mut hw = HwFlowTable::new(model.buckets(), keys);
        let mut handed = Vec::new();
        let mut placed = Vec::new();
        for i in 0..200u16 {
            let e = Entry {
                key: key(i),
                action: Action::Vport(i),
                cookie: u64::from(i),
            };
            let Ok(writes) = model.insert(e) else {
                continue;
            };
            for w in writes {
                handed.extend(hw.apply(w));
            }
            placed.push(i);
            // Every placed flow hits, once, with its action.
            for &j in &placed {
                assert_eq!(
                    hw.lookup(&key(j), 0, 100, u64::from(i)),
                    Ok((Action::Vport(j), model.hashes(&key(j)).0))
                );
            }
        }
        assert!(placed.len() >= 14, "{}", placed.len());
        assert_eq!(hw.len(), placed.len());
        // Each flow's hits are in its entry or were handed out when it moved: none lost.
        for &j in &placed {
            let now = hw.read(&key(j), u64::from(j)).unwrap().packets;
            let moved: u64 = handed
                .iter()
                .filter(|h| h.cookie == u64::from(j))
                .map(|h| h.counts.packets)
                .sum();
            let first = placed.iter().position(|&p| p == j).unwrap();
            assert_eq!(now + moved, (placed.len() - first) as u64, "flow {j}");
        }
        // A read with another flow's cookie sees nothing; TCP control punts on a hit.
        assert_eq!(hw.read(&key(placed[0]), 99_999), None);
        let mut tcp = key(placed[0]);
        tcp.proto = 6;
        assert_eq!(hw.lookup(&tcp, SYN, 60, 0), Err(Punt::TcpControl));
        assert_eq!(hw.lookup(&key(999), 0, 60, 0), Err(Punt::Miss));
    }
}
