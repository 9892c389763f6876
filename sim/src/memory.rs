//! Guest memory on a memfd, so another process (or QEMU) can map the same pages.

use std::fs::File;
use std::os::fd::FromRawFd;
use vm_memory::{FileOffset, GuestAddress, GuestMemoryMmap};

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memfd_create failed: {0}")]
    Memfd(std::io::Error),
    #[error("cannot size the memfd to {size:#x} bytes: {source}")]
    Size { size: u64, source: std::io::Error },
    #[error("cannot map guest memory: {0}")]
    Map(String),
}

/// Guest memory: one region at guest physical 0, backed by a memfd; or memory that someone
/// else set up (a vhost-user frontend's memory table), see [`GuestMemory::from_mmap`].
#[derive(Debug, Clone)]
pub struct GuestMemory {
    mem: GuestMemoryMmap,
    file: Option<std::sync::Arc<File>>,
    size: u64,
}

impl GuestMemory {
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        // SAFETY: the name is a NUL-terminated literal; memfd_create has no other preconditions
        // and returns a new descriptor or -1.
        let fd = unsafe { libc::memfd_create(c"fpga-virtio-guest".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(MemoryError::Memfd(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns; File takes ownership.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size)
            .map_err(|source| MemoryError::Size { size, source })?;
        let file = std::sync::Arc::new(file);
        let len = usize::try_from(size).map_err(|e| MemoryError::Map(e.to_string()))?;
        let mem = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(0),
            len,
            Some(FileOffset::from_arc(file.clone(), 0)),
        )])
        .map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(GuestMemory {
            mem,
            file: Some(file),
            size,
        })
    }

    /// Memory built elsewhere (any number of regions, anywhere in the address space).
    pub fn from_mmap(mem: GuestMemoryMmap) -> Self {
        use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
        let size = mem.iter().map(|r| r.len()).sum();
        GuestMemory {
            mem,
            file: None,
            size,
        }
    }

    /// The vm-memory view (shares the pages; cheap to clone).
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// The memfd backing the memory (to share it with another process); None for memory made
    /// with [`GuestMemory::from_mmap`].
    pub fn file(&self) -> Option<&File> {
        self.file.as_deref()
    }

    /// Total bytes over all regions.
    pub fn size(&self) -> u64 {
        self.size
    }
}
