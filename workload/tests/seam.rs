//! The device-type seam: one runtime serves two device types at once, knowing them only through
//! `DeviceEngine`. Function 0 is virtio-blk, function 1 the echo test device (its FPGA engine is
//! `fv_echo_engine.sv`, its CPU engine `fpga_virtio_driver::echo`). The same seeded echo chains
//! give the same used lengths and bytes on an FPGA-owned queue, a CPU-owned queue and through
//! punts (chains longer than the FPGA's segment table); blk goes on beside it.

use fpga_virtio_driver::blk::BlkConfig;
use fpga_virtio_driver::device::Function;
use fpga_virtio_driver::echo::EchoEngine;
use fpga_virtio_driver::runtime::{
    BlkFunction, Path, QueueInfo, QueueSpec, Rings, Runtime, SplitPolicy,
};
use fpga_virtio_driver::virtq::DmaWindows;
use fpga_virtio_hw::regs::{self, PuntReason};
use fpga_virtio_sim::testing::{enable_device, kick, Buffer, SplitRing};
use fpga_virtio_sim::{Perm, SimConfig, SimDevice, Simulator};
use fpga_virtio_storage::{BlockStore, RamStore};
use fpga_virtio_workload::Rng;
use std::sync::Arc;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: u64 = 64 << 20;
const PUNT: u64 = 0x0f_0000;
const CPL: u64 = 0x0f_8000;
const RINGS: u64 = 0x10_0000; // 64 KiB apart
const SLOTS: u64 = 0x100_0000; // per queue 4 MiB: readable data, then writable buffers
const SIZE: u16 = 256;

/// One echo request: its readable pieces' contents and its writable pieces' lengths.
#[derive(Clone, Debug)]
struct Echo {
    readable: Vec<Vec<u8>>,
    writable: Vec<u32>,
}

fn requests(seed: u64, n: usize) -> Vec<Echo> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            // Every seventh chain has more descriptors than the FPGA's segment table (16).
            let (nr, nw) = if i % 7 == 3 {
                (10, 10)
            } else {
                (1 + rng.below(4) as usize, 1 + rng.below(4) as usize)
            };
            let readable = (0..nr)
                .map(|_| {
                    let len = 1 + rng.below(3000) as usize;
                    (0..len).map(|_| rng.next_u64() as u8).collect()
                })
                .collect();
            let writable = (0..nw).map(|_| 1 + rng.below(3000) as u32).collect();
            Echo { readable, writable }
        })
        .collect()
}

struct Rig {
    dev: SimDevice,
    mem: GuestMemoryMmap,
    rt: Runtime,
    rings: Vec<SplitRing>,
}

/// Queues 0 and 3 belong to the blk function, 1 and 2 to the echo function; 2 and 3 are
/// CPU-owned.
fn rig() -> Rig {
    let mut sim = Simulator::new(SimConfig {
        memory: MEM,
        ..SimConfig::default()
    })
    .unwrap();
    sim.iommu_mut().map(0, 0, MEM, Perm::RW).unwrap();
    let store: Arc<dyn BlockStore> = Arc::new(RamStore::new(1 << 20));
    sim.attach_store(store.clone());
    let mem = sim.memory().mem().clone();
    let dev = SimDevice::new(sim);
    enable_device(&dev).unwrap();
    let tenant = DmaWindows::new(&[(RINGS, MEM)]).unwrap();
    let mut rt = Runtime::start(
        &dev,
        mem.clone(),
        SplitPolicy::from_toml("cpu_queues = [2, 3]").unwrap(),
        vec![
            BlkFunction {
                func: 0,
                store: store.clone(),
                config: BlkConfig::new(store.size() / 512, "seam"),
                windows: tenant.clone(),
            }
            .into(),
            Function {
                func: 1,
                engine: Box::new(EchoEngine::new()),
                windows: tenant,
            },
        ],
        Rings {
            punt: PUNT,
            punt_log2: 6,
            cpl: CPL,
            cpl_log2: 6,
            punt_vector: regs::NO_VECTOR,
        },
    )
    .unwrap();
    let mut rings = Vec::new();
    for q in 0..4u16 {
        let ring = SplitRing::new(
            &mem,
            RINGS + u64::from(q) * 0x1_0000,
            u32::from(SIZE),
            false,
        )
        .unwrap();
        let func = u8::from(q == 1 || q == 2);
        let spec = QueueSpec {
            qid: q,
            info: QueueInfo {
                func,
                vq: q,
                desc: ring.desc_addr(),
                avail: ring.avail_addr(),
                used: ring.used_addr(),
                size: SIZE,
                indirect: false,
                event_idx: false,
                notification_data: true,
            },
            vector: regs::NO_VECTOR,
            last_avail: 0,
            used_idx: 0,
            done_log: None,
        };
        let path = rt.add_queue(&dev, spec).unwrap();
        assert_eq!(path, if q >= 2 { Path::Cpu } else { Path::Fpga });
        rings.push(ring);
    }
    Rig {
        dev,
        mem,
        rt,
        rings,
    }
}

impl Rig {
    /// Post `reqs` on queue `q` in batches, wait for each batch; returns each request's used
    /// length and the bytes its writable buffers hold afterwards.
    fn echo(&mut self, q: u16, reqs: &[Echo]) -> Vec<(u32, Vec<u8>)> {
        let base = SLOTS + u64::from(q) * (4 << 20);
        let mut out = Vec::new();
        for batch in reqs.chunks(8) {
            let mut at = base;
            let mut posted = Vec::new();
            for r in batch {
                let mut bufs = Vec::new();
                for piece in &r.readable {
                    self.mem.write_slice(piece, GuestAddress(at)).unwrap();
                    bufs.push(Buffer {
                        addr: at,
                        len: piece.len() as u32,
                        write: false,
                    });
                    at += 4096;
                }
                let mut writable = Vec::new();
                for &len in &r.writable {
                    self.mem
                        .write_slice(&vec![0xeeu8; len as usize], GuestAddress(at))
                        .unwrap();
                    bufs.push(Buffer {
                        addr: at,
                        len,
                        write: true,
                    });
                    writable.push((at, len));
                    at += 4096;
                }
                let head = self.rings[usize::from(q)].add_chain(&bufs).unwrap();
                posted.push((head, writable));
            }
            self.rings[usize::from(q)].publish().unwrap();
            kick(
                &self.dev,
                u32::from(q),
                self.rings[usize::from(q)].avail_idx(),
            )
            .unwrap();
            let mut used = std::collections::BTreeMap::new();
            for _ in 0..2000 {
                if used.len() == posted.len() {
                    break;
                }
                self.dev.lock().run(2000).unwrap();
                self.rt.poll(&self.dev).unwrap();
                for (head, len) in self.rings[usize::from(q)].reap().unwrap() {
                    used.insert(head, len);
                }
            }
            assert_eq!(used.len(), posted.len(), "queue {q}: the batch completes");
            for (head, writable) in posted {
                let mut bytes = Vec::new();
                for (addr, len) in writable {
                    let mut b = vec![0u8; len as usize];
                    self.mem.read_slice(&mut b, GuestAddress(addr)).unwrap();
                    bytes.extend_from_slice(&b);
                }
                out.push((used[&head], bytes));
            }
        }
        out
    }
}

/// What the echo device must give: the readable bytes, in order, into the writable buffers.
fn expected(r: &Echo) -> (u32, Vec<u8>) {
    let data: Vec<u8> = r.readable.concat();
    let room: usize = r.writable.iter().map(|&l| l as usize).sum();
    let n = data.len().min(room);
    let mut bytes = data[..n].to_vec();
    bytes.resize(room, 0xee);
    (n as u32, bytes)
}

#[test]
fn two_device_types_in_one_runtime_agree_on_every_path() {
    let reqs = requests(0x5ea3, 96);
    let mut rig = rig();
    blk(&mut rig);
    let fpga = rig.echo(1, &reqs);
    // blk requests after echo ones on the same device-engine slots (the blk engine once counted
    // the echo engine's DMA write answers as its own and hung).
    blk(&mut rig);
    let cpu = rig.echo(2, &reqs);
    for (i, r) in reqs.iter().enumerate() {
        let want = expected(r);
        assert_eq!(fpga[i], want, "request {i} on the FPGA queue");
        assert_eq!(cpu[i], want, "request {i} on the CPU queue");
    }
    // The long chains went through the punt ring to the CPU's echo engine.
    let punted = rig.rt.stats().queues[&1]
        .punts
        .get(PuntReason::ChainTooLong);
    let long = (0..reqs.len()).filter(|i| i % 7 == 3).count() as u64;
    assert_eq!(punted, long);
    assert_eq!(rig.rt.stats().queues[&1].requests, punted);
    assert_eq!(rig.rt.stats().queues[&2].requests, reqs.len() as u64);
    assert_eq!(rig.rt.stats().queues[&2].statuses.ok, reqs.len() as u64);
}

/// The blk function beside it, on both paths: a write then a read back.
fn blk(rig: &mut Rig) {
    for q in [0u16, 3] {
        let data: Vec<u8> = (0..4096u32).map(|i| (i as u8) ^ (q as u8 * 77)).collect();
        let base = SLOTS + u64::from(q) * (4 << 20);
        for (t, dir) in [(1u32, false), (0u32, true)] {
            let mut h = [0u8; 16];
            h[..4].copy_from_slice(&t.to_le_bytes());
            h[8..].copy_from_slice(&(u64::from(q) * 8).to_le_bytes());
            rig.mem.write_slice(&h, GuestAddress(base)).unwrap();
            let buf = if dir { base + 0x2000 } else { base + 0x1000 };
            if !dir {
                rig.mem.write_slice(&data, GuestAddress(buf)).unwrap();
            }
            let ring = &mut rig.rings[usize::from(q)];
            ring.add_chain(&[
                Buffer {
                    addr: base,
                    len: 16,
                    write: false,
                },
                Buffer {
                    addr: buf,
                    len: 4096,
                    write: dir,
                },
                Buffer {
                    addr: base + 0x3000,
                    len: 1,
                    write: true,
                },
            ])
            .unwrap();
            ring.publish().unwrap();
            kick(&rig.dev, u32::from(q), ring.avail_idx()).unwrap();
            let mut done = Vec::new();
            for _ in 0..1000 {
                rig.dev.lock().run(1000).unwrap();
                rig.rt.poll(&rig.dev).unwrap();
                done.extend(rig.rings[usize::from(q)].reap().unwrap());
                if !done.is_empty() {
                    break;
                }
            }
            assert_eq!(
                done.len(),
                1,
                "queue {q}: state {:#x} status {:#x} {:?} {:?}",
                regs::queue::q::STATE
                    .at(u32::from(q))
                    .unwrap()
                    .read(&rig.dev)
                    .unwrap(),
                regs::queue::q::STATUS
                    .at(u32::from(q))
                    .unwrap()
                    .read(&rig.dev)
                    .unwrap(),
                rig.rt.queue_error(&rig.dev, q),
                rig.rt.stats().queues.get(&q)
            );
            assert_eq!(
                rig.mem.read_obj::<u8>(GuestAddress(base + 0x3000)).unwrap(),
                0
            );
        }
        let mut back = vec![0u8; 4096];
        rig.mem
            .read_slice(&mut back, GuestAddress(base + 0x2000))
            .unwrap();
        assert_eq!(back, data, "queue {q}");
    }
}
