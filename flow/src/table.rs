//! The exact-match flow table's software side: the key layout and hash the FPGA computes
//! identically, and a model of its layout — bucketed cuckoo hashing, as DPDK's `rte_hash`
//! does — that decides where each entry goes and in which order the hardware writes happen.
//!
//! - **Key** ([`FlowKey::pack`], 44 bytes): vport (16 bits), VNI (24), address family (8), L4
//!   protocol (8), a zero byte, source and destination port (16 each), source and destination
//!   address (128 each; IPv4 in the low 32 bits, the rest zero), all big-endian.
//! - **Hash**: two Toeplitz hashes of the packed key (the RSS hash, [`toeplitz`]) under two
//!   secret 48-byte keys the runtime draws at start and programs into the FPGA, one per bucket.
//!   Each output bit is an XOR of key bits (a few LUT levels in RTL). Secret keys matter: a
//!   hash without one (a CRC) is linear with a known matrix, so a tenant could compute
//!   thousands of flows that share both buckets and starve everyone else's flows of table
//!   space; and two CRCs of the same key differ only by a constant, which pairs buckets for
//!   good and caps the load near 50 % (measured: that is how this module began).
//! - **Layout**: buckets of [`WAYS`] entries; a key lives in one of its two buckets. An insert
//!   into two full buckets searches breadth-first for the shortest chain of moves (each entry
//!   to its other bucket) that frees a slot, up to [`MAX_PATH`] moves; none: the insert fails
//!   with [`TableError::Full`] and nothing moved — a full table refuses a new flow, it never
//!   loses one.
//! - **No half-written entry**: [`FlowTable::insert`] returns the writes in the order the
//!   hardware must do them: each move writes the entry at its new place before clearing the
//!   old one (a lookup between the two finds the entry twice, with the same action), and the
//!   new entry is written last, its valid bit with it.

use std::collections::VecDeque;
use std::net::IpAddr;

/// Entries per bucket.
pub const WAYS: usize = 4;
/// The longest chain of moves an insert may make.
pub const MAX_PATH: usize = 4;
/// Bytes of a packed key.
pub const KEY_BYTES: usize = 44;

/// Bytes of a Toeplitz key for a packed flow key (the input plus 4).
pub const HASH_KEY_BYTES: usize = KEY_BYTES + 4;

/// The Toeplitz hash (Microsoft RSS; virtio 1.2 5.1.6.4.3.1) of `input` under `key`: for each
/// input bit that is set, the 32 key bits starting at its position, XORed. The key must be at
/// least 4 bytes longer than the input (RSS: 40 bytes for up to 36; the flow table: 48 for 44).
/// The one Rust copy: the RSS queue choice (driver/src/net/rss.rs) uses it too, and the RTL
/// (`fv_net_toeplitz.sv`) computes the same function.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    debug_assert!(key.len() >= input.len() + 4);
    let mut hash = 0u32;
    // The 32-bit window of the key at the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// A byte-at-a-time table of [`toeplitz`] for one key (44 lookups per flow key).
#[derive(Clone)]
pub struct Hasher {
    table: Box<[[u32; 256]; KEY_BYTES]>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    pub fn new(key: &[u8; HASH_KEY_BYTES]) -> Hasher {
        // The hash is linear in the input: a byte's entry is the XOR of its set bits' entries,
        // and a single bit's is the 32-bit window of the key at that bit.
        let mut windows = [0u32; KEY_BYTES * 8];
        let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        for (i, w) in windows.iter_mut().enumerate() {
            *w = window;
            let next = key[4 + i / 8];
            window = (window << 1) | u32::from((next >> (7 - i % 8)) & 1);
        }
        let mut table = Box::new([[0u32; 256]; KEY_BYTES]);
        for (pos, row) in table.iter_mut().enumerate() {
            for b in 1..256usize {
                let low = b.trailing_zeros() as usize;
                row[b] = row[b & (b - 1)] ^ windows[pos * 8 + 7 - low];
            }
        }
        Hasher { table }
    }

    pub fn hash(&self, packed: &[u8; KEY_BYTES]) -> u32 {
        packed
            .iter()
            .zip(self.table.iter())
            .fold(0, |h, (&b, row)| h ^ row[usize::from(b)])
    }
}

/// A key's two buckets from its two hashes, in a table of `buckets` (a power of two): the
/// hashes' low bits, and never the same bucket twice (the second is then the first's neighbour).
pub fn bucket_pair((h1, h2): (u32, u32), buckets: usize) -> [usize; 2] {
    let mask = buckets - 1;
    let b1 = h1 as usize & mask;
    let mut b2 = h2 as usize & mask;
    if b2 == b1 {
        b2 = b1 ^ 1;
    }
    [b1, b2]
}

/// What identifies a flow on the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The vport it came from (or the uplink's number).
    pub vport: u16,
    /// The VNI of a decapsulated packet; 0 otherwise.
    pub vni: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl FlowKey {
    /// The key as the hardware holds and hashes it.
    pub fn pack(&self) -> [u8; KEY_BYTES] {
        let mut k = [0u8; KEY_BYTES];
        k[0..2].copy_from_slice(&self.vport.to_be_bytes());
        k[2..5].copy_from_slice(&self.vni.to_be_bytes()[1..]);
        k[5] = if self.src.is_ipv4() { 4 } else { 6 };
        k[6] = self.proto;
        k[8..10].copy_from_slice(&self.sport.to_be_bytes());
        k[10..12].copy_from_slice(&self.dport.to_be_bytes());
        let addr = |a: IpAddr| -> [u8; 16] {
            match a {
                IpAddr::V4(v) => u128::from(u32::from(v)).to_be_bytes(),
                IpAddr::V6(v) => v.octets(),
            }
        };
        k[12..28].copy_from_slice(&addr(self.src));
        k[28..44].copy_from_slice(&addr(self.dst));
        k
    }
}

/// An entry: the key, what to do (the caller's action type), and the cookie of the
/// connection it belongs to (a remove names it: it never removes a newer flow's entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<A> {
    pub key: FlowKey,
    pub action: A,
    pub cookie: u64,
}

/// One write to the hardware table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write<A> {
    /// Bucket, way, entry (valid).
    Set(usize, usize, Entry<A>),
    /// Bucket, way: invalid.
    Clear(usize, usize),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    /// Both buckets full and no chain of up to MAX_PATH moves frees a slot.
    #[error("flow table full around this key: no free slot within {MAX_PATH} moves")]
    Full,
    /// The key is in the table for another connection.
    #[error("the key belongs to another connection's entry (cookie {0:#x})")]
    Taken(u64),
}

/// The table's model.
#[derive(Debug)]
pub struct FlowTable<A> {
    buckets: Vec<[Option<Entry<A>>; WAYS]>,
    len: usize,
    hashers: [Hasher; 2],
}

impl<A: Clone> FlowTable<A> {
    /// A table of `capacity` entries (rounded up to a power-of-two number of buckets) whose
    /// buckets are chosen under these two secret keys.
    pub fn new(capacity: usize, keys: [[u8; HASH_KEY_BYTES]; 2]) -> FlowTable<A> {
        let n = capacity.div_ceil(WAYS).next_power_of_two().max(2);
        FlowTable {
            buckets: (0..n).map(|_| std::array::from_fn(|_| None)).collect(),
            len: 0,
            hashers: [Hasher::new(&keys[0]), Hasher::new(&keys[1])],
        }
    }

    /// The two hashers (the hardware's model takes copies).
    pub fn hashers(&self) -> &[Hasher; 2] {
        &self.hashers
    }

    /// The two hashes of a key (the FPGA computes the same).
    pub fn hashes(&self, key: &FlowKey) -> (u32, u32) {
        let k = key.pack();
        (self.hashers[0].hash(&k), self.hashers[1].hash(&k))
    }

    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn two(&self, key: &FlowKey) -> [usize; 2] {
        bucket_pair(self.hashes(key), self.buckets.len())
    }

    /// Buckets in the table (a power of two).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    fn find(&self, key: &FlowKey) -> Option<(usize, usize)> {
        self.find_in(key, self.two(key))
    }

    /// `key` in its buckets `two` (hashed once by the caller).
    fn find_in(&self, key: &FlowKey, two: [usize; 2]) -> Option<(usize, usize)> {
        for b in two {
            for (w, e) in self.buckets[b].iter().enumerate() {
                if e.as_ref().is_some_and(|e| e.key == *key) {
                    return Some((b, w));
                }
            }
        }
        None
    }

    /// What the fast path finds for a key.
    pub fn lookup(&self, key: &FlowKey) -> Option<&Entry<A>> {
        let (b, w) = self.find(key)?;
        self.buckets[b][w].as_ref()
    }

    /// Inserts (or, for the same connection, replaces) an entry; the hardware writes, in order.
    pub fn insert(&mut self, entry: Entry<A>) -> Result<Vec<Write<A>>, TableError> {
        let two = self.two(&entry.key);
        if let Some((b, w)) = self.find_in(&entry.key, two) {
            let old = self.buckets[b][w].as_ref().expect("found");
            if old.cookie != entry.cookie {
                return Err(TableError::Taken(old.cookie));
            }
            self.buckets[b][w] = Some(entry.clone());
            return Ok(vec![Write::Set(b, w, entry)]);
        }
        let path = self.path(two).ok_or(TableError::Full)?;
        // path: the free slot last; each step moves the entry of slot i into slot i+1.
        let mut writes = Vec::with_capacity(2 * path.len() + 1);
        for i in (0..path.len() - 1).rev() {
            let (fb, fw) = path[i];
            let (tb, tw) = path[i + 1];
            let moving = self.buckets[fb][fw].take().expect("on the path");
            writes.push(Write::Set(tb, tw, moving.clone()));
            self.buckets[tb][tw] = Some(moving);
            writes.push(Write::Clear(fb, fw));
        }
        let (b, w) = path[0];
        self.buckets[b][w] = Some(entry.clone());
        writes.push(Write::Set(b, w, entry));
        self.len += 1;
        Ok(writes)
    }

    /// The shortest chain of slots from one of the key's buckets to a free slot, each entry
    /// moving to its other bucket (breadth first, at most MAX_PATH moves).
    fn path(&self, two: [usize; 2]) -> Option<Vec<(usize, usize)>> {
        // (bucket, way, parent index) nodes.
        let mut nodes: Vec<(usize, usize, usize)> = Vec::new();
        let mut queue = VecDeque::new();
        for b in two {
            for w in 0..WAYS {
                if self.buckets[b][w].is_none() {
                    return Some(vec![(b, w)]);
                }
            }
        }
        for b in two {
            for w in 0..WAYS {
                nodes.push((b, w, usize::MAX));
                queue.push_back((nodes.len() - 1, 1));
            }
        }
        while let Some((i, depth)) = queue.pop_front() {
            if depth > MAX_PATH {
                break;
            }
            let (b, w, _) = nodes[i];
            let e = self.buckets[b][w].as_ref().expect("full slots only");
            let [x, y] = self.two(&e.key);
            let alt = if x == b { y } else { x };
            for aw in 0..WAYS {
                if nodes.iter().any(|&(nb, nw, _)| nb == alt && nw == aw) {
                    continue; // a slot once per path search
                }
                nodes.push((alt, aw, i));
                let j = nodes.len() - 1;
                if self.buckets[alt][aw].is_none() {
                    let mut path = vec![(alt, aw)];
                    let mut k = i;
                    loop {
                        let (pb, pw, parent) = nodes[k];
                        path.push((pb, pw));
                        if parent == usize::MAX {
                            break;
                        }
                        k = parent;
                    }
                    path.reverse();
                    return Some(path);
                }
                queue.push_back((j, depth + 1));
            }
        }
        None
    }

    /// Removes the key's entry if it carries `cookie`; the hardware write.
    pub fn remove(&mut self, key: &FlowKey, cookie: u64) -> Option<Write<A>> {
        let (b, w) = self.find(key)?;
        if self.buckets[b][w].as_ref()?.cookie != cookie {
            return None;
        }
        self.buckets[b][w] = None;
        self.len -= 1;
        Some(Write::Clear(b, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(i: u32) -> FlowKey {
        // Flows as they come: scattered clients and ports.
        let r = (u64::from(i) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let r = (r ^ (r >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        FlowKey {
            vport: (i % 7) as u16,
            vni: 0,
            src: IpAddr::V4(Ipv4Addr::from((r >> 32) as u32)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
            proto: 6,
            sport: r as u16,
            dport: 443,
        }
    }

    /// Keys drawn from a seed (the runtime draws them from the OS at start).
    fn keys(seed: u64) -> [[u8; HASH_KEY_BYTES]; 2] {
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        [
            std::array::from_fn(|_| next()),
            std::array::from_fn(|_| next()),
        ]
    }

    #[test]
    fn the_key_layout_and_the_hash_are_fixed() {
        // The layout and the hash are what the RTL implements: pinned here.
        let k = FlowKey {
            vport: 5,
            vni: 0x01_0203,
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6)),
            proto: 6,
            sport: 155,
            dport: 443,
        }
        .pack();
        assert_eq!(&k[..12], &[0, 5, 1, 2, 3, 4, 6, 0, 0, 155, 1, 187]);
        assert_eq!(&k[24..28], &[10, 0, 0, 5]);
        assert_eq!(&k[40..44], &[10, 0, 0, 6]);
        // The RSS specification's example: its key, 66.9.149.187:2794 -> 161.142.100.80:1766.
        let rss_key = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ];
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz(&rss_key, &input), 0x51cc_c178);
        // The table form equals the bitwise one.
        let ks = keys(3);
        let h = Hasher::new(&ks[0]);
        assert_eq!(h.hash(&k), toeplitz(&ks[0], &k));
        // Every bit of every byte (the table is built from single bits), random inputs.
        let h1 = Hasher::new(&ks[1]);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..(KEY_BYTES * 8 + 64) {
            let mut p = [0u8; KEY_BYTES];
            if i < KEY_BYTES * 8 {
                p[i / 8] = 0x80 >> (i % 8);
            } else {
                for b in p.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
            }
            assert_eq!(h1.hash(&p), toeplitz(&ks[1], &p), "input {i}");
        }
    }

    #[test]
    fn insert_lookup_replace_remove() {
        let mut t = FlowTable::new(64, keys(1));
        let e = |i: u32, c: u64| Entry {
            key: key(i),
            action: i,
            cookie: c,
        };
        for i in 0..40 {
            t.insert(e(i, u64::from(i))).unwrap();
        }
        assert_eq!(t.len(), 40);
        for i in 0..40 {
            assert_eq!(t.lookup(&key(i)).unwrap().action, i);
        }
        assert!(t.lookup(&key(99)).is_none());
        // The same connection replaces; another is refused.
        t.insert(Entry {
            action: 777,
            ..e(3, 3)
        })
        .unwrap();
        assert_eq!(t.lookup(&key(3)).unwrap().action, 777);
        assert_eq!(t.insert(e(3, 12345)), Err(TableError::Taken(3)));
        // A remove must name the entry's connection.
        assert!(t.remove(&key(4), 999).is_none());
        assert!(t.remove(&key(4), 4).is_some());
        assert!(t.lookup(&key(4)).is_none());
        assert_eq!(t.len(), 39);
    }

    #[test]
    fn a_full_table_refuses_and_loses_nothing() {
        let mut t = FlowTable::new(256, keys(2));
        let mut inserted = Vec::new();
        let mut i = 0;
        let failed = loop {
            match t.insert(Entry {
                key: key(i),
                action: (),
                cookie: u64::from(i),
            }) {
                Ok(_) => inserted.push(i),
                Err(TableError::Full) => break i,
                Err(e) => panic!("{e}"),
            }
            i += 1;
        };
        let load = inserted.len() as f64 / t.capacity() as f64;
        assert!(load >= 0.9, "first failure at {:.1} % load", load * 100.0);
        assert!(t.lookup(&key(failed)).is_none());
        for &k in &inserted {
            assert!(t.lookup(&key(k)).is_some(), "{k} lost");
        }
    }

    #[test]
    fn moves_write_the_new_place_before_clearing_the_old() {
        // Replay the writes on a copy of the hardware table: after every single write, every
        // entry inserted before is still found by a lookup.
        let mut t = FlowTable::new(128, keys(4));
        let mut hw: Vec<[Option<FlowKey>; WAYS]> = vec![[None; WAYS]; t.buckets.len()];
        let mut present = Vec::new();
        for i in 0..118 {
            let Ok(writes) = t.insert(Entry {
                key: key(i),
                action: (),
                cookie: 0,
            }) else {
                break;
            };
            for wr in writes {
                match wr {
                    Write::Set(b, w, e) => hw[b][w] = Some(e.key),
                    Write::Clear(b, w) => hw[b][w] = None,
                }
                for k in &present {
                    let [x, y] = t.two(k);
                    assert!(
                        hw[x].contains(&Some(*k)) || hw[y].contains(&Some(*k)),
                        "{k:?} invisible during insert {i}"
                    );
                }
            }
            present.push(key(i));
        }
        assert!(present.len() > 100);
    }
}

#[cfg(test)]
mod load {
    use super::*;
    use std::net::Ipv4Addr;

    /// The load at the first refused insert, several sizes and keys (`--nocapture` prints;
    /// `FV_FLOW_TABLE_BIG=1` adds 65 536 entries, for a release build).
    #[test]
    fn load_at_the_first_refusal() {
        let mut sizes = vec![1024usize, 16384];
        if std::env::var_os("FV_FLOW_TABLE_BIG").is_some() {
            sizes.push(65536);
        }
        for cap in sizes {
            let mut loads = Vec::new();
            for seed in 1..=5u64 {
                let mut x = seed * 7919;
                let mut next = || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let keys = [
                    std::array::from_fn(|_| next() as u8),
                    std::array::from_fn(|_| next() as u8),
                ];
                let mut t = FlowTable::new(cap, keys);
                let mut i = 0u64;
                loop {
                    let r = next();
                    let k = FlowKey {
                        vport: (i % 13) as u16,
                        vni: 0,
                        src: IpAddr::V4(Ipv4Addr::from((r >> 32) as u32)),
                        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                        proto: 6,
                        sport: r as u16,
                        dport: 443,
                    };
                    i += 1;
                    match t.insert(Entry {
                        key: k,
                        action: (),
                        cookie: i,
                    }) {
                        Ok(_) | Err(TableError::Taken(_)) => {}
                        Err(TableError::Full) => break,
                    }
                }
                loads.push(t.len() as f64 / t.capacity() as f64);
            }
            let min = loads.iter().copied().fold(1.0, f64::min);
            eprintln!(
                "flow table of {cap}: first refusal at {:.1?} % load",
                loads.iter().map(|l| l * 100.0).collect::<Vec<_>>()
            );
            assert!(min >= 0.9, "{cap}: {min}");
        }
    }
}

/// Hash keys and flow keys whose hashes sim/tb/tb_fv_net_flow_table.sv checks the RTL
/// against: both sides pin the same numbers.
#[cfg(test)]
mod rtl_vectors {
    use super::*;
    use std::net::Ipv4Addr;

    /// The RSS specification's key and eight more bytes; a second key from a formula.
    pub(super) fn hash_keys() -> [[u8; HASH_KEY_BYTES]; 2] {
        let rss: [u8; 40] = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ];
        let k0 = std::array::from_fn(|i| if i < 40 { rss[i] } else { (i - 39) as u8 });
        let k1 = std::array::from_fn(|i| (i * 37 + 11) as u8);
        [k0, k1]
    }

    /// `sim/tb/vectors/flow_table.hex`, which `sim/tb/tb_fv_net_flow_table_model.sv` replays
    /// on the RTL: a 64-entry table filled with seeded flows until the model refuses one, with
    /// every hardware write of every insert (cuckoo moves included), lookups of the moved keys
    /// between the writes of a move, of the new key and of absent keys, then half the flows
    /// removed. One record per line, 416 bits: op (4: 1 set, 2 clear, 3 lookup), bucket (8),
    /// way (4), key (352, byte 0 first), action (32), expected hit (4), bucket (8), way (4).
    /// This test fails when the file is not what the model gives now; `FV_REGEN=1` rewrites it.
    #[test]
    fn the_rtl_replay_vectors() {
        let mut t: FlowTable<u32> = FlowTable::new(64, hash_keys());
        let mut lines: Vec<String> = Vec::new();
        let rec =
            |op: u8, b: usize, w: usize, k: &FlowKey, a: u32, hit: bool, eb: usize, ew: usize| {
                let mut s = format!("{op:x}{b:02x}{w:x}");
                for byte in k.pack() {
                    s.push_str(&format!("{byte:02x}"));
                }
                s.push_str(&format!("{a:08x}{:x}{eb:02x}{ew:x}", u8::from(hit)));
                s
            };
        let flow = |i: u64| {
            let r = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let r = (r ^ (r >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let v6 = i % 4 == 3;
            FlowKey {
                vport: (r >> 48) as u16 & 0xf,
                vni: if i.is_multiple_of(5) {
                    (r >> 8) as u32 & 0xff_ffff
                } else {
                    0
                },
                src: if v6 {
                    IpAddr::V6(std::net::Ipv6Addr::from(
                        u128::from(r) << 64 | u128::from(i),
                    ))
                } else {
                    IpAddr::V4(Ipv4Addr::from((r >> 32) as u32))
                },
                dst: if v6 {
                    "2001:db8::1".parse().unwrap()
                } else {
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
                },
                proto: if i.is_multiple_of(3) { 17 } else { 6 },
                sport: r as u16,
                dport: 443,
            }
        };
        let lookup = |t: &FlowTable<u32>, k: &FlowKey| match t.find(k) {
            Some((b, w)) => rec(
                3,
                0,
                0,
                k,
                t.buckets[b][w].as_ref().unwrap().action,
                true,
                b,
                w,
            ),
            None => rec(3, 0, 0, k, 0, false, 0, 0),
        };
        let mut present: Vec<FlowKey> = Vec::new();
        let mut i = 0u64;
        loop {
            let k = flow(i);
            // The writes, and the table as the hardware sees it after each.
            let mut shadow: FlowTable<u32> = FlowTable {
                buckets: t.buckets.clone(),
                len: t.len,
                hashers: t.hashers.clone(),
            };
            let Ok(writes) = t.insert(Entry {
                key: k,
                action: 0x100 + i as u32,
                cookie: i,
            }) else {
                break;
            };
            let moved: Vec<FlowKey> = writes
                .iter()
                .filter_map(|w| match w {
                    Write::Set(_, _, e) if e.key != k => Some(e.key),
                    _ => None,
                })
                .collect();
            for w in &writes {
                match w {
                    Write::Set(b, wy, e) => {
                        lines.push(rec(1, *b, *wy, &e.key, e.action, false, 0, 0));
                        shadow.buckets[*b][*wy] = Some(e.clone());
                    }
                    Write::Clear(b, wy) => {
                        lines.push(rec(2, *b, *wy, &k, 0, false, 0, 0));
                        shadow.buckets[*b][*wy] = None;
                    }
                }
                for m in &moved {
                    lines.push(lookup(&shadow, m));
                }
            }
            lines.push(lookup(&t, &k));
            lines.push(lookup(&t, &flow(1_000_000 + i)));
            present.push(k);
            i += 1;
        }
        assert!(present.len() >= 58, "{} flows in 64 entries", present.len());
        for (j, k) in present.iter().enumerate() {
            if j % 2 == 0 {
                let (b, w) = t.find(k).unwrap();
                let cookie = t.buckets[b][w].as_ref().unwrap().cookie;
                t.remove(k, cookie).unwrap();
                lines.push(rec(2, b, w, k, 0, false, 0, 0));
            }
        }
        for k in &present {
            lines.push(lookup(&t, k));
        }
        let text = lines.join("\n") + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../sim/tb/vectors/flow_table.hex"
        );
        if std::env::var_os("FV_REGEN").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let now = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            now == text,
            "sim/tb/vectors/flow_table.hex is not what the model gives now: \
             FV_REGEN=1 cargo test -p fpga-virtio-flow --lib rtl_replay"
        );
    }

    #[test]
    fn the_rtl_bench_vectors() {
        let [k0, k1] = hash_keys();
        let cases = [
            (
                FlowKey {
                    vport: 5,
                    vni: 0x01_0203,
                    src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
                    dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6)),
                    proto: 6,
                    sport: 155,
                    dport: 443,
                },
                "0005010203040600009b01bb0000000000000000000000000a0000050000000000000000000000000a000006",
                0x76ec_bfe4,
                0x76df_17fe,
            ),
            (
                FlowKey {
                    vport: 0,
                    vni: 0,
                    src: "2001:db8::1".parse().unwrap(),
                    dst: "2001:db8::2".parse().unwrap(),
                    proto: 17,
                    sport: 5353,
                    dport: 53,
                },
                "000000000006110014e9003520010db800000000000000000000000120010db8000000000000000000000002",
                0xf2e0_84b1,
                0x582d_4b43,
            ),
            (
                FlowKey {
                    vport: 0xffff,
                    vni: 0xff_ffff,
                    src: IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
                    dst: IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
                    proto: 1,
                    sport: 0xffff,
                    dport: 0,
                },
                "ffffffffff040100ffff0000000000000000000000000000ffffffff00000000000000000000000001020304",
                0x5e37_9e07,
                0xaf50_dae5,
            ),
        ];
        for (k, packed, h0, h1) in cases {
            let p = k.pack();
            let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, packed);
            assert_eq!((toeplitz(&k0, &p), toeplitz(&k1, &p)), (h0, h1));
        }
    }
}
