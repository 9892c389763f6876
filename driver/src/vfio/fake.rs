//! A fake kernel for the VFIO backend's unit tests: the "device fd" is an ordinary temporary file
//! (region `i` at offset `i << 24`), so pread/pwrite and mmap are real syscalls on it; DMA,
//! interrupts and reset are recorded in a log the tests read.

use super::sys::{RegionInfo, VfioDeviceOps, VfioSys};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};
use vfio_bindings::bindings::vfio as uapi;
use vfio_ioctls::VfioError;
use vmm_sys_util::errno::Error as Errno;
use vmm_sys_util::eventfd::EventFd;

pub const REGION_SHIFT: u32 = 24;
pub const RW: u32 = uapi::VFIO_REGION_INFO_FLAG_READ | uapi::VFIO_REGION_INFO_FLAG_WRITE;
pub const RW_MMAP: u32 = RW | uapi::VFIO_REGION_INFO_FLAG_MMAP;

#[derive(Default)]
pub struct FakeState {
    pub log: Mutex<Vec<String>>,
    /// errno the next dma_map fails with (after `ok_maps` more successes).
    pub fail_dma_map: Mutex<Option<(usize, i32)>>,
    /// The kernel says the group is not viable.
    pub group_not_viable: bool,
}

impl FakeState {
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn push(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

/// A device: its regions, interrupt counts and the file behind its fd.
#[derive(Clone)]
pub struct FakeVfio {
    pub regions: Vec<Option<RegionInfo>>,
    pub irqs: Vec<u32>,
    pub state: Arc<FakeState>,
    pub path: Arc<std::path::PathBuf>,
}

impl std::fmt::Debug for FakeVfio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeVfio")
    }
}

impl FakeVfio {
    /// A device with BAR0 of `bar0` bytes (mapped as `bar0_flags`, with these sparse areas), a
    /// 256-byte config space and `msix` MSI-X vectors (1 MSI vector).
    pub fn new(
        tag: &str,
        bar0: u64,
        bar0_flags: u32,
        sparse: Option<Vec<(u64, u64)>>,
        msix: u32,
    ) -> Self {
        let path = std::env::temp_dir().join(format!(
            "fv-vfio-fake-{}-{tag}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let f = File::create(&path).unwrap();
        f.set_len(8 << REGION_SHIFT).unwrap();
        let mut regions = vec![None; 8];
        regions[0] = Some(RegionInfo {
            flags: bar0_flags,
            offset: 0,
            size: bar0,
            sparse_areas: sparse,
        });
        regions[7] = Some(RegionInfo {
            flags: RW,
            offset: 7 << REGION_SHIFT,
            size: 256,
            sparse_areas: None,
        });
        FakeVfio {
            regions,
            irqs: vec![1, 1, msix, 1, 1],
            state: Arc::new(FakeState::default()),
            path: Arc::new(path),
        }
    }

    /// Read `len` bytes of region `index` straight from the backing file.
    pub fn peek(&self, index: u32, offset: u64, len: usize) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let f = File::open(&*self.path).unwrap();
        let mut b = vec![0u8; len];
        f.read_exact_at(&mut b, (u64::from(index) << REGION_SHIFT) + offset)
            .unwrap();
        b
    }
}

impl Drop for FakeVfio {
    fn drop(&mut self) {
        if Arc::strong_count(&self.path) == 1 {
            let _ = std::fs::remove_file(&*self.path);
        }
    }
}

struct FakeDevice {
    fake: FakeVfio,
    file: File,
}

impl VfioSys for FakeVfio {
    fn open(&self, device_path: &Path) -> Result<Box<dyn VfioDeviceOps>, VfioError> {
        if self.state.group_not_viable {
            return Err(VfioError::GroupViable);
        }
        self.state.push(format!("open {}", device_path.display()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&*self.path)
            .map_err(|e| VfioError::OpenGroup(e, "fake".into()))?;
        Ok(Box::new(FakeDevice {
            fake: self.clone(),
            file,
        }))
    }
}

impl VfioDeviceOps for FakeDevice {
    fn region(&self, index: u32) -> Option<RegionInfo> {
        self.fake.regions.get(index as usize).cloned().flatten()
    }
    fn irq_count(&self, index: u32) -> u32 {
        self.fake.irqs.get(index as usize).copied().unwrap_or(0)
    }
    fn file(&self) -> &File {
        &self.file
    }
    unsafe fn dma_map(&self, iova: u64, size: usize, _hva: *mut u8) -> Result<(), VfioError> {
        let mut fail = self.fake.state.fail_dma_map.lock().unwrap();
        if let Some((ok, errno)) = *fail {
            if ok == 0 {
                *fail = None;
                return Err(VfioError::IommuDmaMap(Errno::new(errno)));
            }
            *fail = Some((ok - 1, errno));
        }
        self.fake.state.push(format!("dma_map {iova:#x} {size:#x}"));
        Ok(())
    }
    fn dma_unmap(&self, iova: u64, size: usize) -> Result<(), VfioError> {
        self.fake
            .state
            .push(format!("dma_unmap {iova:#x} {size:#x}"));
        Ok(())
    }
    fn enable_irq(&self, index: u32, fds: &[&EventFd]) -> Result<(), VfioError> {
        self.fake
            .state
            .push(format!("enable_irq {index} x{}", fds.len()));
        Ok(())
    }
    fn disable_irq(&self, index: u32) -> Result<(), VfioError> {
        self.fake.state.push(format!("disable_irq {index}"));
        Ok(())
    }
    fn reset(&self) {
        self.fake.state.push("reset".into());
    }
}
