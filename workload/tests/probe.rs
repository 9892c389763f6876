//! The driver against the simulated card's registers (the sim crate's own tests do not use the
//! driver).

use fpga_virtio_hw::regs::{self, global, queue};
use fpga_virtio_hw::RegisterIo;
use fpga_virtio_sim::testing::enable_device;
use fpga_virtio_sim::{SimConfig, SimDevice, Simulator};

fn device() -> SimDevice {
    let dev = SimDevice::new(Simulator::new(SimConfig::default()).unwrap());
    enable_device(&dev).unwrap();
    dev
}

/// The driver's probe runs unchanged on the simulated device: the block list, versions and
/// register semantics come from the generated CSR blocks in the RTL.
#[test]
fn probe_and_registers_through_the_rtl() {
    let dev = device();
    let blocks = fpga_virtio_driver::probe::probe(&dev).unwrap();
    let names: Vec<_> = blocks.iter().map(|b| b.name.unwrap()).collect();
    assert_eq!(
        names,
        [
            "fw_id",
            "global",
            "functions",
            "queue",
            "punt_ring",
            "cpl_ring",
            "dma_window",
            "flow_table",
            "counters",
            "flash"
        ]
    );
    // rw reads back; ro ignores writes; wo reads 0; resets come from the map.
    global::SCRATCH.write(&dev, 0x1234_5678).unwrap();
    assert_eq!(global::SCRATCH.read(&dev).unwrap(), 0x1234_5678);
    global::CAPS.write(&dev, 0).unwrap();
    let caps = global::CAPS.read(&dev).unwrap();
    assert_eq!(global::caps::NUM_QUEUES.get(caps), regs::NUM_QUEUES);
    assert_eq!(
        1 << global::caps::DMA_BYTES_LOG2.get(caps),
        fpga_virtio_sim::dma_bytes() as u32
    );
    assert_eq!(
        queue::q::MSIX.at(7).unwrap().read(&dev).unwrap(),
        regs::NO_VECTOR
    );
    assert_eq!(
        regs::doorbell::db::NOTIFY
            .at(0)
            .unwrap()
            .read(&dev)
            .unwrap(),
        0
    );
    // Every register of the map reads its reset value (live status aside) after reset.
    let fresh = SimDevice::new(Simulator::new(SimConfig::default()).unwrap());
    for info in regs::REGISTERS {
        for off in info.offsets().take(2) {
            let v = fresh.read32(info.bar, off).unwrap();
            let fixed = info.rw_mask | info.const_mask;
            assert_eq!(v & fixed, info.reset & fixed, "{} at {off:#x}", info.name);
        }
    }
    // The cycle counter runs, and CYCLE_LO latches CYCLE_HI.
    let a = global::CYCLE_LO.read(&dev).unwrap();
    let b = global::CYCLE_LO.read(&dev).unwrap();
    assert!(b > a);
    assert_eq!(global::CYCLE_HI.read(&dev).unwrap(), 0);
}
