//! Connection tracking: which packets belong to a connection the slow path has let through,
//! and when a connection may be handed to the FPGA's flow table.
//!
//! The model is the stateful filter of Linux's conntrack and of Guido van Rooij's "Real Stateful
//! TCP Packet Filtering in IP Filter" (read for the design, written here from scratch): every
//! packet is *new* (no connection yet: the caller's ACL decides, and an accepted one opens a
//! connection), *established* (part of a connection, in its window), *related* (an ICMP error
//! about a connection) or *invalid* (a TCP segment out of its window or not fitting the state,
//! an ICMP error about nothing, a first packet that cannot open a connection).
//!
//! - Connections are keyed by zone (the tenant: the same addresses in two zones are two
//!   connections), protocol, addresses and ports (ICMP echo: its identifier), in both directions.
//! - TCP: the three-way handshake (and simultaneous open), the closing states from each side's
//!   FIN and its acknowledgement, RST in window; per direction the highest sequence sent, the
//!   highest the peer's window allows and the largest window, with window scaling. Only a SYN
//!   opens a connection (Linux's `nf_conntrack_tcp_loose=0`): a mid-stream segment of an unknown
//!   connection is invalid. Once offloaded, a connection's windows go *liberal* for good (the CPU
//!   no longer sees its segments, so its windows are stale).
//! - UDP and other protocols: a packet each way makes the connection established; ICMP echo:
//!   a request opens, its reply establishes. ICMP and ICMPv6 errors carrying the start of a
//!   tracked packet are related to its connection.
//! - Timeouts are Linux's defaults (per TCP state; UDP 30 s, 120 s once a reply was seen; ICMP
//!   30 s; other protocols 600 s), checked lazily: [`Conntrack::expire`] pops deadlines from a
//!   heap and re-arms those a later packet pushed back.
//!
//! **Offload.** A TCP connection becomes offloadable when established (both directions seen),
//! UDP once a reply was seen; never ICMP or other protocols. The tracker then asks for an
//! install ([`HwOp::Install`], with both directions' keys and a cookie naming this connection and
//! this incarnation of it). A FIN or RST (the FPGA punts them even on a hit) makes the connection
//! *closing*: its entry is removed ([`HwOp::Remove`]) and never installed again, and an install
//! the hardware confirms after that (it was queued before the FIN) is answered with a remove —
//! the late re-install that Linux's flowtable and OVS's hardware offload keep being bitten by.
//! Counters stay exact across offload: software counts what the CPU saw, the hardware entry's
//! counters are added when read ([`Conntrack::hw_seen`]) and a final read comes with the remove
//! ([`Conntrack::hw_removed`]). An idle offloaded connection is not expired on the CPU's idea of
//! idle: its deadline asks for a hardware read first ([`HwOp::Query`]).

use std::collections::HashMap;
use std::net::IpAddr;

mod tcp;
mod wheel;

/// Time in milliseconds from any origin the caller keeps (monotonic).
pub type Millis = u64;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// TCP flags as on the wire.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}
use tcp_flags::{ACK, RST, SYN};

/// A TCP segment as the tracker needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSeg {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// The window field, unscaled.
    pub window: u16,
    /// The window-scale option (SYN and SYN-ACK only).
    pub wscale: Option<u8>,
    /// Payload bytes.
    pub payload: u32,
}

/// What an ICMP error carries of the packet it is about (the offending packet as it was sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inner {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// Ports (TCP, UDP) or the echo identifier in both (ICMP echo); 0 otherwise.
    pub sport: u16,
    pub dport: u16,
}

/// The transport part of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp(TcpSeg),
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMP or ICMPv6 echo request or reply.
    Echo {
        id: u16,
        reply: bool,
    },
    /// ICMP destination unreachable / time exceeded / parameter problem (ICMPv6 also packet too
    /// big), with the offending packet's tuple.
    IcmpError(Inner),
    /// Any other ICMP message or protocol: tracked by addresses and protocol.
    Other,
}

/// A packet as the tracker sees it (parsed by the caller from a punted frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The tenant's zone.
    pub zone: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IP protocol number.
    pub proto: u8,
    pub l4: L4,
    /// Bytes of the frame, for the counters.
    pub len: u32,
}

/// A connection's key in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub zone: u32,
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

impl Key {
    /// The key of the other direction.
    pub fn reverse(&self) -> Key {
        Key {
            zone: self.zone,
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }

    /// The key of a packet's direction (ICMP echo: its identifier as both ports).
    pub fn of(p: &Packet) -> Key {
        let (sport, dport) = match p.l4 {
            L4::Tcp(t) => (t.sport, t.dport),
            L4::Udp { sport, dport } => (sport, dport),
            L4::Echo { id, .. } => (id, id),
            L4::IcmpError(_) | L4::Other => (0, 0),
        };
        Key {
            zone: p.zone,
            proto: p.proto,
            src: p.src,
            dst: p.dst,
            sport,
            dport,
        }
    }
}

/// The direction of a packet within its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The direction of the packet that opened the connection.
    Orig = 0,
    Reply = 1,
}

impl Dir {
    fn other(self) -> Dir {
        match self {
            Dir::Orig => Dir::Reply,
            Dir::Reply => Dir::Orig,
        }
    }
}

/// A TCP connection's state (the names of Linux's conntrack).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// SYN seen from the originator.
    SynSent,
    /// SYN seen from both sides (simultaneous open).
    SynSent2,
    /// SYN-ACK seen.
    SynRecv,
    Established,
    /// A FIN seen from one side, not yet acknowledged.
    FinWait,
    /// One side's FIN acknowledged; the other side still open.
    CloseWait,
    /// Both sides sent FIN; not both acknowledged.
    LastAck,
    /// Both FINs acknowledged.
    TimeWait,
    /// Reset.
    Close,
}

impl TcpState {
    /// Linux's default timeout of the state.
    pub fn timeout(self) -> Millis {
        const S: Millis = 1000;
        match self {
            TcpState::SynSent | TcpState::SynSent2 => 120 * S,
            TcpState::SynRecv => 60 * S,
            TcpState::Established => 5 * 24 * 3600 * S,
            TcpState::FinWait => 120 * S,
            TcpState::CloseWait => 60 * S,
            TcpState::LastAck => 30 * S,
            TcpState::TimeWait => 120 * S,
            TcpState::Close => 10 * S,
        }
    }

    fn closing(self) -> bool {
        matches!(
            self,
            TcpState::FinWait
                | TcpState::CloseWait
                | TcpState::LastAck
                | TcpState::TimeWait
                | TcpState::Close
        )
    }
}

pub const UDP_TIMEOUT: Millis = 30_000;
pub const UDP_STREAM_TIMEOUT: Millis = 120_000;
pub const ICMP_TIMEOUT: Millis = 30_000;
pub const OTHER_TIMEOUT: Millis = 600_000;
/// How long an offloaded connection's expiry waits for the hardware's counters once asked.
pub const QUERY_GRACE: Millis = 2_000;

/// A packet's state relative to the tracked connections (nftables' `ct state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
}

/// Why a packet is invalid or was refused (fixed counters; no strings on the packet path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// A TCP segment other than a SYN for an unknown connection.
    NotSyn,
    /// TCP flags no segment has (SYN+RST, SYN+FIN, none).
    BadFlags,
    /// A segment the state does not take (a SYN-ACK without a SYN, an ACK in SYN_SENT...).
    State,
    /// Sequence or acknowledgement outside the window.
    Window,
    /// An ICMP error about no tracked connection, or sent to someone else than its sender.
    IcmpOrphan,
    /// An echo reply or an ICMP error cannot open a connection.
    NotOpening,
    /// The ACL denied the new connection.
    Acl,
    /// The zone or the table is at its connection limit.
    Full,
}

const REJECTS: usize = 8;

/// What the tracker decided about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub state: CtState,
    pub accept: bool,
    /// Why not accepted (or why invalid).
    pub reject: Option<Reject>,
    /// The connection the packet belongs to (or is related to).
    pub conn: Option<ConnId>,
    pub dir: Dir,
}

/// A connection's handle: its slot and the incarnation of the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub slot: u32,
    pub gen: u32,
}

impl ConnId {
    /// The cookie a hardware entry carries: a remove or a counter read names it, so that it
    /// never touches the entry of a later connection with the same key.
    pub fn cookie(&self) -> u64 {
        (u64::from(self.gen) << 32) | u64::from(self.slot)
    }

    pub fn from_cookie(c: u64) -> ConnId {
        ConnId {
            slot: c as u32,
            gen: (c >> 32) as u32,
        }
    }
}

/// A flow-table update the tracker asks the runtime for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwOp {
    /// Install both directions' entries (the runtime adds the forwarding actions).
    Install { conn: ConnId, orig: Key, reply: Key },
    /// Remove both entries, if they carry this connection's cookie.
    Remove { conn: ConnId, orig: Key, reply: Key },
    /// Read the entries' counters and last-seen times and report with [`Conntrack::hw_seen`].
    Query { conn: ConnId, orig: Key, reply: Key },
}

/// What happened to connections, for logs and statistics (conntrack's events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    New {
        conn: ConnId,
        key: Key,
    },
    /// A connection gone (expired, replaced or flushed), with its final counters (software and
    /// hardware together).
    Destroy {
        conn: ConnId,
        key: Key,
        packets: [u64; 2],
        bytes: [u64; 2],
    },
}

/// Hardware counters of a connection's two entries, cumulative since installed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwCounters {
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The last time either entry forwarded a packet (the runtime's clock).
    pub last_seen: Millis,
    /// TCP flags seen on the fast path (either direction).
    pub tcp_flags: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HwState {
    /// Not in hardware.
    None,
    /// Install asked, not yet confirmed.
    Pending,
    Installed,
    /// Remove asked, not yet confirmed.
    Removing,
}

#[derive(Clone, Debug)]
struct Conn {
    id: ConnId,
    key: Key,
    tcp: Option<tcp::Tcp>,
    /// A TCP connection's timeout as its last segment set it.
    tcp_timeout: Millis,
    seen_reply: bool,
    packets: [u64; 2],
    bytes: [u64; 2],
    hw: HwState,
    /// The counters of the entry in hardware now (cumulative since installed).
    hw_counts: HwCounters,
    /// The final counters of entries installed before and removed.
    hw_done: ([u64; 2], [u64; 2]),
    /// Never offload again (closing, or the hardware refused).
    no_offload: bool,
    /// When the connection expires, in the caller's clock.
    deadline: Millis,
    /// The time of the connection's authoritative timer in the heap.
    armed: Millis,
    /// A hardware read asked by expiry and not answered.
    query_pending: bool,
    /// An install asked and not answered yet.
    install_asked: bool,
    /// Out of the index, waiting for the hardware to confirm its entries' removal.
    dying: bool,
}

impl Conn {
    fn timeout(&self) -> Millis {
        match (&self.tcp, self.key.proto) {
            (Some(_), _) => self.tcp_timeout,
            (None, PROTO_UDP) if self.seen_reply => UDP_STREAM_TIMEOUT,
            (None, PROTO_UDP) => UDP_TIMEOUT,
            (None, PROTO_ICMP | PROTO_ICMPV6) => ICMP_TIMEOUT,
            (None, _) => OTHER_TIMEOUT,
        }
    }

    fn offloadable(&self) -> bool {
        !self.no_offload
            && match &self.tcp {
                Some(t) => t.state == TcpState::Established && self.seen_reply,
                None => self.key.proto == PROTO_UDP && self.seen_reply,
            }
    }
}

/// Fixed counters of the tracker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    pub new: u64,
    pub established: u64,
    pub related: u64,
    pub invalid: u64,
    /// Packets refused, by [`Reject`] (in its declaration order).
    pub rejects: [u64; REJECTS],
    pub expired: u64,
    pub installs: u64,
    pub removes: u64,
    /// Installs confirmed for a connection that no longer wanted one (answered with a remove).
    pub late_installs: u64,
    pub live: u64,
}

impl CtStats {
    pub fn rejected(&self, r: Reject) -> u64 {
        self.rejects[r as usize]
    }
}

/// Limits of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections in all zones.
    pub total: usize,
    /// Connections in one zone (one tenant cannot fill the table for the others).
    pub per_zone: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total: 1 << 21,
            per_zone: 1 << 20,
        }
    }
}

/// The connection tracker.
pub struct Conntrack {
    limits: Limits,
    slots: Vec<Option<Conn>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    index: HashMap<Key, (u32, Dir), foldhash::quality::RandomState>,
    /// Live connections (out of the index: dying ones are not).
    live: usize,
    per_zone: HashMap<u32, usize>,
    timers: wheel::Wheel,
    /// Timers due, being handled (kept for its allocation).
    due: Vec<(Millis, u32, u32)>,
    ops: Vec<HwOp>,
    events: Vec<Event>,
    stats: CtStats,
    offload: bool,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("limits", &self.limits)
            .field("live", &self.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack::new(Limits::default())
    }
}

fn conn_in(slots: &mut [Option<Conn>], id: ConnId) -> Option<&mut Conn> {
    slots
        .get_mut(id.slot as usize)?
        .as_mut()
        .filter(|c| c.id == id)
}

impl Conntrack {
    pub fn new(limits: Limits) -> Conntrack {
        Conntrack {
            limits,
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            index: HashMap::default(),
            live: 0,
            per_zone: HashMap::new(),
            timers: wheel::Wheel::new(),
            due: Vec::new(),
            ops: Vec::new(),
            events: Vec::new(),
            stats: CtStats::default(),
            offload: true,
        }
    }

    /// Whether connections are offered to the hardware (off: everything stays on the CPU, the
    /// all-CPU policy).
    pub fn set_offload(&mut self, on: bool) {
        self.offload = on;
    }

    pub fn stats(&self) -> CtStats {
        CtStats {
            live: self.live as u64,
            ..self.stats
        }
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The flow-table updates asked since the last call, in order.
    pub fn take_ops(&mut self) -> Vec<HwOp> {
        std::mem::take(&mut self.ops)
    }

    /// The connection events since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The connection a key belongs to, and its direction.
    pub fn lookup(&self, key: &Key) -> Option<(ConnId, Dir)> {
        let &(slot, dir) = self.index.get(key)?;
        let c = self.slots[slot as usize].as_ref()?;
        Some((c.id, dir))
    }

    /// A live connection's TCP state (None for other protocols, or a connection out of the
    /// table: gone, or waiting for its hardware entries' removal).
    pub fn tcp_state(&self, conn: ConnId) -> Option<TcpState> {
        Some(self.conn(conn).filter(|c| !c.dying)?.tcp.as_ref()?.state)
    }

    /// Whether the connection's entries are in hardware or asked to be (not if being removed).
    pub fn offloaded(&self, conn: ConnId) -> bool {
        self.conn(conn)
            .is_some_and(|c| matches!(c.hw, HwState::Pending | HwState::Installed))
    }

    /// Packets and bytes per direction, software and hardware together.
    pub fn counters(&self, conn: ConnId) -> Option<([u64; 2], [u64; 2])> {
        let c = self.conn(conn)?;
        Some(Self::totals(c))
    }

    fn totals(c: &Conn) -> ([u64; 2], [u64; 2]) {
        let d = |i: usize| {
            (
                c.packets[i] + c.hw_counts.packets[i] + c.hw_done.0[i],
                c.bytes[i] + c.hw_counts.bytes[i] + c.hw_done.1[i],
            )
        };
        let (o, r) = (d(0), d(1));
        ([o.0, r.0], [o.1, r.1])
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.slot as usize)?
            .as_ref()
            .filter(|c| c.id == id)
    }

    /// Tracks one packet at `now`. A packet that would open a connection asks `allow_new` (the
    /// ACL) first; an allowed one opens it.
    pub fn process(
        &mut self,
        p: &Packet,
        now: Millis,
        allow_new: impl FnOnce(&Packet) -> bool,
    ) -> Decision {
        let d = self.process_inner(p, now, allow_new);
        match d.state {
            CtState::New => self.stats.new += 1,
            CtState::Established => self.stats.established += 1,
            CtState::Related => self.stats.related += 1,
            CtState::Invalid => self.stats.invalid += 1,
        }
        if let Some(r) = d.reject {
            self.stats.rejects[r as usize] += 1;
        }
        d
    }

    fn process_inner(
        &mut self,
        p: &Packet,
        now: Millis,
        allow_new: impl FnOnce(&Packet) -> bool,
    ) -> Decision {
        if let L4::IcmpError(inner) = p.l4 {
            return self.related(p, &inner);
        }
        let key = Key::of(p);
        if let Some(&(slot, dir)) = self.index.get(&key) {
            let id = self.slots[slot as usize].as_ref().map(|c| c.id);
            if let Some(id) = id {
                match self.existing(id, dir, p, now) {
                    Some(d) => return d,
                    // A SYN reopening a connection in TIME_WAIT or CLOSE: replace it.
                    None => self.retire(id),
                }
            }
        }
        self.open(key, p, now, allow_new)
    }

    fn decision(
        state: CtState,
        conn: Option<ConnId>,
        dir: Dir,
        reject: Option<Reject>,
    ) -> Decision {
        Decision {
            state,
            accept: matches!(
                state,
                CtState::Established | CtState::Related | CtState::New
            ) && reject.is_none(),
            reject,
            conn,
            dir,
        }
    }

    fn invalid(r: Reject) -> Decision {
        Self::decision(CtState::Invalid, None, Dir::Orig, Some(r))
    }

    fn related(&mut self, p: &Packet, inner: &Inner) -> Decision {
        // The error goes back to the sender of the offending packet.
        if p.dst != inner.src {
            return Self::invalid(Reject::IcmpOrphan);
        }
        let key = Key {
            zone: p.zone,
            proto: inner.proto,
            src: inner.src,
            dst: inner.dst,
            sport: inner.sport,
            dport: inner.dport,
        };
        match self.lookup(&key) {
            Some((id, dir)) => {
                // Counted against the direction the error travels.
                let back = dir.other();
                if let Some(c) = conn_in(&mut self.slots, id) {
                    c.packets[back as usize] += 1;
                    c.bytes[back as usize] += u64::from(p.len);
                }
                Self::decision(CtState::Related, Some(id), back, None)
            }
            None => Self::invalid(Reject::IcmpOrphan),
        }
    }

    fn open(
        &mut self,
        key: Key,
        p: &Packet,
        now: Millis,
        allow_new: impl FnOnce(&Packet) -> bool,
    ) -> Decision {
        let tcp = match p.l4 {
            L4::Tcp(t) => {
                if !tcp::valid_flags(t.flags) {
                    return Self::invalid(Reject::BadFlags);
                }
                // Only a SYN opens a connection (no mid-stream pick-up).
                if t.flags & (SYN | ACK | RST) != SYN {
                    return Self::invalid(Reject::NotSyn);
                }
                Some(t)
            }
            L4::Echo { reply: true, .. } => return Self::invalid(Reject::NotOpening),
            _ => None,
        };
        if !allow_new(p) {
            return Self::decision(CtState::New, None, Dir::Orig, Some(Reject::Acl));
        }
        let zone_count = self.per_zone.get(&key.zone).copied().unwrap_or(0);
        if self.len() >= self.limits.total || zone_count >= self.limits.per_zone {
            return Self::decision(CtState::New, None, Dir::Orig, Some(Reject::Full));
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.gens.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let gen = self.gens[slot as usize].wrapping_add(1);
        self.gens[slot as usize] = gen;
        let id = ConnId { slot, gen };
        let mut c = Conn {
            id,
            key,
            tcp: tcp.as_ref().map(tcp::Tcp::open),
            tcp_timeout: TcpState::SynSent.timeout(),
            seen_reply: false,
            packets: [1, 0],
            bytes: [u64::from(p.len), 0],
            hw: HwState::None,
            hw_counts: HwCounters::default(),
            hw_done: ([0; 2], [0; 2]),
            no_offload: false,
            deadline: 0,
            armed: 0,
            query_pending: false,
            install_asked: false,
            dying: false,
        };
        c.deadline = now + c.timeout();
        c.armed = c.deadline;
        self.timers.push(c.deadline, slot, gen);
        // A connection to itself (same address and port both ways) has one key: all its
        // packets are of the original direction, as in Linux.
        if key.reverse() != key {
            self.index.insert(key.reverse(), (slot, Dir::Reply));
        }
        self.index.insert(key, (slot, Dir::Orig));
        self.live += 1;
        *self.per_zone.entry(key.zone).or_insert(0) += 1;
        self.slots[slot as usize] = Some(c);
        self.events.push(Event::New { conn: id, key });
        Self::decision(CtState::New, Some(id), Dir::Orig, None)
    }

    /// A packet of a known connection; None: a SYN reopening a finished TCP connection.
    fn existing(&mut self, id: ConnId, dir: Dir, p: &Packet, now: Millis) -> Option<Decision> {
        let c = conn_in(&mut self.slots, id).expect("indexed connections are live");
        let d = dir as usize;
        let seen_reply = c.seen_reply;
        let own_state = |dir: Dir| {
            if dir == Dir::Reply || seen_reply {
                CtState::Established
            } else {
                CtState::New
            }
        };
        let mut refresh = true;
        if let (L4::Tcp(t), Some(tcp)) = (p.l4, c.tcp.as_mut()) {
            match tcp.step(dir, &t, seen_reply) {
                tcp::Outcome::Invalid(r) => {
                    return Some(Self::decision(CtState::Invalid, Some(id), dir, Some(r)))
                }
                tcp::Outcome::Reopen => return None,
                tcp::Outcome::Ignore => {
                    // Passes; nothing of the connection changes but its counters.
                    c.packets[d] += 1;
                    c.bytes[d] += u64::from(p.len);
                    if dir == Dir::Reply {
                        c.seen_reply = true;
                    }
                    return Some(Self::decision(own_state(dir), Some(id), dir, None));
                }
                tcp::Outcome::Kill => {
                    c.packets[d] += 1;
                    c.bytes[d] += u64::from(p.len);
                    self.retire(id);
                    return Some(Self::decision(own_state(dir), Some(id), dir, None));
                }
                tcp::Outcome::Accept(Some(timeout)) => c.tcp_timeout = timeout,
                tcp::Outcome::Accept(None) => refresh = false,
            }
        }
        if let L4::Echo { reply, .. } = p.l4 {
            // A request the other way, or a reply in the opening direction, is not this echo's.
            if reply != (dir == Dir::Reply) {
                return Some(Self::decision(
                    CtState::Invalid,
                    Some(id),
                    dir,
                    Some(Reject::NotOpening),
                ));
            }
        }
        c.packets[d] += 1;
        c.bytes[d] += u64::from(p.len);
        if dir == Dir::Reply {
            c.seen_reply = true;
        }
        if refresh {
            c.deadline = now + c.timeout();
            c.query_pending = false;
        }
        // Like Linux: a connection's packets are established once a reply was seen; until then
        // the originator's packets (retransmissions) are still new.
        let state = own_state(dir);
        if c.tcp.as_ref().is_some_and(|t| t.state.closing()) {
            c.no_offload = true;
        }
        let op = if c.no_offload && matches!(c.hw, HwState::Pending | HwState::Installed) {
            c.hw = HwState::Removing;
            self.stats.removes += 1;
            Some(HwOp::Remove {
                conn: id,
                orig: c.key,
                reply: c.key.reverse(),
            })
        } else if self.offload && c.hw == HwState::None && c.offloadable() {
            c.hw = HwState::Pending;
            c.install_asked = true;
            self.stats.installs += 1;
            Some(HwOp::Install {
                conn: id,
                orig: c.key,
                reply: c.key.reverse(),
            })
        } else {
            None
        };
        if c.deadline < c.armed {
            c.armed = c.deadline;
            self.timers.push(c.deadline, id.slot, id.gen);
        }
        self.ops.extend(op);
        Some(Self::decision(state, Some(id), dir, None))
    }

    /// Takes a connection out of the index: destroyed now if nothing of it is in hardware,
    /// otherwise once the hardware confirms its entries' removal.
    fn retire(&mut self, id: ConnId) {
        let Some(c) = conn_in(&mut self.slots, id) else {
            return;
        };
        if c.dying {
            return;
        }
        c.dying = true;
        c.no_offload = true;
        let key = c.key;
        let hw = c.hw;
        let install_asked = c.install_asked;
        if matches!(hw, HwState::Pending | HwState::Installed) {
            c.hw = HwState::Removing;
            self.stats.removes += 1;
            self.ops.push(HwOp::Remove {
                conn: id,
                orig: key,
                reply: key.reverse(),
            });
        }
        self.index.remove(&key);
        self.index.remove(&key.reverse());
        self.live -= 1;
        if let Some(n) = self.per_zone.get_mut(&key.zone) {
            *n -= 1;
            if *n == 0 {
                self.per_zone.remove(&key.zone);
            }
        }
        if hw == HwState::None && !install_asked {
            self.destroy(id);
        }
    }

    /// Frees a retired connection's slot, with its event.
    fn destroy(&mut self, id: ConnId) {
        let Some(c) = self.slots[id.slot as usize].take() else {
            return;
        };
        let (packets, bytes) = Self::totals(&c);
        self.free.push(id.slot);
        self.events.push(Event::Destroy {
            conn: id,
            key: c.key,
            packets,
            bytes,
        });
    }

    /// Expires the connections idle past their timeout at `now`; returns how many went. An
    /// offloaded connection first asks for a hardware read ([`HwOp::Query`]) and is expired
    /// only if the answer shows no new packet (or none came within [`QUERY_GRACE`]).
    pub fn expire(&mut self, now: Millis) -> usize {
        let mut n = 0;
        let mut due = std::mem::take(&mut self.due);
        self.timers.due(now, &mut due);
        for (at, slot, gen) in due.drain(..) {
            let id = ConnId { slot, gen };
            let Some(c) = conn_in(&mut self.slots, id) else {
                continue;
            };
            if c.dying || c.armed != at {
                continue; // a stale timer: the connection's own is elsewhere in the wheel
            }
            if c.deadline > now {
                c.armed = c.deadline;
                self.timers.push(c.deadline, slot, gen);
                continue;
            }
            if c.hw == HwState::Installed && !c.query_pending {
                c.query_pending = true;
                c.deadline = now + QUERY_GRACE;
                c.armed = c.deadline;
                self.timers.push(c.deadline, slot, gen);
                self.ops.push(HwOp::Query {
                    conn: id,
                    orig: c.key,
                    reply: c.key.reverse(),
                });
                continue;
            }
            self.stats.expired += 1;
            n += 1;
            self.retire(id);
        }
        self.due = due;
        n
    }

    /// Checks the tracker's internal consistency and panics with what is broken (tests and
    /// fuzzing): the index holds both directions of every live connection and nothing else,
    /// the zones' counts add up and keep to the limits, every live connection has its timer.
    pub fn check(&self) {
        let mut live = 0;
        let mut keys = 0;
        let mut zones: HashMap<u32, usize> = HashMap::new();
        for (i, c) in self.slots.iter().enumerate() {
            let Some(c) = c else {
                assert!(
                    self.free.contains(&(i as u32)),
                    "slot {i} empty and not free"
                );
                continue;
            };
            assert_eq!(c.id.slot as usize, i, "connection in the wrong slot");
            assert_eq!(c.id.gen, self.gens[i], "stale generation in slot {i}");
            if c.dying {
                assert!(
                    c.hw != HwState::None || c.install_asked,
                    "{:?} waits for a hardware answer nobody asked",
                    c.id
                );
                assert!(!self.index.contains_key(&c.key) || self.index[&c.key].0 != c.id.slot);
                continue;
            }
            live += 1;
            *zones.entry(c.key.zone).or_default() += 1;
            assert_eq!(self.index.get(&c.key), Some(&(c.id.slot, Dir::Orig)));
            if c.key.reverse() == c.key {
                keys += 1;
            } else {
                keys += 2;
                assert_eq!(
                    self.index.get(&c.key.reverse()),
                    Some(&(c.id.slot, Dir::Reply))
                );
            }
            assert!(
                c.armed <= c.deadline,
                "{:?}: timer after its deadline",
                c.id
            );
            assert!(
                self.timers.contains(c.armed, c.id.slot, c.id.gen),
                "{:?} has no timer",
                c.id
            );
            if c.no_offload {
                assert!(
                    !matches!(c.hw, HwState::Pending | HwState::Installed),
                    "{:?} never to be offloaded but in hardware",
                    c.id
                );
            }
        }
        assert_eq!(self.index.len(), keys, "index entries without a connection");
        assert_eq!(self.live, live, "live count");
        assert_eq!(zones, self.per_zone, "zone counts");
        assert!(live <= self.limits.total);
        assert!(zones.values().all(|&n| n <= self.limits.per_zone));
        for &f in &self.free {
            assert!(self.slots[f as usize].is_none(), "free slot {f} in use");
        }
    }

    /// Removes every connection of a zone (a tenant removed or its rules replaced).
    pub fn flush_zone(&mut self, zone: u32) -> usize {
        let ids: Vec<ConnId> = self
            .slots
            .iter()
            .flatten()
            .filter(|c| !c.dying && c.key.zone == zone)
            .map(|c| c.id)
            .collect();
        for &id in &ids {
            self.retire(id);
        }
        ids.len()
    }

    /// The hardware confirmed (`ok`) or refused (a full bucket: the connection stays on the
    /// CPU path) an install.
    pub fn hw_installed(&mut self, conn: ConnId, ok: bool) {
        let Some(c) = conn_in(&mut self.slots, conn) else {
            return; // not a connection's: a stale or foreign report
        };
        if !c.install_asked {
            return; // nothing was asked: a duplicate or foreign report
        }
        c.install_asked = false;
        match (c.hw, ok) {
            (HwState::Pending, true) => {
                c.hw = HwState::Installed;
                // From now on the CPU sees only some of its segments: its windows are stale.
                if let Some(t) = c.tcp.as_mut() {
                    t.liberal = true;
                }
            }
            (HwState::Pending | HwState::None, false) => {
                c.hw = HwState::None;
                c.no_offload = true;
                if c.dying {
                    self.destroy(conn);
                }
            }
            // The remove asked since is queued behind this install and will take it out.
            (HwState::Removing, _) => {}
            // Confirmed after its remove was done (the updates ran out of order): the entry
            // is in hardware again; take it out again.
            (HwState::None | HwState::Installed, true) => {
                self.stats.late_installs += 1;
                self.stats.removes += 1;
                c.hw = HwState::Removing;
                self.ops.push(HwOp::Remove {
                    conn,
                    orig: c.key,
                    reply: c.key.reverse(),
                });
            }
            (HwState::Installed, false) => {}
        }
    }

    /// The hardware's counters of an installed connection's entries (cumulative since
    /// installed), read by the runtime's aging or asked by a [`HwOp::Query`].
    pub fn hw_seen(&mut self, conn: ConnId, hw: HwCounters) {
        let Some(c) = conn_in(&mut self.slots, conn) else {
            return;
        };
        if c.hw != HwState::Installed {
            return;
        }
        let active = hw.packets != c.hw_counts.packets;
        c.hw_counts = hw;
        if active {
            // Alive in hardware: it lives on from its last packet there. (An idle answer
            // leaves a pending query as it is: the connection goes when the grace ends.)
            c.query_pending = false;
            c.deadline = c.deadline.max(hw.last_seen + c.timeout());
        }
    }

    /// The hardware removed a connection's entries (`hw`: their final counters).
    pub fn hw_removed(&mut self, conn: ConnId, hw: HwCounters) {
        let Some(c) = conn_in(&mut self.slots, conn) else {
            return;
        };
        if c.hw != HwState::Removing {
            return;
        }
        for d in 0..2 {
            c.hw_done.0[d] += hw.packets[d];
            c.hw_done.1[d] += hw.bytes[d];
        }
        c.hw_counts = HwCounters::default();
        c.hw = HwState::None;
        // A dying connection goes once nothing of it can be in hardware: also not an install
        // still on its way (it would land after the remove and be answered with another).
        if c.dying && !c.install_asked {
            self.destroy(conn);
        }
    }
}
