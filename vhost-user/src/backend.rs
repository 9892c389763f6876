//! The vhost-user side: what the frontend (QEMU) asks of a vhost-user backend, answered by the
//! device; the device type ([`crate::device_type::DeviceType`]) gives the features and the
//! configuration space, the rest is the same for every type. The `vhost` crate parses the protocol; this is our handler of its backend request
//! trait (vhost-user-backend 0.24 hides its own and answers GET_INFLIGHT_FD "not supported").
//!
//! The data plane is the device's: a kick rings the queue's doorbell (starting the queue on the
//! device the first time), the device's MSI-X vector for the queue signals our eventfd, which
//! the connection's event thread forwards to the vring's current call fd (the frontend may swap
//! call fds, e.g. while the guest masks the vector). In-flight tracking
//! (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): the shared region the frontend keeps across backend
//! restarts holds each queue's done log, which the device writes as it publishes (see
//! `device.rs` and the driver's `runtime::done_log`).

use crate::device::{Device, VringSetup};
use crate::shared_fd;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;
use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVirtioFeatures,
    VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{
    Error as VhostUserError, GpuBackend, Result as VhostUserResult, VhostUserBackendReqHandlerMut,
};
use vm_memory::{GuestAddress, GuestMemoryMmap, GuestRegionMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Protocol features we offer.
pub fn protocol_features() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::CONFIG
        | VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::INFLIGHT_SHMFD
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update of these states completes before the lock is released.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn internal(e: impl std::fmt::Display) -> VhostUserError {
    VhostUserError::ReqHandlerError(io::Error::other(e.to_string()))
}

/// Per queue, what the event thread needs: where the rings are (for the device's first kick),
/// the kick fd it watches and the call fd it signals.
#[derive(Default)]
struct QueueEvents {
    setup: Option<VringSetup>,
    kick: Option<File>,
    /// The kick fd is in the epoll set (the ring is started and enabled).
    watched: bool,
    call: Option<File>,
    /// The frontend's vring error fd (SET_VRING_ERR): signalled when the queue stops on an
    /// error.
    err: Option<File>,
}

/// The connection's event thread: kicks to doorbells, device interrupts to call fds.
pub(crate) struct Events {
    device: Arc<Device>,
    epoll: Epoll,
    exit: EventFd,
    queues: Mutex<Vec<QueueEvents>>,
    /// The connection's socket, for the reply watchdog.
    conn: Mutex<Option<UnixStream>>,
}

/// Bytes written to a Unix socket that its peer has not read yet.
fn unread(sock: &UnixStream) -> io::Result<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) on a socket fd we own writes one int to the pointer we give,
    // which points at a live c_int.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

const EXIT: u64 = u64::MAX;

impl Events {
    /// Event data: q for queue q's kick, IRQ + q for its interrupt eventfd, ERR + q for its
    /// error eventfd.
    const IRQ: u64 = 1 << 32;
    const ERR: u64 = 2 << 32;

    pub(crate) fn new(device: Arc<Device>) -> io::Result<Arc<Events>> {
        let epoll = Epoll::new()?;
        let exit = EventFd::new(EFD_NONBLOCK)?;
        epoll.ctl(
            ControlOperation::Add,
            exit.as_raw_fd(),
            EpollEvent::new(EventSet::IN, EXIT),
        )?;
        let nq = device.opts.queues;
        for q in 0..nq {
            if let Some(fd) = device.irqfd(q) {
                epoll.ctl(
                    ControlOperation::Add,
                    fd.as_raw_fd(),
                    EpollEvent::new(EventSet::IN, Self::IRQ + u64::from(q)),
                )?;
            }
            if let Some(fd) = device.errfd(q) {
                epoll.ctl(
                    ControlOperation::Add,
                    fd.as_raw_fd(),
                    EpollEvent::new(EventSet::IN, Self::ERR + u64::from(q)),
                )?;
            }
        }
        Ok(Arc::new(Events {
            device,
            epoll,
            exit,
            queues: Mutex::new((0..nq).map(|_| QueueEvents::default()).collect()),
            conn: Mutex::new(None),
        }))
    }

    /// Watch the connection's socket: replies the frontend leaves unread for
    /// [`crate::REPLY_TIMEOUT`] end the connection (the socket is shut down, which fails the
    /// handler's blocked send).
    pub(crate) fn watch(&self, sock: UnixStream) {
        *lock(&self.conn) = Some(sock);
    }

    /// The watchdog's check: (unread bytes, since when they have not gone down).
    fn check_replies(&self, stuck: &mut Option<(i32, Instant)>) {
        let conn = lock(&self.conn);
        let Some(sock) = conn.as_ref() else { return };
        let n = unread(sock).unwrap_or(0);
        *stuck = match *stuck {
            _ if n == 0 => None,
            Some((m, since)) if n >= m => {
                if since.elapsed() >= crate::REPLY_TIMEOUT {
                    eprintln!(
                        "fpga-virtio vhost-user: the frontend left {n} bytes of replies unread for {:?}: ending the connection",
                        crate::REPLY_TIMEOUT
                    );
                    let _ = sock.shutdown(std::net::Shutdown::Both);
                    None
                } else {
                    Some((n, since))
                }
            }
            _ => Some((n, Instant::now())),
        };
    }

    pub(crate) fn spawn(self: &Arc<Self>) -> io::Result<JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("fv-vhost-events".into())
            .spawn(move || me.run())
    }

    pub(crate) fn stop(&self) {
        let _ = self.exit.write(1);
    }

    fn run(&self) {
        let mut evs = vec![EpollEvent::default(); 64];
        let mut stuck = None;
        let mut checked = Instant::now();
        loop {
            if checked.elapsed().as_millis() >= 500 {
                self.check_replies(&mut stuck);
                checked = Instant::now();
            }
            let n = match self.epoll.wait(500, &mut evs) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("fpga-virtio vhost-user: epoll: {e}");
                    return;
                }
            };
            for ev in &evs[..n] {
                match ev.data() {
                    EXIT => return,
                    d if d >= Self::ERR => self.error((d - Self::ERR) as u16),
                    d if d >= Self::IRQ => self.interrupt((d - Self::IRQ) as u16),
                    d => self.kick(d as u16),
                }
            }
        }
    }

    fn kick(&self, q: u16) {
        let setup = {
            let mut qs = lock(&self.queues);
            let Some(qe) = qs.get_mut(usize::from(q)) else {
                return;
            };
            let mut b = [0u8; 8];
            if let Some(k) = qe.kick.as_mut() {
                // Readable (epoll said so): consumes the count.
                let _ = k.read(&mut b);
            }
            match (qe.watched, qe.setup) {
                (true, Some(s)) => s,
                _ => return,
            }
        };
        // A queue the device cannot run fails alone: say why and keep serving the others.
        if let Err(e) = self.device.kick(q, || setup) {
            eprintln!("fpga-virtio vhost-user: queue {q}: {e}");
        }
    }

    fn interrupt(&self, q: u16) {
        self.forward(self.device.irqfd(q), q, |qe| qe.call.as_mut());
    }

    /// Queue q stopped on an error: tell the frontend on its vring error fd (without one, the
    /// log line the device wrote is all).
    fn error(&self, q: u16) {
        self.forward(self.device.errfd(q), q, |qe| qe.err.as_mut());
    }

    /// The device signalled `from` (queue q's interrupt or error eventfd): signal the
    /// frontend's fd that `to` picks. Both sides are non-blocking: a spurious wakeup reads
    /// EAGAIN and signals nothing, and a frontend counter left at its maximum is already
    /// signalled (see shared_fd::notifier), so EAGAIN there loses nothing.
    fn forward(
        &self,
        from: Option<&EventFd>,
        q: u16,
        to: impl FnOnce(&mut QueueEvents) -> Option<&mut File>,
    ) {
        if from.is_some_and(|fd| fd.read().is_ok()) {
            let mut qs = lock(&self.queues);
            if let Some(f) = qs.get_mut(usize::from(q)).and_then(to) {
                let _ = f.write(&1u64.to_le_bytes());
            }
        }
    }

    fn set_err(&self, q: usize, err: Option<File>) {
        if let Some(qe) = lock(&self.queues).get_mut(q) {
            qe.err = err;
        }
    }

    /// Watch queue q's kick fd iff `live`, with `setup` for the device.
    fn update(&self, q: usize, live: bool, setup: Option<VringSetup>) -> io::Result<()> {
        let mut qs = lock(&self.queues);
        let Some(qe) = qs.get_mut(q) else {
            return Ok(());
        };
        qe.setup = setup;
        let want = live && qe.kick.is_some();
        if want != qe.watched {
            if let Some(k) = qe.kick.as_ref() {
                let op = if want {
                    ControlOperation::Add
                } else {
                    ControlOperation::Delete
                };
                self.epoll
                    .ctl(op, k.as_raw_fd(), EpollEvent::new(EventSet::IN, q as u64))?;
            }
            qe.watched = want;
        }
        Ok(())
    }

    fn set_kick(&self, q: usize, kick: Option<File>) -> io::Result<()> {
        // Stop watching the old fd first (the caller watches the new one when the ring is live).
        let setup = lock(&self.queues).get(q).and_then(|qe| qe.setup);
        self.update(q, false, setup)?;
        if let Some(qe) = lock(&self.queues).get_mut(q) {
            qe.kick = kick;
        }
        Ok(())
    }

    fn set_call(&self, q: usize, call: Option<File>) {
        if let Some(qe) = lock(&self.queues).get_mut(q) {
            qe.call = call;
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A frontend's vring, as it set it up.
#[derive(Clone, Copy, Debug, Default)]
struct Vring {
    size: u16,
    /// Guest physical addresses (translated from the frontend's virtual addresses).
    addrs: Option<(u64, u64, u64)>,
    base: u16,
    /// Started: a kick fd came (and GET_VRING_BASE has not stopped it).
    started: bool,
    enabled: bool,
}

impl Vring {
    fn setup(&self) -> Option<VringSetup> {
        self.addrs.map(|(desc, avail, used)| VringSetup {
            desc,
            avail,
            used,
            size: self.size,
            next_avail: self.base,
        })
    }
}

/// One region of the frontend's memory table: its virtual addresses map to guest physical ones.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    vmm: u64,
    size: u64,
    gpa: u64,
}

/// The handler of one frontend connection.
pub struct Backend {
    device: Arc<Device>,
    events: Arc<Events>,
    owned: bool,
    acked_features: u64,
    acked_protocol: u64,
    mappings: Vec<Mapping>,
    vrings: Vec<Vring>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("device", &self.device)
            .field("vrings", &self.vrings)
            .finish_non_exhaustive()
    }
}

impl Backend {
    pub(crate) fn new(device: Arc<Device>, events: Arc<Events>) -> Self {
        let n = usize::from(device.opts.queues);
        Backend {
            device,
            events,
            owned: false,
            acked_features: 0,
            acked_protocol: 0,
            mappings: Vec::new(),
            vrings: vec![Vring::default(); n],
        }
    }

    fn features(&self) -> u64 {
        self.device.opts.device.features() | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn vring(&mut self, index: u32) -> VhostUserResult<&mut Vring> {
        self.vrings
            .get_mut(index as usize)
            .ok_or(VhostUserError::InvalidParam)
    }

    fn gpa(&self, vmm: u64) -> VhostUserResult<u64> {
        self.mappings
            .iter()
            .find(|m| vmm >= m.vmm && vmm - m.vmm < m.size)
            .map(|m| vmm - m.vmm + m.gpa)
            .ok_or(VhostUserError::InvalidParam)
    }

    /// Tell the event thread whether queue `q`'s kicks are to be served now.
    fn update(&self, q: usize) -> VhostUserResult<()> {
        let v = self.vrings[q];
        self.events
            .update(q, v.started && v.enabled, v.setup())
            .map_err(VhostUserError::ReqHandlerError)
    }
}

/// A shared-memory file for the in-flight region (sealed: it passes the size checks when a
/// frontend hands it to the next backend).
fn memfd(len: u64) -> io::Result<File> {
    shared_fd::sealed_memfd(c"fv-inflight", len)
}

const UNSUPPORTED: VhostUserError = VhostUserError::InvalidOperation("not supported");

impl VhostUserBackendReqHandlerMut for Backend {
    fn set_owner(&mut self) -> VhostUserResult<()> {
        if self.owned {
            return Err(VhostUserError::InvalidOperation("already claimed"));
        }
        self.owned = true;
        Ok(())
    }

    fn reset_owner(&mut self) -> VhostUserResult<()> {
        self.owned = false;
        self.acked_features = 0;
        self.acked_protocol = 0;
        Ok(())
    }

    fn reset_device(&mut self) -> VhostUserResult<()> {
        for q in 0..self.vrings.len() {
            self.vrings[q].enabled = false;
            self.update(q)?;
        }
        self.acked_features = 0;
        self.device.reset().map_err(internal)
    }

    fn get_features(&mut self) -> VhostUserResult<u64> {
        Ok(self.features())
    }

    fn set_features(&mut self, features: u64) -> VhostUserResult<()> {
        if features & !self.features() != 0 {
            return Err(VhostUserError::InvalidParam);
        }
        self.acked_features = features;
        self.device.set_features(features);
        // Without VHOST_USER_F_PROTOCOL_FEATURES every ring is enabled at once (the ring-states
        // rule of the vhost-user spec); with it they wait for SET_VRING_ENABLE.
        if features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() == 0 {
            for q in 0..self.vrings.len() {
                self.vrings[q].enabled = true;
                self.update(q)?;
            }
        }
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        postcopy_listening: Option<bool>,
    ) -> VhostUserResult<Option<Vec<u64>>> {
        if postcopy_listening.is_some() {
            return Err(UNSUPPORTED);
        }
        let mut regions = Vec::new();
        let mut mappings = Vec::new();
        if ctx.len() != files.len() {
            return Err(VhostUserError::InvalidParam);
        }
        for (region, file) in ctx.iter().zip(files) {
            // A file shorter than the region, or one the frontend could shrink later, would
            // raise SIGBUS in the backend when touched.
            shared_fd::check(
                &file,
                region.mmap_offset,
                region.memory_size,
                "guest memory region",
            )
            .map_err(|e| VhostUserError::ReqHandlerError(io::Error::other(e)))?;
            let r = GuestRegionMmap::new(
                region.mmap_region(file)?,
                GuestAddress(region.guest_phys_addr),
            )
            .ok_or(VhostUserError::InvalidParam)?;
            mappings.push(Mapping {
                vmm: region.user_addr,
                size: region.memory_size,
                gpa: region.guest_phys_addr,
            });
            regions.push(r);
        }
        let mem = GuestMemoryMmap::from_regions(regions).map_err(internal)?;
        self.device.set_memory(mem).map_err(internal)?;
        self.mappings = mappings;
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> VhostUserResult<()> {
        let max = u32::from(self.device.opts.queue_size);
        let v = self.vring(index)?;
        if num == 0 || num > max {
            return Err(VhostUserError::InvalidParam);
        }
        v.size = num as u16;
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> VhostUserResult<()> {
        if self.mappings.is_empty() {
            return Err(VhostUserError::InvalidParam);
        }
        let addrs = (self.gpa(descriptor)?, self.gpa(available)?, self.gpa(used)?);
        self.vring(index)?.addrs = Some(addrs);
        self.update(index as usize)
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> VhostUserResult<()> {
        self.vring(index)?.base = base as u16;
        self.update(index as usize)
    }

    fn get_vring_base(&mut self, index: u32) -> VhostUserResult<VhostUserVringState> {
        // The spec: stop the ring on GET_VRING_BASE; the device drains what it holds.
        self.vring(index)?.started = false;
        self.update(index as usize)?;
        let q = u16::try_from(index).map_err(|_| VhostUserError::InvalidParam)?;
        let pos = self.device.stop_queue(q).map_err(internal)?;
        let v = self.vring(index)?;
        if let Some(p) = pos {
            v.base = p.last_avail;
        }
        let base = v.base;
        self.events
            .set_kick(index as usize, None)
            .map_err(VhostUserError::ReqHandlerError)?;
        self.events.set_call(index as usize, None);
        Ok(VhostUserVringState::new(index, u32::from(base)))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> VhostUserResult<()> {
        let q = usize::from(index);
        self.vring(u32::from(index))?;
        let fd = fd
            .map(|f| shared_fd::notifier(f, "kick fd"))
            .transpose()
            .map_err(|e| VhostUserError::ReqHandlerError(io::Error::other(e)))?;
        self.events
            .set_kick(q, fd)
            .map_err(VhostUserError::ReqHandlerError)?;
        // A ring starts when its kick fd arrives.
        self.vrings[q].started = true;
        self.update(q)
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> VhostUserResult<()> {
        self.vring(u32::from(index))?;
        let fd = fd
            .map(|f| shared_fd::notifier(f, "call fd"))
            .transpose()
            .map_err(|e| VhostUserError::ReqHandlerError(io::Error::other(e)))?;
        self.events.set_call(usize::from(index), fd);
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, fd: Option<File>) -> VhostUserResult<()> {
        self.vring(u32::from(index))?;
        let fd = fd
            .map(|f| shared_fd::notifier(f, "error fd"))
            .transpose()
            .map_err(|e| VhostUserError::ReqHandlerError(io::Error::other(e)))?;
        self.events.set_err(usize::from(index), fd);
        Ok(())
    }

    fn get_protocol_features(&mut self) -> VhostUserResult<VhostUserProtocolFeatures> {
        Ok(protocol_features())
    }

    fn set_protocol_features(&mut self, features: u64) -> VhostUserResult<()> {
        self.acked_protocol = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> VhostUserResult<u64> {
        Ok(u64::from(self.device.opts.queues))
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> VhostUserResult<()> {
        if self.acked_features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() == 0 {
            return Err(VhostUserError::InactiveFeature(
                VhostUserVirtioFeatures::PROTOCOL_FEATURES,
            ));
        }
        self.vring(index)?.enabled = enable;
        self.update(index as usize)
    }

    fn get_config(
        &mut self,
        offset: u32,
        size: u32,
        _flags: VhostUserConfigFlags,
    ) -> VhostUserResult<Vec<u8>> {
        let o = &self.device.opts;
        Ok(o.device.config(o.queues, o.queue_size, offset, size))
    }

    fn set_config(
        &mut self,
        _offset: u32,
        _buf: &[u8],
        _flags: VhostUserConfigFlags,
    ) -> VhostUserResult<()> {
        // Nothing in our configuration space is writable (no CONFIG_WCE): ignored, as a device
        // ignores writes to read-only configuration fields.
        Ok(())
    }

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> VhostUserResult<()> {
        Err(UNSUPPORTED)
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> VhostUserResult<File> {
        Err(UNSUPPORTED)
    }

    /// A new in-flight region, zeroed: the device's done logs for `queue_size`-entry rings.
    fn get_inflight_fd(
        &mut self,
        inflight: &VhostUserInflight,
    ) -> VhostUserResult<(VhostUserInflight, File)> {
        let len = crate::device::inflight_len(inflight.num_queues, inflight.queue_size)
            .ok_or(VhostUserError::InvalidParam)?;
        let file = memfd(len).map_err(VhostUserError::ReqHandlerError)?;
        Ok((
            VhostUserInflight {
                mmap_size: len,
                mmap_offset: 0,
                num_queues: inflight.num_queues,
                queue_size: inflight.queue_size,
            },
            file,
        ))
    }

    /// The frontend's in-flight region (ours from GET_INFLIGHT_FD, or the one a previous
    /// backend handed out before it died): the device keeps its done logs there.
    fn set_inflight_fd(&mut self, inflight: &VhostUserInflight, file: File) -> VhostUserResult<()> {
        self.device
            .set_inflight(
                file,
                inflight.mmap_offset,
                inflight.mmap_size,
                inflight.num_queues,
                inflight.queue_size,
            )
            .map_err(internal)
    }

    fn get_max_mem_slots(&mut self) -> VhostUserResult<u64> {
        Err(UNSUPPORTED)
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy_listening: Option<bool>,
    ) -> VhostUserResult<Option<u64>> {
        Err(UNSUPPORTED)
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> VhostUserResult<()> {
        Err(UNSUPPORTED)
    }

    fn set_device_state_fd(
        &mut self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _fd: File,
    ) -> VhostUserResult<Option<File>> {
        Err(UNSUPPORTED)
    }

    fn check_device_state(&mut self) -> VhostUserResult<()> {
        Err(UNSUPPORTED)
    }

    fn get_shmem_config(&mut self) -> VhostUserResult<VhostUserShMemConfig> {
        Err(UNSUPPORTED)
    }

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> VhostUserResult<()> {
        Err(UNSUPPORTED)
    }
}
