//! Loading an image into the device's flash: verify, write the inactive slot with read-back,
//! commit, switch, reboot, confirm, and roll back when the new image does not come up.
//!
//! Everything goes through [`RegisterIo`], so the same code runs against the simulated device and
//! (once the VFIO backend exists) hardware. The order makes every interruption safe: the slot
//! being written is never the one booted, its commit record is written last (after the whole
//! image read back correctly), and the active-slot switch is one flash operation; a power loss
//! at any point leaves the device booting the image it booted before (or golden).

use crate::image::{Image, ImageError, Version};
use ed25519_dalek::VerifyingKey;
use fpga_virtio_hw::regs::{flash, fw_id, global, FlashCmd, FlashSlot};
use fpga_virtio_hw::{IoError, RegisterIo};

/// Commit-record magic ("FVCOMMIT"): the last page of a slot, written after read-back.
pub const COMMIT_MAGIC: [u8; 8] = *b"FVCOMMIT";

/// What the device says about itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    pub fpga_id: u32,
    pub board_id: u32,
    pub product: u32,
    pub version: String,
    pub build_date: u32,
    pub git_hash: u32,
    /// Slot booted at the last reset: golden, a or b.
    pub booted: &'static str,
    /// The active slot failed its check and golden was booted instead.
    pub fallback: bool,
    /// Slot the next reset boots.
    pub active: &'static str,
    pub page_bytes: u32,
    pub slot_pages: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("register access: {0}")]
    Io(#[from] IoError),
    #[error(transparent)]
    Index(#[from] fpga_virtio_hw::IndexError),
    #[error(transparent)]
    Field(#[from] fpga_virtio_hw::FieldError),
    #[error("image is for board {image:#010x}, device is {device:#010x}")]
    WrongBoard { image: u32, device: u32 },
    #[error("image is for FPGA {image:#010x}, device has {device:#010x}")]
    WrongFpga { image: u32, device: u32 },
    #[error("image version {image} is older than the running {running}; use --force to downgrade")]
    Downgrade { image: Version, running: Version },
    #[error(
        "image of {len} bytes does not fit a slot of {max} bytes (one page is the commit record)"
    )]
    TooLarge { len: usize, max: usize },
    #[error("the device reports flash pages of {page_bytes} bytes and {pages} per slot: a commit record needs pages of at least {min} bytes, a multiple of 4, and two pages")]
    Geometry {
        page_bytes: u32,
        pages: u32,
        min: usize,
    },
    #[error("the device did not come back from the reboot into the new image ({cause}); rolled back to slot {rolled_back_to}{}", if *.rollback_ok { "" } else { " (the rollback did not confirm either: check the device)" })]
    RebootFailed {
        cause: Box<LoadError>,
        rolled_back_to: &'static str,
        rollback_ok: bool,
    },
    #[error("the device stopped answering during the {what} (its registers read all ones: lost power or removed)")]
    DeviceGone { what: String },
    #[error("flash {what} failed (STATUS.error)")]
    Flash { what: String },
    #[error("flash {what} did not finish in {polls} polls (device not answering)")]
    Timeout { what: String, polls: u32 },
    #[error("read-back of page {page} of slot {slot} differs from what was written")]
    ReadBack { slot: &'static str, page: u32 },
    #[error("the device did not come up on the new image (booted {booted}, fallback {fallback}, version {version}); rolled back to slot {rolled_back_to}")]
    NotConfirmed {
        booted: &'static str,
        fallback: bool,
        version: String,
        rolled_back_to: &'static str,
    },
}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Check the image's Ed25519 signature with this key (unsigned images are then refused).
    pub trusted_key: Option<VerifyingKey>,
    /// Allow an older version than the running one.
    pub force: bool,
}

/// Progress of a long step: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// What a load did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    pub slot: &'static str,
    pub previous: DeviceInfo,
    pub now: DeviceInfo,
    pub pages: u32,
}

fn slot_name(s: u32) -> &'static str {
    match FlashSlot::from_raw(s) {
        Some(FlashSlot::Golden) => "golden",
        Some(FlashSlot::A) => "a",
        Some(FlashSlot::B) => "b",
        None => "invalid",
    }
}

/// Polls of STATUS.busy before a command is declared hung (each poll is an MMIO read).
const POLLS: u32 = 2_000_000;

/// Read the device's identity and flash state.
pub fn info(io: &(impl RegisterIo + ?Sized)) -> Result<DeviceInfo, LoadError> {
    wait_idle(io, "boot")?;
    let slots = flash::SLOTS.read(io)?;
    let boot = fw_id::BOOT.read(io)?;
    Ok(DeviceInfo {
        fpga_id: fw_id::FPGA_ID.read(io)?,
        board_id: fw_id::BOARD_ID.read(io)?,
        product: fw_id::PRODUCT.read(io)?,
        version: Version::from_raw(fw_id::FW_VERSION.read(io)?).to_string(),
        build_date: fw_id::BUILD_DATE.read(io)?,
        git_hash: fw_id::GIT_HASH.read(io)?,
        booted: slot_name(fw_id::boot::SLOT.get(boot)),
        fallback: fw_id::boot::FALLBACK.is_set(boot),
        active: slot_name(flash::slots::ACTIVE.get(slots)),
        page_bytes: flash::geometry::PAGE_WORDS.get(flash::GEOMETRY.read(io)?) * 4,
        slot_pages: flash::SLOT_PAGES.read(io)?,
    })
}

fn wait_idle(io: &(impl RegisterIo + ?Sized), what: &str) -> Result<(), LoadError> {
    wait_idle_with(io, what, &mut |_| Ok(()))
}

/// Poll STATUS.busy until it clears; `tick(poll)` runs after every poll that saw it set.
fn wait_idle_with(
    io: &(impl RegisterIo + ?Sized),
    what: &str,
    tick: &mut dyn FnMut(u32) -> Result<(), LoadError>,
) -> Result<(), LoadError> {
    for poll in 0..POLLS {
        let st = flash::STATUS.read(io)?;
        if st == u32::MAX {
            // All ones: a PCIe device that is gone (lost power, surprise removal).
            return Err(LoadError::DeviceGone { what: what.into() });
        }
        if !flash::status::BUSY.is_set(st) {
            return Ok(());
        }
        tick(poll)?;
    }
    Err(LoadError::Timeout {
        what: what.into(),
        polls: POLLS,
    })
}

/// Run one flash command and wait for it; STATUS.error is cleared first and checked after.
fn command(
    io: &(impl RegisterIo + ?Sized),
    cmd: FlashCmd,
    slot: FlashSlot,
    what: &str,
) -> Result<(), LoadError> {
    command_with(io, cmd, slot, what, &mut |_| Ok(()))
}

/// [`command`], with `tick` called while it runs (progress of a long erase).
fn command_with(
    io: &(impl RegisterIo + ?Sized),
    cmd: FlashCmd,
    slot: FlashSlot,
    what: &str,
    tick: &mut dyn FnMut(u32) -> Result<(), LoadError>,
) -> Result<(), LoadError> {
    wait_idle(io, what)?;
    flash::STATUS.write(io, flash::status::ERROR.mask())?;
    flash::CTRL.write(
        io,
        flash::ctrl::CMD.value(cmd as u32)? | flash::ctrl::SLOT.value(slot as u32)?,
    )?;
    if cmd == FlashCmd::Reboot {
        return Ok(());
    }
    wait_idle_with(io, what, tick)?;
    if flash::status::ERROR.is_set(flash::STATUS.read(io)?) {
        return Err(LoadError::Flash { what: what.into() });
    }
    Ok(())
}

/// Program `data` (at most a page) at `page`; the rest of the page stays erased (0xff).
fn write_page(
    io: &(impl RegisterIo + ?Sized),
    slot: FlashSlot,
    page: u32,
    words: u32,
    data: &[u8],
) -> Result<(), LoadError> {
    for i in 0..words as usize {
        let mut b = [0xffu8; 4];
        if let Some(w) = data.get(4 * i..(4 * i + 4).min(data.len())) {
            b[..w.len()].copy_from_slice(w);
        }
        flash::page::DATA
            .at(i as u32)?
            .write(io, u32::from_le_bytes(b))?;
    }
    flash::ADDR.write(io, page)?;
    command(
        io,
        FlashCmd::ProgramPage,
        slot,
        &format!("program of page {page}"),
    )
}

fn read_page(
    io: &(impl RegisterIo + ?Sized),
    slot: FlashSlot,
    page: u32,
    words: u32,
) -> Result<Vec<u8>, LoadError> {
    flash::ADDR.write(io, page)?;
    command(
        io,
        FlashCmd::ReadPage,
        slot,
        &format!("read of page {page}"),
    )?;
    let mut out = Vec::with_capacity(words as usize * 4);
    for i in 0..words {
        out.extend_from_slice(&flash::page::DATA.at(i)?.read(io)?.to_le_bytes());
    }
    Ok(out)
}

/// Bytes of a commit record (magic, length, the header's first 48 bytes).
pub const COMMIT_RECORD_BYTES: usize = 60;

/// The commit record for `image` in a page of `page_bytes`: magic, image length, the header's
/// first 48 bytes, the rest erased. None if the page is too small or the image shorter than a
/// header.
pub fn commit_record(image: &[u8], page_bytes: usize) -> Option<Vec<u8>> {
    if page_bytes < COMMIT_RECORD_BYTES || image.len() < 48 {
        return None;
    }
    let mut c = vec![0xffu8; page_bytes];
    c[0..8].copy_from_slice(&COMMIT_MAGIC);
    c[8..12].copy_from_slice(&(image.len() as u32).to_le_bytes());
    c[12..60].copy_from_slice(&image[..48]);
    Some(c)
}

/// Whether the device's flash geometry can hold an image and its commit record.
fn check_geometry(page_bytes: u32, pages: u32) -> Result<(), LoadError> {
    if (page_bytes as usize) < COMMIT_RECORD_BYTES || !page_bytes.is_multiple_of(4) || pages < 2 {
        return Err(LoadError::Geometry {
            page_bytes,
            pages,
            min: COMMIT_RECORD_BYTES,
        });
    }
    Ok(())
}

/// Load `bytes` into the device. See the module docs for the order of steps.
pub fn load(
    io: &(impl RegisterIo + ?Sized),
    bytes: &[u8],
    opts: &LoadOptions,
    progress: Progress<'_>,
) -> Result<LoadReport, LoadError> {
    // 1. The image, before the device is touched.
    let img = Image::parse(bytes)?;
    img.verify(opts.trusted_key.as_ref())?;
    // 2. The device.
    let previous = info(io)?;
    if img.info.board_id != previous.board_id {
        return Err(LoadError::WrongBoard {
            image: img.info.board_id,
            device: previous.board_id,
        });
    }
    if img.info.fpga_id != previous.fpga_id {
        return Err(LoadError::WrongFpga {
            image: img.info.fpga_id,
            device: previous.fpga_id,
        });
    }
    let running: Version = previous.version.parse().unwrap_or(Version::from_raw(0));
    if img.info.version < running && !opts.force {
        return Err(LoadError::Downgrade {
            image: img.info.version,
            running,
        });
    }
    check_geometry(previous.page_bytes, previous.slot_pages)?;
    let page = previous.page_bytes as usize;
    let pages = previous.slot_pages;
    let max = page * (pages as usize).saturating_sub(1);
    if bytes.len() > max {
        return Err(LoadError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    // 3. The slot that is not running.
    let (slot, previous_slot) = match previous.booted {
        "a" => (FlashSlot::B, FlashSlot::A),
        "b" => (FlashSlot::A, FlashSlot::B),
        _ => (FlashSlot::A, FlashSlot::Golden),
    };
    let name = slot_name(slot as u32);
    // 4. Erase (commit page first), program, read back, commit.
    progress("erase", 0, u64::from(pages));
    command_with(io, FlashCmd::EraseSlot, slot, "erase", &mut |poll| {
        if poll.is_multiple_of(64) {
            progress(
                "erase",
                u64::from(flash::PROGRESS.read(io)?),
                u64::from(pages),
            );
        }
        Ok(())
    })?;
    progress("erase", u64::from(pages), u64::from(pages));
    let chunks: Vec<&[u8]> = bytes.chunks(page).collect();
    let n = chunks.len() as u64;
    let words = (page / 4) as u32;
    for (i, c) in chunks.iter().enumerate() {
        write_page(io, slot, i as u32, words, c)?;
        progress("program", i as u64 + 1, n);
    }
    for (i, c) in chunks.iter().enumerate() {
        let got = read_page(io, slot, i as u32, words)?;
        if &got[..c.len()] != *c || got[c.len()..].iter().any(|&b| b != 0xff) {
            return Err(LoadError::ReadBack {
                slot: name,
                page: i as u32,
            });
        }
        progress("verify", i as u64 + 1, n);
    }
    let commit = commit_record(bytes, page).ok_or(LoadError::Geometry {
        page_bytes: previous.page_bytes,
        pages,
        min: COMMIT_RECORD_BYTES,
    })?;
    write_page(io, slot, pages - 1, words, &commit)?;
    if read_page(io, slot, pages - 1, words)? != commit {
        return Err(LoadError::ReadBack {
            slot: name,
            page: pages - 1,
        });
    }
    // 5. Switch, reboot, confirm; roll back if the new image did not come up.
    command(io, FlashCmd::SetActive, slot, "slot switch")?;
    // A device that does not come back from the reboot (or cannot say what it booted) is
    // rolled back like one that booted the wrong image.
    let now = match reboot(io).and_then(|()| info(io)) {
        Ok(now) => now,
        Err(cause) => {
            let rollback_ok = command(io, FlashCmd::SetActive, previous_slot, "rollback")
                .and_then(|()| reboot(io))
                .is_ok();
            return Err(LoadError::RebootFailed {
                cause: Box::new(cause),
                rolled_back_to: slot_name(previous_slot as u32),
                rollback_ok,
            });
        }
    };
    if now.booted != name || now.fallback || now.version != img.info.version.to_string() {
        command(io, FlashCmd::SetActive, previous_slot, "rollback")?;
        reboot(io)?;
        return Err(LoadError::NotConfirmed {
            booted: now.booted,
            fallback: now.fallback,
            version: now.version,
            rolled_back_to: slot_name(previous_slot as u32),
        });
    }
    Ok(LoadReport {
        slot: name,
        previous,
        now,
        pages: chunks.len() as u32,
    })
}

/// Reboot the device (flash REBOOT: a device reset that boots the active slot) and wait for it.
pub fn reboot(io: &(impl RegisterIo + ?Sized)) -> Result<(), LoadError> {
    command(io, FlashCmd::Reboot, FlashSlot::Golden, "reboot")?;
    for _ in 0..POLLS {
        if global::status::READY.is_set(global::STATUS.read(io)?) {
            return wait_idle(io, "boot");
        }
    }
    Err(LoadError::Timeout {
        what: "reboot".into(),
        polls: POLLS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pages_are_an_error_not_a_panic() {
        let image = [7u8; 100];
        for page in [0usize, 4, 32, 59] {
            assert_eq!(commit_record(&image, page), None, "page of {page} bytes");
        }
        assert_eq!(commit_record(&image, 64).unwrap().len(), 64);
        assert_eq!(commit_record(&image[..40], 64), None);
        assert!(matches!(
            check_geometry(32, 4096),
            Err(LoadError::Geometry { page_bytes: 32, .. })
        ));
        assert!(check_geometry(62, 4096).is_err());
        assert!(check_geometry(256, 1).is_err());
        check_geometry(256, 4096).unwrap();
    }
}
