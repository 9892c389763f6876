//! vhost-user backends served by the fpga-virtio device: QEMU's guest sees an ordinary virtio
//! device; its virtqueues are handed to the (simulated) FPGA, which DMAs guest memory directly,
//! the way DPDK's IFC vDPA driver hands a VM's rings to its FPGA.
//!
//! Shared by every device type:
//! - [`device`]: the card (simulated or over VFIO), the runtime and the thread that clocks the
//!   model; guest memory mapped at IOVA = GPA; the in-flight region.
//! - [`backend`]: the vhost-user protocol side (our handler of the `vhost` crate's backend
//!   request trait): features, config space, memory table, kicks to doorbells, device
//!   interrupts to call fds, stop with saved state, the in-flight region.
//! - [`shared_fd`]: checks of the fds a frontend passes; `hw`: the hardware behind the device.
//! - [`device_type`]: what a device type adds (features, configuration space, function).
//!
//! Device types: [`blk`] (vhost-user-blk); vhost-user-net goes beside it.
//!
//! The simulator is the `sim` feature (on by default): without it the crate builds and serves
//! cards over VFIO on a machine without Verilator.
//!
//! `fpga-virtio vhost-user-blk --socket PATH --disk FILE` runs [`serve`]. docs/vhost-user.md.

pub mod backend;
pub mod blk;
pub mod device;
pub mod device_type;
mod hw;
pub mod shared_fd;

pub use backend::Backend;
pub use blk::Blk;
pub use device::{Device, DeviceError, DeviceOptions};
pub use device_type::DeviceType;

use backend::Events;
use std::path::Path;
use std::sync::{Arc, Mutex};
use vhost::vhost_user::{BackendReqHandler, Error as VhostUserError, Listener};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listening on the socket: {0}")]
    Listen(vhost::vhost_user::Error),
    #[error("accepting a frontend: {0}")]
    Accept(vhost::vhost_user::Error),
    #[error("the connection's event thread: {0}")]
    Events(std::io::Error),
    #[error("setting up the connection: {0}")]
    Socket(std::io::Error),
    #[error("{0}: not a socket; refusing to replace it (give --socket a path that is free or a stale socket)")]
    NotASocket(std::path::PathBuf),
    #[error("{0}: another backend is listening there")]
    SocketInUse(std::path::PathBuf),
}

/// Make `path` free for our listening socket: nothing there, or a stale socket nobody listens
/// on (removed). Anything else (a file, a directory, a live backend's socket) is left alone and
/// is an error.
pub fn claim_socket_path(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServeError::Socket(e)),
        Ok(m) if !m.file_type().is_socket() => Err(ServeError::NotASocket(path.to_owned())),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(ServeError::SocketInUse(path.to_owned())),
            Err(_) => std::fs::remove_file(path).map_err(ServeError::Socket),
        },
    }
}

/// How long a reply may wait for a frontend to take it: one that stops reading its socket gets
/// its connection ended instead of holding the backend forever.
pub const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve `device` on the vhost-user socket at `socket`: one frontend connection at a time,
/// accepting the next one when a frontend goes away (QEMU reconnecting, a new VM) or broke the
/// protocol, until `connections` connections were served (None: forever). Errors are those of
/// setting up a connection, not of what a frontend sent.
pub fn serve(
    device: Arc<Device>,
    socket: &Path,
    connections: Option<usize>,
) -> Result<(), ServeError> {
    let mut served = 0usize;
    // One listening socket for the backend's life: a frontend that connects while the previous
    // connection is being torn down waits in the backlog instead of being reset.
    claim_socket_path(socket)?;
    let listener = Listener::new(socket, false).map_err(ServeError::Listen)?;
    loop {
        let stream = loop {
            match listener.accept() {
                Ok(Some(c)) => break c,
                Ok(None) => continue,
                Err(e) => return Err(ServeError::Accept(e)),
            }
        };
        let result = serve_stream(&device, stream)?;
        // A frontend that broke the protocol (or went away mid-message) costs its own
        // connection only: say why and serve the next one.
        if !matches!(result, VhostUserError::Disconnected) {
            eprintln!("fpga-virtio vhost-user: connection ended: {result}");
        }
        served += 1;
        if connections.is_some_and(|n| served >= n) {
            return Ok(());
        }
    }
}

/// Serve one frontend connection on `stream` until it ends; returns why it ended (Disconnected
/// for a frontend that went away cleanly). The device's queues are stopped afterwards. What the
/// frontend sent never makes this an `Err`: that is for failures to set the connection up.
pub fn serve_stream(
    device: &Arc<Device>,
    stream: std::os::unix::net::UnixStream,
) -> Result<VhostUserError, ServeError> {
    let events = Events::new(device.clone()).map_err(ServeError::Events)?;
    let handler = Arc::new(Mutex::new(Backend::new(device.clone(), events.clone())));
    let mut conn = BackendReqHandler::from_stream(stream, handler);
    // A frontend may stay silent between requests as long as it likes, but one that stops
    // taking replies gets its socket shut down by the event thread's watchdog (the vhost crate
    // retries a timed-out send forever, so a socket timeout would not do).
    events.watch(conn.try_clone_connection().map_err(ServeError::Socket)?);
    let thread = events.spawn().map_err(ServeError::Events)?;
    let result = loop {
        if let Err(e) = conn.handle_request() {
            break e;
        }
    };
    events.stop();
    let _ = thread.join();
    // The frontend is gone: stop the device's queues. A frontend that comes back tells us where
    // its rings are again.
    if let Err(e) = device.reset() {
        eprintln!("fpga-virtio vhost-user: stopping the queues: {e}");
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_path_is_claimed_only_when_free_or_stale() {
        let dir = std::env::temp_dir().join(format!("fv-claim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("precious");
        std::fs::write(&file, b"keep me").unwrap();
        assert!(matches!(
            claim_socket_path(&file),
            Err(ServeError::NotASocket(_))
        ));
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
        let sock = dir.join("live.sock");
        let live = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(matches!(
            claim_socket_path(&sock),
            Err(ServeError::SocketInUse(_))
        ));
        drop(live); // the socket file stays, nobody listens: stale
        claim_socket_path(&sock).unwrap();
        assert!(!sock.exists());
        claim_socket_path(&dir.join("free")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
