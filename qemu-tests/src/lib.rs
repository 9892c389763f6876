//! Real Linux guests under QEMU (TCG), for tests that put a real kernel in front of our code: its
//! vfio-pci and IOMMU under our VFIO backend (`tests/vfio_edu.rs`), and later its virtio drivers
//! in front of our vhost-user backend.
//!
//! The kit comes from `ci/setup-guest`: QEMU ≥ 10, busybox-static, and a Debian kernel unpacked
//! to `$FV_TOOLS/guest` (an ELF `vmlinux` QEMU boots directly, and its modules). A guest is an
//! initramfs built per test: static busybox, the modules it needs (insmod'ed in order), our
//! binaries with the shared libraries `ldd` names, and a script. `/init` runs the script and
//! prints `FV-GUEST-EXIT <status>` before powering off; [`Guest::run`] returns the console output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What booting a guest needs from the host.
#[derive(Clone, Debug)]
pub struct GuestKit {
    pub qemu: PathBuf,
    pub vmlinux: PathBuf,
    pub modules: PathBuf,
    pub busybox: PathBuf,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/sbin".into(), "/usr/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl GuestKit {
    /// Find the kit where `ci/setup` puts it ($FV_TOOLS, default ~/.cache/fpga-virtio/tools).
    pub fn find() -> Result<Self, String> {
        let tools = std::env::var_os("FV_TOOLS")
            .map(PathBuf::from)
            .or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))
                    })?;
                Some(cache.join("fpga-virtio/tools"))
            })
            .ok_or("neither FV_TOOLS nor HOME is set")?;
        let guest = tools.join("guest");
        let missing =
            |what: &str| format!("{what} not found: run ci/setup (it runs ci/setup-guest)");
        let kit = GuestKit {
            qemu: which("qemu-system-x86_64").ok_or_else(|| missing("qemu-system-x86_64"))?,
            vmlinux: guest.join("vmlinux"),
            modules: guest.join("modules"),
            busybox: which("busybox").ok_or_else(|| missing("busybox"))?,
        };
        if !kit.vmlinux.is_file() || !kit.modules.is_dir() {
            return Err(missing(&format!("guest kernel in {}", guest.display())));
        }
        Ok(kit)
    }

    fn module(&self, name: &str) -> Result<PathBuf, String> {
        fn walk(dir: &Path, file: &str) -> Option<PathBuf> {
            for e in std::fs::read_dir(dir).ok()?.flatten() {
                let p = e.path();
                if p.is_dir() {
                    if let Some(found) = walk(&p, file) {
                        return Some(found);
                    }
                } else if p.file_name().is_some_and(|n| n == file) {
                    return Some(p);
                }
            }
            None
        }
        walk(&self.modules, &format!("{name}.ko"))
            .ok_or_else(|| format!("module {name}.ko not in {}", self.modules.display()))
    }
}

/// An initramfs being put together in a scratch directory.
#[derive(Debug)]
pub struct Initramfs {
    root: PathBuf,
    modules: Vec<String>,
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))?;
    Ok(())
}

impl Initramfs {
    /// Start one under a fresh scratch directory named after `tag`.
    pub fn new(kit: &GuestKit, tag: &str) -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!("fv-guest-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["bin", "mod", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
        }
        copy(&kit.busybox, &root.join("bin/busybox"))?;
        Ok(Initramfs {
            root,
            modules: Vec::new(),
        })
    }

    /// Add kernel modules, loaded in this order at boot.
    pub fn modules(&mut self, kit: &GuestKit, names: &[&str]) -> Result<&mut Self, String> {
        for name in names {
            copy(
                &kit.module(name)?,
                &self.root.join(format!("mod/{name}.ko")),
            )?;
            self.modules.push(name.to_string());
        }
        Ok(self)
    }

    /// Add a host binary as `/bin/<name>` (debug info stripped: the guest unpacks it into RAM),
    /// with the shared libraries it links.
    pub fn binary(&mut self, host: &Path, name: &str) -> Result<&mut Self, String> {
        let dest = self.root.join("bin").join(name);
        copy(host, &dest)?;
        // Best effort: without `strip` the guest just needs more memory.
        let _ = Command::new("strip")
            .arg("--strip-debug")
            .arg(&dest)
            .status();
        let out = Command::new("ldd")
            .arg(host)
            .output()
            .map_err(|e| format!("ldd: {e}"))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
            let lib = line
                .split("=>")
                .last()
                .and_then(|s| s.split_whitespace().next())
                .filter(|s| s.starts_with('/'));
            if let Some(lib) = lib {
                let dest = self.root.join(lib.trim_start_matches('/'));
                if !dest.exists() {
                    copy(Path::new(lib), &dest)?;
                }
            }
        }
        Ok(self)
    }

    /// Write the test script `/test.sh` (busybox sh). Its exit status is the guest's.
    pub fn script(&mut self, body: &str) -> Result<&mut Self, String> {
        std::fs::write(self.root.join("test.sh"), body).map_err(|e| e.to_string())?;
        Ok(self)
    }

    /// Pack it: `/init` mounts proc, sys and dev, loads the modules, runs the script.
    pub fn build(&self) -> Result<PathBuf, String> {
        let init = format!(
            "#!/bin/busybox sh\n\
             /bin/busybox --install -s /bin\n\
             export PATH=/bin\n\
             mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\n\
             for m in {mods}; do insmod /mod/$m.ko || echo \"FV-GUEST: insmod $m failed\"; done\n\
             sh /test.sh\n\
             echo \"FV-GUEST-EXIT $?\"\n\
             poweroff -f\n",
            mods = self.modules.join(" ")
        );
        let init_path = self.root.join("init");
        std::fs::write(&init_path, init).map_err(|e| e.to_string())?;
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&init_path, mode).map_err(|e| e.to_string())?;
        let image = self.root.with_extension("cpio");
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd '{}' && find . | cpio -o -H newc --quiet > '{}'",
                self.root.display(),
                image.display()
            ))
            .status()
            .map_err(|e| format!("cpio: {e}"))?;
        if !status.success() {
            return Err(format!("cpio failed: {status}"));
        }
        Ok(image)
    }
}

impl Drop for Initramfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_file(self.root.with_extension("cpio"));
    }
}

/// A QEMU invocation: q35, TCG, serial console on stdout.
#[derive(Debug)]
pub struct Guest {
    /// `-machine` (TCG: the host's KVM cannot run a Debian kernel here).
    pub machine: String,
    pub args: Vec<String>,
    pub cmdline: String,
    pub memory_mib: u32,
    pub timeout: Duration,
    /// Let the guest reboot (it boots the same kernel and initramfs again); by default a
    /// reboot ends the run.
    pub reboot: bool,
}

/// What a guest run gave.
#[derive(Debug)]
pub struct GuestOutput {
    /// The serial console, kernel messages included.
    pub console: String,
    /// The script's exit status (None: the guest never printed it).
    pub status: Option<i32>,
    pub elapsed: Duration,
}

impl Default for Guest {
    fn default() -> Self {
        Guest {
            machine: "q35,accel=tcg".into(),
            args: Vec::new(),
            cmdline: String::new(),
            memory_mib: 256,
            timeout: Duration::from_secs(90),
            reboot: false,
        }
    }
}

impl Guest {
    /// Boot `kit`'s kernel with `initrd`, wait for power-off (or the timeout, then kill QEMU).
    pub fn run(&self, kit: &GuestKit, initrd: &Path) -> Result<GuestOutput, String> {
        let start = Instant::now();
        let mut child = Command::new(&kit.qemu)
            .arg("-machine")
            .arg(&self.machine)
            .args(["-nodefaults", "-display", "none"])
            .args(["-serial", "stdio", "-m"])
            .arg(self.memory_mib.to_string())
            .arg("-kernel")
            .arg(&kit.vmlinux)
            .arg("-initrd")
            .arg(initrd)
            .args(if self.reboot {
                None
            } else {
                Some("-no-reboot")
            })
            .arg("-append")
            .arg(format!("console=ttyS0 panic=-1 quiet {}", self.cmdline))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", kit.qemu.display()))?;
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stderr = child.stderr.take().ok_or("no stderr")?;
        let out = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stdout.read_to_end(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            s
        });
        let mut timed_out = false;
        loop {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                break;
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut console = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
        let qemu_err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
        if !qemu_err.trim().is_empty() {
            console.push_str("\n[qemu stderr]\n");
            console.push_str(&qemu_err);
        }
        if timed_out {
            console.push_str(&format!("\n[killed after {:?}]\n", self.timeout));
        }
        let status = console
            .lines()
            .find_map(|l| l.trim().strip_prefix("FV-GUEST-EXIT "))
            .and_then(|s| s.trim().parse().ok());
        Ok(GuestOutput {
            console,
            status,
            elapsed: start.elapsed(),
        })
    }
}
