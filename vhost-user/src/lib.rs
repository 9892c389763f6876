//! vhost-user-blk served by the fpga-virtio device: QEMU's guest sees an ordinary virtio-blk
//! disk; its virtqueues are handed to the (simulated) FPGA, which DMAs guest memory directly,
//! the way DPDK's IFC vDPA driver hands a VM's rings to its FPGA.
//!
//! - [`device`]: the simulated FPGA, the disk behind its storage port, the runtime and the
//!   thread that clocks the model; guest memory mapped at IOVA = GPA.
//! - [`backend`]: the vhost-user protocol side (vhost-user-backend): features, config space,
//!   memory table, kicks to doorbells, device interrupts to call fds, stop with saved state.
//! - [`config`]: the virtio-blk configuration space.
//!
//! `fpga-virtio vhost-user-blk --socket PATH --disk FILE` runs [`serve`]. docs/vhost-user.md.

pub mod backend;
pub mod config;
pub mod device;

pub use backend::BlkBackend;
pub use device::{Device, DeviceError, DeviceOptions};

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use vhost::vhost_user::{Error as VhostUserError, Listener};
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("vhost-user: {0}")]
    Daemon(vhost_user_backend::Error),
    #[error("listening on the socket: {0}")]
    Listen(vhost::vhost_user::Error),
    #[error("registering the device's interrupt eventfds: {0}")]
    Register(std::io::Error),
}

/// Serve `device` on the vhost-user socket at `socket`: one frontend connection at a time,
/// accepting the next one when a frontend goes away (QEMU reconnecting, a new VM) or broke the
/// protocol, until `connections` connections were served (None: forever). Errors are those of
/// setting up a connection, not of what a frontend sent.
pub fn serve(
    device: Arc<Device>,
    socket: &Path,
    connections: Option<usize>,
) -> Result<(), ServeError> {
    let backend = BlkBackend::new(device.clone());
    let nq = u64::from(device.opts.queues);
    let mut served = 0usize;
    // One listening socket for the backend's life: a frontend that connects while the previous
    // connection is being torn down waits in the backlog instead of being reset.
    let mut listener = Listener::new(socket, true).map_err(ServeError::Listen)?;
    loop {
        backend.forget_vrings();
        let mut daemon = VhostUserDaemon::new(
            "fpga-virtio-blk".into(),
            backend.clone(),
            GuestMemoryAtomic::new(GuestMemoryMmap::new()),
        )
        .map_err(ServeError::Daemon)?;
        let handlers = daemon.get_epoll_handlers();
        for q in 0..device.opts.queues {
            if let (Some(fd), Some(h)) = (device.irqfd(q), handlers.first()) {
                h.register_listener(fd.as_raw_fd(), EventSet::IN, nq + 1 + u64::from(q))
                    .map_err(ServeError::Register)?;
            }
        }
        let result = daemon.start(&mut listener).and_then(|()| daemon.wait());
        // Dropping the daemon stops its vring workers.
        drop(daemon);
        // The frontend is gone: stop the device's queues. A frontend that comes back tells us
        // where its rings are again.
        if let Err(e) = device.reset() {
            eprintln!("fpga-virtio vhost-user-blk: stopping the queues: {e}");
        }
        // A frontend that broke the protocol (or went away mid-message) costs its own
        // connection only: say why and serve the next one.
        match result {
            Ok(())
            | Err(vhost_user_backend::Error::HandleRequest(VhostUserError::Disconnected)) => {}
            Err(e) => eprintln!("fpga-virtio vhost-user-blk: connection ended: {e}"),
        }
        served += 1;
        if connections.is_some_and(|n| served >= n) {
            return Ok(());
        }
    }
}
