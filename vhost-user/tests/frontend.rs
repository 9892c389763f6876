//! The backend driven by a frontend written here (vhost's `Frontend`, what QEMU does) with a
//! guest split-ring driver on shared memfd memory: fast host-side tests of the protocol, and of
//! what a hostile frontend or guest gets (an error and a broken queue, never a dead backend).

use fpga_virtio_driver::hw::regs::queue;
use fpga_virtio_driver::runtime::{Path, SplitPolicy};
use fpga_virtio_sim::testing::{Buffer, SplitRing};
use fpga_virtio_storage::{BlockStore, RamStore};
use fpga_virtio_vhost_user::{serve, Blk, Device, DeviceOptions};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_bindings::virtio_config as vc;
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

const MEM: usize = 4 << 20;
const QSIZE: u16 = 16;

fn memfd(len: usize) -> File {
    // SAFETY: the name is a NUL-terminated literal; memfd_create returns a new fd or -1.
    // Sealable, as QEMU's memory-backend-memfd is: the backend seals it against shrinking.
    let fd = unsafe {
        libc::memfd_create(
            c"fv-test-guest".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: `fd` is fresh and owned by nothing else.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(len as u64).unwrap();
    f
}

/// A guest: memory shared with the backend and a frontend connection.
struct Guest {
    mem: GuestMemoryMmap,
    file: Arc<File>,
    fe: Frontend,
    kicks: Vec<EventFd>,
    calls: Vec<EventFd>,
}

impl Guest {
    fn hva(&self, gpa: u64) -> u64 {
        self.mem
            .iter()
            .next()
            .unwrap()
            .get_host_address(MemoryRegionAddress(
                gpa - self.mem.iter().next().unwrap().start_addr().0,
            ))
            .unwrap() as u64
    }

    /// Connect, negotiate, and hand over the memory table.
    fn connect(sock: &std::path::Path, queues: usize) -> Guest {
        Self::connect_at(sock, queues, 0)
    }

    /// As `connect`, with guest memory at guest physical address `base`.
    fn connect_at(sock: &std::path::Path, queues: usize, base: u64) -> Guest {
        let g = Self::connect_without_memory(sock, queues, base);
        g.send_memory_table();
        g
    }

    fn send_memory_table(&self) {
        let base = self.mem.iter().next().unwrap().start_addr().0;
        let region = VhostUserMemoryRegionInfo {
            guest_phys_addr: base,
            memory_size: MEM as u64,
            userspace_addr: self.hva(base),
            mmap_offset: 0,
            mmap_handle: self.file.as_raw_fd(),
        };
        self.fe.set_mem_table(&[region]).unwrap();
    }

    /// Connect and negotiate, but send no memory table yet.
    fn connect_without_memory(sock: &std::path::Path, queues: usize, base: u64) -> Guest {
        let file = Arc::new(memfd(MEM));
        let mem = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(base),
            MEM,
            Some(FileOffset::from_arc(file.clone(), 0)),
        )])
        .unwrap();
        Guest {
            mem,
            file,
            fe: Self::negotiate(sock, queues),
            kicks: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// The same guest (memory, rings) connecting to the backend at `sock`, as QEMU reconnects
    /// to a restarted backend; memory table sent.
    fn reconnect(&self, sock: &std::path::Path, queues: usize) -> Guest {
        let g = Guest {
            mem: self.mem.clone(),
            file: self.file.clone(),
            fe: Self::negotiate(sock, queues),
            kicks: Vec::new(),
            calls: Vec::new(),
        };
        g.send_memory_table();
        g
    }

    fn negotiate(sock: &std::path::Path, queues: usize) -> Frontend {
        let t = Instant::now();
        let mut fe = loop {
            match Frontend::connect(sock, queues as u64) {
                Ok(fe) => break fe,
                Err(_) if t.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        fe.set_owner().unwrap();
        let features = fe.get_features().unwrap();
        assert_ne!(
            features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits(),
            0
        );
        assert_eq!(features & (1 << vc::VIRTIO_F_ACCESS_PLATFORM), 0);
        fe.set_features(
            (1 << vc::VIRTIO_F_VERSION_1) | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits(),
        )
        .unwrap();
        let pf = fe.get_protocol_features().unwrap();
        fe.set_protocol_features(
            pf & (VhostUserProtocolFeatures::CONFIG
                | VhostUserProtocolFeatures::MQ
                | VhostUserProtocolFeatures::REPLY_ACK),
        )
        .unwrap();
        fe
    }

    /// Set up queue `q` on `ring` (addresses given as this process's virtual addresses, as a
    /// frontend does) and enable it.
    fn start_queue(&mut self, q: usize, ring: &SplitRing) {
        self.start_queue_at(q, ring, 0);
    }

    /// As `start_queue`, with SET_VRING_BASE `base`.
    fn start_queue_at(&mut self, q: usize, ring: &SplitRing, base: u16) {
        let cfg = ring_config(
            self.hva(ring.desc_addr()),
            self.hva(ring.avail_addr()),
            self.hva(ring.used_addr()),
        );
        self.fe.set_vring_num(q, QSIZE).unwrap();
        self.fe.set_vring_addr(q, &cfg).unwrap();
        self.fe.set_vring_base(q, base).unwrap();
        let kick = EventFd::new(EFD_NONBLOCK).unwrap();
        let call = EventFd::new(EFD_NONBLOCK).unwrap();
        self.fe.set_vring_call(q, &call).unwrap();
        self.fe.set_vring_kick(q, &kick).unwrap();
        self.fe.set_vring_enable(q, true).unwrap();
        while self.kicks.len() <= q {
            self.kicks.push(EventFd::new(EFD_NONBLOCK).unwrap());
            self.calls.push(EventFd::new(EFD_NONBLOCK).unwrap());
        }
        self.kicks[q] = kick;
        self.calls[q] = call;
    }

    /// A 4 KiB read of `sector` on `ring`, buffers at `at`; returns the used entries after the
    /// call fd fired (or after `wait`).
    fn read(
        &self,
        q: usize,
        ring: &mut SplitRing,
        at: u64,
        sector: u64,
        wait: Duration,
    ) -> Vec<(u16, u32)> {
        self.post_read(ring, at, sector);
        self.kicks[q].write(1).unwrap();
        // An interrupt means "look at the used ring", not "your request is done": the device
        // also raises one whenever it starts a queue.
        let t = Instant::now();
        while t.elapsed() < wait {
            if self.calls[q].read().is_ok() {
                let done = ring.reap().unwrap();
                if !done.is_empty() {
                    return done;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        ring.reap().unwrap()
    }

    /// Post (without a kick) a 4 KiB read of `sector` on `ring`, buffers at `at`.
    fn post_read(&self, ring: &mut SplitRing, at: u64, sector: u64) {
        let mut h = [0u8; 16];
        h[8..].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&h, GuestAddress(at)).unwrap();
        self.mem.write_obj(0xffu8, GuestAddress(at + 16)).unwrap();
        ring.add_chain(&[
            Buffer {
                addr: at,
                len: 16,
                write: false,
            },
            Buffer {
                addr: at + 4096,
                len: 4096,
                write: true,
            },
            Buffer {
                addr: at + 16,
                len: 1,
                write: true,
            },
        ])
        .unwrap();
        ring.publish().unwrap();
    }
}

type Backend = (
    Arc<Device>,
    PathBuf,
    std::thread::JoinHandle<()>,
    Arc<dyn BlockStore>,
);

fn backend(tag: &str, queues: u16, connections: usize) -> Backend {
    backend_with(tag, queues, connections, SplitPolicy::all(Path::Fpga))
}

fn backend_with(tag: &str, queues: u16, connections: usize, policy: SplitPolicy) -> Backend {
    let store: Arc<dyn BlockStore> = Arc::new(RamStore::new(8 << 20));
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 5) as u8).collect();
    store.write_at(8 * 512, &pattern).unwrap();
    let device = Device::new(DeviceOptions {
        device: Arc::new(Blk {
            store: store.clone(),
            id: "test".into(),
        }),
        queues,
        queue_size: 256,
        policy,
    })
    .unwrap();
    let sock = std::env::temp_dir().join(format!("fv-vu-{}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let (d, s) = (device.clone(), sock.clone());
    let h = std::thread::spawn(move || serve(d, &s, Some(connections)).unwrap());
    (device, sock, h, store)
}

/// Ring addresses (frontend virtual addresses) of a queue of QSIZE entries.
fn ring_config(desc: u64, avail: u64, used: u64) -> VringConfigData {
    VringConfigData {
        queue_max_size: QSIZE,
        queue_size: QSIZE,
        flags: 0,
        desc_table_addr: desc,
        used_ring_addr: used,
        avail_ring_addr: avail,
        log_addr: None,
    }
}

/// A well-behaved frontend: one 4 KiB read on queue 0 completes.
fn one_good_read(sock: &std::path::Path) {
    let mut g = Guest::connect(sock, 1);
    let mut ring = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &ring);
    let done = g.read(0, &mut ring, 0x10_0000, 8, Duration::from_secs(20));
    assert_eq!(done.len(), 1, "the read completed");
}

fn queue_error(device: &Device, q: u32) -> bool {
    let st = queue::q::STATUS.at(q).unwrap().read(device.io()).unwrap();
    queue::q::status::ERROR.is_set(st)
}

#[test]
fn a_read_round_trips_through_the_protocol_and_the_device() {
    let (device, sock, h, _) = backend("roundtrip", 1, 1);
    let mut g = Guest::connect(&sock, 1);
    let mut ring = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &ring);
    let done = g.read(0, &mut ring, 0x10_0000, 8, Duration::from_secs(20));
    assert_eq!(done.len(), 1, "one used entry");
    let mut data = vec![0u8; 4096];
    g.mem
        .read_slice(&mut data, GuestAddress(0x10_1000))
        .unwrap();
    let expect: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 5) as u8).collect();
    assert!(data == expect, "the sector came back");
    assert_eq!(
        g.mem.read_obj::<u8>(GuestAddress(0x10_0010)).unwrap(),
        0,
        "status OK"
    );
    assert_eq!(device.queue_path(0), Some(Path::Fpga));
    // GET_VRING_BASE stops the queue and answers the device's position.
    assert_eq!(g.fe.get_vring_base(0).unwrap(), 1);
    assert_eq!(device.queue_path(0), None);
    drop(g);
    h.join().unwrap();
    device.shutdown();
}

/// Issue 15: a queue the guest broke stops on either path (the FPGA's walk, the CPU's) and
/// the frontend is told on the queue's vring error fd (SET_VRING_ERR) instead of waiting
/// forever; the CPU-owned queue used to stop silently.
#[test]
fn a_broken_queue_is_signalled_on_its_error_fd_on_both_paths() {
    let policy = SplitPolicy::from_toml("cpu_queues = [1]").unwrap();
    let (device, sock, h, _) = backend_with("errfd", 2, 1, policy);
    let mut g = Guest::connect(&sock, 2);
    let mut rings = [
        SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap(),
        SplitRing::new(&g.mem, 0x4000, u32::from(QSIZE), false).unwrap(),
    ];
    let errs = [
        EventFd::new(EFD_NONBLOCK).unwrap(),
        EventFd::new(EFD_NONBLOCK).unwrap(),
    ];
    for (q, ring) in rings.iter_mut().enumerate() {
        g.start_queue(q, ring);
        g.fe.set_vring_err(q, &errs[q]).unwrap();
        // The data buffer lies past the end of guest memory: outside the tenant's windows.
        let at = 0x10_0000 + q as u64 * 0x1000;
        ring.add_chain(&[
            Buffer {
                addr: at,
                len: 16,
                write: false,
            },
            Buffer {
                addr: (MEM as u64) + 0x1000,
                len: 4096,
                write: true,
            },
            Buffer {
                addr: at + 16,
                len: 1,
                write: true,
            },
        ])
        .unwrap();
        ring.publish().unwrap();
        g.kicks[q].write(1).unwrap();
    }
    for (q, err) in errs.iter().enumerate() {
        let t = Instant::now();
        while err.read().is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "queue {q}: no error signalled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            rings[q].reap().unwrap().is_empty(),
            "queue {q}: nothing published"
        );
    }
    assert!(queue_error(&device, 0));
    assert_eq!(device.queue_path(1), Some(Path::Cpu));
    drop(g);
    h.join().unwrap();
    device.shutdown();
}

#[test]
fn a_buffer_outside_guest_memory_breaks_only_its_queue() {
    let (device, sock, h, _) = backend("outside", 2, 1);
    let mut g = Guest::connect(&sock, 2);
    let mut r0 = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    let mut r1 = SplitRing::new(&g.mem, 0x4000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &r0);
    g.start_queue(1, &r1);
    // Queue 0: the data buffer lies past the end of guest memory.
    r0.add_chain(&[
        Buffer {
            addr: 0x10_0000,
            len: 16,
            write: false,
        },
        Buffer {
            addr: (MEM as u64) + 0x1000,
            len: 4096,
            write: true,
        },
        Buffer {
            addr: 0x10_0010,
            len: 1,
            write: true,
        },
    ])
    .unwrap();
    r0.publish().unwrap();
    g.kicks[0].write(1).unwrap();
    let t = Instant::now();
    while !queue_error(&device, 0) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "queue 0 never failed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Queue 1 still serves.
    let done = g.read(1, &mut r1, 0x20_0000, 8, Duration::from_secs(20));
    assert_eq!(done.len(), 1, "queue 1 still works");
    assert!(!queue_error(&device, 1));
    drop(g);
    h.join().unwrap();
    device.shutdown();
}

#[test]
fn a_hostile_frontend_costs_its_connection_not_the_backend() {
    // Three connections: garbage, ring addresses outside the memory table, then a good one.
    let (device, sock, h, _) = backend("hostile", 1, 3);
    let t = Instant::now();
    let mut raw = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("connect: {e}"),
        }
    };
    // A header claiming a huge payload, then noise.
    let mut junk = vec![0xffu8; 12];
    junk.extend((0..4096u32).map(|i| (i * 31) as u8));
    let _ = raw.write_all(&junk);
    drop(raw);

    let g = Guest::connect(&sock, 1);
    g.fe.set_vring_num(0, QSIZE).unwrap();
    let far = ring_config(0x10, 0x1000, 0x2000);
    // Addresses that are no virtual address of the memory table: refused (the backend ends
    // the connection; the frontend learns it from the reply or at its next request).
    let refused =
        g.fe.set_vring_addr(0, &far)
            .and_then(|_| g.fe.get_vring_base(0).map(|_| ()));
    assert!(
        refused.is_err(),
        "ring addresses outside the memory table were accepted"
    );
    drop(g);

    // The backend is still there for a well-behaved frontend.
    one_good_read(&sock);
    h.join().unwrap();
    device.shutdown();
}

#[test]
fn guest_memory_over_the_device_private_region_is_refused() {
    // The runtime's rings live at IOVA 2^46: a memory table that claims that range is refused
    // (the connection ends), and the next frontend is served.
    let (device, sock, h, _) = backend("private", 1, 2);
    let g = Guest::connect_at(&sock, 1, fpga_virtio_vhost_user::device::PRIVATE_IOVA);
    let refused =
        g.fe.set_vring_num(0, QSIZE)
            .and_then(|_| g.fe.get_vring_base(0).map(|_| ()));
    assert!(
        refused.is_err(),
        "a memory table over the private region was accepted"
    );
    drop(g);
    one_good_read(&sock);
    h.join().unwrap();
    device.shutdown();
}

#[test]
fn rings_before_the_memory_table_cost_only_that_connection() {
    // Out of order: ring addresses before SET_MEM_TABLE cannot be translated; the connection
    // ends, no queue starts, and the next frontend is served.
    let (device, sock, h, _) = backend("early-rings", 1, 2);
    let g = Guest::connect_without_memory(&sock, 1, 0);
    let cfg = ring_config(g.hva(0x1000), g.hva(0x2000), g.hva(0x3000));
    let refused =
        g.fe.set_vring_num(0, QSIZE)
            .and_then(|_| g.fe.set_vring_addr(0, &cfg))
            .and_then(|_| g.fe.get_vring_base(0).map(|_| ()));
    assert!(
        refused.is_err(),
        "rings before the memory table were accepted"
    );
    assert_eq!(device.queue_path(0), None);
    drop(g);
    one_good_read(&sock);
    h.join().unwrap();
    device.shutdown();
}

#[test]
fn a_new_memory_table_under_running_queues_resumes_them_where_they_stopped() {
    // QEMU sends SET_MEM_TABLE again when guest memory changes: the device stops the queues,
    // restarts its runtime on the new map, and each queue resumes at its position.
    let (device, sock, h, _) = backend("remap", 1, 1);
    let mut g = Guest::connect(&sock, 1);
    let mut ring = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &ring);
    for _ in 0..3 {
        assert_eq!(
            g.read(0, &mut ring, 0x10_0000, 8, Duration::from_secs(20))
                .len(),
            1
        );
    }
    // (A kick still queued in the backend's worker may restart the queue at once: fine.)
    g.send_memory_table();
    for _ in 0..3 {
        assert_eq!(
            g.read(0, &mut ring, 0x10_0000, 8, Duration::from_secs(20))
                .len(),
            1
        );
    }
    assert_eq!(
        ring.used_idx().unwrap(),
        6,
        "no request lost or completed twice"
    );
    assert_eq!(g.fe.get_vring_base(0).unwrap(), 6);
    drop(g);
    h.join().unwrap();
    device.shutdown();
}

/// In-flight tracking through the protocol (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD):
/// GET_INFLIGHT_FD hands out a region of whole pages, SET_INFLIGHT_FD maps it into the device,
/// and the queue's done log lives there: a header saying the queue runs and a record per publish;
/// a clean stop says so. A backend that died leaves the header saying "running": the next
/// backend, given the same region by the frontend, serves what the log does not show complete
/// before anything else, once each, whatever base the frontend sends.
#[test]
fn the_inflight_region_carries_the_done_log_to_the_next_backend() {
    use std::os::unix::fs::FileExt;
    use vhost::vhost_user::message::VhostUserInflight;
    let (device, sock, h, _) = backend("inflight", 1, 1);
    let mut g = Guest::connect(&sock, 1);
    let pf = VhostUserProtocolFeatures::CONFIG
        | VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::INFLIGHT_SHMFD;
    assert!(g.fe.get_protocol_features().unwrap().contains(pf));
    g.fe.set_protocol_features(pf).unwrap();
    let ask = VhostUserInflight {
        mmap_size: 0,
        mmap_offset: 0,
        num_queues: 1,
        queue_size: QSIZE,
    };
    let (inf, region) = g.fe.get_inflight_fd(&ask).unwrap();
    assert_eq!(inf.mmap_size % 4096, 0);
    assert!(inf.mmap_size >= 64 + 4 * u64::from(QSIZE));
    g.fe.set_inflight_fd(&inf, region.as_raw_fd()).unwrap();
    let u32_at = |off: u64| {
        let mut b = [0u8; 4];
        region.read_exact_at(&mut b, off).unwrap();
        u32::from_le_bytes(b)
    };
    let mut ring = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &ring);
    assert_eq!(
        g.read(0, &mut ring, 0x10_0000, 8, Duration::from_secs(20))
            .len(),
        1
    );
    assert_eq!(u32_at(0), 0x4c44_5646, "header magic");
    assert_eq!(u32_at(4), 1, "running");
    assert_eq!(u32_at(8), u32::from(QSIZE), "ring size, base 0");
    assert_eq!(u32_at(64), 1 << 16, "position 0 published with used->idx 1");
    assert_eq!(g.fe.get_vring_base(0).unwrap(), 1);
    assert_eq!(u32_at(4), 2, "stopped cleanly");

    // Pretend the backend died with the queue running, and the guest posted one more read
    // meanwhile (its kick lost with the backend).
    region.write_all_at(&1u32.to_le_bytes(), 4).unwrap();
    g.post_read(&mut ring, 0x20_0000, 8);
    // The frontend reconnects to a new backend and hands it the same region; its base is the
    // used->idx (1), as QEMU's after a lost connection.
    let (device2, sock2, h2, _) = backend("inflight2", 1, 1);
    let mut g2 = g.reconnect(&sock2, 1);
    drop(g);
    h.join().unwrap();
    device.shutdown();
    g2.fe.set_protocol_features(pf).unwrap();
    g2.fe.set_inflight_fd(&inf, region.as_raw_fd()).unwrap();
    g2.start_queue_at(0, &ring, 1);
    g2.kicks[0].write(1).unwrap();
    let t = Instant::now();
    while ring.used_idx().unwrap() != 2 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        ring.used_idx().unwrap(),
        2,
        "position 1 served, position 0 not again"
    );
    assert_eq!(ring.reap().unwrap().len(), 1);
    assert_eq!(g2.mem.read_obj::<u8>(GuestAddress(0x20_0010)).unwrap(), 0);
    assert_eq!(u32_at(64 + 4), 1 | (2 << 16), "position 1's record");
    // And the queue goes on.
    assert_eq!(
        g2.read(0, &mut ring, 0x30_0000, 8, Duration::from_secs(20))
            .len(),
        1
    );
    assert_eq!(ring.used_idx().unwrap(), 3);
    assert_eq!(g2.fe.get_vring_base(0).unwrap(), 3);
    drop(g2);
    h2.join().unwrap();
    device2.shutdown();
}

/// An in-flight region too small for what the frontend says it holds is refused: the
/// connection ends, the backend serves the next one.
#[test]
fn a_short_inflight_region_costs_its_connection() {
    use vhost::vhost_user::message::VhostUserInflight;
    let (device, sock, h, _) = backend("inflight-short", 1, 2);
    let mut g = Guest::connect(&sock, 1);
    g.fe.set_protocol_features(
        VhostUserProtocolFeatures::REPLY_ACK | VhostUserProtocolFeatures::INFLIGHT_SHMFD,
    )
    .unwrap();
    let region = memfd(4096);
    let bad = VhostUserInflight {
        mmap_size: 4096,
        mmap_offset: 0,
        num_queues: 8,
        queue_size: 1024,
    };
    // Sent without a reply asked for; the backend's answer is to end the connection.
    let _ = g.fe.set_inflight_fd(&bad, region.as_raw_fd());
    assert!(g.fe.get_features().is_err(), "the connection ended");
    drop(g);
    one_good_read(&sock);
    h.join().unwrap();
    device.shutdown();
}

/// Issue 15: memory-table files that would let a frontend kill the backend with SIGBUS are
/// refused: shorter than the region they claim, not sealable against shrinking (it could be
/// truncated under the mapping later), or not a file at all. The connection ends and the
/// backend serves the next one, whose memory file can no longer be shrunk under it.
#[test]
fn memory_files_that_could_raise_sigbus_cost_their_connection() {
    let (device, sock, h, _) = backend("sigbus", 1, 4);
    for case in ["short", "unsealable", "socket"] {
        let g = Guest::connect_without_memory(&sock, 1, 0);
        let (_keep, fd) = match case {
            "short" => {
                let f = memfd(MEM / 2);
                let fd = f.as_raw_fd();
                (Some(f), fd)
            }
            "unsealable" => {
                // SAFETY: literal name; a new fd or -1.
                let fd =
                    unsafe { libc::memfd_create(c"fv-unsealable".as_ptr(), libc::MFD_CLOEXEC) };
                assert!(fd >= 0);
                // SAFETY: fresh fd, owned by nothing else.
                let f = unsafe { File::from_raw_fd(fd) };
                f.set_len(MEM as u64).unwrap();
                (Some(f), fd)
            }
            _ => {
                let (a, _b) = UnixStream::pair().unwrap();
                let f = File::from(std::os::fd::OwnedFd::from(a));
                let fd = f.as_raw_fd();
                (Some(f), fd)
            }
        };
        let region = VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: MEM as u64,
            userspace_addr: g.hva(0),
            mmap_offset: 0,
            mmap_handle: fd,
        };
        let _ = g.fe.set_mem_table(&[region]);
        assert!(g.fe.get_features().is_err(), "{case}: the connection ended");
    }
    let mut g = Guest::connect(&sock, 1);
    let mut ring = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &ring);
    let done = g.read(0, &mut ring, 0x10_0000, 8, Duration::from_secs(20));
    assert_eq!(done.len(), 1, "the backend lives and serves");
    // (After a request: the memory table has surely been taken.)
    assert!(
        g.file.set_len(4096).is_err(),
        "the backend sealed the memory file against shrinking"
    );
    drop(g);
    h.join().unwrap();
    device.shutdown();
}

/// Issue 15: a call eventfd one short of its counter's maximum made the backend's write block
/// the connection's event thread forever, and every later connection hung behind it. Call and
/// kick fds are now non-blocking eventfds: the queue goes on (the interrupt is already pending
/// in the counter), the next connection is served, and a kick fd that is not an eventfd (a
/// file reads as a kick forever) costs its connection.
#[test]
fn a_full_call_counter_or_a_file_as_kick_fd_wedges_nothing() {
    let (device, sock, h, _) = backend("wedge", 1, 3);
    let mut g = Guest::connect(&sock, 1);
    let mut ring = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &ring);
    // A blocking eventfd (the flag lives in the shared file description) at u64::MAX - 1.
    let full = EventFd::new(0).unwrap();
    full.write(u64::MAX - 1).unwrap();
    g.fe.set_vring_call(0, &full).unwrap();
    for i in 0..3u64 {
        g.post_read(&mut ring, 0x10_0000 + i * 0x2000, 8);
        g.kicks[0].write(1).unwrap();
        let t = Instant::now();
        let mut done = Vec::new();
        while done.is_empty() && t.elapsed() < Duration::from_secs(20) {
            done = ring.reap().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(done.len(), 1, "read {i} completed");
    }
    drop(g);
    // A memfd as kick fd: refused, the connection ends.
    let g = Guest::connect(&sock, 1);
    g.fe.set_vring_num(0, QSIZE).unwrap();
    // The frontend API takes an EventFd; wrap the memfd's fd in one (only its number is sent).
    // SAFETY: into_raw_fd hands over ownership of an open fd, which the EventFd now owns.
    let not_eventfd = unsafe { EventFd::from_raw_fd(memfd(8).into_raw_fd()) };
    let _ = g.fe.set_vring_kick(0, &not_eventfd);
    assert!(g.fe.get_features().is_err(), "the connection ended");
    drop(g);
    one_good_read(&sock);
    h.join().unwrap();
    device.shutdown();
}

/// Issue 15: a device error (the model or the runtime failed) was sticky for the life of the
/// process. Once the frontend that saw it is gone, the device is reset and the next frontend is
/// served.
#[test]
fn a_device_error_is_recovered_for_the_next_frontend() {
    let (device, sock, h, _) = backend("recover", 1, 2);
    let mut g = Guest::connect(&sock, 1);
    let mut ring = SplitRing::new(&g.mem, 0x1000, u32::from(QSIZE), false).unwrap();
    g.start_queue(0, &ring);
    assert_eq!(
        g.read(0, &mut ring, 0x10_0000, 8, Duration::from_secs(20))
            .len(),
        1
    );
    device.inject_device_error("injected for the test");
    assert!(
        g.read(0, &mut ring, 0x11_0000, 8, Duration::from_millis(500))
            .is_empty(),
        "a stopped device serves nothing"
    );
    drop(g);
    one_good_read(&sock);
    h.join().unwrap();
    device.shutdown();
}

/// A frontend that sends requests and never reads the replies: once the socket is full, the
/// backend's reply waits at most REPLY_TIMEOUT, then the connection ends and the next frontend
/// is served.
#[test]
fn a_frontend_that_never_reads_replies_costs_its_connection() {
    let (device, sock, h, _) = backend("noread", 1, 2);
    let t = Instant::now();
    let mut s = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("connect: {e}"),
        }
    };
    // GET_FEATURES (1), version 1, no payload: 12 bytes each, a 20-byte reply each.
    let mut msg = Vec::new();
    msg.extend_from_slice(&1u32.to_le_bytes());
    msg.extend_from_slice(&1u32.to_le_bytes());
    msg.extend_from_slice(&0u32.to_le_bytes());
    let flood: Vec<u8> = msg.iter().copied().cycle().take(12 * 200_000).collect();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let start = Instant::now();
    // Blocks once both directions are full, until the backend gives up on its reply and closes.
    let _ = s.write_all(&flood);
    let waited = start.elapsed();
    assert!(
        waited < fpga_virtio_vhost_user::REPLY_TIMEOUT + Duration::from_secs(20),
        "the backend held the connection for {waited:?}"
    );
    drop(s);
    one_good_read(&sock);
    h.join().unwrap();
    device.shutdown();
}
