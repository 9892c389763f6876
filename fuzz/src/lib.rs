//! Fuzz targets over fpga-virtio's untrusted inputs, shared by the coverage-guided runs
//! (cargo-fuzz, nightly: `fuzz/cargo-fuzz/`) and the CI smoke run (`tests/smoke.rs`, stable:
//! every committed corpus file, then seeded mutations of them for a time budget).
//!
//! Each target takes any bytes and must neither panic nor break an invariant; an invariant
//! broken is a panic with the reason, which both runners report as a crash.

use fpga_virtio_driver::blk::{BlkConfig, SoftwareEngine};
use fpga_virtio_driver::virtq::{chain, DmaWindows, MAX_CHAIN_BYTES};
use fpga_virtio_storage::{BlockStore, RamStore};
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The tenant's memory in [`chain_engine`]: the input is copied there from address 0 (the
/// descriptor table is at 0).
pub const TENANT: u64 = 0x1_0000;
/// The backend's memory right after it (a carry or a wrap in a bounds check reaches it first).
pub const PRIVATE: u64 = 0x1000;
const CANARY: u8 = 0xc3;
const DISK_SECTORS: u64 = 128;

/// The chain walker, the blk request parser and the software engine on guest memory the
/// input describes.
///
/// Input: byte 0 the queue size (`1 << (b % 9)`), bytes 1-2 the head index, byte 3 bit 0
/// INDIRECT_DESC negotiated and bits 1-2 the number of DMA windows, then per window a first
/// and a last 256-byte unit of the tenant's memory (a byte each); the whole input is also the
/// start of the tenant's memory (descriptors at 0). Invariants: a walked chain lies inside the
/// windows and within MAX_CHAIN_BYTES; serving it changes no byte outside the windows (the
/// rest of the tenant's memory, the backend's region after it), reads nothing from there into
/// the disk, and leaves the engine holding at most one piece of buffer.
pub fn chain_engine(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let qsize = 1u16 << (data[0] % 9);
    let head = u16::from_le_bytes([data[1], data[2]]);
    let indirect = data[3] & 1 != 0;
    let nwin = usize::from((data[3] >> 1) & 3);
    let mut ranges = Vec::new();
    for w in 0..nwin {
        let (Some(&a), Some(&b)) = (data.get(4 + 2 * w), data.get(5 + 2 * w)) else {
            break;
        };
        let (lo, hi) = (a.min(b), a.max(b));
        ranges.push((u64::from(lo) * 256, (u64::from(hi) + 1) * 256));
    }
    let windows = DmaWindows::new(&ranges).expect("at most 3 non-empty windows");
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), (TENANT + PRIVATE) as usize)])
        .expect("anonymous memory");
    mem.write_slice(&data[..data.len().min(TENANT as usize)], GuestAddress(0))
        .expect("inside");
    mem.write_slice(&[CANARY; PRIVATE as usize], GuestAddress(TENANT))
        .expect("inside");
    let Ok(segs) = chain::walk(&mem, &windows, 0, qsize, head, indirect) else {
        return;
    };
    let mut total = 0u64;
    for s in &segs {
        assert!(
            windows.contains(s.addr, u64::from(s.len)),
            "walked segment {s:?} outside the windows {windows:?}"
        );
        total += u64::from(s.len);
    }
    assert!(total <= MAX_CHAIN_BYTES, "walked chain of {total} bytes");
    let before = snapshot(&mem);
    let store = Arc::new(RamStore::new(DISK_SECTORS * 512));
    let disk: Vec<u8> = (0..DISK_SECTORS * 512).map(|i| (i % 127) as u8).collect();
    store.write_at(0, &disk).expect("inside");
    let mut engine = SoftwareEngine::new(store.clone(), BlkConfig::new(DISK_SECTORS, "fuzz"));
    let _ = engine.serve(&mem, &segs);
    assert!(
        engine.held_bytes() <= fpga_virtio_driver::blk::engine::PIECE,
        "engine holds {} bytes",
        engine.held_bytes()
    );
    let after = snapshot(&mem);
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        if a != b {
            assert!(
                windows.contains(i as u64, 1),
                "byte {i:#x} outside the windows changed ({a:#x} -> {b:#x})"
            );
        }
    }
    let now = store.snapshot().expect("not poisoned");
    assert!(
        now == disk || !now.contains(&CANARY),
        "the backend's memory reached the disk"
    );
}

fn snapshot(mem: &GuestMemoryMmap) -> Vec<u8> {
    let mut v = vec![0u8; (TENANT + PRIVATE) as usize];
    mem.read_slice(&mut v, GuestAddress(0)).expect("inside");
    v
}

/// The firmware image parser and verifier: any bytes give Ok or a clear error, and a parsed
/// image's sections lie inside it.
pub fn image_parse(data: &[u8]) {
    use fpga_virtio_firmware_loader::{Image, SigningKey};
    if let Ok(img) = Image::parse(data) {
        for s in &img.sections {
            assert!(s.offset as usize + s.data.len() <= data.len());
        }
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let _ = img.verify(Some(&key));
        let _ = img.verify(None);
    }
}

/// A fuzz target: any bytes; a broken invariant panics.
pub type Target = fn(&[u8]);

/// The targets by name (the corpus directory names).
pub const TARGETS: &[(&str, Target)] =
    &[("chain_engine", chain_engine), ("image_parse", image_parse)];
