//! Files a frontend passes for us to map (guest memory regions, the in-flight region): checked
//! before they are mapped, so that a hostile or broken frontend costs its connection and never
//! the process.
//!
//! Touching a mapping past the end of its file raises SIGBUS, which kills the backend. So a file
//! is taken only when it is a regular file (memfd, tmpfs, hugetlbfs) at least as long as the
//! range that will be mapped, and sealed against shrinking (`F_SEAL_SHRINK`), so it stays that
//! long for as long as it is mapped. QEMU's `memory-backend-memfd` seals its memfds by default
//! (`seal=on`); a file that cannot be sealed (a plain file of `memory-backend-file`, a memfd
//! created without `MFD_ALLOW_SEALING`) is refused with an error that says so.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

#[derive(Debug, thiserror::Error)]
pub enum SharedFdError {
    #[error("{what}: fstat: {source}")]
    Stat {
        what: &'static str,
        source: io::Error,
    },
    #[error("{what}: not a regular file (mode {mode:#o}): only memory files can be shared")]
    NotAFile { what: &'static str, mode: u32 },
    #[error("{what}: {len:#x} bytes at offset {offset:#x} claimed, the file has {size:#x}")]
    TooShort {
        what: &'static str,
        offset: u64,
        len: u64,
        size: u64,
    },
    #[error(
        "{what}: the file cannot be sealed against shrinking ({source}); a frontend could truncate \
         it under the mapping. Share guest memory as a sealable memfd (QEMU: memory-backend-memfd)"
    )]
    Unsealable {
        what: &'static str,
        source: io::Error,
    },
}

/// Check `file` before `len` bytes of it from `offset` are mapped shared (see the module docs).
pub fn check(file: &File, offset: u64, len: u64, what: &'static str) -> Result<(), SharedFdError> {
    let fd = file.as_raw_fd();
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes at most one `struct stat` into `st`, which is that large, and reads
    // nothing of ours; `fd` is open for the call (borrowed from `file`).
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(SharedFdError::Stat {
            what,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: fstat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(SharedFdError::NotAFile {
            what,
            mode: st.st_mode,
        });
    }
    let size = st.st_size as u64;
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(SharedFdError::TooShort {
            what,
            offset,
            len,
            size,
        });
    }
    // SAFETY: F_GET_SEALS takes no argument and touches no memory.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_SHRINK != 0 {
        return Ok(());
    }
    // SAFETY: F_ADD_SEALS takes an int of seal bits and touches no memory.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } != 0 {
        return Err(SharedFdError::Unsealable {
            what,
            source: io::Error::last_os_error(),
        });
    }
    // The size was read before the seal: a truncation in between is caught here.
    let size = file.metadata().map_or(0, |m| m.len());
    if size < offset + len {
        return Err(SharedFdError::TooShort {
            what,
            offset,
            len,
            size,
        });
    }
    Ok(())
}

/// A kick or call fd from the frontend, made fit for the event thread: it must be an eventfd
/// (what QEMU and DPDK send; a regular file would read as a kick forever), and it is switched
/// to non-blocking, so that neither reading a kick nor signalling a call whose counter the
/// frontend let run up to its maximum ever blocks the thread that serves every queue.
pub fn notifier(file: File, what: &'static str) -> Result<File, NotifierError> {
    let fd = file.as_raw_fd();
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map_err(|source| NotifierError::Io { what, source })?;
    if link.as_os_str() != "anon_inode:[eventfd]" {
        return Err(NotifierError::NotEventfd {
            what,
            kind: link.display().to_string(),
        });
    }
    // SAFETY: F_GETFL / F_SETFL take and return ints and touch no memory; `fd` is open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } != 0 {
        return Err(NotifierError::Io {
            what,
            source: io::Error::last_os_error(),
        });
    }
    Ok(file)
}

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error("{what}: not an eventfd ({kind})")]
    NotEventfd { what: &'static str, kind: String },
}

/// A memfd of `len` bytes, sealed against shrinking and growing, for memory we hand a frontend
/// (the in-flight region): it passes [`check`] when a frontend hands it back.
pub fn sealed_memfd(name: &std::ffi::CStr, len: u64) -> io::Result<File> {
    // SAFETY: `name` is NUL-terminated; memfd_create returns a new fd or -1 and touches no
    // memory of ours.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(len)?;
    // SAFETY: F_ADD_SEALS takes an int of seal bits and touches no memory.
    if unsafe {
        libc::fcntl(
            f.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_memfd(len: u64, flags: libc::c_uint) -> File {
        // SAFETY: literal name; a new fd or -1.
        let fd = unsafe { libc::memfd_create(c"fv-test".as_ptr(), libc::MFD_CLOEXEC | flags) };
        assert!(fd >= 0);
        // SAFETY: fresh fd, owned by nothing else.
        let f = unsafe { File::from_raw_fd(fd) };
        f.set_len(len).unwrap();
        f
    }

    #[test]
    fn short_unsealable_and_odd_files_are_refused() {
        let f = plain_memfd(8192, libc::MFD_ALLOW_SEALING);
        assert!(matches!(
            check(&f, 4096, 8192, "region"),
            Err(SharedFdError::TooShort { size: 8192, .. })
        ));
        assert!(matches!(
            check(&f, u64::MAX, 2, "region"),
            Err(SharedFdError::TooShort { .. })
        ));
        check(&f, 0, 8192, "region").unwrap();
        // Sealed now: it cannot shrink under a mapping any more.
        assert!(f.set_len(4096).is_err());
        assert_eq!(f.metadata().unwrap().len(), 8192);
        // A memfd without MFD_ALLOW_SEALING cannot be held to its size.
        let g = plain_memfd(8192, 0);
        assert!(matches!(
            check(&g, 0, 8192, "region"),
            Err(SharedFdError::Unsealable { .. })
        ));
        // Not a file at all.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let sock = File::from(std::os::fd::OwnedFd::from(a));
        assert!(matches!(
            check(&sock, 0, 1, "region"),
            Err(SharedFdError::NotAFile { .. })
        ));
    }

    #[test]
    fn notifiers_must_be_eventfds_and_never_block() {
        use vmm_sys_util::eventfd::EventFd;
        let e = EventFd::new(0).unwrap();
        // SAFETY: dup returns a new fd we own, or -1.
        let fd = unsafe { libc::dup(e.as_raw_fd()) };
        assert!(fd >= 0);
        // SAFETY: fresh fd.
        let mut f = notifier(unsafe { File::from_raw_fd(fd) }, "call").unwrap();
        // One short of the counter's maximum: a blocking write of 1 would never return.
        use std::io::Write;
        f.write_all(&(u64::MAX - 1).to_le_bytes()).unwrap();
        let r = f.write(&1u64.to_le_bytes());
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let memfd = sealed_memfd(c"fv-not-a-notifier", 8).unwrap();
        assert!(matches!(
            notifier(memfd, "kick"),
            Err(NotifierError::NotEventfd { .. })
        ));
    }

    #[test]
    fn our_inflight_memfd_passes_its_own_check() {
        let f = sealed_memfd(c"fv-test-inflight", 4096).unwrap();
        check(&f, 0, 4096, "in-flight region").unwrap();
        assert!(f.set_len(8192).is_err(), "sealed against growing too");
    }
}
