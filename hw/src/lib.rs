//! The fpga-virtio device as software sees it.
//!
//! - [`regs`]: the register map (generated from `hw/regmap.toml`; see docs/registers.md).
//! - [`formats`]: the in-memory structures the FPGA and the CPU share (generated, same source).
//! - [`RegisterIo`]: the one seam every register access goes through. A VFIO BAR mapping, the
//!   simulator and [`mock::MockRegisters`] implement it, so driver code is the same on hardware,
//!   in simulation and in unit tests.
//!
//! [`Reg`], [`RegArray`] and [`Field`] are the typed handles the generated code is made of.

#![forbid(unsafe_code)]

// Generated files keep the generator's layout (ci/regen --check compares them byte for byte).
#[rustfmt::skip]
pub mod formats;
pub mod mock;
#[rustfmt::skip]
pub mod regs;

use std::fmt;

/// A PCI BAR index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bar(pub u8);

impl fmt::Display for Bar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BAR{}", self.0)
    }
}

/// Why a register access failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IoError {
    #[error("{bar} is not available on this device")]
    NoSuchBar { bar: Bar },
    #[error("{bar} offset {offset:#x} is outside the BAR ({size:#x} bytes)")]
    OutOfRange { bar: Bar, offset: u64, size: u64 },
    #[error("{bar} offset {offset:#x} is not 4-byte aligned")]
    Unaligned { bar: Bar, offset: u64 },
    #[error("{bar} offset {offset:#x} holds no register")]
    NoRegister { bar: Bar, offset: u64 },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("register access on {bar} at {offset:#x} failed: {reason}")]
    Backend {
        bar: Bar,
        offset: u64,
        reason: String,
    },
}

/// 32-bit register access to the device's BARs: the seam between driver logic and the thing that
/// carries the access (an mmap'd VFIO BAR, the simulator, a mock).
///
/// Implementations take `&self`: MMIO is shared by nature, and a backend that needs exclusive
/// state (the simulator's clock) serializes internally.
pub trait RegisterIo {
    /// Read the 32-bit register at `offset` of `bar`.
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError>;
    /// Write the 32-bit register at `offset` of `bar`.
    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError>;
}

impl<T: RegisterIo + ?Sized> RegisterIo for &T {
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
        (**self).read32(bar, offset)
    }
    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        (**self).write32(bar, offset, value)
    }
}

impl<T: RegisterIo + ?Sized> RegisterIo for std::sync::Arc<T> {
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
        (**self).read32(bar, offset)
    }
    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        (**self).write32(bar, offset, value)
    }
}

impl<T: RegisterIo + ?Sized> RegisterIo for Box<T> {
    fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
        (**self).read32(bar, offset)
    }
    fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
        (**self).write32(bar, offset, value)
    }
}

/// Check an access against a BAR of `size` bytes: aligned and inside. Backends share this.
pub fn check_access(bar: Bar, offset: u64, size: u64) -> Result<(), IoError> {
    if !offset.is_multiple_of(4) {
        return Err(IoError::Unaligned { bar, offset });
    }
    if offset.checked_add(4).is_none_or(|end| end > size) {
        return Err(IoError::OutOfRange { bar, offset, size });
    }
    Ok(())
}

/// One register: where it is and its value after reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    /// `block.register` or `block.array.register` (arrays: see [`Reg::index`]).
    pub name: &'static str,
    pub bar: Bar,
    pub offset: u64,
    pub reset: u32,
    /// Element index when the register belongs to an array.
    pub index: Option<u32>,
}

impl Reg {
    pub const fn new(name: &'static str, bar: Bar, offset: u64, reset: u32) -> Self {
        Reg {
            name,
            bar,
            offset,
            reset,
            index: None,
        }
    }
    pub fn read(&self, io: &(impl RegisterIo + ?Sized)) -> Result<u32, IoError> {
        io.read32(self.bar, self.offset)
    }
    pub fn write(&self, io: &(impl RegisterIo + ?Sized), value: u32) -> Result<(), IoError> {
        io.write32(self.bar, self.offset, value)
    }
    /// Read, change, write back.
    pub fn modify(
        &self,
        io: &(impl RegisterIo + ?Sized),
        f: impl FnOnce(u32) -> u32,
    ) -> Result<(), IoError> {
        let v = self.read(io)?;
        self.write(io, f(v))
    }
    /// Read one field.
    pub fn read_field(
        &self,
        io: &(impl RegisterIo + ?Sized),
        field: Field,
    ) -> Result<u32, IoError> {
        Ok(field.get(self.read(io)?))
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}] ({} {:#x})", self.name, self.bar, self.offset),
            None => write!(f, "{} ({} {:#x})", self.name, self.bar, self.offset),
        }
    }
}

/// A register repeated `count` times, `stride` bytes apart (queue contexts, MSI-X entries, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegArray {
    pub name: &'static str,
    pub bar: Bar,
    /// Offset of element 0.
    pub base: u64,
    pub stride: u64,
    pub count: u32,
    pub reset: u32,
}

/// An array index past the end.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{name}[{index}] does not exist: the array has {count} elements")]
pub struct IndexError {
    pub name: &'static str,
    pub index: u32,
    pub count: u32,
}

impl RegArray {
    pub const fn new(
        name: &'static str,
        bar: Bar,
        base: u64,
        stride: u64,
        count: u32,
        reset: u32,
    ) -> Self {
        RegArray {
            name,
            bar,
            base,
            stride,
            count,
            reset,
        }
    }
    /// Element `index`, or an error naming the array when it does not exist.
    pub fn at(&self, index: u32) -> Result<Reg, IndexError> {
        if index >= self.count {
            return Err(IndexError {
                name: self.name,
                index,
                count: self.count,
            });
        }
        Ok(Reg {
            name: self.name,
            bar: self.bar,
            offset: self.base + u64::from(index) * self.stride,
            reset: self.reset,
            index: Some(index),
        })
    }
}

/// A bit field of a 32-bit register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub lsb: u32,
    pub width: u32,
}

/// A value that does not fit a field, or a field that does not exist.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FieldError {
    #[error("value {value:#x} does not fit field {field} ({width} bits)")]
    TooWide {
        field: &'static str,
        value: u64,
        width: u32,
    },
    #[error("no field named {0:?}")]
    Unknown(String),
}

impl Field {
    pub const fn new(name: &'static str, lsb: u32, width: u32) -> Self {
        assert!(width >= 1 && lsb + width <= 32);
        Field { name, lsb, width }
    }
    /// The field's bits in place.
    pub const fn mask(&self) -> u32 {
        (((1u64 << self.width) - 1) << self.lsb) as u32
    }
    /// The largest value the field holds.
    pub const fn max(&self) -> u32 {
        ((1u64 << self.width) - 1) as u32
    }
    /// Extract the field from a register value.
    pub const fn get(&self, reg: u32) -> u32 {
        (reg & self.mask()) >> self.lsb
    }
    /// The field set to `value` in `reg`; an error if `value` does not fit.
    pub fn set(&self, reg: u32, value: u32) -> Result<u32, FieldError> {
        if value > self.max() {
            return Err(FieldError::TooWide {
                field: self.name,
                value: value.into(),
                width: self.width,
            });
        }
        Ok((reg & !self.mask()) | (value << self.lsb))
    }
    /// A register value with only this field set.
    pub fn value(&self, value: u32) -> Result<u32, FieldError> {
        self.set(0, value)
    }
    /// A one-bit field's flag.
    pub const fn is_set(&self, reg: u32) -> bool {
        self.get(reg) != 0
    }
}

/// An encoding that names no value of the enum.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{value} is not a valid {enum_name}")]
pub struct UnknownEnumValue {
    pub enum_name: &'static str,
    pub value: u32,
}

/// Static description of one register (or one register of every array element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegInfo {
    pub name: &'static str,
    pub bar: Bar,
    /// Offset of the register (of element 0 for arrays).
    pub offset: u64,
    /// 1 for a plain register.
    pub count: u64,
    /// Bytes between elements (0 for a plain register).
    pub stride: u64,
    pub reset: u32,
    /// Bits the driver writes and reads back.
    pub rw_mask: u32,
    /// Sticky bits the driver clears by writing 1.
    pub w1c_mask: u32,
    /// Command bits: written, never read back.
    pub wo_mask: u32,
    /// Constant bits.
    pub const_mask: u32,
}

impl RegInfo {
    /// Offsets of every element.
    pub fn offsets(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count).map(move |i| self.offset + i * self.stride)
    }
}
