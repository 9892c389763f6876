//! A function's DMA windows: the address ranges its guest's buffers may use.
//!
//! The device's IOMMU map holds everything the device may reach, the tenants' memory and the
//! backend's own (punt and completion rings, in-flight regions). What keeps a tenant inside its
//! own memory is the window check: the RTL walk and the software walker refuse any buffer or
//! indirect table that is not inside one of its function's windows before a byte moves (the
//! queue's error state, `dma_window`), the way per-function IOMMU domains (PASIDs) separate
//! functions on real hardware. The runtime programs the same windows into the device's
//! DMA_WINDOW block ([`DmaWindows::program`]).

use fpga_virtio_hw::regs::{self, dma_window};
use fpga_virtio_hw::{IoError, RegisterIo};

/// Windows per function (the register map's DMA_WINDOWS_PER_FUNCTION).
pub const PER_FUNCTION: usize = regs::DMA_WINDOWS_PER_FUNCTION as usize;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("a function has at most {PER_FUNCTION} DMA windows ({0} asked; guest memory in too many pieces)")]
    TooMany(usize),
    #[error("empty or wrapping DMA window [{base:#x}, {end:#x})")]
    Empty { base: u64, end: u64 },
}

/// Up to [`PER_FUNCTION`] half-open ranges `[base, end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DmaWindows {
    ranges: Vec<(u64, u64)>,
}

impl DmaWindows {
    /// No window: the function may reach nothing.
    pub fn none() -> Self {
        DmaWindows::default()
    }

    /// Windows from `(base, end)` ranges. Adjacent or overlapping ranges are merged first;
    /// more than [`PER_FUNCTION`] pieces are refused rather than widened (a hull could take in
    /// memory that is not the tenant's).
    pub fn new(ranges: &[(u64, u64)]) -> Result<Self, WindowError> {
        let merged = merge(ranges)?;
        if merged.len() > PER_FUNCTION {
            return Err(WindowError::TooMany(merged.len()));
        }
        Ok(DmaWindows { ranges: merged })
    }

    /// Windows covering `ranges` (a guest's memory regions, say), at most [`PER_FUNCTION`]:
    /// when there are more pieces, the two closest are joined across their gap, as long as
    /// the joined window does not reach into any of `exclude` (the backend's own memory). A
    /// gap taken in this way holds nothing the device can reach (it is not in the IOMMU map).
    pub fn covering(ranges: &[(u64, u64)], exclude: &[(u64, u64)]) -> Result<Self, WindowError> {
        let mut r = merge(ranges)?;
        let clear = |b: u64, e: u64| exclude.iter().all(|&(xb, xe)| xe <= b || xb >= e);
        while r.len() > PER_FUNCTION {
            let best = (0..r.len() - 1)
                .filter(|&i| clear(r[i].0, r[i + 1].1))
                .min_by_key(|&i| r[i + 1].0 - r[i].1);
            let Some(i) = best else {
                return Err(WindowError::TooMany(r.len()));
            };
            r[i].1 = r[i + 1].1;
            r.remove(i + 1);
        }
        Ok(DmaWindows { ranges: r })
    }

    /// The windows, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether `[addr, addr + len)` lies inside one window. A zero length or a range that
    /// wraps the address space is in none.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        len != 0 && self.ranges.iter().any(|&(b, e)| addr >= b && end <= e)
    }

    /// Program function `func`'s windows into the device (unused ones disabled).
    pub fn program(&self, io: &(impl RegisterIo + ?Sized), func: u8) -> Result<(), IoError> {
        for w in 0..PER_FUNCTION {
            let (base, end) = self.ranges.get(w).copied().unwrap_or((0, 0));
            let at = |a: fpga_virtio_hw::RegArray| {
                a.at(u32::from(func) * PER_FUNCTION as u32 + w as u32)
            };
            let e = |e: fpga_virtio_hw::IndexError| IoError::Backend {
                bar: regs::BAR_MGMT,
                offset: dma_window::BASE,
                reason: e.to_string(),
            };
            // Disabled while it changes: a window is never half old, half new.
            at(dma_window::win::END_LO).map_err(e)?.write(io, 0)?;
            at(dma_window::win::END_HI).map_err(e)?.write(io, 0)?;
            at(dma_window::win::BASE_LO)
                .map_err(e)?
                .write(io, base as u32)?;
            at(dma_window::win::BASE_HI)
                .map_err(e)?
                .write(io, (base >> 32) as u32)?;
            at(dma_window::win::END_HI)
                .map_err(e)?
                .write(io, (end >> 32) as u32)?;
            at(dma_window::win::END_LO)
                .map_err(e)?
                .write(io, end as u32)?;
        }
        Ok(())
    }
}

/// `ranges` sorted, with adjacent and overlapping ones merged; an empty or wrapping one is an
/// error.
fn merge(ranges: &[(u64, u64)]) -> Result<Vec<(u64, u64)>, WindowError> {
    let mut r = ranges.to_vec();
    if let Some(&(base, end)) = r.iter().find(|(b, e)| e <= b) {
        return Err(WindowError::Empty { base, end });
    }
    r.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (b, e) in r {
        match merged.last_mut() {
            Some(last) if b <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((b, e)),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_is_exact_at_the_edges_and_refuses_wraps() {
        let w = DmaWindows::new(&[(0x1000, 0x3000), (1 << 32, (1 << 32) + 0x1000)]).unwrap();
        assert!(w.contains(0x1000, 0x2000));
        assert!(!w.contains(0x1000, 0x2001));
        assert!(!w.contains(0xfff, 2));
        assert!(!w.contains(0x2000, 0));
        assert!(w.contains(1 << 32, 0x1000));
        assert!(!w.contains(0x2fff, 0x1_0000_0000)); // spans the gap
        assert!(!w.contains(u64::MAX - 1, 4)); // wraps
        assert!(!DmaWindows::none().contains(0, 1));
    }

    #[test]
    fn pieces_merge_and_too_many_are_refused() {
        let w = DmaWindows::new(&[(0x2000, 0x3000), (0, 0x1000), (0x1000, 0x2000)]).unwrap();
        assert_eq!(w.ranges(), &[(0, 0x3000)]);
        let many: Vec<(u64, u64)> = (0..5).map(|i| (i * 0x2000, i * 0x2000 + 0x1000)).collect();
        assert_eq!(DmaWindows::new(&many), Err(WindowError::TooMany(5)));
        assert!(matches!(
            DmaWindows::new(&[(5, 5)]),
            Err(WindowError::Empty { .. })
        ));
    }

    #[test]
    fn covering_joins_the_closest_pieces_but_never_over_excluded_memory() {
        // QEMU's usual pieces: below the VGA hole, the rest of low RAM, RAM above 4 GiB, and
        // two small ones.
        let pieces = [
            (0, 0xa_0000),
            (0xc_0000, 0x8000_0000),
            (1 << 32, 3 << 32),
            (0xfee0_0000, 0xfee0_1000),
            (0xffc0_0000, 0xfff0_0000),
        ];
        let private = [(1u64 << 46, (1u64 << 46) + (1 << 20))];
        let w = DmaWindows::covering(&pieces, &private).unwrap();
        assert_eq!(w.ranges().len(), PER_FUNCTION);
        // The VGA hole (the smallest gap) was joined; every piece is covered.
        assert!(w.contains(0x9_0000, 0x4_0000));
        for (b, e) in pieces {
            assert!(w.contains(b, e - b));
        }
        assert!(!w.contains(1 << 46, 1));
        // A private region in the only gaps that could be joined: refused.
        let tight: Vec<(u64, u64)> = (0..5u64).map(|i| (i << 20, (i << 20) + 0x1000)).collect();
        let between: Vec<(u64, u64)> = (0..4u64)
            .map(|i| ((i << 20) + 0x8000, (i << 20) + 0x9000))
            .collect();
        assert_eq!(
            DmaWindows::covering(&tight, &between),
            Err(WindowError::TooMany(5))
        );
    }
}
