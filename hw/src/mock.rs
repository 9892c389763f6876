//! A register file that behaves like the device's CSR blocks at the access level, for unit tests.
//!
//! Built from [`crate::regs::REGISTERS`]: every register starts at its reset value, `rw` bits read
//! back what was written, `wo` bits read 0, `w1c` bits clear on a 1, `ro` bits change only through
//! [`MockRegisters::set_hw`] (the test plays the hardware). Accesses to offsets that hold no
//! register fail, so a driver bug that computes a wrong offset shows up. Every write is logged.

use crate::{check_access, regs, Bar, IoError, RegInfo, RegisterIo};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug)]
struct Slot {
    info: RegInfo,
    value: u32,
}

/// Called after each driver write with the register state: lets a test model hardware reactions
/// (e.g. a reset bit that completes).
pub type WriteHook = Box<dyn Fn(&mut MockState, Bar, u64, u32) + Send>;

/// The mock's state, handed to hooks.
#[derive(Debug, Default)]
pub struct MockState {
    regs: HashMap<(Bar, u64), Slot>,
    /// Every driver write, in order.
    pub writes: Vec<(Bar, u64, u32)>,
}

impl MockState {
    /// Set hardware-driven (non-rw) bits, as the logic would.
    pub fn set_hw(&mut self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        let slot = self
            .regs
            .get_mut(&(bar, offset))
            .ok_or(IoError::NoRegister { bar, offset })?;
        let hw_mask = !(slot.info.rw_mask | slot.info.wo_mask | slot.info.const_mask);
        slot.value = (slot.value & !hw_mask) | (value & hw_mask);
        Ok(())
    }

    /// The raw stored value, including bits reads hide.
    pub fn peek(&self, bar: Bar, offset: u64) -> Option<u32> {
        self.regs.get(&(bar, offset)).map(|s| s.value)
    }
}

/// See the module documentation.
pub struct MockRegisters {
    state: Mutex<MockState>,
    bar_sizes: HashMap<Bar, u64>,
    hook: Option<WriteHook>,
}

impl std::fmt::Debug for MockRegisters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockRegisters")
            .field("bar_sizes", &self.bar_sizes)
            .finish_non_exhaustive()
    }
}

impl Default for MockRegisters {
    fn default() -> Self {
        Self::new()
    }
}

impl MockRegisters {
    /// A device right after reset.
    pub fn new() -> Self {
        let mut state = MockState::default();
        for info in regs::REGISTERS {
            for off in info.offsets() {
                state.regs.insert(
                    (info.bar, off),
                    Slot {
                        info: *info,
                        value: info.reset,
                    },
                );
            }
        }
        let bar_sizes = HashMap::from([
            (regs::BAR_MGMT, regs::BAR_MGMT_SIZE),
            (regs::BAR_DOORBELL, regs::BAR_DOORBELL_SIZE),
            (regs::BAR_MSIX, regs::BAR_MSIX_SIZE),
        ]);
        MockRegisters {
            state: Mutex::new(state),
            bar_sizes,
            hook: None,
        }
    }

    /// Model hardware reactions to writes.
    pub fn with_hook(mut self, hook: WriteHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Run `f` on the state (set hardware bits, inspect the write log).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut MockState) -> R) -> R {
        f(&mut self.lock())
    }

    /// Set hardware-driven bits (see [`MockState::set_hw`]).
    pub fn set_hw(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        self.lock().set_hw(bar, offset, value)
    }

    /// The driver's writes so far.
    pub fn writes(&self) -> Vec<(Bar, u64, u32)> {
        self.lock().writes.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        // A test that panicked while holding the lock leaves consistent data: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, bar: Bar, offset: u64) -> Result<(), IoError> {
        let size = *self.bar_sizes.get(&bar).ok_or(IoError::NoSuchBar { bar })?;
        check_access(bar, offset, size)
    }
}

impl RegisterIo for MockRegisters {
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
        self.check(bar, offset)?;
        let st = self.lock();
        let slot = st
            .regs
            .get(&(bar, offset))
            .ok_or(IoError::NoRegister { bar, offset })?;
        Ok(slot.value & !slot.info.wo_mask)
    }

    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        self.check(bar, offset)?;
        let mut st = self.lock();
        let slot = st
            .regs
            .get_mut(&(bar, offset))
            .ok_or(IoError::NoRegister { bar, offset })?;
        let i = slot.info;
        let keep = !(i.rw_mask | i.wo_mask);
        let mut v = (slot.value & keep) | (value & (i.rw_mask | i.wo_mask));
        v &= !(value & i.w1c_mask);
        slot.value = v;
        st.writes.push((bar, offset, value));
        if let Some(hook) = &self.hook {
            hook(&mut st, bar, offset, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::{global, queue};

    #[test]
    fn reset_values_and_access_kinds() {
        let m = MockRegisters::new();
        // Constants from the map.
        assert_eq!(global::BLOCK_TYPE.read(&m).unwrap(), global::TYPE_ID);
        let caps = global::CAPS.read(&m).unwrap();
        assert_eq!(global::caps::NUM_QUEUES.get(caps), regs::NUM_QUEUES);
        // rw reads back; ro does not change.
        global::SCRATCH.write(&m, 0xdead_beef).unwrap();
        assert_eq!(global::SCRATCH.read(&m).unwrap(), 0xdead_beef);
        global::BLOCK_TYPE.write(&m, 0).unwrap();
        assert_eq!(global::BLOCK_TYPE.read(&m).unwrap(), global::TYPE_ID);
        // wo bits read as 0.
        global::CTRL.write(&m, 0b11).unwrap();
        assert_eq!(global::CTRL.read(&m).unwrap(), 0b01);
        // w1c: hardware sets, a 1 clears.
        let st = global::STATUS;
        m.set_hw(st.bar, st.offset, global::status::DMA_FAULT.mask())
            .unwrap();
        assert!(global::status::DMA_FAULT.is_set(st.read(&m).unwrap()));
        st.write(&m, 0).unwrap();
        assert!(global::status::DMA_FAULT.is_set(st.read(&m).unwrap()));
        st.write(&m, global::status::DMA_FAULT.mask()).unwrap();
        assert!(!global::status::DMA_FAULT.is_set(st.read(&m).unwrap()));
        // Arrays: the reset value of every element, and the end of the array.
        let msix = queue::q::MSIX.at(regs::NUM_QUEUES - 1).unwrap();
        assert_eq!(msix.read(&m).unwrap(), regs::NO_VECTOR);
        assert!(queue::q::MSIX.at(regs::NUM_QUEUES).is_err());
    }

    #[test]
    fn bad_accesses_are_errors() {
        let m = MockRegisters::new();
        assert_eq!(
            m.read32(Bar(0), 0x102),
            Err(IoError::Unaligned {
                bar: Bar(0),
                offset: 0x102
            })
        );
        assert!(matches!(
            m.read32(Bar(1), 0),
            Err(IoError::NoSuchBar { .. })
        ));
        assert!(matches!(
            m.read32(Bar(0), 0x1_0000),
            Err(IoError::OutOfRange { .. })
        ));
        assert!(matches!(
            m.read32(Bar(0), 0xff0),
            Err(IoError::NoRegister { .. })
        ));
    }

    #[test]
    fn hooks_model_hardware() {
        // A reset that completes at once: the hook clears reset_busy and sets ready.
        let m = MockRegisters::new().with_hook(Box::new(|st, bar, off, v| {
            if (bar, off) == (global::CTRL.bar, global::CTRL.offset)
                && global::ctrl::RESET.is_set(v)
            {
                st.set_hw(bar, global::STATUS.offset, global::status::READY.mask())
                    .unwrap();
            }
        }));
        assert!(!global::status::READY.is_set(global::STATUS.read(&m).unwrap()));
        global::CTRL.write(&m, global::ctrl::RESET.mask()).unwrap();
        assert!(global::status::READY.is_set(global::STATUS.read(&m).unwrap()));
        assert_eq!(m.writes(), vec![(global::CTRL.bar, global::CTRL.offset, 2)]);
    }
}
