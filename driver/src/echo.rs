//! The echo test device: a second device type behind the runtime's seam, and the reference
//! model of the RTL's `fv_echo_engine.sv`. A request copies the chain's device-readable bytes,
//! in order, into its device-writable buffers; the used length is the bytes copied
//! (min(readable, writable)). It has no configuration and no features beyond the ones every
//! function must take.

use crate::device::{Completion, DeviceEngine, SetupError, Status};
use crate::virtq::Segment;
use fpga_virtio_hw::regs::{functions::func, VirtioDevice};
use fpga_virtio_hw::Reg;
use virtio_bindings::virtio_config as vc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Features the echo device offers (VERSION_1 and ACCESS_PLATFORM: required of every function).
pub const OFFERED: u64 = (1 << vc::VIRTIO_F_VERSION_1) | (1 << vc::VIRTIO_F_ACCESS_PLATFORM);

/// Bytes moved per step (the engine holds no more).
const PIECE: usize = 4096;

/// The echo device's CPU engine.
#[derive(Clone, Debug, Default)]
pub struct EchoEngine {
    buf: Vec<u8>,
}

impl EchoEngine {
    pub fn new() -> Self {
        EchoEngine::default()
    }

    fn copy(&mut self, mem: &GuestMemoryMmap, chain: &[Segment]) -> Option<u32> {
        let mut readable = chain.iter().filter(|s| !s.write).copied();
        let mut writable = chain.iter().filter(|s| s.write).copied();
        let (mut r, mut w) = (readable.next(), writable.next());
        let mut written = 0u32;
        while let (Some(rs), Some(ws)) = (r.as_mut(), w.as_mut()) {
            let n = rs.len.min(ws.len).min(PIECE as u32);
            self.buf.resize(n as usize, 0);
            mem.read_slice(&mut self.buf, GuestAddress(rs.addr)).ok()?;
            mem.write_slice(&self.buf, GuestAddress(ws.addr)).ok()?;
            written += n;
            (rs.addr, rs.len) = (rs.addr + u64::from(n), rs.len - n);
            (ws.addr, ws.len) = (ws.addr + u64::from(n), ws.len - n);
            if rs.len == 0 {
                r = readable.next();
            }
            if ws.len == 0 {
                w = writable.next();
            }
        }
        Some(written)
    }
}

impl DeviceEngine for EchoEngine {
    fn device_type(&self) -> VirtioDevice {
        VirtioDevice::Echo
    }

    fn registers(&self, f: u8) -> Result<Vec<(Reg, u32)>, SetupError> {
        let r = |a: fpga_virtio_hw::RegArray| a.at(u32::from(f));
        Ok(vec![
            (r(func::DEVICE_TYPE)?, VirtioDevice::Echo as u32),
            (r(func::FEATURES_LO)?, OFFERED as u32),
            (r(func::FEATURES_HI)?, (OFFERED >> 32) as u32),
        ])
    }

    fn serve(&mut self, mem: &GuestMemoryMmap, _vq: u16, chain: &[Segment]) -> Completion {
        match self.copy(mem, chain) {
            Some(used_len) => Completion {
                status: Status::Ok,
                used_len,
            },
            None => Completion::FAILED,
        }
    }

    fn fork(&self) -> Box<dyn DeviceEngine> {
        Box::new(EchoEngine::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_readable_into_writable_in_order() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 16)]).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31) as u8).collect();
        mem.write_slice(&data[..3000], GuestAddress(0x1000))
            .unwrap();
        mem.write_slice(&data[3000..], GuestAddress(0x4000))
            .unwrap();
        let s = |addr, len, write| Segment { addr, len, write };
        let chain = [
            s(0x1000, 3000, false),
            s(0x4000, 7000, false),
            s(0x8000, 100, true),
            s(0x9000, 9000, true),
        ];
        let c = EchoEngine::new().serve(&mem, 0, &chain);
        assert_eq!(
            c,
            Completion {
                status: Status::Ok,
                used_len: 9100
            }
        );
        let mut back = vec![0u8; 9100];
        mem.read_slice(&mut back[..100], GuestAddress(0x8000))
            .unwrap();
        mem.read_slice(&mut back[100..], GuestAddress(0x9000))
            .unwrap();
        assert_eq!(back, data[..9100]);
        // Nothing writable: nothing copied.
        let c = EchoEngine::new().serve(&mem, 0, &chain[..2]);
        assert_eq!(c.used_len, 0);
        // Memory that is not there: no answer.
        let c = EchoEngine::new().serve(&mem, 0, &[s(1 << 20, 16, false), s(0x8000, 16, true)]);
        assert_eq!(c, Completion::FAILED);
    }
}
