//! The network behind the card's uplink, as `storage/` is the disk behind its storage port.
//!
//! A [`Wire`] is the far side of one uplink: every frame the card sends (the FPGA's packet port
//! in the simulator, or the CPU's software engine) reaches it through [`Uplink::transmit`] with
//! the cycle it left at. The wire keeps what it saw (a capture, written as a pcap file that
//! tshark and Wireshark read) and, as configured, sends it back (loopback) or over to another
//! card's wire (two devices back to back). Frames towards the card wait in an inbox that the
//! card's receive path drains.
//!
//! Link rate and latency are modelled the way the simulator models its DMA link: a frame leaves
//! at `max(sent, link free)` and occupies the link for its length (with the preamble, start
//! delimiter and inter-frame gap, 20 bytes) at `bytes_per_cycle`; it arrives `latency` cycles
//! later.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Bytes a frame costs on an Ethernet link besides its own: preamble and start-of-frame
/// delimiter (8) and the inter-frame gap (12).
pub const FRAME_OVERHEAD: u64 = 20;

/// Where a frame came from on the card's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Sent by the FPGA's packet port, for the function (vport) `func`.
    Fpga { func: u8 },
    /// Sent by the runtime's CPU path, for the function (vport) `func`.
    Cpu { func: u8 },
}

impl Source {
    pub fn func(self) -> u8 {
        match self {
            Source::Fpga { func } | Source::Cpu { func } => func,
        }
    }
}

/// One frame on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The Ethernet frame, destination MAC first, without the FCS.
    pub bytes: Vec<u8>,
    /// The card's clock cycle the frame's first byte was on the wire.
    pub cycle: u64,
    pub source: Source,
}

/// What the card's transmit side talks to.
pub trait Uplink: Send + Sync + std::fmt::Debug {
    /// A frame leaves the card at `cycle` (its first byte ready to go).
    fn transmit(&self, source: Source, frame: &[u8], cycle: u64);

    /// The next frame that arrived towards the card, whatever its arrival cycle (the CPU
    /// path's receive side, which has no cycle clock). None: nothing waiting.
    fn receive_any(&self) -> Option<Vec<u8>> {
        None
    }
}

/// Link model of a wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkTiming {
    /// Cycles from a frame's first byte leaving to its first byte arriving.
    pub latency: u64,
    /// Link rate in bytes per cycle (0: unlimited). 100 GbE at 250 MHz: 50.
    pub bytes_per_cycle: u64,
}

impl Default for LinkTiming {
    /// 100 GbE at the card's 250 MHz clock, 1 µs of cable and PHY.
    fn default() -> Self {
        LinkTiming {
            latency: 250,
            bytes_per_cycle: 50,
        }
    }
}

/// What the far side of the wire does with a frame.
#[derive(Clone, Debug, Default)]
pub enum Peer {
    /// Nothing: frames are captured and dropped (a sink).
    #[default]
    Sink,
    /// Back to the same card (its inbox).
    Loopback,
    /// To another card's wire (its inbox): two devices back to back.
    Wire(Weak<Wire>),
}

#[derive(Debug, Default)]
struct State {
    timing: LinkTiming,
    peer: Peer,
    /// When the link is free again (cycle).
    free: u64,
    /// Every frame the card sent, in the order they left.
    sent: Vec<Frame>,
    /// Frames towards the card, with their arrival cycle.
    inbox: VecDeque<Frame>,
    /// Frames sent while capture was off (counted, not kept).
    uncaptured: u64,
    capture: bool,
}

/// The far side of one uplink.
#[derive(Debug)]
pub struct Wire {
    state: Mutex<State>,
}

impl Default for Wire {
    fn default() -> Self {
        Wire::new(LinkTiming::default())
    }
}

impl Wire {
    /// A wire that captures and drops (see [`Wire::set_peer`]).
    pub fn new(timing: LinkTiming) -> Self {
        Wire {
            state: Mutex::new(State {
                timing,
                capture: true,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned wire is still a consistent list of frames.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_peer(&self, peer: Peer) {
        self.lock().peer = peer;
    }

    /// Two wires back to back: what one card sends arrives at the other.
    pub fn connect(a: &Arc<Wire>, b: &Arc<Wire>) {
        a.set_peer(Peer::Wire(Arc::downgrade(b)));
        b.set_peer(Peer::Wire(Arc::downgrade(a)));
    }

    /// Keep (true, the default) or only count the frames sent (a long run).
    pub fn set_capture(&self, on: bool) {
        self.lock().capture = on;
    }

    /// The frames the card sent so far, in the order they left.
    pub fn sent(&self) -> Vec<Frame> {
        self.lock().sent.clone()
    }

    /// Take the frames the card sent so far.
    pub fn take_sent(&self) -> Vec<Frame> {
        std::mem::take(&mut self.lock().sent)
    }

    /// Frames sent, captured or not.
    pub fn frames_sent(&self) -> u64 {
        let s = self.lock();
        s.sent.len() as u64 + s.uncaptured
    }

    /// A frame towards the card, arriving at `cycle` (a test's traffic, or a pcap's).
    pub fn inject(&self, frame: Vec<u8>, cycle: u64) {
        self.lock().inbox.push_back(Frame {
            bytes: frame,
            cycle,
            source: Source::Cpu { func: u8::MAX },
        });
    }

    /// The next frame towards the card that has arrived by `cycle`.
    pub fn receive(&self, cycle: u64) -> Option<Frame> {
        let mut s = self.lock();
        if s.inbox.front()?.cycle <= cycle {
            s.inbox.pop_front()
        } else {
            None
        }
    }

    /// Frames waiting towards the card.
    pub fn inbox_len(&self) -> usize {
        self.lock().inbox.len()
    }

    fn deliver(&self, frame: Frame) {
        let mut s = self.lock();
        // Arrivals stay in order (a later frame never overtakes on one wire).
        let cycle = s
            .inbox
            .back()
            .map_or(frame.cycle, |b| b.cycle.max(frame.cycle));
        s.inbox.push_back(Frame { cycle, ..frame });
    }
}

impl Uplink for Wire {
    fn receive_any(&self) -> Option<Vec<u8>> {
        self.lock().inbox.pop_front().map(|f| f.bytes)
    }

    fn transmit(&self, source: Source, frame: &[u8], cycle: u64) {
        let (out, arrive, peer) = {
            let mut s = self.lock();
            let t = s.timing;
            let start = cycle.max(s.free);
            if t.bytes_per_cycle > 0 {
                s.free = start + (frame.len() as u64 + FRAME_OVERHEAD).div_ceil(t.bytes_per_cycle);
            }
            let out = Frame {
                bytes: frame.to_vec(),
                cycle: start,
                source,
            };
            if s.capture {
                s.sent.push(out.clone());
            } else {
                s.uncaptured += 1;
            }
            (out, start + t.latency, s.peer.clone())
        };
        let arriving = Frame {
            cycle: arrive,
            ..out
        };
        match peer {
            Peer::Sink => {}
            Peer::Loopback => self.deliver(arriving),
            Peer::Wire(other) => {
                if let Some(other) = other.upgrade() {
                    other.deliver(arriving);
                }
            }
        }
    }
}

/// Why a pcap file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("pcap: {0}")]
    Pcap(#[from] pcap_file::PcapError),
    #[error("pcap: link type {0:?} is not Ethernet")]
    LinkType(pcap_file::DataLink),
}

/// The card's clock in Hz (250 MHz): pcap timestamps are its cycles as time.
pub const CLOCK_HZ: u64 = 250_000_000;

/// Write `frames` as a pcap file (Ethernet, nanosecond timestamps from their cycles).
pub fn write_pcap(out: impl Write, frames: &[Frame]) -> Result<(), PcapError> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let header = PcapHeader {
        datalink: pcap_file::DataLink::ETHERNET,
        ts_resolution: pcap_file::TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(out, header)?;
    for f in frames {
        let ns = u128::from(f.cycle) * 1_000_000_000 / u128::from(CLOCK_HZ);
        let ts = std::time::Duration::from_nanos(ns as u64);
        w.write_packet(&PcapPacket::new(ts, f.bytes.len() as u32, &f.bytes))?;
    }
    Ok(())
}

/// Read the frames of a pcap file (Ethernet), with their timestamps as cycles.
pub fn read_pcap(input: impl Read) -> Result<Vec<(u64, Vec<u8>)>, PcapError> {
    let mut r = pcap_file::pcap::PcapReader::new(input)?;
    let link = r.header().datalink;
    if link != pcap_file::DataLink::ETHERNET {
        return Err(PcapError::LinkType(link));
    }
    let mut frames = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p?;
        let cycle = p.timestamp.as_nanos() * u128::from(CLOCK_HZ) / 1_000_000_000;
        frames.push((cycle as u64, p.data.into_owned()));
    }
    Ok(frames)
}

/// tshark, the independent dissector the tests check frames with: reads `pcap` with IP, UDP and
/// TCP checksum verification on, `args` added (`-d` decode-as rules, say), and prints `fields`
/// one frame per line, `;` between fields (`,` between a field's repeats: an encapsulated
/// frame's outer and inner layers). None when tshark is not installed; with
/// `FV_REQUIRE_TSHARK` set (CI, where ci/setup installs it) that is a panic instead.
pub fn tshark_fields(pcap: &std::path::Path, args: &[&str], fields: &[&str]) -> Option<String> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ]);
    cmd.args(args).args(["-T", "fields", "-E", "separator=;"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => panic!("tshark failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            assert!(
                std::env::var_os("FV_REQUIRE_TSHARK").is_none(),
                "tshark is required here (ci/setup installs it): {e}"
            );
            eprintln!("tshark not installed: the independent check is skipped ({e})");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| n.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn link_rate_spaces_frames_and_loopback_delivers_in_order() {
        let w = Wire::new(LinkTiming {
            latency: 100,
            bytes_per_cycle: 10,
        });
        w.set_peer(Peer::Loopback);
        let src = Source::Fpga { func: 0 };
        w.transmit(src, &frame(1, 60), 0);
        w.transmit(src, &frame(2, 60), 0);
        let sent = w.sent();
        assert_eq!(sent[0].cycle, 0);
        assert_eq!(sent[1].cycle, 8, "60 + 20 bytes at 10 per cycle");
        assert!(w.receive(99).is_none());
        assert_eq!(w.receive(100).unwrap().bytes, frame(1, 60));
        assert!(w.receive(107).is_none());
        assert_eq!(w.receive(108).unwrap().bytes, frame(2, 60));
    }

    #[test]
    fn back_to_back() {
        let a = Arc::new(Wire::default());
        let b = Arc::new(Wire::default());
        Wire::connect(&a, &b);
        a.transmit(Source::Cpu { func: 3 }, &frame(7, 64), 10);
        assert_eq!(a.inbox_len(), 0);
        let f = b.receive(u64::MAX).unwrap();
        assert_eq!((f.bytes, f.source), (frame(7, 64), Source::Cpu { func: 3 }));
    }

    #[test]
    fn pcap_round_trip() {
        let w = Wire::default();
        for n in 0..5u8 {
            w.transmit(
                Source::Fpga { func: n },
                &frame(n, 60 + usize::from(n)),
                1000,
            );
        }
        let mut buf = Vec::new();
        write_pcap(&mut buf, &w.sent()).unwrap();
        let back = read_pcap(&buf[..]).unwrap();
        let sent = w.sent();
        assert_eq!(back.len(), 5);
        for (f, (cycle, bytes)) in sent.iter().zip(&back) {
            assert_eq!(&f.bytes, bytes);
            assert_eq!(f.cycle, *cycle);
        }
        // Not a pcap file: an error, no panic.
        assert!(read_pcap(&b"not a pcap file at all"[..]).is_err());
    }
}
