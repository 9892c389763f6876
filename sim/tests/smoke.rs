use fpga_virtio_hw::regs::{global, queue};
use fpga_virtio_hw::RegisterIo;
use fpga_virtio_sim::testing::{enable_device, kick, setup_queue, Buffer, QueueSetup, SplitRing};
use fpga_virtio_sim::{Perm, SimConfig, SimDevice, Simulator};
use vm_memory::{Bytes, GuestAddress};

#[test]
fn echo_one_request() {
    let mut sim = Simulator::new(SimConfig::default()).unwrap();
    sim.iommu_mut().map(0, 0, 16 << 20, Perm::RW).unwrap();
    let mem = sim.memory().mem().clone();
    let dev = SimDevice::new(sim);
    let blocks = fpga_virtio_driver::probe::probe(&dev).unwrap();
    assert_eq!(blocks.len(), 9);
    assert_eq!(global::SCRATCH.read(&dev).unwrap(), 0);
    global::SCRATCH.write(&dev, 0x1234_5678).unwrap();
    assert_eq!(global::SCRATCH.read(&dev).unwrap(), 0x1234_5678);

    let mut ring = SplitRing::new(&mem, 0x10_0000, 8, false).unwrap();
    setup_queue(&dev, 0, &ring, QueueSetup::default()).unwrap();
    enable_device(&dev).unwrap();
    let src: Vec<u8> = (0..100u8).collect();
    mem.write_slice(&src, GuestAddress(0x20_0000)).unwrap();
    ring.add_chain(&[
        Buffer {
            addr: 0x20_0000,
            len: 100,
            write: false,
        },
        Buffer {
            addr: 0x30_0000,
            len: 128,
            write: true,
        },
    ])
    .unwrap();
    ring.publish().unwrap();
    kick(&dev, 0, ring.avail_idx()).unwrap();
    let done = dev
        .lock()
        .run_until(100_000, 100, |_| ring.used_idx().unwrap() == 1)
        .unwrap();
    let st = queue::q::STATUS.at(0).unwrap().read(&dev).unwrap();
    assert!(done, "status {st:#x}, cycle {}", dev.lock().cycle());
    let used = ring.reap().unwrap();
    assert_eq!(used, vec![(0, 100)]);
    let mut out = vec![0u8; 100];
    mem.read_slice(&mut out, GuestAddress(0x30_0000)).unwrap();
    assert_eq!(out, src);
}
