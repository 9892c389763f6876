//! The flash behind the flash controller: golden, A and B slots of NOR-like pages (erase sets
//! every bit, programming only clears bits), and the persisted active-slot choice.
//!
//! A [`FlashModel`] outlives the simulators that use it: drop a [`Simulator`](crate::Simulator)
//! in the middle of programming and build a new one on the same model, and the new device boots
//! from what the flash holds (the power-loss tests).

use fpga_virtio_hw::regs;
use std::sync::{Arc, Mutex};

/// Bytes per page and pages per slot (the register map's geometry).
pub const PAGE_BYTES: usize = regs::FLASH_PAGE_WORDS as usize * 4;
pub const SLOT_PAGES: usize = regs::FLASH_SLOT_PAGES as usize;
pub const SLOT_BYTES: usize = PAGE_BYTES * SLOT_PAGES;

/// Flash operation latencies, in cycles per page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashTiming {
    pub read: u64,
    pub program: u64,
    pub erase: u64,
}

impl Default for FlashTiming {
    fn default() -> Self {
        FlashTiming {
            read: 20,
            program: 100,
            erase: 20,
        }
    }
}

/// Flash-port operations (fv_flash_ctrl's fl_req_op).
pub(crate) const OP_READ: u32 = 0;
pub(crate) const OP_PROGRAM: u32 = 1;
pub(crate) const OP_ERASE: u32 = 2;
pub(crate) const OP_GET_ACTIVE: u32 = 3;
pub(crate) const OP_SET_ACTIVE: u32 = 4;

#[derive(Debug)]
struct State {
    slots: [Vec<u8>; 3],
    active: u8,
    /// Operations left before the power goes (None: never); program and erase operations
    /// only, or every flash-port request (reads, slot switch) with `cut_any`.
    power_cut_in: Option<u32>,
    cut_any: bool,
    powered: bool,
    /// Flash-port requests served so far (every kind).
    ops: u64,
    /// After this many more program operations, flip a bit at (slot, byte offset).
    decay: Option<(u32, u8, usize)>,
    programs: u64,
    erases: u64,
}

/// See the module docs. Shared (`Arc`) between the simulators that use it.
#[derive(Debug)]
pub struct FlashModel {
    state: Mutex<State>,
}

impl FlashModel {
    /// Blank flash (every byte 0xff), golden active.
    pub fn new() -> Arc<Self> {
        Arc::new(FlashModel {
            state: Mutex::new(State {
                slots: [
                    vec![0xff; SLOT_BYTES],
                    vec![0xff; SLOT_BYTES],
                    vec![0xff; SLOT_BYTES],
                ],
                active: regs::FlashSlot::Golden as u8,
                power_cut_in: None,
                cut_any: false,
                powered: true,
                ops: 0,
                decay: None,
                programs: 0,
                erases: 0,
            }),
        })
    }

    /// A new, powered flash with the same contents and active slot (a snapshot to start
    /// several power-loss runs from).
    pub fn copy(&self) -> Arc<Self> {
        let m = Self::new();
        {
            let src = self.lock();
            let mut dst = m.lock();
            dst.slots = src.slots.clone();
            dst.active = src.active;
        }
        m
    }

    /// Flash contents from a file written by [`FlashModel::save`]; blank when it does not exist.
    pub fn load(path: &std::path::Path) -> std::io::Result<Arc<Self>> {
        let m = Self::new();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(m),
            Err(e) => return Err(e),
        };
        if bytes.len() != 3 * SLOT_BYTES + 1 || bytes[3 * SLOT_BYTES] > 2 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: not a simulated flash file ({} bytes, expected {})",
                    path.display(),
                    bytes.len(),
                    3 * SLOT_BYTES + 1
                ),
            ));
        }
        {
            let mut s = m.lock();
            for (i, slot) in s.slots.iter_mut().enumerate() {
                slot.copy_from_slice(&bytes[i * SLOT_BYTES..(i + 1) * SLOT_BYTES]);
            }
            s.active = bytes[3 * SLOT_BYTES];
        }
        Ok(m)
    }

    /// Write the flash contents (3 slots, then the active slot byte) to a file.
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let s = self.lock();
        let mut out = Vec::with_capacity(3 * SLOT_BYTES + 1);
        for slot in &s.slots {
            out.extend_from_slice(slot);
        }
        out.push(s.active);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, out)?;
        std::fs::rename(tmp, path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Factory programming of a slot (golden included), bypassing the device: the image, then
    /// (for A and B) the commit record, as the loader would leave it.
    pub fn factory_program(&self, slot: regs::FlashSlot, image: &[u8], commit: Option<&[u8]>) {
        let mut s = self.lock();
        let data = &mut s.slots[slot as usize];
        data.fill(0xff);
        let n = image.len().min(SLOT_BYTES - PAGE_BYTES);
        data[..n].copy_from_slice(&image[..n]);
        if let Some(c) = commit {
            let at = SLOT_BYTES - PAGE_BYTES;
            let n = c.len().min(PAGE_BYTES);
            data[at..at + n].copy_from_slice(&c[..n]);
        }
    }

    /// A copy of a slot's bytes.
    pub fn slot(&self, slot: regs::FlashSlot) -> Vec<u8> {
        self.lock().slots[slot as usize].clone()
    }

    pub fn active(&self) -> u8 {
        self.lock().active
    }

    /// The power goes after `ops` more program or erase operations: later requests are never
    /// answered. [`FlashModel::power_on`] brings it back.
    pub fn cut_power_after(&self, ops: u32) {
        let mut s = self.lock();
        s.power_cut_in = Some(ops);
        s.cut_any = false;
    }

    /// The power goes after `ops` more flash-port requests of any kind (reads of a boot, the
    /// slot switch, programs, erases).
    pub fn cut_power_after_any(&self, ops: u32) {
        let mut s = self.lock();
        s.power_cut_in = Some(ops);
        s.cut_any = true;
    }

    /// Whether the card has power (see [`FlashModel::cut_power_after`]): without it, the
    /// simulator answers MMIO reads with all ones, as a PCIe device that is gone does.
    pub fn powered(&self) -> bool {
        self.lock().powered
    }

    /// Flash-port requests served so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// A failing cell: after `programs` more program operations, bit 0 of byte `offset` of
    /// `slot` flips (after the loader's read-back, when `programs` counts the commit record).
    pub fn decay_after(&self, programs: u32, slot: regs::FlashSlot, offset: usize) {
        self.lock().decay = Some((programs, slot as u8, offset));
    }

    pub fn power_on(&self) {
        let mut s = self.lock();
        s.powered = true;
        s.power_cut_in = None;
    }

    /// Program and erase operations so far.
    pub fn wear(&self) -> (u64, u64) {
        let s = self.lock();
        (s.programs, s.erases)
    }

    /// Serve one flash-port request. Returns None when the power is off (no answer), else
    /// (error, page data).
    pub(crate) fn serve(
        &self,
        op: u32,
        slot: u32,
        page: u64,
        data: &[u8],
    ) -> Option<(bool, Vec<u8>)> {
        let mut s = self.lock();
        if !s.powered {
            return None;
        }
        if s.cut_any || matches!(op, OP_PROGRAM | OP_ERASE) {
            if let Some(n) = s.power_cut_in {
                if n == 0 {
                    s.powered = false;
                    return None;
                }
                s.power_cut_in = Some(n - 1);
            }
        }
        s.ops += 1;
        let mut out = vec![0u8; PAGE_BYTES];
        let slot_ok = slot < 3;
        let page_ok = (page as usize) < SLOT_PAGES;
        let at = page as usize * PAGE_BYTES;
        let error = match op {
            OP_READ if slot_ok && page_ok => {
                out.copy_from_slice(&s.slots[slot as usize][at..at + PAGE_BYTES]);
                false
            }
            OP_PROGRAM if slot_ok && page_ok && slot != regs::FlashSlot::Golden as u32 => {
                s.programs += 1;
                let p = &mut s.slots[slot as usize][at..at + PAGE_BYTES];
                // NOR: programming clears bits; a bit that must go 0 -> 1 fails the page.
                let mut bad = false;
                for (old, new) in p.iter_mut().zip(data) {
                    bad |= *new & !*old != 0;
                    *old &= *new;
                }
                if let Some((n, dslot, off)) = s.decay {
                    if n <= 1 {
                        s.decay = None;
                        if let Some(b) = s.slots[usize::from(dslot)].get_mut(off) {
                            *b ^= 1;
                        }
                    } else {
                        s.decay = Some((n - 1, dslot, off));
                    }
                }
                bad
            }
            OP_ERASE if slot_ok && page_ok && slot != regs::FlashSlot::Golden as u32 => {
                s.erases += 1;
                s.slots[slot as usize][at..at + PAGE_BYTES].fill(0xff);
                false
            }
            OP_GET_ACTIVE => {
                out[0] = s.active;
                false
            }
            OP_SET_ACTIVE if slot_ok => {
                s.active = slot as u8;
                false
            }
            _ => true,
        };
        Some((error, out))
    }
}
