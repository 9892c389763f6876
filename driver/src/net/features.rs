//! virtio-net's features and configuration space (virtio 1.x, 5.1.3 and 5.1.4) as this device
//! offers them.

use crate::virtq::queue::QueueInfo;
use virtio_bindings::virtio_config as vc;
use virtio_bindings::virtio_net as vn;
use virtio_bindings::virtio_ring as vr;

pub const F_CSUM: u32 = vn::VIRTIO_NET_F_CSUM;
pub const F_MTU: u32 = vn::VIRTIO_NET_F_MTU;
pub const F_MAC: u32 = vn::VIRTIO_NET_F_MAC;
pub const F_HOST_TSO4: u32 = vn::VIRTIO_NET_F_HOST_TSO4;
pub const F_HOST_TSO6: u32 = vn::VIRTIO_NET_F_HOST_TSO6;
pub const F_HOST_ECN: u32 = vn::VIRTIO_NET_F_HOST_ECN;
pub const F_HOST_USO: u32 = vn::VIRTIO_NET_F_HOST_USO;
pub const F_STATUS: u32 = vn::VIRTIO_NET_F_STATUS;
pub const F_GUEST_CSUM: u32 = vn::VIRTIO_NET_F_GUEST_CSUM;
pub const F_MRG_RXBUF: u32 = vn::VIRTIO_NET_F_MRG_RXBUF;
pub const F_CTRL_VQ: u32 = vn::VIRTIO_NET_F_CTRL_VQ;
pub const F_CTRL_RX: u32 = vn::VIRTIO_NET_F_CTRL_RX;
pub const F_MQ: u32 = vn::VIRTIO_NET_F_MQ;
pub const F_CTRL_MAC_ADDR: u32 = vn::VIRTIO_NET_F_CTRL_MAC_ADDR;

/// What a net function offers: the TX path in full (checksum offload, TSO over IPv4 and IPv6
/// with ECN, USO — the FPGA sends plain frames and checksums, the CPU segments), the RX path's
/// checksum report (GUEST_CSUM) and mergeable buffers, multiqueue with RSS and the control
/// queue (receive modes, MAC address and table), MAC, MTU and link status. Not offered: guest
/// TSO/USO (the device never hands the guest a frame larger than the MTU).
pub const OFFERED: u64 = (1 << vc::VIRTIO_F_VERSION_1)
    | (1 << vc::VIRTIO_F_ACCESS_PLATFORM)
    | (1 << vr::VIRTIO_RING_F_EVENT_IDX)
    | (1 << vr::VIRTIO_RING_F_INDIRECT_DESC)
    | (1 << F_CSUM)
    | (1 << F_MTU)
    | (1 << F_MAC)
    | (1 << F_STATUS)
    | (1 << F_HOST_TSO4)
    | (1 << F_HOST_TSO6)
    | (1 << F_HOST_ECN)
    | (1 << F_HOST_USO)
    | (1 << F_GUEST_CSUM)
    | (1 << F_MRG_RXBUF)
    | (1 << F_CTRL_VQ)
    | (1 << F_CTRL_RX)
    | (1 << F_MQ)
    | (1 << F_CTRL_MAC_ADDR);

/// `virtio_net_config.status`: the link is up.
pub const S_LINK_UP: u16 = vn::VIRTIO_NET_S_LINK_UP as u16;

/// Bytes of the configuration space this device presents (mac, status, max_virtqueue_pairs,
/// mtu).
pub const CONFIG_SPACE_BYTES: usize = 12;

/// A net function's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub mac: [u8; 6],
    /// The MTU (config space `mtu`): frames up to MTU + 18 bytes go on the wire.
    pub mtu: u16,
    /// RX/TX queue pairs (config space `max_virtqueue_pairs`).
    pub queue_pairs: u16,
}

impl NetConfig {
    pub fn new(mac: [u8; 6], mtu: u16, queue_pairs: u16) -> Self {
        NetConfig {
            mac,
            mtu,
            queue_pairs,
        }
    }

    /// The longest frame sent as it is: MTU + an Ethernet header + one 802.1Q tag.
    pub fn max_frame(&self) -> usize {
        usize::from(self.mtu) + 18
    }

    /// The configuration space's bytes (little-endian, as a driver reads them).
    pub fn config_space(&self) -> [u8; CONFIG_SPACE_BYTES] {
        let mut b = [0u8; CONFIG_SPACE_BYTES];
        b[..6].copy_from_slice(&self.mac);
        b[6..8].copy_from_slice(&S_LINK_UP.to_le_bytes());
        b[8..10].copy_from_slice(&self.queue_pairs.to_le_bytes());
        b[10..12].copy_from_slice(&self.mtu.to_le_bytes());
        b
    }
}

/// What a queue of a net function is, by its virtio queue number (5.1.2: receiveq1,
/// transmitq1, ..., receiveqN, transmitqN, then controlq).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Rx(u16),
    Tx(u16),
    Ctrl,
    None,
}

pub fn role(cfg: &NetConfig, vq: u16) -> Role {
    if vq < 2 * cfg.queue_pairs {
        if vq.is_multiple_of(2) {
            Role::Rx(vq / 2)
        } else {
            Role::Tx(vq / 2)
        }
    } else if vq == 2 * cfg.queue_pairs {
        Role::Ctrl
    } else {
        Role::None
    }
}

/// The queue's role from a [`QueueInfo`] (its `vq`).
pub fn role_of(cfg: &NetConfig, info: &QueueInfo) -> Role {
    role(cfg, info.vq)
}
