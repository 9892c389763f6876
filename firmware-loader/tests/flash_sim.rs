//! Loading images into the simulated device's flash: A/B slots, confirmation, downgrade and
//! identity checks, and power loss in the middle of programming.

use fpga_virtio_firmware_loader::{
    info, load, reboot, ImageBuilder, LoadError, LoadOptions, SectionKind, SigningKey, Version,
};
use fpga_virtio_hw::regs::{flash, FlashCmd, FlashSlot};
use fpga_virtio_sim::{FlashModel, SimConfig, SimDevice, Simulator};
use std::sync::Arc;

const BOARD: u32 = 0x1ee7_0001;
const FPGA: u32 = 0x0362_d093;

fn device(flash: &Arc<FlashModel>) -> SimDevice {
    SimDevice::new(
        Simulator::new(SimConfig {
            flash: Some(flash.clone()),
            ..SimConfig::default()
        })
        .unwrap(),
    )
}

fn image(version: &str, size: usize, key: Option<&SigningKey>) -> Vec<u8> {
    ImageBuilder::new(BOARD, FPGA, 0x4656_5254, version.parse().unwrap())
        .section(
            SectionKind::Bitstream,
            (0..size).map(|i| (i * 31 + size) as u8).collect(),
        )
        .build(key)
        .unwrap()
}

fn no_progress() -> impl FnMut(&str, u64, u64) {
    |_, _, _| {}
}

#[test]
fn a_b_updates_confirm_the_new_version() {
    let model = FlashModel::new();
    let dev = device(&model);
    let i = info(&dev).unwrap();
    assert_eq!(
        (i.booted, i.active, i.fallback),
        ("golden", "golden", false)
    );
    assert_eq!(
        i.version, "0.1.0",
        "a blank golden slot: the build's own identity"
    );

    let key = SigningKey::from_bytes(&[9; 32]);
    let opts = LoadOptions {
        trusted_key: Some(key.verifying_key()),
        force: false,
    };
    let img = image("1.0.0", 5000, Some(&key));
    let mut stages = Vec::new();
    let r = load(&dev, &img, &opts, &mut |s, d, t| {
        if d == t {
            stages.push(s.to_string());
        }
    })
    .unwrap();
    assert_eq!(stages, ["erase", "program", "verify"]);
    assert_eq!(
        (r.slot, r.now.booted, r.now.version.as_str()),
        ("a", "a", "1.0.0")
    );
    assert_eq!(r.pages, 21, "5240 bytes in 256-byte pages");
    assert_eq!(&model.slot(FlashSlot::A)[..img.len()], &img[..]);

    // The next update goes to the other slot; the running one is never written.
    let r = load(
        &dev,
        &image("1.1.0", 3000, Some(&key)),
        &opts,
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!(
        (r.slot, r.now.booted, r.now.version.as_str()),
        ("b", "b", "1.1.0")
    );
    assert_eq!(&model.slot(FlashSlot::A)[..img.len()], &img[..]);

    // Downgrade refused unless forced; wrong board and unsigned refused before the device is
    // touched.
    let wear = model.wear();
    let e = load(
        &dev,
        &image("1.0.5", 3000, Some(&key)),
        &opts,
        &mut no_progress(),
    )
    .unwrap_err();
    assert!(matches!(e, LoadError::Downgrade { .. }), "{e}");
    let other_board = ImageBuilder::new(0x1234_5678, FPGA, 1, Version::from_raw(0x0002_0000))
        .section(SectionKind::Bitstream, vec![1; 100])
        .build(Some(&key))
        .unwrap();
    let e = load(&dev, &other_board, &opts, &mut no_progress()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "image is for board 0x12345678, device is 0x1ee70001"
    );
    let e = load(&dev, &image("3.0.0", 100, None), &opts, &mut no_progress()).unwrap_err();
    assert!(e.to_string().contains("not signed"), "{e}");
    assert_eq!(
        model.wear(),
        wear,
        "nothing was written for a refused image"
    );
    let forced = LoadOptions {
        force: true,
        ..opts.clone()
    };
    let r = load(
        &dev,
        &image("1.0.5", 3000, Some(&key)),
        &forced,
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!((r.slot, r.now.version.as_str()), ("a", "1.0.5"));

    // A power cycle boots the same image.
    drop(dev);
    let dev = device(&model);
    let i = info(&dev).unwrap();
    assert_eq!(
        (i.booted, i.version.as_str(), i.fallback),
        ("a", "1.0.5", false)
    );
}

#[test]
fn power_loss_while_programming_keeps_the_running_image() {
    let model = FlashModel::new();
    let dev = device(&model);
    let opts = LoadOptions::default();
    load(&dev, &image("1.0.0", 4000, None), &opts, &mut no_progress()).unwrap();
    // The power goes during the next update (after the erase and a few pages).
    model.cut_power_after(flash::SLOT_PAGES.reset + 5);
    let e = load(&dev, &image("2.0.0", 8000, None), &opts, &mut no_progress()).unwrap_err();
    assert!(matches!(e, LoadError::DeviceGone { .. }), "{e}");
    drop(dev);
    // Power back: the device boots the image it ran before.
    model.power_on();
    let dev = device(&model);
    let i = info(&dev).unwrap();
    assert_eq!(
        (i.booted, i.version.as_str(), i.fallback),
        ("a", "1.0.0", false)
    );
    // And the update goes through on the next try.
    let r = load(&dev, &image("2.0.0", 8000, None), &opts, &mut no_progress()).unwrap();
    assert_eq!((r.slot, r.now.version.as_str()), ("b", "2.0.0"));
}

#[test]
fn an_active_slot_without_a_commit_record_boots_golden() {
    let model = FlashModel::new();
    let golden = image("0.9.0", 2000, None);
    model.factory_program(FlashSlot::Golden, &golden, None);
    // Slot A holds an image but no commit record (programming never finished) and is active.
    model.factory_program(FlashSlot::A, &image("1.0.0", 2000, None), None);
    let dev = device(&model);
    info(&dev).unwrap(); // the device has booted (commands during boot are refused)
    flash::CTRL
        .write(
            &dev,
            flash::ctrl::CMD.value(FlashCmd::SetActive as u32).unwrap()
                | flash::ctrl::SLOT.value(FlashSlot::A as u32).unwrap(),
        )
        .unwrap();
    reboot(&dev).unwrap();
    let i = info(&dev).unwrap();
    assert_eq!((i.booted, i.active, i.fallback), ("golden", "a", true));
    assert_eq!(i.version, "0.9.0", "the factory image's identity");
    // Writing golden is refused by the device.
    flash::STATUS
        .write(&dev, flash::status::ERROR.mask())
        .unwrap();
    flash::CTRL
        .write(
            &dev,
            flash::ctrl::CMD.value(FlashCmd::EraseSlot as u32).unwrap()
                | flash::ctrl::SLOT.value(FlashSlot::Golden as u32).unwrap(),
        )
        .unwrap();
    while flash::status::BUSY.is_set(flash::STATUS.read(&dev).unwrap()) {}
    assert!(flash::status::ERROR.is_set(flash::STATUS.read(&dev).unwrap()));
    assert_eq!(&model.slot(FlashSlot::Golden)[..golden.len()], &golden[..]);
}

#[test]
fn an_image_that_does_not_come_up_is_rolled_back() {
    let model = FlashModel::new();
    let dev = device(&model);
    let opts = LoadOptions::default();
    load(&dev, &image("1.0.0", 2000, None), &opts, &mut no_progress()).unwrap();
    // The next image goes to slot B; a cell in its header fails right after the commit record
    // is written (read-back passed): the device cannot boot it.
    let next = image("1.1.0", 2000, None);
    let pages = next.len().div_ceil(256) as u32;
    model.decay_after(pages + 1, FlashSlot::B, 0);
    let e = load(&dev, &next, &opts, &mut no_progress()).unwrap_err();
    match &e {
        LoadError::NotConfirmed {
            booted,
            fallback,
            rolled_back_to,
            ..
        } => assert_eq!((*booted, *fallback, *rolled_back_to), ("golden", true, "a")),
        other => panic!("{other}"),
    }
    let i = info(&dev).unwrap();
    assert_eq!(
        (i.booted, i.active, i.version.as_str()),
        ("a", "a", "1.0.0")
    );
}

/// A device whose global STATUS stops saying READY for a while (after the `after`-th reboot
/// command): a reboot that times out.
struct NeverReady {
    dev: SimDevice,
    reboots: std::sync::atomic::AtomicU32,
    after: u32,
}

impl fpga_virtio_hw::RegisterIo for NeverReady {
    fn read32(
        &self,
        bar: fpga_virtio_hw::Bar,
        offset: u64,
    ) -> Result<u32, fpga_virtio_hw::IoError> {
        use fpga_virtio_hw::regs::global;
        use std::sync::atomic::Ordering;
        let v = self.dev.read32(bar, offset)?;
        if bar == global::STATUS.bar
            && offset == global::STATUS.offset
            && self.reboots.load(Ordering::Relaxed) == self.after
        {
            return Ok(v & !global::status::READY.mask());
        }
        Ok(v)
    }
    fn write32(
        &self,
        bar: fpga_virtio_hw::Bar,
        offset: u64,
        value: u32,
    ) -> Result<(), fpga_virtio_hw::IoError> {
        use std::sync::atomic::Ordering;
        if bar == flash::CTRL.bar
            && offset == flash::CTRL.offset
            && flash::ctrl::CMD.get(value) == FlashCmd::Reboot as u32
        {
            self.reboots.fetch_add(1, Ordering::Relaxed);
        }
        self.dev.write32(bar, offset, value)
    }
}

/// Issue 15: when the reboot into the new image timed out, the loader returned with the new
/// slot active and no rollback. Now it switches back to the slot that ran and reboots it.
#[test]
fn a_reboot_that_times_out_after_the_switch_is_rolled_back() {
    let model = FlashModel::new();
    let dev = device(&model);
    let opts = LoadOptions::default();
    load(&dev, &image("1.0.0", 2000, None), &opts, &mut no_progress()).unwrap();
    let stuck = NeverReady {
        dev,
        reboots: std::sync::atomic::AtomicU32::new(0),
        after: 1,
    };
    let e = load(
        &stuck,
        &image("1.1.0", 2000, None),
        &opts,
        &mut no_progress(),
    )
    .unwrap_err();
    match &e {
        LoadError::RebootFailed {
            rolled_back_to,
            rollback_ok,
            ..
        } => assert_eq!((*rolled_back_to, *rollback_ok), ("a", true), "{e}"),
        other => panic!("{other}"),
    }
    let i = info(&stuck).unwrap();
    assert_eq!(
        (i.booted, i.active, i.version.as_str()),
        ("a", "a", "1.0.0")
    );
}

/// Issue 15: the power goes at every flash operation of an update (the slot erase's first,
/// middle and last pages, each program and read-back, the commit record, the slot switch, the
/// reads of the reboot and of the confirmation): when it comes back the device boots the old
/// image or the new committed one, never neither.
#[test]
fn a_power_cut_at_any_flash_operation_of_an_update_leaves_the_old_or_the_new_image() {
    let base = FlashModel::new();
    {
        let dev = device(&base);
        load(
            &dev,
            &image("1.0.0", 200, None),
            &LoadOptions::default(),
            &mut no_progress(),
        )
        .unwrap();
    }
    let next = image("1.1.0", 600, None);
    // How many flash operations a whole update takes.
    let total = {
        let m = base.copy();
        let dev = device(&m);
        let before = m.ops();
        load(&dev, &next, &LoadOptions::default(), &mut no_progress()).unwrap();
        m.ops() - before
    };
    let erase = u64::from(flash::SLOT_PAGES.reset);
    assert!(total > erase, "{total} operations");
    let points: Vec<u64> = (0..8)
        .chain([erase / 2, erase - 1, erase, erase + 1])
        .chain(erase + 2..=total)
        .collect();
    let (mut old, mut new) = (0, 0);
    for k in points {
        let m = base.copy();
        {
            let dev = device(&m);
            m.cut_power_after_any(k as u32);
            let r = load(&dev, &next, &LoadOptions::default(), &mut no_progress());
            assert!(k >= total || r.is_err(), "cut after {k} of {total}: {r:?}");
        }
        m.power_on();
        let dev = device(&m);
        let i = info(&dev).unwrap();
        match (i.booted, i.version.as_str(), i.fallback) {
            ("a", "1.0.0", false) => old += 1,
            ("b", "1.1.0", false) => new += 1,
            other => panic!("cut after {k} of {total} operations: booted {other:?}"),
        }
    }
    assert!(old > 0 && new > 0, "old {old}, new {new}");
    eprintln!(
        "{total} operations per update; cuts booted the old image {old} times, the new {new}"
    );
}
