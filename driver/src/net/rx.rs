//! The RX path: a frame into a guest's receive buffers (virtio 1.x 5.1.6.3-4).
//!
//! The header goes first: DATA_VALID when the guest negotiated GUEST_CSUM and the device
//! verified the frame's TCP or UDP checksum, `num_buffers` the chains the frame took. Without
//! MRG_RXBUF a frame takes one chain and must fit in it (a chain too small is answered with
//! used length 0 and the frame dropped: the guest counts a length error and reposts the
//! buffer). With MRG_RXBUF a frame spreads over as many chains as it needs; when the ring has
//! too few, the chains are given back and the frame waits (or is dropped when its queue's
//! backlog is full: an RX ring that never refills never blocks anything else).

use super::parse::PacketMeta;
use super::tx::HDR_F_DATA_VALID;
use crate::device::ChainSource;
use crate::virtq::Segment;
use fpga_virtio_hw::formats::VirtioNetHdrV1;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const HDR: usize = VirtioNetHdrV1::SIZE;

/// What the guest negotiated that the RX path honours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxFeatures {
    pub mrg_rxbuf: bool,
    pub guest_csum: bool,
}

/// What became of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written into `chains` chains.
    Delivered { chains: usize },
    /// Not enough buffers now: nothing taken, the frame waits.
    NoBuffers,
    /// Without MRG_RXBUF, the chain could not hold it: the chain answered with used length 0,
    /// the frame dropped.
    TooSmall,
    /// A buffer could not be written: its chains answered with used length 0, the frame
    /// dropped.
    Memory,
}

/// The header the guest gets with `frame`.
pub fn header(meta: &PacketMeta, f: RxFeatures, num_buffers: u16) -> VirtioNetHdrV1 {
    VirtioNetHdrV1 {
        flags: if f.guest_csum && meta.l4_csum_ok {
            HDR_F_DATA_VALID
        } else {
            0
        },
        gso_type: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
        num_buffers,
    }
}

fn room(chain: &[Segment]) -> u64 {
    chain
        .iter()
        .filter(|s| s.write)
        .map(|s| u64::from(s.len))
        .sum()
}

/// Write `bytes` into the writable buffers of `chain` from its start; returns the bytes
/// written (at most the chain's room), or None on a memory error.
fn write_chain(mem: &GuestMemoryMmap, chain: &[Segment], bytes: &[u8]) -> Option<u32> {
    let mut at = 0usize;
    for s in chain.iter().filter(|s| s.write) {
        if at == bytes.len() {
            break;
        }
        let n = (s.len as usize).min(bytes.len() - at);
        mem.write_slice(&bytes[at..at + n], GuestAddress(s.addr))
            .ok()?;
        at += n;
    }
    Some(at as u32)
}

/// Deliver `frame` (its metadata `meta`) into chains from `src`, pushing the used length of
/// each chain taken onto `used`.
pub fn deliver(
    mem: &GuestMemoryMmap,
    frame: &[u8],
    meta: &PacketMeta,
    f: RxFeatures,
    src: &mut dyn ChainSource,
    used: &mut Vec<u32>,
) -> RxOutcome {
    let need = (HDR + frame.len()) as u64;
    let mut chains = Vec::new();
    let mut have = 0u64;
    while have < need {
        let Some(c) = src.next_chain() else {
            src.give_back(chains.len());
            return RxOutcome::NoBuffers;
        };
        have += room(&c);
        chains.push(c);
        if !f.mrg_rxbuf {
            break;
        }
    }
    if have < need {
        // One chain, too small.
        used.push(0);
        return RxOutcome::TooSmall;
    }
    let mut bytes = header(meta, f, chains.len() as u16).to_le_bytes().to_vec();
    bytes.extend_from_slice(frame);
    let mut at = 0usize;
    let mut lens = Vec::with_capacity(chains.len());
    for c in &chains {
        match write_chain(mem, c, &bytes[at..]) {
            Some(n) => {
                lens.push(n);
                at += n as usize;
            }
            None => {
                used.extend(std::iter::repeat_n(0, chains.len()));
                return RxOutcome::Memory;
            }
        }
    }
    used.extend(lens);
    RxOutcome::Delivered {
        chains: chains.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Chains {
        all: Vec<Vec<Segment>>,
        next: usize,
    }

    impl ChainSource for Chains {
        fn next_chain(&mut self) -> Option<Vec<Segment>> {
            let c = self.all.get(self.next).cloned();
            self.next += usize::from(c.is_some());
            c
        }
        fn give_back(&mut self, n: usize) {
            self.next -= n;
        }
    }

    fn chains(lens: &[u32]) -> Chains {
        Chains {
            all: lens
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    vec![Segment {
                        addr: 0x1000 * (i as u64 + 1),
                        len,
                        write: true,
                    }]
                })
                .collect(),
            next: 0,
        }
    }

    #[test]
    fn mergeable_buffers_and_num_buffers() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let frame: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let meta = PacketMeta {
            l4_csum_ok: true,
            ..PacketMeta::default()
        };
        let f = RxFeatures {
            mrg_rxbuf: true,
            guest_csum: true,
        };
        let mut src = chains(&[1500, 1500, 1500]);
        let mut used = Vec::new();
        assert_eq!(
            deliver(&mem, &frame, &meta, f, &mut src, &mut used),
            RxOutcome::Delivered { chains: 3 }
        );
        assert_eq!(used, vec![1500, 1500, 12]);
        let mut h = [0u8; 12];
        mem.read_slice(&mut h, GuestAddress(0x1000)).unwrap();
        let h = VirtioNetHdrV1::from_le_bytes(&h);
        assert_eq!((h.num_buffers, h.flags), (3, HDR_F_DATA_VALID));
        let mut back = vec![0u8; 3000];
        mem.read_slice(&mut back[..1488], GuestAddress(0x100c))
            .unwrap();
        mem.read_slice(&mut back[1488..2988], GuestAddress(0x2000))
            .unwrap();
        mem.read_slice(&mut back[2988..], GuestAddress(0x3000))
            .unwrap();
        assert_eq!(back, frame);

        // Too few buffers: nothing taken, the frame waits.
        let mut src = chains(&[1500]);
        let mut used = Vec::new();
        assert_eq!(
            deliver(&mem, &frame, &meta, f, &mut src, &mut used),
            RxOutcome::NoBuffers
        );
        assert!(used.is_empty());
        assert_eq!(src.next, 0);

        // Without MRG_RXBUF: one chain; too small for the frame is a length error.
        let one = RxFeatures::default();
        let mut src = chains(&[1000, 4000]);
        let mut used = Vec::new();
        assert_eq!(
            deliver(&mem, &frame, &meta, one, &mut src, &mut used),
            RxOutcome::TooSmall
        );
        assert_eq!(
            deliver(&mem, &frame, &meta, one, &mut src, &mut used),
            RxOutcome::Delivered { chains: 1 }
        );
        assert_eq!(used, vec![0, 3012]);
        mem.read_slice(&mut h.to_le_bytes(), GuestAddress(0x2000))
            .unwrap();
        let mut h2 = [0u8; 12];
        mem.read_slice(&mut h2, GuestAddress(0x2000)).unwrap();
        let h2 = VirtioNetHdrV1::from_le_bytes(&h2);
        assert_eq!(
            (h2.num_buffers, h2.flags),
            (1, 0),
            "no GUEST_CSUM: no DATA_VALID"
        );
    }
}
