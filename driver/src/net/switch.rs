//! The card's switch between its vports (net functions) and its uplink, by destination MAC:
//! the software reference of the FPGA's switch, serving the CPU path. A frame from a vport to
//! another vport's MAC goes to that vport and never to the uplink; an unknown unicast goes to
//! the uplink (from a vport) or to the promiscuous vports (from the uplink); broadcast and
//! multicast are flooded to every other vport that accepts them (broadcast always; multicast
//! with ALLMULTI or PROMISC) and, from a vport, to the uplink. A frame for a vport is parsed,
//! given an RX queue pair by RSS, and waits in that queue's backlog (bounded: when it is full
//! the frame is dropped and counted; a ring that never refills holds nothing else up).
//!
//! With flow offload ([`Switch::with_offload`]), frames are not switched by MAC here: each goes
//! through [`FlowOffload`] (the flow stage, then for what it punts the slow path: conntrack,
//! the tenants' ACLs, routes and tunnels, with installs, reinjection and aging), and what it
//! sends out is delivered to the vports' RX backlogs and the uplink as above. Each vport is
//! its own tenant (zone = function number + 1) unless [`Switch::set_zone`] says otherwise.

use super::fastpath::UPLINK;
use super::offload::{FlowOffload, OffloadStats, Out};
use super::parse::{parse, PacketMeta};
use super::rss::Rss;
use fpga_virtio_wire::{Source, Uplink};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Frames one RX queue keeps waiting for buffers.
pub const BACKLOG: usize = 256;

/// A frame waiting for a vport's RX queue.
#[derive(Clone, Debug)]
pub struct RxFrame {
    pub bytes: Vec<u8>,
    pub meta: PacketMeta,
}

#[derive(Debug)]
struct Vport {
    mac: [u8; 6],
    /// Extra unicast and multicast addresses the guest asked for (MAC_TABLE_SET).
    filters: Vec<[u8; 6]>,
    rss: Rss,
    /// Queue pairs in use (MQ VQ_PAIRS_SET); RSS picks among these.
    pairs: u16,
    promisc: bool,
    allmulti: bool,
    rx: Vec<VecDeque<RxFrame>>,
    /// Per RX queue: the last fill found no buffers; frames wait for the guest's next kick
    /// (the runtime does not poll the queue meanwhile).
    starved: Vec<bool>,
}

impl Vport {
    fn accepts(&self, m: &PacketMeta) -> bool {
        self.promisc
            || m.is_broadcast()
            || m.dst_mac == self.mac
            || (m.is_multicast() && self.allmulti)
            || self.filters.contains(&m.dst_mac)
    }
}

/// The switch's counters (fixed: no allocation per frame).
#[derive(Debug, Default)]
pub struct SwitchCounters {
    /// Frames from the vports to the uplink, and from the uplink in.
    pub to_uplink: AtomicU64,
    pub from_uplink: AtomicU64,
    /// Frames queued for a vport's RX queue.
    pub to_vport: AtomicU64,
    /// Frames no vport took (unknown unicast from the uplink, a vport's own MAC).
    pub unclaimed: AtomicU64,
    /// Frames dropped because their RX queue's backlog was full.
    pub backlog_full: AtomicU64,
}

/// The flow-offload path of a switch: the loop, its clock, the vports' tenants.
#[derive(Debug)]
struct Offload {
    flow: FlowOffload,
    epoch: Instant,
    last_tick: u64,
    zones: BTreeMap<u8, u32>,
}

/// How often the switch runs the loop's timers (ms).
const TICK_MS: u64 = 100;

/// The switch of one card.
#[derive(Debug)]
pub struct Switch {
    vports: Mutex<BTreeMap<u8, Vport>>,
    uplink: Arc<dyn Uplink>,
    offload: Option<Mutex<Offload>>,
    pub counters: SwitchCounters,
}

impl Switch {
    pub fn new(uplink: Arc<dyn Uplink>) -> Arc<Self> {
        Arc::new(Switch {
            vports: Mutex::new(BTreeMap::new()),
            uplink,
            offload: None,
            counters: SwitchCounters::default(),
        })
    }

    /// A switch whose frames go through the flow-offload loop `flow` (its ACLs, routes and
    /// tunnels set up by the caller, before or through [`Switch::with_flow`]).
    pub fn with_offload(uplink: Arc<dyn Uplink>, flow: FlowOffload) -> Arc<Self> {
        Arc::new(Switch {
            vports: Mutex::new(BTreeMap::new()),
            uplink,
            offload: Some(Mutex::new(Offload {
                flow,
                epoch: Instant::now(),
                last_tick: 0,
                zones: BTreeMap::new(),
            })),
            counters: SwitchCounters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u8, Vport>> {
        self.vports.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_offload(&self) -> Option<MutexGuard<'_, Offload>> {
        self.offload
            .as_ref()
            .map(|o| o.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Works on the flow-offload loop (ACLs, routes, tunnels, statistics); None without one.
    pub fn with_flow<R>(&self, f: impl FnOnce(&mut FlowOffload) -> R) -> Option<R> {
        self.lock_offload().map(|mut o| f(&mut o.flow))
    }

    /// The loop's counters (None without flow offload).
    pub fn offload_stats(&self) -> Option<OffloadStats> {
        self.with_flow(|f| f.stats())
    }

    /// Puts function `func` in tenant `zone` (flow offload; before it attaches, or again
    /// with its MAC when it does).
    pub fn set_zone(&self, func: u8, zone: u32) {
        let mac = self.lock().get(&func).map(|v| v.mac);
        if let Some(mut o) = self.lock_offload() {
            o.zones.insert(func, zone);
            if let Some(mac) = mac {
                o.flow.add_vport(u16::from(func), zone, mac);
            }
        }
    }

    fn offload_vport(&self, func: u8, mac: [u8; 6]) {
        if let Some(mut o) = self.lock_offload() {
            let zone = o.zones.get(&func).copied().unwrap_or(u32::from(func) + 1);
            o.flow.add_vport(u16::from(func), zone, mac);
        }
    }

    /// A frame through the flow-offload loop; false without one.
    fn offloaded(&self, ingress: u16, frame: &[u8]) -> bool {
        let Some(mut o) = self.lock_offload() else {
            return false;
        };
        let now = o.epoch.elapsed().as_millis() as u64;
        let mut out = Vec::new();
        o.flow.receive(ingress, frame, now, &mut out);
        drop(o);
        self.deliver(ingress, out);
        true
    }

    /// What the loop sent out: into the vports' backlogs, onto the uplink.
    fn deliver(&self, ingress: u16, out: Vec<Out>) {
        for o in out {
            match o {
                Out::Vport(v, f) => {
                    let meta = parse(&f);
                    let mut vports = self.lock();
                    match u8::try_from(v).ok().and_then(|v| vports.get_mut(&v)) {
                        Some(vp) => self.enqueue(vp, &f, meta),
                        None => {
                            self.counters.unclaimed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Out::Uplink(f) => {
                    let func = u8::try_from(ingress).unwrap_or(u8::MAX);
                    self.uplink.transmit(Source::Cpu { func }, &f, 0);
                    self.counters.to_uplink.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Runs the loop's timers when due (aging, the MAC table); called as the runtime polls.
    pub fn tick(&self) {
        if let Some(mut o) = self.lock_offload() {
            let now = o.epoch.elapsed().as_millis() as u64;
            if now >= o.last_tick + TICK_MS {
                o.last_tick = now;
                o.flow.tick(now);
            }
        }
    }

    /// Function `func` joins with its MAC and RX queue pairs (all in use until the guest says
    /// otherwise).
    pub fn attach(&self, func: u8, mac: [u8; 6], pairs: u16) {
        self.offload_vport(func, mac);
        let pairs = pairs.max(1);
        self.lock().insert(
            func,
            Vport {
                mac,
                filters: Vec::new(),
                rss: Rss::new(pairs),
                pairs,
                promisc: false,
                allmulti: false,
                rx: (0..pairs).map(|_| VecDeque::new()).collect(),
                starved: vec![false; usize::from(pairs)],
            },
        );
    }

    pub fn detach(&self, func: u8) {
        self.lock().remove(&func);
        self.with_flow(|f| f.remove_vport(u16::from(func)));
    }

    /// The control queue's settings.
    pub fn set_rx_mode(&self, func: u8, promisc: Option<bool>, allmulti: Option<bool>) {
        if let Some(v) = self.lock().get_mut(&func) {
            v.promisc = promisc.unwrap_or(v.promisc);
            v.allmulti = allmulti.unwrap_or(v.allmulti);
        }
    }

    pub fn set_mac(&self, func: u8, mac: [u8; 6]) {
        if let Some(v) = self.lock().get_mut(&func) {
            v.mac = mac;
        }
        self.offload_vport(func, mac);
    }

    pub fn set_filters(&self, func: u8, filters: Vec<[u8; 6]>) {
        if let Some(v) = self.lock().get_mut(&func) {
            v.filters = filters;
        }
    }

    /// Use the first `pairs` queue pairs (1..=the function's); false when out of range.
    pub fn set_pairs(&self, func: u8, pairs: u16) -> bool {
        match self.lock().get_mut(&func) {
            Some(v) if (1..=v.rx.len() as u16).contains(&pairs) => {
                v.pairs = pairs;
                true
            }
            _ => false,
        }
    }

    fn enqueue(&self, v: &mut Vport, frame: &[u8], meta: PacketMeta) {
        let (entry, _) = v.rss.queue(&meta);
        let pair = usize::from(entry % v.pairs);
        let q = &mut v.rx[pair];
        if q.len() >= BACKLOG {
            self.counters.backlog_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.push_back(RxFrame {
            bytes: frame.to_vec(),
            meta,
        });
        self.counters.to_vport.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame a vport sends (the CPU path's TX).
    pub fn from_vport(&self, func: u8, frame: &[u8]) {
        if self.offloaded(u16::from(func), frame) {
            return;
        }
        let meta = parse(frame);
        let mut vports = self.lock();
        let mut out = true;
        if !meta.is_multicast() {
            if let Some((&f, v)) = vports.iter_mut().find(|(_, v)| v.mac == meta.dst_mac) {
                if f != func {
                    self.enqueue(v, frame, meta);
                } else {
                    self.counters.unclaimed.fetch_add(1, Ordering::Relaxed);
                }
                out = false;
            }
        } else {
            for (_, v) in vports
                .iter_mut()
                .filter(|(&f, v)| f != func && v.accepts(&meta))
            {
                self.enqueue(v, frame, meta);
            }
        }
        drop(vports);
        if out {
            self.uplink.transmit(Source::Cpu { func }, frame, 0);
            self.counters.to_uplink.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A frame from the uplink.
    pub fn from_uplink(&self, frame: &[u8]) {
        self.counters.from_uplink.fetch_add(1, Ordering::Relaxed);
        if self.offloaded(UPLINK, frame) {
            return;
        }
        let meta = parse(frame);
        let mut vports = self.lock();
        let mut taken = false;
        for (_, v) in vports.iter_mut().filter(|(_, v)| v.accepts(&meta)) {
            self.enqueue(v, frame, meta);
            taken = true;
            if !meta.is_multicast() && !v.promisc {
                break;
            }
        }
        if !taken {
            self.counters.unclaimed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Take in what arrived from the uplink; run the loop's timers when due.
    pub fn pump(&self) {
        while let Some(f) = self.uplink.receive_any() {
            self.from_uplink(&f);
        }
        self.tick();
    }

    /// A frame waits for RX pair `pair` of `func`, and the queue is not waiting for buffers.
    pub fn has_frames(&self, func: u8, pair: u16) -> bool {
        let vports = self.lock();
        let Some(v) = vports.get(&func) else {
            return false;
        };
        let p = usize::from(pair);
        v.rx.get(p).is_some_and(|q| !q.is_empty()) && !v.starved.get(p).copied().unwrap_or(true)
    }

    /// RX pair `pair` of `func` ran out of buffers (true), or is being served again (false).
    pub fn set_starved(&self, func: u8, pair: u16, starved: bool) {
        if let Some(s) = self
            .lock()
            .get_mut(&func)
            .and_then(|v| v.starved.get_mut(usize::from(pair)))
        {
            *s = starved;
        }
    }

    /// The next frame for RX pair `pair` of `func`.
    pub fn take(&self, func: u8, pair: u16) -> Option<RxFrame> {
        self.lock()
            .get_mut(&func)
            .and_then(|v| v.rx.get_mut(usize::from(pair)))
            .and_then(VecDeque::pop_front)
    }

    /// Put a frame back at the head of its queue (no buffers for it yet).
    pub fn put_back(&self, func: u8, pair: u16, f: RxFrame) {
        if let Some(q) = self
            .lock()
            .get_mut(&func)
            .and_then(|v| v.rx.get_mut(usize::from(pair)))
        {
            q.push_front(f);
        }
    }
}
