//! The control queue (virtio 1.x 5.1.6.5), always served by the CPU: receive filtering
//! (PROMISC, ALLMULTI), MAC (TABLE_SET, ADDR_SET), multiqueue (VQ_PAIRS_SET). A command is
//! `class`, `command`, its data (device-readable), then one device-writable `ack` byte
//! (VIRTIO_NET_OK 0, VIRTIO_NET_ERR 1); anything else is answered ERR, a chain with no room
//! for the ack gets no answer.

use super::switch::Switch;
use virtio_bindings::virtio_net as vn;

pub const OK: u8 = vn::VIRTIO_NET_OK as u8;
pub const ERR: u8 = vn::VIRTIO_NET_ERR as u8;

/// The largest command read (a MAC table of a few thousand entries).
pub const MAX_COMMAND: usize = 64 << 10;

fn mac(b: &[u8]) -> Option<[u8; 6]> {
    b.get(..6)?.try_into().ok()
}

/// One MAC table of TABLE_SET: a little-endian u32 count, then the addresses. Returns the
/// addresses and the bytes used.
fn table(b: &[u8]) -> Option<(Vec<[u8; 6]>, usize)> {
    let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let end = n.checked_mul(6)?.checked_add(4)?;
    let body = b.get(4..end)?;
    Some((body.chunks_exact(6).filter_map(mac).collect(), end))
}

/// Carry out the command in `cmd` (class, command, data) for function `func`.
pub fn execute(switch: &Switch, func: u8, cmd: &[u8]) -> u8 {
    let (Some(&class), Some(&command)) = (cmd.first(), cmd.get(1)) else {
        return ERR;
    };
    let data = &cmd[2..];
    let ok = match (u32::from(class), u32::from(command)) {
        (
            vn::VIRTIO_NET_CTRL_RX,
            c @ (vn::VIRTIO_NET_CTRL_RX_PROMISC | vn::VIRTIO_NET_CTRL_RX_ALLMULTI),
        ) => match data.first() {
            Some(&on) => {
                let on = on != 0;
                if c == vn::VIRTIO_NET_CTRL_RX_PROMISC {
                    switch.set_rx_mode(func, Some(on), None);
                } else {
                    switch.set_rx_mode(func, None, Some(on));
                }
                true
            }
            None => false,
        },
        (vn::VIRTIO_NET_CTRL_MAC, vn::VIRTIO_NET_CTRL_MAC_ADDR_SET) => match mac(data) {
            Some(m) => {
                switch.set_mac(func, m);
                true
            }
            None => false,
        },
        (vn::VIRTIO_NET_CTRL_MAC, vn::VIRTIO_NET_CTRL_MAC_TABLE_SET) => {
            match table(data).and_then(|(uni, n)| Some((uni, table(&data[n..])?.0))) {
                Some((mut uni, multi)) => {
                    uni.extend(multi);
                    switch.set_filters(func, uni);
                    true
                }
                None => false,
            }
        }
        (vn::VIRTIO_NET_CTRL_MQ, vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) => match data.get(..2) {
            Some(b) => switch.set_pairs(func, u16::from_le_bytes([b[0], b[1]])),
            None => false,
        },
        _ => false,
    };
    if ok {
        OK
    } else {
        ERR
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fpga_virtio_wire::Wire;
    use std::sync::Arc;

    #[test]
    fn commands_and_refusals() {
        let sw = Switch::new(Arc::new(Wire::default()));
        sw.attach(0, [2, 0, 0, 0, 0, 1], 4);
        let mq = |n: u16| {
            let mut c = vec![
                vn::VIRTIO_NET_CTRL_MQ as u8,
                vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET as u8,
            ];
            c.extend_from_slice(&n.to_le_bytes());
            c
        };
        assert_eq!(execute(&sw, 0, &mq(2)), OK);
        assert_eq!(execute(&sw, 0, &mq(0)), ERR);
        assert_eq!(execute(&sw, 0, &mq(5)), ERR);
        assert_eq!(execute(&sw, 0, &[0, 0, 1]), OK, "promisc on");
        assert_eq!(execute(&sw, 0, &[0, 0]), ERR, "no data");
        assert_eq!(execute(&sw, 0, &[1, 1, 2, 0, 0, 0, 0, 9]), OK, "MAC set");
        let mut t = vec![1, 0];
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&[2, 0, 0, 0, 0, 7]);
        t.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(execute(&sw, 0, &t), OK, "table set");
        t[2] = 200;
        assert_eq!(execute(&sw, 0, &t), ERR, "a count past the data");
        assert_eq!(execute(&sw, 0, &[9, 9]), ERR, "unknown class");
        assert_eq!(execute(&sw, 0, &[]), ERR);
    }
}
