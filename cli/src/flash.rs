//! `fpga-virtio info` and `fpga-virtio flash IMAGE`: the device's identity and flash slots, and
//! loading an image with rollback. The device is the simulated FPGA, whose flash lives in a file
//! between runs (`--flash-file`), or a card bound to vfio-pci (`info --device BDF`).

use crate::error::{file, CliError};
use fpga_virtio_driver::vfio::sysfs::PciAddress;
use fpga_virtio_firmware_loader::{info, load, DeviceInfo, LoadOptions};
use fpga_virtio_sim::{FlashModel, SimConfig, SimDevice, Simulator};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the simulated device keeps its flash by default.
pub fn default_flash_file() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("fpga-virtio").join("sim-flash.bin")
}

fn device(flash_file: &Path) -> Result<(SimDevice, Arc<FlashModel>), CliError> {
    let model = FlashModel::load(flash_file).map_err(file(flash_file))?;
    let sim = Simulator::new(SimConfig {
        flash: Some(model.clone()),
        ..SimConfig::default()
    })?;
    Ok((SimDevice::new(sim), model))
}

pub fn run_info(flash_file: &Path, json: bool) -> Result<(), CliError> {
    let (dev, _) = device(flash_file)?;
    let i = info(&dev)?;
    print_info(
        &format!(
            "simulated fpga-virtio device (flash in {})",
            flash_file.display()
        ),
        &i,
        json,
    )
}

/// `fpga-virtio info --device BDF`: the same over the kernel's VFIO. A device that is not an
/// fpga-virtio card is named by its ids and what its BAR0 starts with.
pub fn run_info_device(address: PciAddress, json: bool) -> Result<(), CliError> {
    let dev = crate::card::open(address)?;
    let pci = dev.pci().clone();
    let i = info(&dev).map_err(|e| CliError::Card {
        address,
        source: Box::new(e.into()),
    })?;
    print_info(
        &format!(
            "fpga-virtio device {address} [{:04x}:{:04x}] over VFIO",
            pci.vendor, pci.device
        ),
        &i,
        json,
    )?;
    dev.close()
        .map_err(|source| CliError::Close { address, source })
}

fn print_info(header: &str, i: &DeviceInfo, json: bool) -> Result<(), CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(i)?);
    } else {
        println!("{header}");
        println!(
            "  board {:#010x}  fpga {:#010x}  product {:#010x}",
            i.board_id, i.fpga_id, i.product
        );
        println!(
            "  firmware {}  built {}  source {:08x}",
            i.version, i.build_date, i.git_hash
        );
        println!(
            "  booted slot {}{}  active slot {}",
            i.booted,
            if i.fallback {
                " (fallback: the active slot failed its check)"
            } else {
                ""
            },
            i.active
        );
        println!(
            "  flash: {} pages of {} bytes per slot",
            i.slot_pages, i.page_bytes
        );
    }
    Ok(())
}

/// The largest image a slot holds (every page but the commit record's).
const MAX_IMAGE_BYTES: u64 = fpga_virtio_hw::regs::FLASH_PAGE_WORDS as u64
    * 4
    * (fpga_virtio_hw::regs::FLASH_SLOT_PAGES as u64 - 1);

/// Read `path`, refusing (before reading) a file larger than `max`: a huge or endless file
/// (`/dev/zero`) is an error, not a process that fills its memory.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(file(path))?;
    let too_big = |bytes: u64| CliError::ImageTooLarge {
        path: path.into(),
        bytes,
        max,
    };
    let len = f.metadata().map_err(file(path))?.len();
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(file(path))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

pub fn run_flash(
    image: &Path,
    trusted_key: Option<&Path>,
    force: bool,
    flash_file: &Path,
    json: bool,
) -> Result<(), CliError> {
    let bytes = read_bounded(image, MAX_IMAGE_BYTES)?;
    let opts = LoadOptions {
        trusted_key: trusted_key.map(crate::image::verifying_key).transpose()?,
        force,
    };
    let (dev, model) = device(flash_file)?;
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(1)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {msg:8} [{bar:40}] {pos}/{len}")?
            .progress_chars("=> "),
    );
    let result = load(&dev, &bytes, &opts, &mut |stage, done, total| {
        if bar.message() != stage {
            bar.set_message(stage.to_string());
            bar.set_length(total);
        }
        bar.set_position(done);
    });
    bar.finish_and_clear();
    // Whatever happened, the flash keeps what was written (as a real part would).
    model.save(flash_file).map_err(file(flash_file))?;
    let report = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "flashed {} into slot {} ({} pages): now running {} (was {} from slot {})",
            image.display(),
            report.slot,
            report.pages,
            report.now.version,
            report.previous.version,
            report.previous.booted
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_larger_than_a_slot_is_refused_before_it_is_read() {
        // /dev/zero reports no size and never ends: read at most one byte past the limit.
        let e = read_bounded(Path::new("/dev/zero"), 4096).unwrap_err();
        assert!(
            matches!(e, CliError::ImageTooLarge { max: 4096, .. }),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.img");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_IMAGE_BYTES + 1)
            .unwrap();
        assert!(read_bounded(&big, MAX_IMAGE_BYTES).is_err());
        let ok = dir.path().join("ok.img");
        std::fs::write(&ok, [1u8; 100]).unwrap();
        assert_eq!(read_bounded(&ok, MAX_IMAGE_BYTES).unwrap().len(), 100);
    }
}
