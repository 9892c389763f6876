//! vhost-user-blk: the virtio-blk device type on the shared vhost-user plumbing. Its features,
//! its configuration space (virtio 1.2, 5.2.4) the frontend reads with GET_CONFIG, and the
//! function the card serves (the driver's `blk`).

use crate::device_type::{config_read, DeviceType};
use fpga_virtio_driver::blk::{self, BlkConfig, BlkFunction};
use fpga_virtio_driver::device::Function;
use fpga_virtio_driver::virtq::DmaWindows;
use fpga_virtio_storage::BlockStore;
use std::sync::Arc;
use virtio_bindings::virtio_blk as vb;
use virtio_bindings::virtio_config as vc;

/// Size of `struct virtio_blk_config` up to and including `write_zeroes_may_unmap` and its
/// padding (what Linux and QEMU read).
pub const CONFIG_SIZE: usize = 60;

/// What the device says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkConfigSpace {
    /// Capacity in 512-byte sectors.
    pub capacity: u64,
    /// Largest data segment (bytes).
    pub size_max: u32,
    /// Most segments (descriptors) in one request's data.
    pub seg_max: u32,
    pub blk_size: u32,
    pub num_queues: u16,
    pub max_discard_sectors: u32,
    pub max_discard_seg: u32,
    pub max_write_zeroes_sectors: u32,
    pub max_write_zeroes_seg: u32,
}

impl BlkConfigSpace {
    /// The bytes, little-endian, at their offsets in `struct virtio_blk_config`.
    pub fn to_bytes(&self) -> [u8; CONFIG_SIZE] {
        let mut b = [0u8; CONFIG_SIZE];
        let mut put = |off: usize, bytes: &[u8]| b[off..off + bytes.len()].copy_from_slice(bytes);
        put(0, &self.capacity.to_le_bytes());
        put(8, &self.size_max.to_le_bytes());
        put(12, &self.seg_max.to_le_bytes());
        // geometry (16..20) unused: no VIRTIO_BLK_F_GEOMETRY.
        put(20, &self.blk_size.to_le_bytes());
        // topology (24..32) unused: no VIRTIO_BLK_F_TOPOLOGY; writeback (32): no CONFIG_WCE.
        put(34, &self.num_queues.to_le_bytes());
        put(36, &self.max_discard_sectors.to_le_bytes());
        put(40, &self.max_discard_seg.to_le_bytes());
        // discard_sector_alignment, in sectors.
        put(44, &1u32.to_le_bytes());
        put(48, &self.max_write_zeroes_sectors.to_le_bytes());
        put(52, &self.max_write_zeroes_seg.to_le_bytes());
        // write_zeroes_may_unmap: our stores zero a discarded range, so unmapping is fine.
        put(56, &[1]);
        b
    }

    /// `size` bytes at `offset` (zeros past the end, as a device with a shorter config reads;
    /// at most 256 bytes, the vhost-user limit).
    pub fn read(&self, offset: u32, size: u32) -> Vec<u8> {
        config_read(&self.to_bytes(), offset, size)
    }
}

/// Features a vhost-user-blk frontend may take: the device's, less what only a PCI device gives
/// (ACCESS_PLATFORM: the frontend gives the guest no vIOMMU for us; NOTIFICATION_DATA and
/// ORDER_PLATFORM: QEMU's vhost-user does not pass them).
pub fn offered() -> u64 {
    blk::features::OFFERED
        & !((1 << vc::VIRTIO_F_ACCESS_PLATFORM)
            | (1 << vc::VIRTIO_F_NOTIFICATION_DATA)
            | (1 << vc::VIRTIO_F_ORDER_PLATFORM))
}

const _: () = assert!(vb::VIRTIO_BLK_F_MQ == 12);

/// The virtio-blk device type: a disk.
#[derive(Clone)]
pub struct Blk {
    pub store: Arc<dyn BlockStore>,
    /// GET_ID answer.
    pub id: String,
}

impl std::fmt::Debug for Blk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blk")
            .field("sectors", &self.capacity())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Blk {
    /// Capacity in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.store.size() / 512
    }

    /// The configuration space of a disk served on `queues` queues of up to `queue_size`
    /// entries.
    pub fn config_space(&self, queues: u16, queue_size: u16) -> BlkConfigSpace {
        let limits = BlkConfig::new(0, "");
        BlkConfigSpace {
            capacity: self.capacity(),
            // What the engines take: a request inside the chain byte limit (MAX_CHAIN_BYTES).
            size_max: blk::engine::SIZE_MAX,
            // Linux's and QEMU's rule: a request may use every descriptor but header and status.
            seg_max: u32::from(queue_size)
                .saturating_sub(2)
                .clamp(1, blk::engine::SEG_MAX),
            blk_size: 512,
            num_queues: queues,
            max_discard_sectors: limits.max_discard_sectors,
            max_discard_seg: limits.max_discard_seg,
            max_write_zeroes_sectors: limits.max_write_zeroes_sectors,
            max_write_zeroes_seg: limits.max_discard_seg,
        }
    }
}

impl DeviceType for Blk {
    fn name(&self) -> &'static str {
        "vhost-user-blk"
    }

    fn features(&self) -> u64 {
        offered()
    }

    fn config(&self, queues: u16, queue_size: u16, offset: u32, size: u32) -> Vec<u8> {
        self.config_space(queues, queue_size).read(offset, size)
    }

    fn function(&self, func: u8, features: u64, windows: DmaWindows) -> Function {
        let mut config = BlkConfig::new(self.capacity(), &self.id);
        // The device's DMA does go through an IOMMU (ours, mapping IOVA = GPA), so the
        // function's feature register says ACCESS_PLATFORM even though a vhost-user frontend's
        // guest does not negotiate it (it has no vIOMMU for this device).
        config.features = features & blk::features::OFFERED | (1 << vc::VIRTIO_F_ACCESS_PLATFORM);
        BlkFunction {
            func,
            store: self.store.clone(),
            config,
            windows,
        }
        .into()
    }

    fn store(&self) -> Option<Arc<dyn BlockStore>> {
        Some(self.store.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_sit_where_the_spec_puts_them() {
        let c = BlkConfigSpace {
            capacity: 0x1122_3344_5566,
            size_max: 0x1_0000,
            seg_max: 254,
            blk_size: 512,
            num_queues: 4,
            max_discard_sectors: 0x10_0000,
            max_discard_seg: 16,
            max_write_zeroes_sectors: 0x10_0000,
            max_write_zeroes_seg: 16,
        };
        let b = c.to_bytes();
        assert_eq!(
            u64::from_le_bytes(b[0..8].try_into().unwrap()),
            0x1122_3344_5566
        );
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 0x1_0000);
        assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 254);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 512);
        assert_eq!(u16::from_le_bytes(b[34..36].try_into().unwrap()), 4);
        assert_eq!(u32::from_le_bytes(b[40..44].try_into().unwrap()), 16);
        assert_eq!(c.read(34, 2), vec![4, 0]);
        assert_eq!(c.read(58, 4), vec![0, 0, 0, 0]);
        assert_eq!(c.read(u32::MAX, 2), vec![0, 0]);
        assert_eq!(c.read(0, u32::MAX).len(), 256);
    }

    #[test]
    fn vhost_user_offers_no_platform_features() {
        let f = offered();
        assert_eq!(f & (1 << vc::VIRTIO_F_ACCESS_PLATFORM), 0);
        assert_ne!(f & (1 << vc::VIRTIO_F_VERSION_1), 0);
        assert_ne!(f & (1 << vb::VIRTIO_BLK_F_MQ), 0);
    }
}
