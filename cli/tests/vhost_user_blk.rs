//! `fpga-virtio vhost-user-blk` serving a real Linux guest: QEMU (TCG, 2 vCPUs, 2 queues) boots
//! a Debian kernel whose own virtio-blk driver uses our device, once per split policy (all on the
//! FPGA, all on the CPU, split). This test binary runs inside the guest too
//! ([`in_guest_blk_checks`]) for the direct-I/O checks; busybox and the host's mke2fs do the
//! filesystem. The host then checks the image file itself. How guests are booted here:
//! ../shared/notes/qemu-guests.md.
//!
//! Disk layout (64 MiB):
//! - [0, 1 MiB): written by the host before boot, read and checked by the guest.
//! - [1, 12 MiB): the guest's O_DIRECT writes, one per 256 KiB slot, sizes 4-128 KiB, seeded.
//! - [12, 13 MiB): discarded by the guest (BLKDISCARD), [13, 14 MiB): zeroed (BLKZEROOUT);
//!   the host fills both with a pattern first and finds zeros after (but for the first page,
//!   written after the guest unbinds and rebinds its virtio-blk driver at the end).
//! - [14, 16 MiB): two threads, one per vCPU (so one per queue), each writing and reading 1 MiB.
//! - [16, 64 MiB): timed direct I/O (the figures), then an ext4 filesystem through a loop
//!   device: created, filled, remounted and checked in the guest, then `e2fsck -fn` on the host.

use fpga_virtio_qemu_tests::{Guest, GuestKit, Initramfs};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const DISK: u64 = 64 * MIB;
const HOST_REGION: (u64, u64) = (0, MIB);
const SLOTS: (u64, u64) = (MIB, 12 * MIB);
const SLOT: u64 = 256 << 10;
const DISCARD: (u64, u64) = (12 * MIB, 13 * MIB);
const ZEROOUT: (u64, u64) = (13 * MIB, 14 * MIB);
const MQ: (u64, u64) = (14 * MIB, 16 * MIB);
const FS: (u64, u64) = (16 * MIB, DISK);

/// Bytes of a seeded pattern (xorshift64*), the same on host and guest.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The guest's direct writes: (offset, length, seed), one per slot.
fn direct_writes() -> Vec<(u64, usize, u64)> {
    let mut x = 0x1234_5678_u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..(SLOTS.1 - SLOTS.0) / SLOT)
        .map(|i| {
            let len = 4096 * (1 + next() % 32); // 4 KiB ..= 128 KiB
            let room = (SLOT - len) / 4096;
            let off = SLOTS.0 + i * SLOT + 4096 * (next() % (room + 1));
            (off, len as usize, 100 + i)
        })
        .collect()
}

const MODULES: &[&str] = &[
    "virtio",
    "virtio_ring",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "loop",
    "crc16",
    "mbcache",
    "jbd2",
    "crc32c_generic",
    "ext4",
];

const SCRIPT: &str = r#"
echo "T start $(cut -d' ' -f1 /proc/uptime)"
echo "GUEST queues: $(ls /sys/block/vda/mq | wc -l) cpus: $(grep -c ^processor /proc/cpuinfo)"
FV_IN_GUEST=1 /bin/vhost_user_blk --ignored --exact in_guest_blk_checks --nocapture --test-threads=1 || exit 1
losetup -o 16777216 /dev/loop0 /dev/vda || exit 2
echo "T mkfs $(cut -d' ' -f1 /proc/uptime)"
/bin/mke2fs -q -F -t ext4 /dev/loop0 || exit 3
echo "T mount $(cut -d' ' -f1 /proc/uptime)"
mkdir -p /mnt && mount -t ext4 /dev/loop0 /mnt || exit 4
for i in 1 2 3 4; do dd if=/dev/urandom of=/mnt/file$i bs=64k count=$((i * 4)) 2>/dev/null || exit 5; done
mkdir /mnt/dir && echo "hello from the guest" > /mnt/dir/note
(cd /mnt && md5sum file1 file2 file3 file4 dir/note > /tmp/sums)
echo "T umount $(cut -d' ' -f1 /proc/uptime)"
umount /mnt || exit 6
echo "T remount $(cut -d' ' -f1 /proc/uptime)"
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/loop0 /mnt || exit 7
(cd /mnt && md5sum -c /tmp/sums) || exit 8
umount /mnt && losetup -d /dev/loop0
sync
# Driver reload: the device is reset, its queues stopped (GET_VRING_BASE) and started again
# on new rings.
echo virtio0 > /sys/bus/virtio/drivers/virtio_blk/unbind || exit 9
echo virtio0 > /sys/bus/virtio/drivers/virtio_blk/bind || exit 10
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 1; done
echo "RELOAD read $(dd if=/dev/vda bs=1048576 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
yes fpga-virtio | head -c 4096 > /tmp/reload
dd if=/tmp/reload of=/dev/vda bs=4096 seek=3072 count=1 oflag=direct conv=notrunc 2>/dev/null || exit 11
dd if=/dev/vda of=/tmp/back bs=4096 skip=3072 count=1 iflag=direct 2>/dev/null || exit 12
cmp /tmp/reload /tmp/back && echo "RELOAD-OK driver unbound, bound again, read and written"
echo "T end $(cut -d' ' -f1 /proc/uptime)"
echo "FS-OK ext4 created, filled, remounted and checked"
"#;

fn fill(f: &File, (start, end): (u64, u64), seed: u64) {
    f.write_all_at(&pattern(seed, (end - start) as usize), start)
        .unwrap();
}

fn start_backend(socket: &Path, disk: &Path, policy: &str) -> Child {
    let _ = std::fs::remove_file(socket);
    let child = Command::new(env!("CARGO_BIN_EXE_fpga-virtio"))
        .args([
            "vhost-user-blk",
            "--queues",
            "2",
            "--connections",
            "1",
            "--policy",
            policy,
        ])
        .arg("--socket")
        .arg(socket)
        .arg("--disk")
        .arg(disk)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fpga-virtio vhost-user-blk");
    let t = Instant::now();
    while !socket.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the backend never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn wait(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// A fresh scratch directory holding a zeroed 64 MiB disk image; (dir, disk, socket path).
fn scratch(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("fv-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.img");
    File::create(&disk).unwrap().set_len(DISK).unwrap();
    let socket = dir.join("blk.sock");
    (dir, disk, socket)
}

/// QEMU arguments for a vhost-user-blk disk with `queues` queues on `socket` (guest memory
/// shared with the backend); `chardev` adds options to the socket chardev.
fn vhost_blk_args(socket: &Path, queues: u32, chardev: &str) -> Vec<String> {
    [
        "-object".to_string(),
        "memory-backend-memfd,id=mem,size=256M,share=on".into(),
        "-numa".into(),
        "node,memdev=mem".into(),
        "-chardev".into(),
        format!("socket,id=c0,path={}{chardev}", socket.display()),
        "-device".into(),
        format!("vhost-user-blk-pci,chardev=c0,num-queues={queues}"),
    ]
    .to_vec()
}

fn run_policy(policy: &str) {
    let kit = GuestKit::find().unwrap_or_else(|e| panic!("{e}"));
    let (dir, disk, socket) = scratch(&format!("vhost-{policy}"));
    {
        let f = OpenOptions::new().write(true).open(&disk).unwrap();
        fill(&f, HOST_REGION, 1);
        fill(&f, DISCARD, 2);
        fill(&f, ZEROOUT, 3);
    }
    let mut initramfs = Initramfs::new(&kit, &format!("vhost-{policy}")).unwrap();
    initramfs
        .modules(&kit, MODULES)
        .unwrap()
        .binary(&std::env::current_exe().unwrap(), "vhost_user_blk")
        .unwrap()
        .binary(Path::new("/usr/sbin/mke2fs"), "mke2fs")
        .unwrap()
        .script(SCRIPT)
        .unwrap();
    let image = initramfs.build().unwrap();
    let backend = start_backend(&socket, &disk, policy);
    let guest = Guest {
        args: [
            vec!["-smp".into(), "2".into()],
            vhost_blk_args(&socket, 2, ""),
        ]
        .concat(),
        memory_mib: 256,
        timeout: Duration::from_secs(
            std::env::var("FV_GUEST_TIMEOUT_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(240),
        ),
        ..Guest::default()
    };
    let out = guest.run(&kit, &image).unwrap();
    let (code, backend_log) = wait(backend, Duration::from_secs(20));
    let c = &out.console;
    let show = || {
        format!(
            "policy {policy}: guest console ({:?}):\n{c}\nbackend (exit {code:?}):\n{backend_log}",
            out.elapsed
        )
    };
    assert!(!c.contains("insmod"), "a module failed to load\n{}", show());
    assert!(c.contains("GUEST queues: 2 cpus: 2"), "{}", show());
    for step in [
        "host-data",
        "direct",
        "flush",
        "discard",
        "zeroout",
        "multiqueue",
        "perf",
    ] {
        assert!(
            c.contains(&format!("BLK-OK {step}:")),
            "step {step}\n{}",
            show()
        );
    }
    assert!(c.contains("FS-OK"), "{}", show());
    assert!(c.contains("RELOAD-OK"), "{}", show());
    let host_md5 = {
        let p = dir.join("host-region");
        std::fs::write(&p, pattern(1, MIB as usize)).unwrap();
        let out = Command::new("md5sum").arg(&p).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        c.contains(&format!("RELOAD read {host_md5}")),
        "after the reload the guest read other data than the host wrote\n{}",
        show()
    );
    assert_eq!(out.status, Some(0), "{}", show());
    assert_eq!(code, Some(0), "backend\n{}", show());
    // Both queues carried requests, each on the path the policy gives it.
    for q in 0..2 {
        let line = backend_log
            .lines()
            .find(|l| l.contains(&format!("queue {q} (")))
            .unwrap_or_else(|| panic!("no summary for queue {q}\n{}", show()));
        let requests: u64 = line
            .split("): ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(requests > 0, "queue {q} served nothing: {line}\n{}", show());
        assert!(
            line.contains(" 0 errors, 0 DMA faults"),
            "{line}\n{}",
            show()
        );
    }
    // The image holds what the guest wrote.
    let f = File::open(&disk).unwrap();
    let read = |off: u64, len: usize| {
        let mut b = vec![0u8; len];
        f.read_exact_at(&mut b, off).unwrap();
        b
    };
    assert!(
        read(0, MIB as usize) == pattern(1, MIB as usize),
        "host region changed"
    );
    for (off, len, seed) in direct_writes() {
        assert!(
            read(off, len) == pattern(seed, len),
            "direct write at {off:#x} (+{len:#x}) not on disk"
        );
    }
    // The discarded range reads as zeros, but for the page written after the driver reload.
    let reload: Vec<u8> = b"fpga-virtio\n"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    assert!(
        read(DISCARD.0, 4096) == reload,
        "the write after the reload is not on disk"
    );
    assert!(
        read(DISCARD.0 + 4096, MIB as usize - 4096)
            .iter()
            .all(|&b| b == 0),
        "discarded range not zero"
    );
    assert!(
        read(ZEROOUT.0, MIB as usize).iter().all(|&b| b == 0),
        "zeroed range not zero"
    );
    for k in 0..2u64 {
        let at = MQ.0 + k * MIB;
        assert!(
            read(at, MIB as usize) == pattern(200 + k, MIB as usize),
            "queue thread {k}"
        );
    }
    let fs = dir.join("fs.img");
    std::fs::write(&fs, read(FS.0, (FS.1 - FS.0) as usize)).unwrap();
    let fsck = Command::new("e2fsck").arg("-fn").arg(&fs).output().unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn: {}\n{}",
        String::from_utf8_lossy(&fsck.stdout),
        show()
    );
    for l in c.lines().filter(|l| l.starts_with("BLK-PERF")) {
        eprintln!("policy {policy}: {l}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn real_guest_all_fpga() {
    run_policy("fpga");
}

#[test]
fn real_guest_all_cpu() {
    run_policy("cpu");
}

#[test]
fn real_guest_split() {
    run_policy("split");
}

// ---- inside the guest ----

struct Aligned(memmap2::MmapMut);

impl Aligned {
    fn new(len: usize) -> Self {
        Aligned(memmap2::MmapMut::map_anon(len.max(4096)).unwrap())
    }
    fn with(data: &[u8]) -> Self {
        let mut a = Aligned::new(data.len());
        a.0[..data.len()].copy_from_slice(data);
        a
    }
}

fn open_direct() -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open("/dev/vda")
        .expect("open /dev/vda O_DIRECT")
}

fn ok(step: &str, detail: impl std::fmt::Display) {
    println!("BLK-OK {step}: {detail}");
}

fn range_ioctl(f: &File, req: libc::c_ulong, (start, end): (u64, u64)) {
    use std::os::fd::AsRawFd;
    let range = [start, end - start];
    // SAFETY: BLKDISCARD/BLKZEROOUT read two u64s (start, length) from the pointer, which
    // points at `range`, alive for the call; the fd is open.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), req, range.as_ptr()) };
    assert_eq!(rc, 0, "ioctl {req:#x}: {}", std::io::Error::last_os_error());
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; cpu < CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the set is initialized and its size is passed; 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity({cpu})");
}

/// Timed QD1 direct I/O of `len`-byte requests for `secs` seconds; returns (requests, bytes).
fn timed(
    f: &File,
    write: bool,
    len: usize,
    region: (u64, u64),
    random: bool,
    secs: f64,
) -> (u64, u64) {
    let mut buf = Aligned::with(&pattern(7, len));
    let slots = (region.1 - region.0) / len as u64;
    let mut x = 0x51ed_2701_u64;
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < secs {
        let slot = if random {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % slots
        } else {
            n % slots
        };
        let at = region.0 + slot * len as u64;
        if write {
            f.write_all_at(&buf.0[..len], at).unwrap();
        } else {
            f.read_exact_at(&mut buf.0[..len], at).unwrap();
        }
        n += 1;
    }
    (n, n * len as u64)
}

/// Runs inside the guest the tests above boot (FV_IN_GUEST=1); on a host it does nothing.
#[test]
#[ignore = "runs inside the QEMU guest the real_guest_* tests boot"]
fn in_guest_blk_checks() {
    if std::env::var_os("FV_IN_GUEST").is_none() {
        eprintln!("not in the guest: nothing to do");
        return;
    }
    let f = open_direct();
    // Data the host wrote before boot.
    let mut buf = Aligned::new(MIB as usize);
    f.read_exact_at(&mut buf.0[..], HOST_REGION.0).unwrap();
    assert!(
        buf.0[..] == pattern(1, MIB as usize)[..],
        "host-written data read back different"
    );
    ok("host-data", "1 MiB written by the host read back intact");

    // Seeded direct writes, then every one read back.
    let ops = direct_writes();
    let mut bytes = 0;
    for &(off, len, seed) in &ops {
        f.write_all_at(&Aligned::with(&pattern(seed, len)).0[..len], off)
            .unwrap();
        bytes += len;
    }
    for &(off, len, seed) in &ops {
        let mut b = Aligned::new(len);
        f.read_exact_at(&mut b.0[..len], off).unwrap();
        assert!(
            b.0[..len] == pattern(seed, len)[..],
            "read back at {off:#x} differs"
        );
    }
    ok(
        "direct",
        format!(
            "{} O_DIRECT writes ({bytes} bytes, 4-128 KiB) read back intact",
            ops.len()
        ),
    );
    f.sync_all().unwrap();
    ok("flush", "fsync (VIRTIO_BLK_T_FLUSH) completed");

    const BLKDISCARD: libc::c_ulong = 0x1277;
    const BLKZEROOUT: libc::c_ulong = 0x127f;
    range_ioctl(&f, BLKDISCARD, DISCARD);
    let mut b = Aligned::new(MIB as usize);
    f.read_exact_at(&mut b.0[..], DISCARD.0).unwrap();
    assert!(
        b.0.iter().all(|&x| x == 0),
        "a discarded range does not read back as zeros"
    );
    ok("discard", "BLKDISCARD of 1 MiB; it reads back as zeros");
    range_ioctl(&f, BLKZEROOUT, ZEROOUT);
    f.read_exact_at(&mut b.0[..], ZEROOUT.0).unwrap();
    assert!(
        b.0.iter().all(|&x| x == 0),
        "a zeroed range does not read back as zeros"
    );
    ok("zeroout", "BLKZEROOUT of 1 MiB; it reads back as zeros");

    // One thread per vCPU: blk-mq maps each CPU to its own queue.
    let threads: Vec<_> = (0..2u64)
        .map(|k| {
            std::thread::spawn(move || {
                pin_to_cpu(k as usize);
                let f = open_direct();
                let at = MQ.0 + k * MIB;
                let data = pattern(200 + k, MIB as usize);
                for chunk in 0..64u64 {
                    let c = (chunk * 16384) as usize;
                    f.write_all_at(
                        &Aligned::with(&data[c..c + 16384]).0[..16384],
                        at + chunk * 16384,
                    )
                    .unwrap();
                }
                let mut b = Aligned::new(MIB as usize);
                f.read_exact_at(&mut b.0[..], at).unwrap();
                assert!(b.0[..] == data[..], "thread {k} read back different data");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a queue thread failed");
    }
    ok(
        "multiqueue",
        "2 threads on 2 vCPUs, 1 MiB each in 16 KiB writes, read back intact",
    );

    let secs = 1.0;
    let (rn, _) = timed(&f, false, 4096, (0, 16 * MIB), true, secs);
    let (wn, _) = timed(&f, true, 4096, FS, true, secs);
    let (_, sb) = timed(&f, false, 128 << 10, (0, 16 * MIB), false, secs);
    let (_, swb) = timed(&f, true, 128 << 10, FS, false, secs);
    println!(
        "BLK-PERF 4k-randread-qd1 {:.0} IOPS, 4k-randwrite-qd1 {:.0} IOPS, 128k-seqread {:.2} MiB/s, 128k-seqwrite {:.2} MiB/s",
        rn as f64 / secs,
        wn as f64 / secs,
        sb as f64 / secs / MIB as f64,
        swb as f64 / secs / MIB as f64
    );
    ok("perf", "timed direct I/O done");
}

// ---- the backend killed and restarted while the guest does I/O ----

const RESTART_BASE: u64 = 8 * MIB;
const RESTART_CHUNK: usize = 16 << 10;
const RESTART_ROUNDS: u64 = 240;
/// The host kills the backend once the guest's write of this round is on disk.
const RESTART_KILL_AT: u64 = 24;

fn restart_chunk(i: u64) -> (u64, Vec<u8>) {
    (
        RESTART_BASE + (i % 64) * RESTART_CHUNK as u64,
        pattern(1000 + i, RESTART_CHUNK),
    )
}

/// The second writer of the split case: 64 KiB requests, over the split policy's 32 KiB
/// hardware limit (punted to the CPU), each followed by a flush (punted too).
const MIX_BASE: u64 = 32 * MIB;
const MIX_CHUNK: usize = 64 << 10;

fn restart_script(test: &str) -> String {
    format!(
        r#"
FV_IN_GUEST=1 /bin/vhost_user_blk --ignored --exact {test} --nocapture --test-threads=1
rc=$?
dmesg | grep -i -E "I/O error|blk_update_request|timeout" | sed 's/^/KMSG /'
exit $rc
"#
    )
}

/// A QEMU that reconnects (`reconnect-ms`) keeps the guest running while the backend is
/// killed (SIGKILL) mid-I/O and started again: the guest sees no I/O error, and every write it
/// made reads back. The restarted backend recovers each queue from the in-flight region
/// (INFLIGHT_SHMFD): it serves exactly the requests the dead one had not completed. `mixed`:
/// a second guest thread's punted requests (64 KiB writes and flushes) run beside the FPGA's
/// 16 KiB ones, so completions can be out of order at the kill (whether one is caught in flight
/// is up to timing; workload/tests/restart.rs recovers such a state deterministically).
fn restart_mid_io(policy: &str, mixed: bool) {
    let kit = GuestKit::find().unwrap_or_else(|e| panic!("{e}"));
    let (dir, disk, socket) = scratch(&format!("restart-{policy}"));
    let mut initramfs = Initramfs::new(&kit, &format!("restart-{policy}")).unwrap();
    initramfs
        .modules(&kit, &MODULES[..6])
        .unwrap()
        .binary(&std::env::current_exe().unwrap(), "vhost_user_blk")
        .unwrap()
        .script(&restart_script(if mixed {
            "in_guest_restart_mixed_io"
        } else {
            "in_guest_restart_io"
        }))
        .unwrap();
    let image = initramfs.build().unwrap();
    let first = start_backend(&socket, &disk, policy);
    let guest = Guest {
        args: vhost_blk_args(&socket, 1, ",reconnect-ms=100"),
        memory_mib: 256,
        timeout: Duration::from_secs(120),
        ..Guest::default()
    };
    let (kit2, image2) = (kit.clone(), image.clone());
    let run = std::thread::spawn(move || guest.run(&kit2, &image2));
    // Kill the backend once the guest is well into its writes.
    let (at, mark) = restart_chunk(RESTART_KILL_AT);
    let f = File::open(&disk).unwrap();
    let t = Instant::now();
    let mut buf = vec![0u8; mark.len()];
    loop {
        f.read_exact_at(&mut buf, at).unwrap();
        if buf == mark {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the guest never got to round {RESTART_KILL_AT}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut first = first;
    first.kill().unwrap();
    let _ = first.wait();
    std::thread::sleep(Duration::from_millis(300));
    let second = start_backend(&socket, &disk, policy);
    let out = run.join().unwrap().unwrap();
    let (code, log) = wait(second, Duration::from_secs(20));
    let c = &out.console;
    let show = || {
        format!(
            "policy {policy} ({:?}):\n{c}\nrestarted backend (exit {code:?}):\n{log}",
            out.elapsed
        )
    };
    assert!(c.contains("RESTART-OK"), "{}", show());
    assert!(!c.contains("KMSG"), "the guest saw I/O errors\n{}", show());
    assert_eq!(out.status, Some(0), "{}", show());
    let served: u64 = log
        .lines()
        .filter_map(|l| l.split("): ").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        served > 0,
        "the restarted backend served nothing\n{}",
        show()
    );
    assert!(
        log.contains("recovered from the in-flight log"),
        "the restarted backend did not recover the queue from the in-flight region\n{}",
        show()
    );
    if mixed {
        assert!(c.contains("MIX-OK"), "{}", show());
    }
    for l in log.lines().filter(|l| l.contains("recovered")) {
        println!("RESTART-RECOVERY {policy}: {l}");
    }
    // The last write of every chunk is on disk.
    for i in RESTART_ROUNDS - 64..RESTART_ROUNDS {
        let (at, data) = restart_chunk(i);
        let mut b = vec![0u8; data.len()];
        f.read_exact_at(&mut b, at).unwrap();
        assert!(b == data, "round {i} not on disk\n{}", show());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn backend_restart_mid_io_all_cpu() {
    restart_mid_io("cpu", false);
}

#[test]
fn backend_restart_mid_io_all_fpga() {
    restart_mid_io("fpga", false);
}

#[test]
fn backend_restart_mid_io_split_with_punts() {
    restart_mid_io("split", true);
}

/// The guest side of `restart_mid_io`: write a chunk, read it back, round after round.
#[test]
#[ignore = "runs inside the QEMU guest the backend_restart_* tests boot"]
fn in_guest_restart_io() {
    if std::env::var_os("FV_IN_GUEST").is_none() {
        eprintln!("not in the guest: nothing to do");
        return;
    }
    let f = open_direct();
    let mut back = Aligned::new(RESTART_CHUNK);
    for i in 0..RESTART_ROUNDS {
        let (at, data) = restart_chunk(i);
        f.write_all_at(&Aligned::with(&data).0[..RESTART_CHUNK], at)
            .unwrap_or_else(|e| panic!("round {i}: write: {e}"));
        f.read_exact_at(&mut back.0[..RESTART_CHUNK], at)
            .unwrap_or_else(|e| panic!("round {i}: read: {e}"));
        assert!(
            back.0[..RESTART_CHUNK] == data[..],
            "round {i} read back different data"
        );
    }
    println!("RESTART-OK {RESTART_ROUNDS} writes of 16 KiB read back");
}

/// `in_guest_restart_io` with a second thread beside it whose 64 KiB writes and flushes the
/// FPGA punts to the CPU: they complete out of order with the 16 KiB requests.
#[test]
#[ignore = "runs inside the QEMU guest the backend_restart_* tests boot"]
fn in_guest_restart_mixed_io() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    if std::env::var_os("FV_IN_GUEST").is_none() {
        eprintln!("not in the guest: nothing to do");
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let mix = std::thread::spawn(move || {
        let f = open_direct();
        let mut back = Aligned::new(MIX_CHUNK);
        let mut j = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            let at = MIX_BASE + (j % 32) * MIX_CHUNK as u64;
            let data = pattern(5000 + j, MIX_CHUNK);
            f.write_all_at(&Aligned::with(&data).0[..MIX_CHUNK], at)
                .unwrap_or_else(|e| panic!("mix {j}: write: {e}"));
            f.sync_data()
                .unwrap_or_else(|e| panic!("mix {j}: flush: {e}"));
            f.read_exact_at(&mut back.0[..MIX_CHUNK], at)
                .unwrap_or_else(|e| panic!("mix {j}: read: {e}"));
            assert!(
                back.0[..MIX_CHUNK] == data[..],
                "mix {j} read back different data"
            );
            j += 1;
        }
        j
    });
    in_guest_restart_io();
    stop.store(true, Ordering::Relaxed);
    let n = mix.join().expect("the mixed writer failed");
    println!("MIX-OK {n} writes of 64 KiB with flushes read back");
}

// ---- a guest reboot ----

const REBOOT_SCRIPT: &str = r#"
mark=$(dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 6)
if [ "$mark" = "REBOOT" ]; then
  echo "SECOND-BOOT $(dd if=/dev/vda bs=4096 skip=512 count=256 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
  exit 0
fi
yes fpga-virtio-reboot | head -c 1048576 > /tmp/data
dd if=/tmp/data of=/dev/vda bs=4096 seek=512 oflag=direct conv=notrunc 2>/dev/null || exit 1
echo "FIRST-BOOT $(md5sum /tmp/data | cut -d' ' -f1)"
printf 'REBOOT' > /tmp/mark
dd if=/tmp/mark of=/dev/vda bs=512 seek=100 conv=notrunc,fsync 2>/dev/null || exit 2
reboot -f
"#;

/// The guest reboots: the device is reset, QEMU stops the queues, the new kernel's driver sets
/// up new rings; data written before the reboot reads back after it.
#[test]
fn guest_reboot_keeps_its_disk() {
    let kit = GuestKit::find().unwrap_or_else(|e| panic!("{e}"));
    let (dir, disk, socket) = scratch("reboot");
    let mut initramfs = Initramfs::new(&kit, "reboot").unwrap();
    initramfs
        .modules(&kit, &MODULES[..6])
        .unwrap()
        .script(REBOOT_SCRIPT)
        .unwrap();
    let image = initramfs.build().unwrap();
    let backend = start_backend(&socket, &disk, "split");
    let guest = Guest {
        args: vhost_blk_args(&socket, 1, ""),
        memory_mib: 256,
        timeout: Duration::from_secs(120),
        reboot: true,
        ..Guest::default()
    };
    let out = guest.run(&kit, &image).unwrap();
    let (code, log) = wait(backend, Duration::from_secs(20));
    let c = &out.console;
    let show = || {
        format!(
            "guest ({:?}):\n{c}\nbackend (exit {code:?}):\n{log}",
            out.elapsed
        )
    };
    let sum = |tag: &str| {
        c.lines()
            .find_map(|l| l.trim().strip_prefix(tag).map(str::to_string))
            .unwrap_or_else(|| panic!("no {tag}\n{}", show()))
    };
    let before = sum("FIRST-BOOT ");
    let after = sum("SECOND-BOOT ");
    assert_eq!(
        before,
        after,
        "data written before the reboot reads back different\n{}",
        show()
    );
    assert_eq!(out.status, Some(0), "{}", show());
    let _ = std::fs::remove_dir_all(&dir);
}
