//! virtio-blk feature negotiation for a function.

use crate::device::SetupError;
use virtio_bindings::virtio_blk as vb;
use virtio_bindings::virtio_config as vc;
use virtio_bindings::virtio_ring as vr;

/// Features the device offers: the driver may take any subset that includes VERSION_1 and
/// ACCESS_PLATFORM (all DMA goes through the IOMMU; a driver that cannot honour that is refused,
/// as the virtio spec asks).
pub const OFFERED: u64 = (1 << vc::VIRTIO_F_VERSION_1)
    | (1 << vc::VIRTIO_F_ACCESS_PLATFORM)
    | (1 << vc::VIRTIO_F_ORDER_PLATFORM)
    | (1 << vc::VIRTIO_F_NOTIFICATION_DATA)
    | (1 << vr::VIRTIO_RING_F_EVENT_IDX)
    | (1 << vr::VIRTIO_RING_F_INDIRECT_DESC)
    | (1 << vb::VIRTIO_BLK_F_SIZE_MAX)
    | (1 << vb::VIRTIO_BLK_F_SEG_MAX)
    | (1 << vb::VIRTIO_BLK_F_BLK_SIZE)
    | (1 << vb::VIRTIO_BLK_F_FLUSH)
    | (1 << vb::VIRTIO_BLK_F_DISCARD)
    | (1 << vb::VIRTIO_BLK_F_WRITE_ZEROES)
    | (1 << vb::VIRTIO_BLK_F_MQ);

/// Check the driver's accepted features against what the device offers (see
/// [`crate::device::negotiate`]).
pub fn negotiate(driver: u64) -> Result<u64, SetupError> {
    crate::device::negotiate(OFFERED, driver)
}

/// Whether `features` has `bit`.
pub fn has(features: u64, bit: u32) -> bool {
    features & (1 << bit) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(OFFERED), Ok(OFFERED));
        let min = (1 << vc::VIRTIO_F_VERSION_1) | (1 << vc::VIRTIO_F_ACCESS_PLATFORM);
        assert_eq!(negotiate(min), Ok(min));
        assert_eq!(
            negotiate(1 << vc::VIRTIO_F_ACCESS_PLATFORM),
            Err(SetupError::FeatureRequired(vc::VIRTIO_F_VERSION_1))
        );
        assert_eq!(
            negotiate(min | 1 << 63),
            Err(SetupError::FeaturesNotOffered(1 << 63))
        );
    }
}
