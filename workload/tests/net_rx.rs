//! virtio-net RX on the CPU path, and the card's switch: two vports (net functions 0 and 1,
//! two queue pairs and a control queue each) on one simulated card, with a wire on the uplink.
//!
//! - Frames from vport A to vport B's MAC reach B's RX queues byte for byte, once each, with
//!   DATA_VALID (GUEST_CSUM) and `num_buffers` over small mergeable buffers, each flow on the
//!   queue the Toeplitz hash gives it; none of them reaches the wire.
//! - Broadcast from A reaches B and the wire; frames from the wire reach B by MAC; an unknown
//!   unicast from the wire is nobody's.
//! - The control queue: VQ_PAIRS_SET 1 puts every flow on the first queue; bad commands get ERR.
//! - An RX ring that never refills drops (counted) once its backlog is full, and A's TX and
//!   B's other traffic go on.

use etherparse::PacketBuilder;
use fpga_virtio_driver::net::parse::parse;
use fpga_virtio_driver::net::rss::Rss;
use fpga_virtio_driver::net::switch::BACKLOG;
use fpga_virtio_driver::net::NetConfig;
use fpga_virtio_driver::runtime::RuntimeError;
use fpga_virtio_hw::formats::VirtioNetHdrV1;
use fpga_virtio_sim::testing::{kick, Buffer, SplitRing};
use fpga_virtio_wire::Peer;
use fpga_virtio_workload::net::{NetCard, BUFS};
use fpga_virtio_workload::{Rng, WorkloadError};
use std::collections::{BTreeMap, HashMap};
use virtio_bindings::virtio_net as vn;
use vm_memory::{Bytes, GuestAddress};

/// Queues per function: rx0 tx0 rx1 tx1 ctrl.
const PER_FUNC: u16 = 5;
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
/// Receive buffers: small, so frames spread over several (MRG_RXBUF).
const RXBUF: u32 = 1024;

fn qid(func: u8, vq: u16) -> u16 {
    u16::from(func) * PER_FUNC + vq
}

struct Rig {
    card: NetCard,
    rings: Vec<SplitRing>,
    /// Per RX queue: buffer address by head.
    rx_bufs: HashMap<u16, HashMap<u16, u64>>,
    next_buf: Vec<u64>,
}

fn rig() -> Rig {
    let all: Vec<String> = (0..2 * PER_FUNC).map(|q| q.to_string()).collect();
    rig_with(&format!("cpu_queues = [{}]", all.join(", "))).unwrap()
}

fn rig_with(policy: &str) -> Result<Rig, WorkloadError> {
    let vports = [
        (0u8, NetConfig::new(MAC_A, 1500, 2)),
        (1, NetConfig::new(MAC_B, 1500, 2)),
    ];
    let mut card = NetCard::new(policy, &vports, Peer::Sink)?;
    let mut rings = Vec::new();
    for func in 0..2u8 {
        for vq in 0..PER_FUNC {
            rings.push(card.add_queue(qid(func, vq), func, vq)?);
        }
    }
    Ok(Rig {
        card,
        rings,
        rx_bufs: HashMap::new(),
        // Per queue 2 MiB of buffers.
        next_buf: (0..2 * PER_FUNC)
            .map(|q| BUFS + u64::from(q) * (2 << 20))
            .collect(),
    })
}

#[test]
fn rx_and_control_queues_on_the_fpga_are_refused() {
    // Queue 0 is function 0's first RX queue: the FPGA's RX engine has not landed.
    match rig_with("") {
        Err(WorkloadError::Runtime(RuntimeError::Setup { func: 0, source })) => {
            assert!(source.to_string().contains("virtqueue 0"), "{source}");
        }
        other => panic!("an RX queue on the FPGA must be refused: {:?}", other.err()),
    }
}

impl Rig {
    fn step(&mut self) {
        self.card.dev.lock().run(2000).unwrap();
        self.card.rt.poll(&self.card.dev).unwrap();
    }

    /// Post `n` receive buffers on RX queue `q`.
    fn post_rx(&mut self, q: u16, n: usize) {
        for _ in 0..n {
            let addr = self.next_buf[usize::from(q)];
            self.next_buf[usize::from(q)] += u64::from(RXBUF);
            let head = self.rings[usize::from(q)]
                .add_chain(&[Buffer {
                    addr,
                    len: RXBUF,
                    write: true,
                }])
                .unwrap();
            self.rx_bufs.entry(q).or_default().insert(head, addr);
        }
        self.rings[usize::from(q)].publish().unwrap();
        kick(
            &self.card.dev,
            u32::from(q),
            self.rings[usize::from(q)].avail_idx(),
        )
        .unwrap();
    }

    /// Send `frames` on TX queue `q` (header with no offloads, then the frame), waiting for them.
    fn send(&mut self, q: u16, frames: &[Vec<u8>]) {
        for batch in frames.chunks(32) {
            let mut at = BUFS + u64::from(q) * (2 << 20);
            for f in batch {
                let mut b = VirtioNetHdrV1::default().to_le_bytes().to_vec();
                b.extend_from_slice(f);
                self.card.mem.write_slice(&b, GuestAddress(at)).unwrap();
                self.rings[usize::from(q)]
                    .add_chain(&[Buffer {
                        addr: at,
                        len: b.len() as u32,
                        write: false,
                    }])
                    .unwrap();
                at += (b.len() as u64).next_multiple_of(64);
            }
            self.rings[usize::from(q)].publish().unwrap();
            kick(
                &self.card.dev,
                u32::from(q),
                self.rings[usize::from(q)].avail_idx(),
            )
            .unwrap();
            let mut done = 0;
            for _ in 0..5000 {
                if done == batch.len() {
                    break;
                }
                self.step();
                done += self.rings[usize::from(q)].reap().unwrap().len();
            }
            assert_eq!(done, batch.len(), "TX queue {q}: the batch completes");
        }
    }

    /// A control command on function `func`'s control queue: its ack.
    fn control(&mut self, func: u8, cmd: &[u8]) -> u8 {
        let q = qid(func, 4);
        let at = BUFS + u64::from(q) * (2 << 20);
        self.card.mem.write_slice(cmd, GuestAddress(at)).unwrap();
        self.card
            .mem
            .write_slice(&[0xee], GuestAddress(at + 4096))
            .unwrap();
        self.rings[usize::from(q)]
            .add_chain(&[
                Buffer {
                    addr: at,
                    len: cmd.len() as u32,
                    write: false,
                },
                Buffer {
                    addr: at + 4096,
                    len: 1,
                    write: true,
                },
            ])
            .unwrap();
        self.rings[usize::from(q)].publish().unwrap();
        kick(
            &self.card.dev,
            u32::from(q),
            self.rings[usize::from(q)].avail_idx(),
        )
        .unwrap();
        for _ in 0..1000 {
            self.step();
            if let Some(&(_, len)) = self.rings[usize::from(q)].reap().unwrap().first() {
                assert_eq!(len, 1);
                let mut ack = [0u8];
                self.card
                    .mem
                    .read_slice(&mut ack, GuestAddress(at + 4096))
                    .unwrap();
                return ack[0];
            }
        }
        panic!("control command not answered");
    }

    /// Step until `qs` received at least `n` frames between them (the CPU workers deliver
    /// asynchronously: wait on the count, with a wall-clock bound that only a failure hits),
    /// then a little more to catch any extra; returns them by queue.
    fn wait_rx(&mut self, qs: &[u16], n: usize) -> BTreeMap<u16, Vec<(VirtioNetHdrV1, Vec<u8>)>> {
        let mut got: BTreeMap<u16, Vec<(VirtioNetHdrV1, Vec<u8>)>> = BTreeMap::new();
        let start = std::time::Instant::now();
        let mut extra = 20;
        loop {
            self.step();
            for &q in qs {
                let r = self.received(q);
                got.entry(q).or_default().extend(r);
            }
            if got.values().map(Vec::len).sum::<usize>() >= n {
                extra -= 1;
                if extra == 0 {
                    return got;
                }
            }
            assert!(
                start.elapsed().as_secs() < 60,
                "{n} frames did not arrive: {got:?}"
            );
        }
    }

    /// Frames received on RX queue `q` so far (reassembled from mergeable buffers), with
    /// their headers.
    fn received(&mut self, q: u16) -> Vec<(VirtioNetHdrV1, Vec<u8>)> {
        let used = self.rings[usize::from(q)].reap().unwrap();
        let mut out = Vec::new();
        let mut it = used.into_iter();
        while let Some((head, len)) = it.next() {
            let addr = self.rx_bufs[&q][&head];
            let mut b = vec![0u8; len as usize];
            self.card
                .mem
                .read_slice(&mut b, GuestAddress(addr))
                .unwrap();
            assert!(
                b.len() >= 12,
                "queue {q}: a used buffer holds at least the header"
            );
            let hdr = VirtioNetHdrV1::from_le_bytes(b[..12].try_into().unwrap());
            let mut frame = b[12..].to_vec();
            for _ in 1..hdr.num_buffers {
                let (h, l) = it.next().expect("num_buffers buffers follow");
                let mut c = vec![0u8; l as usize];
                self.card
                    .mem
                    .read_slice(&mut c, GuestAddress(self.rx_bufs[&q][&h]))
                    .unwrap();
                frame.extend_from_slice(&c);
            }
            out.push((hdr, frame));
        }
        out
    }
}

/// TCP/IPv4 frames from `src` to `dst` over `flows` flows (ports), seeded.
fn tcp_frames(rng: &mut Rng, src: [u8; 6], dst: [u8; 6], n: usize, flows: u16) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let flow = (i as u16) % flows;
            // Up to the MTU (1500): 1024-byte receive buffers take one or two.
            let payload: Vec<u8> = (0..(rng.below(1460) as usize))
                .map(|_| rng.next_u64() as u8)
                .collect();
            let mut f = Vec::new();
            PacketBuilder::ethernet2(src, dst)
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(10_000 + flow, 80, i as u32, 1024)
                .write(&mut f, &payload)
                .unwrap();
            f
        })
        .collect()
}

#[test]
fn rx_through_the_switch_rss_mergeable_buffers_and_the_control_queue() {
    let mut rig = rig();
    let mut rng = Rng(0x5e7);
    let (b_rx0, b_rx1, a_tx0) = (qid(1, 0), qid(1, 2), qid(0, 1));
    rig.post_rx(b_rx0, 200);
    rig.post_rx(b_rx1, 200);

    // A -> B: 60 frames over 8 flows.
    let frames = tcp_frames(&mut rng, MAC_A, MAC_B, 60, 8);
    rig.send(a_tx0, &frames);
    let mut rx = rig.wait_rx(&[b_rx0, b_rx1], 60);
    let rss = Rss::new(2);
    let mut got: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
    let mut merged = 0;
    for (pair, q) in [(0u16, b_rx0), (1, b_rx1)] {
        for (hdr, frame) in rx.remove(&q).unwrap_or_default() {
            merged += usize::from(hdr.num_buffers > 1);
            assert_eq!(hdr.flags, 2, "DATA_VALID: the checksum was verified");
            assert_eq!(rss.queue(&parse(&frame)).0, pair, "the flow's RSS queue");
            got.entry(pair).or_default().push(frame);
        }
    }
    let mut all: Vec<Vec<u8>> = got.values().flatten().cloned().collect();
    let mut want = frames.clone();
    all.sort();
    want.sort();
    assert_eq!(all.len(), want.len(), "every frame to B, once");
    assert!(all == want, "every frame to B, byte for byte");
    assert!(got.len() == 2, "the flows spread over both queues");
    assert!(
        merged > 10,
        "frames over several mergeable buffers ({merged})"
    );
    assert!(
        rig.card.wire.take_sent().is_empty(),
        "frames to a vport never reach the wire"
    );
    let s = rig.card.counters[1].snapshot();
    assert_eq!(s.rx_frames, 60);

    // Broadcast from A: to B and to the wire. From the wire: to B by MAC; unknown unicast to
    // nobody.
    let mut bcast = Vec::new();
    PacketBuilder::ethernet2(MAC_A, [0xff; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 255], 64)
        .udp(67, 68)
        .write(&mut bcast, b"hello")
        .unwrap();
    rig.send(a_tx0, std::slice::from_ref(&bcast));
    let from_wire = tcp_frames(&mut rng, [0x02, 9, 9, 9, 9, 9], MAC_B, 10, 3);
    for f in &from_wire {
        rig.card.wire.inject(f.clone(), 0);
    }
    rig.card.wire.inject(
        tcp_frames(&mut rng, [0x02, 9, 9, 9, 9, 9], [0x02, 7, 7, 7, 7, 7], 1, 1).remove(0),
        0,
    );
    let mut got: Vec<Vec<u8>> = rig
        .wait_rx(&[b_rx0, b_rx1], from_wire.len() + 1)
        .into_values()
        .flatten()
        .map(|(_, f)| f)
        .collect();
    let mut want: Vec<Vec<u8>> = from_wire.clone();
    want.push(bcast.clone());
    got.sort();
    want.sort();
    assert_eq!(
        got.len(),
        want.len(),
        "broadcast and the wire's frames reach B"
    );
    assert!(
        got == want,
        "broadcast and the wire's frames reach B, byte for byte"
    );
    let out = rig.card.wire.take_sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].bytes == bcast, "broadcast also goes out");
    assert_eq!(
        rig.card
            .switch
            .counters
            .unclaimed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // The control queue: one queue pair in use -> everything on rx0; bad commands: ERR.
    let mut mq = vec![
        vn::VIRTIO_NET_CTRL_MQ as u8,
        vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET as u8,
    ];
    mq.extend_from_slice(&1u16.to_le_bytes());
    assert_eq!(rig.control(1, &mq), vn::VIRTIO_NET_OK as u8);
    assert_eq!(rig.control(1, &[0x77, 0]), vn::VIRTIO_NET_ERR as u8);
    mq[2] = 3;
    assert_eq!(
        rig.control(1, &mq),
        vn::VIRTIO_NET_ERR as u8,
        "more pairs than the device has"
    );
    let frames = tcp_frames(&mut rng, MAC_A, MAC_B, 20, 8);
    rig.send(a_tx0, &frames);
    let rx = rig.wait_rx(&[b_rx0, b_rx1], 20);
    assert_eq!(rx[&b_rx0].len(), 20, "one pair in use: every flow on rx0");
    assert!(rx[&b_rx1].is_empty());

    // B's rx0 never refills: A goes on sending; past the backlog frames are dropped and
    // counted; A's frames to the wire still go.
    let left = rig.rings[usize::from(b_rx0)].in_flight();
    let flood = tcp_frames(&mut rng, MAC_A, MAC_B, left + BACKLOG + 40, 1);
    rig.send(a_tx0, &flood);
    let outside = tcp_frames(&mut rng, MAC_A, [0x02, 5, 5, 5, 5, 5], 5, 1);
    rig.send(a_tx0, &outside);
    // (The TX path hands a frame to the switch before its used entry: the switch's counts are
    // final once `send` returns.)
    assert_eq!(
        rig.card.wire.take_sent().len(),
        5,
        "A's traffic to the wire goes on"
    );
    let full = rig
        .card
        .switch
        .counters
        .backlog_full
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(full >= 40, "drops past the backlog are counted ({full})");
    let delivered = rig.wait_rx(&[b_rx0], 1)[&b_rx0].len();
    assert!(
        delivered > 0 && delivered <= left,
        "what fitted the posted buffers was delivered"
    );
    // Out of buffers with frames waiting, the queue is not polled: once the last fill is
    // collected the runtime stays idle (a poll that kicked the queue would leave its job
    // outstanding right after it).
    let start = std::time::Instant::now();
    while rig.card.rt.outstanding() != 0 {
        rig.step();
        assert!(
            start.elapsed().as_secs() < 60,
            "the runtime never went idle"
        );
    }
    for _ in 0..20 {
        rig.step();
        assert_eq!(
            rig.card.rt.outstanding(),
            0,
            "a starved RX queue costs no work until a kick"
        );
    }
    // The guest posts buffers and kicks: the waiting frames flow again.
    rig.post_rx(b_rx0, 64);
    let again = rig.wait_rx(&[b_rx0], 30)[&b_rx0].len();
    assert!(again >= 30, "the backlog drains into new buffers ({again})");
}
