//! The flow-offload loop: what the runtime does with the packets the FPGA's flow stage punts
//! (docs/FLOW.md). A punted packet is **decided** by the slow path (`fpga_virtio_flow`:
//! connection tracking, then the tenant's ACL for a packet that would open a connection),
//! forwarded by the tenant's forwarding state (MAC table, routes, VxLAN tunnels); the
//! tracker's flow-table updates are **installed** (both directions of a connection, each with
//! the action its own packets were given, under the connection's cookie, in the write order
//! the table model computes) and the punted packet is **reinjected** after the install, before
//! the next packet is looked at — so a flow's later packets, which now hit, never overtake it.
//! **Aging** reads the hardware's counters when the tracker asks (a connection whose timer ran
//! out while offloaded) and removes idle flows from the hardware and the tracker together; the
//! counters stay exact (what the CPU saw + what the hardware counted, moves included).
//!
//! The hardware here is [`HwFlowTable`], the flow stage's software reference; the RTL table
//! takes the same writes (`sim/rtl/fv_net_flow_table.sv`).

use super::fastpath::{flow_key, Action, EntryCounts, HandedOut, HwFlowTable, Punt, UPLINK};
use fpga_virtio_flow::conntrack::{ConnId, Event, HwCounters, HwOp, Key, Limits, Millis};
use fpga_virtio_flow::forward::{Egress, Forwarding, VportId};
use fpga_virtio_flow::packet::{self, ParseError};
use fpga_virtio_flow::table::{Entry, FlowKey, FlowTable, TableError, HASH_KEY_BYTES};
use fpga_virtio_flow::{vxlan, SlowPath};
use std::collections::HashMap;

/// A frame leaving the card's switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// To a vport's RX queues.
    Vport(VportId, Vec<u8>),
    /// Out of the uplink.
    Uplink(Vec<u8>),
}

/// How the loop runs.
#[derive(Clone, Copy, Debug)]
pub struct OffloadConfig {
    /// Flow-table entries (`FLOW_ENTRIES`; a connection takes two).
    pub entries: usize,
    /// The two secret Toeplitz keys of the table's buckets (the runtime draws them at start).
    pub hash_keys: [[u8; HASH_KEY_BYTES]; 2],
    /// Offload connections to the flow table (false: every packet through the CPU).
    pub offload: bool,
    pub limits: Limits,
    /// The UDP port VxLAN arrives on (4789).
    pub vxlan_port: u16,
    /// The zone of plain (not VxLAN) frames from the uplink; None: they are dropped.
    pub uplink_zone: Option<u32>,
}

/// Two well-mixed keys from `seed` (splitmix64). A key of one repeated byte would make the
/// Toeplitz hash periodic in the input bits, so that a few hundred flows share their buckets.
pub fn keys_from_seed(seed: u64) -> [[u8; HASH_KEY_BYTES]; 2] {
    let mut x = seed;
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u8
    };
    let mut k = [[0u8; HASH_KEY_BYTES]; 2];
    for b in k.iter_mut().flatten() {
        *b = next();
    }
    k
}

impl OffloadConfig {
    /// Secret keys from the kernel's random source (what a running service uses: a tenant
    /// who cannot compute the buckets cannot crowd them). The default's fixed keys keep tests
    /// and benches reproducible.
    pub fn with_random_keys(mut self) -> std::io::Result<Self> {
        let mut buf = [0u8; 2 * HASH_KEY_BYTES];
        let mut got = 0;
        while got < buf.len() {
            // SAFETY: the pointer and length describe the unfilled tail of `buf`, which lives
            // across the call; getrandom writes at most that many bytes.
            let n = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), buf.len() - got, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            got += n as usize;
        }
        self.hash_keys[0].copy_from_slice(&buf[..HASH_KEY_BYTES]);
        self.hash_keys[1].copy_from_slice(&buf[HASH_KEY_BYTES..]);
        Ok(self)
    }
}

impl Default for OffloadConfig {
    fn default() -> Self {
        OffloadConfig {
            entries: 1 << 16,
            hash_keys: keys_from_seed(0x0ff1_0ad5),
            offload: true,
            limits: Limits::default(),
            vxlan_port: 4789,
            uplink_zone: None,
        }
    }
}

/// The loop's counters (fixed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// Packets the flow table forwarded.
    pub hits: u64,
    /// Packets punted, by [`Punt`] (in `Punt::ALL` order).
    pub punts: [u64; 4],
    /// Punted packets the slow path let through and the loop reinjected.
    pub reinjected: u64,
    /// Punted packets refused (conntrack invalid, ACL deny, zone full), or with nowhere to go.
    pub dropped: u64,
    /// Frames from the uplink for no zone (an unknown VNI, a bad VxLAN header, no uplink zone).
    pub no_zone: u64,
    /// Connections installed (two entries each), refused by the table (they stay on the CPU
    /// path), and removed.
    pub installed: u64,
    pub refused: u64,
    pub removed: u64,
    /// Counter reads the tracker asked for (aging).
    pub queries: u64,
    /// Hardware writes (entries set and cleared, moves included).
    pub writes: u64,
    /// Tracker events not kept (the owner did not take them).
    pub events_lost: u64,
}

impl OffloadStats {
    pub fn punted(&self, p: Punt) -> u64 {
        self.punts[Punt::ALL.iter().position(|&x| x == p).unwrap_or(0)]
    }
}

/// One direction of a connection as its packets travel: where they come in, and what the
/// slow path did with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Path {
    ingress: VportId,
    vni: u32,
    action: Action,
}

#[derive(Clone, Copy, Debug, Default)]
struct ConnHw {
    paths: [Option<Path>; 2],
    /// The entries' keys while installed.
    keys: [Option<FlowKey>; 2],
    /// The entries' counts handed out by moves (per direction), since installed.
    carried: [EntryCounts; 2],
}

/// What the loop keeps per connection, by the tracker's slot (dense: no hashing, one
/// cache line per connection), checked against the slot's generation.
#[derive(Debug, Default)]
struct Conns(Vec<Option<(u32, ConnHw)>>);

impl Conns {
    fn get(&self, id: ConnId) -> Option<&ConnHw> {
        match self.0.get(id.slot as usize) {
            Some(Some((gen, c))) if *gen == id.gen => Some(c),
            _ => None,
        }
    }

    fn get_mut(&mut self, id: ConnId) -> Option<&mut ConnHw> {
        match self.0.get_mut(id.slot as usize) {
            Some(Some((gen, c))) if *gen == id.gen => Some(c),
            _ => None,
        }
    }

    /// The connection's record, a new one if its slot held none or an older generation's.
    fn entry(&mut self, id: ConnId) -> &mut ConnHw {
        let i = id.slot as usize;
        if self.0.len() <= i {
            self.0.resize_with(i + 1, || None);
        }
        let slot = &mut self.0[i];
        if !matches!(slot, Some((gen, _)) if *gen == id.gen) {
            *slot = Some((id.gen, ConnHw::default()));
        }
        &mut slot.as_mut().expect("just set").1
    }

    fn remove(&mut self, id: ConnId) {
        if let Some(slot) = self.0.get_mut(id.slot as usize) {
            if matches!(slot, Some((gen, _)) if *gen == id.gen) {
                *slot = None;
            }
        }
    }
}

/// The loop, with the slow path's state and the hardware it drives.
pub struct FlowOffload {
    pub slow: SlowPath,
    pub fwd: Forwarding,
    model: FlowTable<Action>,
    hw: HwFlowTable,
    cfg: OffloadConfig,
    vports: HashMap<VportId, u32>,
    conns: Conns,
    /// The tracker's events, for the owner to take ([`FlowOffload::take_events`]); bounded.
    events: Vec<Event>,
    stats: OffloadStats,
}

/// Events kept for the owner to take; beyond, they are counted in `events_lost`.
pub const EVENTS_KEPT: usize = 1 << 16;

impl std::fmt::Debug for FlowOffload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowOffload")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn action_of(e: Egress) -> Action {
    match e {
        Egress::Vport(v) => Action::Vport(v),
        Egress::Uplink => Action::Uplink,
        Egress::Tunnel(t) => Action::Encap(t),
        Egress::Drop => Action::Drop,
    }
}

/// Both directions' entry counts as the tracker takes them.
fn hw_counters(c: &[EntryCounts; 2]) -> HwCounters {
    HwCounters {
        packets: [c[0].packets, c[1].packets],
        bytes: [c[0].bytes, c[1].bytes],
        last_seen: c[0].last_seen.max(c[1].last_seen),
        tcp_flags: c[0].tcp_flags | c[1].tcp_flags,
    }
}

fn flow_key_of(k: &Key, p: &Path) -> FlowKey {
    FlowKey {
        vport: p.ingress,
        vni: p.vni,
        src: k.src,
        dst: k.dst,
        proto: k.proto,
        sport: k.sport,
        dport: k.dport,
    }
}

impl FlowOffload {
    pub fn new(cfg: OffloadConfig) -> FlowOffload {
        let model = FlowTable::new(cfg.entries, cfg.hash_keys);
        let hw = HwFlowTable::with_hashers(model.buckets(), model.hashers().clone());
        let mut slow = SlowPath::new(cfg.limits);
        slow.conntrack.set_offload(cfg.offload);
        FlowOffload {
            slow,
            fwd: Forwarding::new(),
            model,
            hw,
            cfg,
            vports: HashMap::new(),
            conns: Conns::default(),
            events: Vec::new(),
            stats: OffloadStats::default(),
        }
    }

    /// A vport of tenant `zone` with its MAC (frames to it go to it), or a vport's new
    /// MAC (the old one and the addresses learnt on it are forgotten). A group address is
    /// refused (false): the vport then has no address of its own.
    pub fn add_vport(&mut self, vport: VportId, zone: u32, mac: [u8; 6]) -> bool {
        self.fwd.remove_vport(vport);
        self.vports.insert(vport, zone);
        self.fwd.set_vport_mac(zone, mac, vport)
    }

    /// Forgets a vport (its frames then belong to no tenant; its addresses are dropped).
    pub fn remove_vport(&mut self, vport: VportId) {
        self.vports.remove(&vport);
        self.fwd.remove_vport(vport);
    }

    pub fn stats(&self) -> OffloadStats {
        self.stats
    }

    /// The tracker's events since the last call (connections new and gone, with their
    /// final counters: software and hardware together).
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Entries in the hardware table.
    pub fn hw_entries(&self) -> usize {
        self.hw.len()
    }

    /// Entries the table's model holds (the hardware holds the same).
    pub fn model_entries(&self) -> usize {
        self.model.len()
    }

    /// A frame into the card from `ingress` (a vport, or [`UPLINK`]) at `now`: the flow
    /// table forwards it, or the slow path decides it and the loop installs and reinjects.
    pub fn receive(&mut self, ingress: VportId, frame: &[u8], now: Millis, out: &mut Vec<Out>) {
        let Some((vni, zone, inner)) = self.classify_ingress(ingress, frame) else {
            return;
        };
        let parsed = packet::from_frame(zone, inner);
        let len = inner.len() as u32;
        let punt = match flow_key(ingress, vni, &parsed) {
            Ok((key, flags)) => match self.hw.lookup(&key, flags, len, now) {
                Ok((action, hash)) => {
                    self.stats.hits += 1;
                    self.emit(action, inner, hash, out);
                    return;
                }
                Err(p) => p,
            },
            Err(p) => p,
        };
        self.count_punt(punt);
        self.slow_path(ingress, vni, zone, inner, parsed, now, out);
    }

    /// A packet the flow stage punted (`why`), as a CPU worker takes it from the punt ring:
    /// decided, the tracker's updates installed, reinjected into `out`.
    pub fn punted(
        &mut self,
        ingress: VportId,
        frame: &[u8],
        why: Punt,
        now: Millis,
        out: &mut Vec<Out>,
    ) {
        let Some((vni, zone, inner)) = self.classify_ingress(ingress, frame) else {
            return;
        };
        self.count_punt(why);
        let parsed = packet::from_frame(zone, inner);
        self.slow_path(ingress, vni, zone, inner, parsed, now, out);
    }

    fn count_punt(&mut self, p: Punt) {
        let i = Punt::ALL.iter().position(|&x| x == p).unwrap_or(0);
        self.stats.punts[i] += 1;
    }

    /// The VNI, zone and frame the card works on for a frame from `ingress`: a vport's own
    /// zone; from the uplink, a tunnel's zone (decapsulated) or the uplink's zone.
    fn classify_ingress<'f>(
        &mut self,
        ingress: VportId,
        frame: &'f [u8],
    ) -> Option<(u32, u32, &'f [u8])> {
        let found = if ingress == UPLINK {
            match vxlan::decap(frame, self.cfg.vxlan_port) {
                Ok(d) => self.fwd.zone_of_vni(d.vni).map(|z| (d.vni, z, d.inner)),
                Err(_) => self.cfg.uplink_zone.map(|z| (0, z, frame)),
            }
        } else {
            self.vports.get(&ingress).map(|&z| (0, z, frame))
        };
        if found.is_none() {
            self.stats.no_zone += 1;
        }
        found
    }

    #[allow(clippy::too_many_arguments)]
    fn slow_path(
        &mut self,
        ingress: VportId,
        vni: u32,
        zone: u32,
        frame: &[u8],
        parsed: Result<fpga_virtio_flow::Packet, ParseError>,
        now: Millis,
        out: &mut Vec<Out>,
    ) {
        if frame.len() < 14 {
            self.stats.dropped += 1;
            return;
        }
        let dst_mac: [u8; 6] = frame[..6].try_into().expect("14 bytes");
        let src_mac: [u8; 6] = frame[6..12].try_into().expect("14 bytes");
        if ingress != UPLINK {
            self.fwd.learn(zone, src_mac, ingress, now);
        }
        let group = dst_mac[0] & 1 != 0;
        let egress = self
            .fwd
            .resolve(zone, dst_mac, parsed.as_ref().ok().map(|p| p.dst));
        let mut hash = 0;
        match parsed {
            Ok(p) => {
                let d = self.slow.decide(&p, now);
                if !d.accept {
                    self.stats.dropped += 1;
                    self.run_ops();
                    return;
                }
                if let (Some(conn), false) = (d.conn, group) {
                    // The path of this direction, for the install (a group destination is
                    // never one: its connection stays on the CPU path).
                    self.conns.entry(conn).paths[d.dir as usize] = Some(Path {
                        ingress,
                        vni,
                        action: action_of(egress),
                    });
                }
                // The flow hash (the tunnel's UDP source port) as the hardware gives it.
                if matches!(egress, Egress::Tunnel(_)) {
                    if let Ok((key, _)) = flow_key(ingress, vni, &Ok(p)) {
                        hash = self.model.hashes(&key).0;
                    }
                }
            }
            // ARP and other non-IP traffic: switched by MAC, not tracked.
            Err(ParseError::NotIp) => {}
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        }
        self.run_ops();
        self.stats.reinjected += 1;
        if group {
            self.flood(ingress, zone, frame, out);
        } else {
            self.emit(action_of(egress), frame, hash, out);
        }
    }

    /// A group address: every other vport of the zone and, from a vport, the zone's way out
    /// (its default: the uplink, or its tunnel — a tenant's broadcast never reaches the plain
    /// uplink unless that is its way out).
    fn flood(&mut self, ingress: VportId, zone: u32, frame: &[u8], out: &mut Vec<Out>) {
        let mut vports: Vec<VportId> = self
            .vports
            .iter()
            .filter(|&(&v, &z)| z == zone && v != ingress)
            .map(|(&v, _)| v)
            .collect();
        vports.sort_unstable();
        for v in vports {
            out.push(Out::Vport(v, frame.to_vec()));
        }
        if ingress != UPLINK {
            match self.fwd.default_egress(zone) {
                e @ (Egress::Uplink | Egress::Tunnel(_)) => self.emit(action_of(e), frame, 0, out),
                Egress::Vport(_) | Egress::Drop => {}
            }
        }
    }

    fn emit(&mut self, action: Action, frame: &[u8], hash: u32, out: &mut Vec<Out>) {
        match action {
            Action::Vport(v) => out.push(Out::Vport(v, frame.to_vec())),
            Action::Uplink => out.push(Out::Uplink(frame.to_vec())),
            Action::Encap(t) => {
                let mut f = Vec::with_capacity(frame.len() + 70);
                match self
                    .fwd
                    .tunnel(t)
                    .map(|t| vxlan::encap(t, frame, hash, &mut f))
                {
                    Ok(Ok(())) => out.push(Out::Uplink(f)),
                    _ => self.stats.dropped += 1,
                }
            }
            Action::Drop => self.stats.dropped += 1,
        }
    }

    /// Time passes: the tracker's timers (an offloaded connection's asks for a hardware
    /// read first), the MAC table's ageing.
    pub fn tick(&mut self, now: Millis) {
        self.slow.conntrack.expire(now);
        self.run_ops();
        self.fwd.age(now);
    }

    fn write(&mut self, w: fpga_virtio_flow::table::Write<Action>) {
        self.stats.writes += 1;
        if let Some(h) = self.hw.apply(w) {
            self.carry(h);
        }
    }

    /// Counts a write handed out: a moved entry's go with its connection's direction.
    fn carry(&mut self, h: HandedOut) {
        let conn = ConnId::from_cookie(h.cookie);
        if let Some(c) = self.conns.get_mut(conn) {
            if let Some(d) = c.keys.iter().position(|k| *k == Some(h.key)) {
                c.carried[d].add(&h.counts);
            }
        }
    }

    /// The connection's two hardware entries' counts since installed (moves included).
    fn read(&self, conn: ConnId) -> HwCounters {
        let Some(c) = self.conns.get(conn) else {
            return HwCounters::default();
        };
        let mut counts = c.carried;
        for (d, n) in counts.iter_mut().enumerate() {
            if let Some(now) = c.keys[d].and_then(|k| self.hw.read(&k, conn.cookie())) {
                n.add(&now);
            }
        }
        hw_counters(&counts)
    }

    fn run_ops(&mut self) {
        loop {
            let ops = self.slow.conntrack.take_ops();
            if ops.is_empty() {
                break;
            }
            for op in ops {
                match op {
                    HwOp::Install { conn, orig, reply } => {
                        let ok = self.install(conn, &orig, &reply);
                        if ok {
                            self.stats.installed += 1;
                        } else {
                            self.stats.refused += 1;
                        }
                        self.slow.conntrack.hw_installed(conn, ok);
                    }
                    HwOp::Remove { conn, .. } => {
                        let keys = self.conns.get(conn).map_or([None; 2], |c| c.keys);
                        for k in keys.into_iter().flatten() {
                            if let Some(w) = self.model.remove(&k, conn.cookie()) {
                                self.write(w);
                            }
                        }
                        // The clears handed the entries' final counts out (carried, with what
                        // moves handed out before): the counts since installed.
                        let counts = self.conns.get_mut(conn).map_or_else(Default::default, |c| {
                            c.keys = [None; 2];
                            std::mem::take(&mut c.carried)
                        });
                        self.stats.removed += 1;
                        self.slow.conntrack.hw_removed(conn, hw_counters(&counts));
                    }
                    HwOp::Query { conn, .. } => {
                        self.stats.queries += 1;
                        let hw = self.read(conn);
                        self.slow.conntrack.hw_seen(conn, hw);
                    }
                }
            }
        }
        for e in self.slow.conntrack.take_events() {
            if let Event::Destroy { conn, .. } = e {
                self.conns.remove(conn);
            }
            if self.events.len() < EVENTS_KEPT {
                self.events.push(e);
            } else {
                self.stats.events_lost += 1;
            }
        }
    }

    /// Both entries of a connection, or neither.
    fn install(&mut self, conn: ConnId, orig: &Key, reply: &Key) -> bool {
        let Some(c) = self.conns.get(conn).copied() else {
            return false;
        };
        let (Some(po), Some(pr)) = (c.paths[0], c.paths[1]) else {
            return false;
        };
        let entries = [
            Entry {
                key: flow_key_of(orig, &po),
                action: po.action,
                cookie: conn.cookie(),
            },
            Entry {
                key: flow_key_of(reply, &pr),
                action: pr.action,
                cookie: conn.cookie(),
            },
        ];
        if let Some(c) = self.conns.get_mut(conn) {
            c.keys = [Some(entries[0].key), Some(entries[1].key)];
            c.carried = Default::default();
        }
        let mut done = Vec::new();
        for e in entries {
            match self.model.insert(e.clone()) {
                Ok(writes) => {
                    for w in writes {
                        self.write(w);
                    }
                    done.push(e.key);
                }
                Err(TableError::Full | TableError::Taken(_)) => {
                    for k in done {
                        if let Some(w) = self.model.remove(&k, conn.cookie()) {
                            self.write(w);
                        }
                    }
                    if let Some(c) = self.conns.get_mut(conn) {
                        c.keys = [None; 2];
                    }
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    /// The default's keys and drawn ones spread flows: a 4096-entry table takes 90 % before
    /// its first refusal (a key of one repeated byte refused the 65th connection of a
    /// 262 144-entry table).
    #[test]
    fn the_keys_spread_flows() {
        let drawn = OffloadConfig::default().with_random_keys().unwrap();
        assert_ne!(drawn.hash_keys, OffloadConfig::default().hash_keys);
        assert_ne!(drawn.hash_keys[0], drawn.hash_keys[1]);
        for keys in [OffloadConfig::default().hash_keys, drawn.hash_keys] {
            let mut t: FlowTable<Action> = FlowTable::new(4096, keys);
            let mut n = 0u32;
            while t
                .insert(Entry {
                    key: FlowKey {
                        vport: UPLINK,
                        vni: 0,
                        src: IpAddr::V4(Ipv4Addr::from(0x6440_0000 | n)),
                        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                        proto: 6,
                        sport: 1024,
                        dport: 443,
                    },
                    action: Action::Vport(1),
                    cookie: u64::from(n),
                })
                .is_ok()
            {
                n += 1;
            }
            assert!(
                n as usize * 10 >= t.capacity() * 9,
                "{n} of {}",
                t.capacity()
            );
        }
    }
}
