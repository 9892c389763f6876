//! The software net engine: the CPU path of a virtio-net function and the reference model of
//! the FPGA's net engines.
//!
//! - TX queues: a chain is read (header and frame, split anywhere across descriptors),
//!   classified as the RTL does ([`tx::classify`]), and handed to the card's [`Switch`] with
//!   its checksum filled in, segmented (GSO), or dropped and counted by reason.
//! - RX queues (device-driven): frames the switch queued for the function go into the guest's
//!   buffers ([`rx::deliver`]: DATA_VALID, MRG_RXBUF and `num_buffers`).
//! - The control queue: [`ctrl::execute`].

use super::csum;
use super::ctrl;
use super::features::{self as nf, role, NetConfig, Role};
use super::rx::{self, RxFeatures, RxOutcome};
use super::switch::Switch;
use super::tx::{self, TxDrop, Verdict};
use crate::device::{ChainSource, Completion, DeviceEngine, SetupError, Status};
use crate::virtq::Segment;
use fpga_virtio_hw::formats::VirtioNetHdrV1;
use fpga_virtio_hw::regs::{functions::func, VirtioDevice};
use fpga_virtio_hw::Reg;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const HDR: usize = VirtioNetHdrV1::SIZE;

/// A net function's counters on the CPU path (fixed: no allocation per frame).
#[derive(Debug, Default)]
pub struct NetCounters {
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// GSO frames the CPU segmented, and the frames that made.
    pub tx_gso: AtomicU64,
    pub tx_segments: AtomicU64,
    drops: [AtomicU64; TxDrop::ALL.len()],
    /// Frames delivered into RX buffers, and their bytes (without the header).
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    /// RX frames dropped: the chain was too small (no MRG_RXBUF), or could not be written.
    pub rx_too_small: AtomicU64,
    pub rx_memory: AtomicU64,
    /// Control-queue commands, and those answered ERR.
    pub ctrl_commands: AtomicU64,
    pub ctrl_errors: AtomicU64,
}

impl NetCounters {
    pub fn count_drop(&self, d: TxDrop) {
        self.drops[d as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn drops(&self, d: TxDrop) -> u64 {
        self.drops[d as usize].load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> NetStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NetStats {
            tx_frames: l(&self.tx_frames),
            tx_bytes: l(&self.tx_bytes),
            tx_gso: l(&self.tx_gso),
            tx_segments: l(&self.tx_segments),
            drops: TxDrop::ALL.map(|d| (d.name(), self.drops(d))),
            rx_frames: l(&self.rx_frames),
            rx_bytes: l(&self.rx_bytes),
            rx_too_small: l(&self.rx_too_small),
            rx_memory: l(&self.rx_memory),
            ctrl_commands: l(&self.ctrl_commands),
            ctrl_errors: l(&self.ctrl_errors),
        }
    }
}

/// A copy of [`NetCounters`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStats {
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub tx_gso: u64,
    pub tx_segments: u64,
    pub drops: [(&'static str, u64); TxDrop::ALL.len()],
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub rx_too_small: u64,
    pub rx_memory: u64,
    pub ctrl_commands: u64,
    pub ctrl_errors: u64,
}

impl NetStats {
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

/// A virtio-net function's CPU engine.
#[derive(Debug)]
pub struct NetEngine {
    func: u8,
    cfg: NetConfig,
    features: u64,
    switch: Arc<Switch>,
    counters: Arc<NetCounters>,
    buf: Vec<u8>,
}

impl NetEngine {
    /// The engine of function `func` with the negotiated `features`, on the card's `switch`
    /// (which it joins).
    pub fn new(func: u8, cfg: NetConfig, features: u64, switch: Arc<Switch>) -> Self {
        switch.attach(func, cfg.mac, cfg.queue_pairs);
        NetEngine {
            func,
            cfg,
            features,
            switch,
            counters: Arc::default(),
            buf: Vec::new(),
        }
    }

    /// The counters (shared by every fork of this engine).
    pub fn counters(&self) -> Arc<NetCounters> {
        self.counters.clone()
    }

    fn send(&self, frame: &[u8]) {
        self.switch.from_vport(self.func, frame);
        self.counters.tx_frames.fetch_add(1, Ordering::Relaxed);
        self.counters
            .tx_bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
    }

    /// Read the chain's device-readable bytes (header, then frame) into `buf`.
    fn read_chain(&mut self, mem: &GuestMemoryMmap, chain: &[Segment]) -> Result<(), TxDrop> {
        let total: u64 = chain
            .iter()
            .filter(|s| !s.write)
            .map(|s| u64::from(s.len))
            .sum();
        if total < HDR as u64 {
            return Err(TxDrop::ShortHeader);
        }
        if total - HDR as u64 > tx::MAX_TX_FRAME as u64 {
            return Err(TxDrop::TooLong);
        }
        self.buf.clear();
        self.buf.resize(total as usize, 0);
        let mut at = 0;
        for s in chain.iter().filter(|s| !s.write) {
            let n = s.len as usize;
            mem.read_slice(&mut self.buf[at..at + n], GuestAddress(s.addr))
                .map_err(|_| TxDrop::Memory)?;
            at += n;
        }
        Ok(())
    }

    fn transmit(&mut self, mem: &GuestMemoryMmap, chain: &[Segment]) -> Result<(), TxDrop> {
        self.read_chain(mem, chain)?;
        let hdr = VirtioNetHdrV1::from_le_bytes(self.buf[..HDR].try_into().expect("12 bytes"));
        let frame_len = self.buf.len() - HDR;
        match tx::classify(&self.cfg, self.features, &hdr, frame_len) {
            Verdict::Send { csum } => {
                let mut frame = std::mem::take(&mut self.buf);
                if let Some((start, offset)) = csum {
                    csum::insert(&mut frame[HDR..], start, offset);
                }
                self.send(&frame[HDR..]);
                self.buf = frame;
                Ok(())
            }
            Verdict::Gso => {
                let segs = tx::segment(&self.cfg, self.features, &hdr, &self.buf[HDR..])
                    .ok_or(TxDrop::BadGso)?;
                self.counters.tx_gso.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .tx_segments
                    .fetch_add(segs.len() as u64, Ordering::Relaxed);
                for s in &segs {
                    self.send(s);
                }
                Ok(())
            }
            Verdict::Drop(d) => Err(d),
        }
    }
}

impl NetEngine {
    /// A control-queue command: read it, carry it out, write the ack into the first writable
    /// byte.
    fn control(&mut self, mem: &GuestMemoryMmap, chain: &[Segment]) -> Completion {
        let Some(ack) = chain.iter().find(|s| s.write) else {
            return Completion::FAILED;
        };
        let mut cmd = Vec::new();
        let mut ok = true;
        for s in chain.iter().filter(|s| !s.write) {
            let n = (s.len as usize).min(ctrl::MAX_COMMAND.saturating_sub(cmd.len()));
            let at = cmd.len();
            cmd.resize(at + n, 0);
            ok &= mem.read_slice(&mut cmd[at..], GuestAddress(s.addr)).is_ok();
        }
        let answer = if ok {
            ctrl::execute(&self.switch, self.func, &cmd)
        } else {
            ctrl::ERR
        };
        self.counters.ctrl_commands.fetch_add(1, Ordering::Relaxed);
        if answer != ctrl::OK {
            self.counters.ctrl_errors.fetch_add(1, Ordering::Relaxed);
        }
        if mem.write_slice(&[answer], GuestAddress(ack.addr)).is_err() {
            return Completion::FAILED;
        }
        Completion {
            status: if answer == ctrl::OK {
                Status::Ok
            } else {
                Status::Error
            },
            used_len: 1,
        }
    }
}

impl DeviceEngine for NetEngine {
    fn device_type(&self) -> VirtioDevice {
        VirtioDevice::Net
    }

    fn registers(&self, f: u8) -> Result<Vec<(Reg, u32)>, SetupError> {
        let r = |a: fpga_virtio_hw::RegArray| a.at(u32::from(f));
        let m = self.cfg.mac;
        Ok(vec![
            (r(func::DEVICE_TYPE)?, VirtioDevice::Net as u32),
            (r(func::FEATURES_LO)?, self.features as u32),
            (r(func::FEATURES_HI)?, (self.features >> 32) as u32),
            (
                r(func::NET_MAC_LO)?,
                u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
            ),
            (
                r(func::NET_MAC_HI)?,
                u32::from(u16::from_le_bytes([m[4], m[5]])),
            ),
            (r(func::NET_MTU)?, u32::from(self.cfg.mtu)),
        ])
    }

    fn check_queue(&self, vq: u16, on_fpga: bool) -> Result<(), SetupError> {
        match role(&self.cfg, vq) {
            Role::Tx(_) => Ok(()),
            Role::Rx(_) if on_fpga => Err(SetupError::QueueNotServed {
                vq,
                why: "receive queues are CPU-owned until the FPGA's RX engine lands",
            }),
            Role::Ctrl if on_fpga => Err(SetupError::QueueNotServed {
                vq,
                why: "the control queue is always CPU-owned",
            }),
            Role::Rx(_) | Role::Ctrl => Ok(()),
            Role::None => Err(SetupError::QueueNotServed {
                vq,
                why: "no such queue",
            }),
        }
    }

    fn ordered(&self, vq: u16) -> bool {
        matches!(role(&self.cfg, vq), Role::Tx(_))
    }

    fn device_driven(&self, vq: u16) -> bool {
        matches!(role(&self.cfg, vq), Role::Rx(_))
    }

    fn has_work(&self, vq: u16) -> bool {
        match role(&self.cfg, vq) {
            Role::Rx(pair) => {
                self.switch.pump();
                self.switch.has_frames(self.func, pair)
            }
            _ => false,
        }
    }

    fn fill(&mut self, mem: &GuestMemoryMmap, vq: u16, chains: &mut dyn ChainSource) -> Vec<u32> {
        let mut used = Vec::new();
        let Role::Rx(pair) = role(&self.cfg, vq) else {
            return used;
        };
        let f = RxFeatures {
            mrg_rxbuf: self.features & (1 << nf::F_MRG_RXBUF) != 0,
            guest_csum: self.features & (1 << nf::F_GUEST_CSUM) != 0,
        };
        let c = &self.counters;
        // A fill runs on the guest's kick or when frames wait: the queue may have buffers.
        self.switch.set_starved(self.func, pair, false);
        while let Some(frame) = self.switch.take(self.func, pair) {
            match rx::deliver(mem, &frame.bytes, &frame.meta, f, chains, &mut used) {
                RxOutcome::Delivered { .. } => {
                    c.rx_frames.fetch_add(1, Ordering::Relaxed);
                    c.rx_bytes
                        .fetch_add(frame.bytes.len() as u64, Ordering::Relaxed);
                }
                RxOutcome::NoBuffers => {
                    // Waits for the guest's next kick (not polled until then).
                    self.switch.put_back(self.func, pair, frame);
                    self.switch.set_starved(self.func, pair, true);
                    break;
                }
                RxOutcome::TooSmall => {
                    c.rx_too_small.fetch_add(1, Ordering::Relaxed);
                }
                RxOutcome::Memory => {
                    c.rx_memory.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        used
    }

    fn serve(&mut self, mem: &GuestMemoryMmap, vq: u16, chain: &[Segment]) -> Completion {
        match role(&self.cfg, vq) {
            Role::Tx(_) => {}
            Role::Ctrl => return self.control(mem, chain),
            _ => return Completion::FAILED,
        }
        // A TX chain's used length is 0 whatever happened to the frame.
        match self.transmit(mem, chain) {
            Ok(()) => Completion {
                status: Status::Ok,
                used_len: 0,
            },
            Err(d) => {
                self.counters.count_drop(d);
                Completion {
                    status: Status::Error,
                    used_len: 0,
                }
            }
        }
    }

    fn fork(&self) -> Box<dyn DeviceEngine> {
        Box::new(NetEngine {
            func: self.func,
            cfg: self.cfg,
            features: self.features,
            switch: self.switch.clone(),
            counters: self.counters.clone(),
            buf: Vec::new(),
        })
    }
}
