//! The IOMMU the simulated device sits behind: windows of IOVA space mapped to guest physical
//! addresses with read/write permissions. A DMA outside every window, or against a window's
//! permission, faults, as a real IOMMU would (an unmapped write is dropped).

use std::collections::BTreeMap;

/// Page size of the map: windows are aligned to it.
pub const PAGE: u64 = 4096;

/// Access permissions of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub read: bool,
    pub write: bool,
}

impl Perm {
    pub const RW: Perm = Perm {
        read: true,
        write: true,
    };
    pub const RO: Perm = Perm {
        read: true,
        write: false,
    };
    pub const WO: Perm = Perm {
        read: false,
        write: true,
    };
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IommuError {
    #[error(
        "IOVA {iova:#x}, GPA {gpa:#x} and length {len:#x} must be non-zero multiples of {PAGE:#x}"
    )]
    Unaligned { iova: u64, gpa: u64, len: u64 },
    #[error("IOVA window [{iova:#x}, +{len:#x}) overlaps the mapping at {other:#x}")]
    Overlap { iova: u64, len: u64, other: u64 },
    #[error("IOVA window [{iova:#x}, +{len:#x}) wraps the address space")]
    Overflow { iova: u64, len: u64 },
    #[error("no mapping starts at IOVA {iova:#x} with length {len:#x}")]
    NotMapped { iova: u64, len: u64 },
    #[error("DMA {} of {len} bytes at IOVA {iova:#x}: {reason}", if *write { "write" } else { "read" })]
    Fault {
        iova: u64,
        len: u64,
        write: bool,
        reason: &'static str,
    },
}

#[derive(Clone, Copy, Debug)]
struct Window {
    len: u64,
    gpa: u64,
    perm: Perm,
}

/// The map: IOVA windows, non-overlapping.
#[derive(Clone, Debug, Default)]
pub struct IommuMap {
    windows: BTreeMap<u64, Window>,
}

impl IommuMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Map `[iova, iova + len)` to guest physical `[gpa, gpa + len)`.
    pub fn map(&mut self, iova: u64, gpa: u64, len: u64, perm: Perm) -> Result<(), IommuError> {
        if len == 0
            || !iova.is_multiple_of(PAGE)
            || !gpa.is_multiple_of(PAGE)
            || !len.is_multiple_of(PAGE)
        {
            return Err(IommuError::Unaligned { iova, gpa, len });
        }
        let end = iova
            .checked_add(len)
            .ok_or(IommuError::Overflow { iova, len })?;
        gpa.checked_add(len)
            .ok_or(IommuError::Overflow { iova: gpa, len })?;
        if let Some((&o, w)) = self.windows.range(..end).next_back() {
            if o + w.len > iova {
                return Err(IommuError::Overlap {
                    iova,
                    len,
                    other: o,
                });
            }
        }
        self.windows.insert(iova, Window { len, gpa, perm });
        Ok(())
    }

    /// Remove the window mapped at exactly `[iova, iova + len)`.
    pub fn unmap(&mut self, iova: u64, len: u64) -> Result<(), IommuError> {
        match self.windows.get(&iova) {
            Some(w) if w.len == len => {
                self.windows.remove(&iova);
                Ok(())
            }
            _ => Err(IommuError::NotMapped { iova, len }),
        }
    }

    /// Translate an access of `len` bytes into guest-physical pieces (an access may span
    /// adjacent windows). Fails without side effects if any byte is unmapped or not permitted.
    pub fn translate(
        &self,
        iova: u64,
        len: u64,
        write: bool,
    ) -> Result<Vec<(u64, u64)>, IommuError> {
        let fault = |reason| IommuError::Fault {
            iova,
            len,
            write,
            reason,
        };
        let end = iova.checked_add(len).ok_or(fault("address wraps"))?;
        let mut pieces = Vec::new();
        let mut at = iova;
        while at < end {
            let (&o, w) = self
                .windows
                .range(..=at)
                .next_back()
                .filter(|(&o, w)| at < o + w.len)
                .ok_or(fault("not mapped"))?;
            if (write && !w.perm.write) || (!write && !w.perm.read) {
                return Err(fault("permission denied"));
            }
            let n = (o + w.len).min(end) - at;
            pieces.push((w.gpa + (at - o), n));
            at += n;
        }
        Ok(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_translate_unmap() {
        let mut m = IommuMap::new();
        m.map(0x10_0000, 0x2000, 0x2000, Perm::RW).unwrap();
        m.map(0x10_2000, 0x8000, 0x1000, Perm::RO).unwrap();
        assert_eq!(m.translate(0x10_0010, 4, false).unwrap(), vec![(0x2010, 4)]);
        // Spans two windows.
        assert_eq!(
            m.translate(0x10_1ffe, 4, false).unwrap(),
            vec![(0x3ffe, 2), (0x8000, 2)]
        );
        assert!(
            m.translate(0x10_1ffe, 4, true).is_err(),
            "second window is read-only"
        );
        assert!(m.translate(0x10_3000, 1, false).is_err());
        assert!(m.translate(0x0fff, 2, false).is_err());
        assert!(m.translate(u64::MAX, 2, false).is_err());
        assert!(matches!(
            m.map(0x10_1000, 0, 0x1000, Perm::RW),
            Err(IommuError::Overlap { .. })
        ));
        assert!(matches!(
            m.map(0x123, 0, 0x1000, Perm::RW),
            Err(IommuError::Unaligned { .. })
        ));
        m.unmap(0x10_0000, 0x2000).unwrap();
        assert!(m.translate(0x10_0010, 4, false).is_err());
        assert!(m.unmap(0x10_0000, 0x2000).is_err());
    }
}
