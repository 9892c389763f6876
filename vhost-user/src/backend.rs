//! The vhost-user side: what the frontend (QEMU) asks of a vhost-user-blk backend, answered by
//! the device. vhost-user-backend runs the protocol and the vring bookkeeping; the data plane is
//! the device's: a kick rings the queue's doorbell (starting the queue on the device the first
//! time), the device's MSI-X vector for the queue signals our eventfd, which joins the
//! vhost-user worker's epoll and is forwarded to the vring's current call fd (the frontend may
//! swap call fds, e.g. while the guest masks the vector).

use crate::config::{offered, BlkConfigSpace};
use crate::device::{Device, VringSetup};
use std::io;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

/// The backend handed to `VhostUserDaemon` (cheap to clone: the device is shared).
#[derive(Clone)]
pub struct BlkBackend {
    device: Arc<Device>,
    /// The current connection's vrings (stop_vring hands the device's position back to them).
    vrings: Arc<Mutex<Vec<VringRwLock>>>,
}

impl std::fmt::Debug for BlkBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlkBackend")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl BlkBackend {
    pub fn new(device: Arc<Device>) -> Self {
        BlkBackend {
            device,
            vrings: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// The configuration space the device presents.
    pub fn config_space(&self) -> BlkConfigSpace {
        let o = &self.device.opts;
        BlkConfigSpace {
            capacity: self.device.capacity(),
            // Linux's and QEMU's rule: a request may use every descriptor but header and status.
            seg_max: u32::from(o.queue_size).saturating_sub(2).max(1),
            blk_size: 512,
            num_queues: o.queues,
            max_discard_sectors: u32::MAX >> 9,
            max_discard_seg: 16,
            max_write_zeroes_sectors: u32::MAX >> 9,
            max_write_zeroes_seg: 16,
        }
    }

    fn remember(&self, vrings: &[VringRwLock]) {
        let mut v = self.vrings.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() != vrings.len() {
            *v = vrings.to_vec();
        }
    }

    /// A new connection brings new vrings.
    pub(crate) fn forget_vrings(&self) {
        self.vrings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn ring_of(vring: &VringRwLock) -> VringSetup {
    let state = vring.get_ref();
    let q = state.get_queue();
    VringSetup {
        desc: q.desc_table(),
        avail: q.avail_ring(),
        used: q.used_ring(),
        size: q.size(),
        next_avail: q.next_avail(),
    }
}

impl VhostUserBackend for BlkBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        usize::from(self.device.opts.queues)
    }

    fn max_queue_size(&self) -> usize {
        usize::from(self.device.opts.queue_size)
    }

    fn features(&self) -> u64 {
        offered() | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn acked_features(&self, features: u64) {
        self.device.set_features(features);
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
    }

    fn set_event_idx(&self, _enabled: bool) {
        // The device reads EVENT_IDX from the acked features when it starts a queue.
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        self.config_space().read(offset, size)
    }

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        let snapshot: GuestMemoryMmap = mem.memory().deref().clone();
        self.device.set_memory(snapshot).map_err(io::Error::other)
    }

    fn reset_device(&self) {
        if let Err(e) = self.device.reset() {
            eprintln!("fpga-virtio vhost-user-blk: reset: {e}");
        }
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        // A fresh pair for every worker: a daemon per connection, and an exit event left
        // signalled must not stop the next one's worker.
        new_event_consumer_and_notifier(EventFlag::NONBLOCK).ok()
    }

    fn stop_vring(&self, queue_index: u32) -> io::Result<()> {
        let q = u16::try_from(queue_index).map_err(io::Error::other)?;
        let pos = self.device.stop_queue(q).map_err(io::Error::other)?;
        if let Some(pos) = pos {
            // The handler answers GET_VRING_BASE with the vring's next_avail: make it the
            // device's.
            let vrings = self.vrings.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = vrings.get(usize::from(q)) {
                v.set_queue_next_avail(pos.last_avail);
            }
        }
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        self.remember(vrings);
        let nq = self.device.opts.queues;
        if device_event < nq {
            let Some(vring) = vrings.get(usize::from(device_event)) else {
                return Ok(());
            };
            // A queue the device cannot run fails alone: say why and keep serving the others.
            if let Err(e) = self.device.kick(device_event, || ring_of(vring)) {
                eprintln!("fpga-virtio vhost-user-blk: queue {device_event}: {e}");
            }
            return Ok(());
        }
        // Our interrupt eventfds: data nq + 1 + q.
        let q = device_event.wrapping_sub(nq + 1);
        if let (Some(fd), Some(vring)) = (self.device.irqfd(q), vrings.get(usize::from(q))) {
            // Non-blocking: a spurious wakeup reads EAGAIN and signals nothing.
            if fd.read().is_ok() {
                vring.signal_used_queue()?;
            }
        }
        Ok(())
    }
}
