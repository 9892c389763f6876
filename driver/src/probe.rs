//! Probe: walk BAR0's linked list of self-describing blocks (TYPE / VERSION / NEXT) and check that
//! every block the driver needs is there in a major version it speaks.

use fpga_virtio_hw::{regs, Bar, IoError, RegisterIo};

/// A block found on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub offset: u64,
    pub type_id: u32,
    pub version: u32,
    /// The block's name when this driver knows its type.
    pub name: Option<&'static str>,
}

/// Blocks this driver knows: (name, type id, version it was written for, required).
pub const KNOWN_BLOCKS: &[(&str, u32, u32, bool)] = &[
    ("fw_id", regs::fw_id::TYPE_ID, regs::fw_id::VERSION_ID, true),
    (
        "global",
        regs::global::TYPE_ID,
        regs::global::VERSION_ID,
        true,
    ),
    (
        "functions",
        regs::functions::TYPE_ID,
        regs::functions::VERSION_ID,
        true,
    ),
    ("queue", regs::queue::TYPE_ID, regs::queue::VERSION_ID, true),
    (
        "punt_ring",
        regs::punt_ring::TYPE_ID,
        regs::punt_ring::VERSION_ID,
        true,
    ),
    (
        "cpl_ring",
        regs::cpl_ring::TYPE_ID,
        regs::cpl_ring::VERSION_ID,
        true,
    ),
    (
        // Tenant isolation rests on it: a device without DMA windows is refused.
        "dma_window",
        regs::dma_window::TYPE_ID,
        regs::dma_window::VERSION_ID,
        true,
    ),
    (
        "flow_table",
        regs::flow_table::TYPE_ID,
        regs::flow_table::VERSION_ID,
        false,
    ),
    (
        "counters",
        regs::counters::TYPE_ID,
        regs::counters::VERSION_ID,
        true,
    ),
    (
        "flash",
        regs::flash::TYPE_ID,
        regs::flash::VERSION_ID,
        false,
    ),
];

/// Most blocks a device can list; a longer walk means a corrupt or looping list.
pub const MAX_BLOCKS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("block list is not terminated after {MAX_BLOCKS} blocks (loop at {offset:#x}?)")]
    TooManyBlocks { offset: u64 },
    #[error("block at {offset:#x} points back to {next:#x}: the list must move forward")]
    BackwardLink { offset: u64, next: u64 },
    #[error(
        "block {name} is version {}.{}, this driver speaks {}.{}: refusing an unknown major version",
        found >> 16, found & 0xffff, expected >> 16, expected & 0xffff
    )]
    UnsupportedVersion {
        name: &'static str,
        found: u32,
        expected: u32,
    },
    #[error("the device has no {name} block (type {type_id:#010x}): not an fpga-virtio device, or a firmware without it")]
    MissingBlock { name: &'static str, type_id: u32 },
    #[error("block {name} appears twice (at {first:#x} and {second:#x})")]
    DuplicateBlock {
        name: &'static str,
        first: u64,
        second: u64,
    },
}

/// Walk the block list from BAR0 offset 0.
pub fn walk_blocks(io: &(impl RegisterIo + ?Sized)) -> Result<Vec<BlockInfo>, ProbeError> {
    let bar: Bar = regs::BAR_MGMT;
    let mut blocks = Vec::new();
    let mut offset = 0u64;
    loop {
        if blocks.len() == MAX_BLOCKS {
            return Err(ProbeError::TooManyBlocks { offset });
        }
        let type_id = io.read32(bar, offset)?;
        let version = io.read32(bar, offset + 4)?;
        let next = u64::from(io.read32(bar, offset + 8)?);
        let name = KNOWN_BLOCKS.iter().find(|k| k.1 == type_id).map(|k| k.0);
        blocks.push(BlockInfo {
            offset,
            type_id,
            version,
            name,
        });
        if next == 0 {
            return Ok(blocks);
        }
        if next <= offset {
            return Err(ProbeError::BackwardLink { offset, next });
        }
        offset = next;
    }
}

/// Walk the list and check it: every required block present once, every known block in the
/// major version this driver was built for. Unknown block types are kept (newer firmware may add
/// blocks) and ignored.
pub fn probe(io: &(impl RegisterIo + ?Sized)) -> Result<Vec<BlockInfo>, ProbeError> {
    let blocks = walk_blocks(io)?;
    for &(name, type_id, expected, required) in KNOWN_BLOCKS {
        let mut found = blocks.iter().filter(|b| b.type_id == type_id);
        match (found.next(), found.next()) {
            (None, _) if required => return Err(ProbeError::MissingBlock { name, type_id }),
            (None, _) => {}
            (Some(a), Some(b)) => {
                return Err(ProbeError::DuplicateBlock {
                    name,
                    first: a.offset,
                    second: b.offset,
                })
            }
            (Some(b), None) => {
                if b.version >> 16 != expected >> 16 {
                    return Err(ProbeError::UnsupportedVersion {
                        name,
                        found: b.version,
                        expected,
                    });
                }
            }
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fpga_virtio_hw::mock::MockRegisters;

    /// Overrides some BAR0 words of an inner device.
    struct Patched<'a> {
        inner: &'a MockRegisters,
        patches: Vec<(u64, u32)>,
    }

    impl RegisterIo for Patched<'_> {
        fn read32(&self, bar: Bar, offset: u64) -> Result<u32, IoError> {
            if bar == regs::BAR_MGMT {
                if let Some((_, v)) = self.patches.iter().find(|p| p.0 == offset) {
                    return Ok(*v);
                }
            }
            self.inner.read32(bar, offset)
        }
        fn write32(&self, bar: Bar, offset: u64, value: u32) -> Result<(), IoError> {
            self.inner.write32(bar, offset, value)
        }
    }

    #[test]
    fn walks_every_block_of_the_map() {
        let m = MockRegisters::new();
        let blocks = probe(&m).unwrap();
        let names: Vec<_> = blocks.iter().map(|b| b.name.unwrap()).collect();
        assert_eq!(
            names,
            [
                "fw_id",
                "global",
                "functions",
                "queue",
                "punt_ring",
                "cpl_ring",
                "dma_window",
                "flow_table",
                "counters",
                "flash"
            ]
        );
        assert_eq!(blocks[3].offset, regs::queue::BASE);
    }

    #[test]
    fn refuses_an_unknown_major_naming_both_versions() {
        let m = MockRegisters::new();
        let p = Patched {
            inner: &m,
            patches: vec![(regs::queue::BASE + 4, 0x0002_0000)],
        };
        let err = probe(&p).unwrap_err().to_string();
        assert!(
            err.contains("queue is version 2.0, this driver speaks 1.0"),
            "{err}"
        );
        // A newer minor is fine.
        let p = Patched {
            inner: &m,
            patches: vec![(regs::queue::BASE + 4, 0x0001_0007)],
        };
        probe(&p).unwrap();
    }

    #[test]
    fn corrupt_lists_are_errors() {
        let m = MockRegisters::new();
        // NEXT of the global block points back to 0.
        let p = Patched {
            inner: &m,
            patches: vec![(regs::global::BASE + 8, 0)],
        };
        assert!(matches!(
            probe(&p),
            Err(ProbeError::MissingBlock {
                name: "functions",
                ..
            })
        ));
        let p = Patched {
            inner: &m,
            patches: vec![(regs::global::BASE + 8, 0x40)],
        };
        assert!(matches!(probe(&p), Err(ProbeError::BackwardLink { .. })));
        // NEXT pointing outside the BAR.
        let p = Patched {
            inner: &m,
            patches: vec![(regs::global::BASE + 8, 0x2_0000)],
        };
        assert!(matches!(
            probe(&p),
            Err(ProbeError::Io(IoError::OutOfRange { .. }))
        ));
        // Not our device at all.
        let p = Patched {
            inner: &m,
            patches: vec![(0, 0x1234_5678), (8, 0)],
        };
        assert!(matches!(
            probe(&p),
            Err(ProbeError::MissingBlock { name: "fw_id", .. })
        ));
    }
}
