//! The virtio-blk configuration space (virtio 1.2, 5.2.4) the frontend reads with GET_CONFIG.

use virtio_bindings::virtio_blk as vb;

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
        let bytes = self.to_bytes();
        (0..size.min(256))
            .map(|k| {
                offset
                    .checked_add(k)
                    .and_then(|i| bytes.get(i as usize).copied())
                    .unwrap_or(0)
            })
            .collect()
    }
}

/// Features a vhost-user-blk frontend may take: the device's, less what only a PCI device gives
/// (ACCESS_PLATFORM: the frontend gives the guest no vIOMMU for us; NOTIFICATION_DATA and
/// ORDER_PLATFORM: QEMU's vhost-user does not pass them).
pub fn offered() -> u64 {
    use virtio_bindings::virtio_config as vc;
    fpga_virtio_driver::blk::features::OFFERED
        & !((1 << vc::VIRTIO_F_ACCESS_PLATFORM)
            | (1 << vc::VIRTIO_F_NOTIFICATION_DATA)
            | (1 << vc::VIRTIO_F_ORDER_PLATFORM))
}

const _: () = assert!(vb::VIRTIO_BLK_F_MQ == 12);

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
        use virtio_bindings::virtio_config as vc;
        let f = offered();
        assert_eq!(f & (1 << vc::VIRTIO_F_ACCESS_PLATFORM), 0);
        assert_ne!(f & (1 << vc::VIRTIO_F_VERSION_1), 0);
        assert_ne!(f & (1 << vb::VIRTIO_BLK_F_MQ), 0);
    }
}
