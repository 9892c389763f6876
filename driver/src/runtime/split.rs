//! The split policy: which queues the FPGA engines serve and which the CPU workers serve.
//!
//! Configuration, not code: a TOML file (the CLI embeds a default). Everything downstream asks
//! one question, [`SplitPolicy::path`], and gets one [`Path`].
//!
//! ```toml
//! default = "fpga"        # queues not listed below
//! workers = 2             # CPU worker threads
//! cpu_queues = [2, 3]     # served entirely by the CPU's device engines
//! ```
//!
//! What a device type's FPGA engine takes within a queue it serves (virtio-blk's
//! `max_hw_sectors`, say) is that device's configuration, not the split's.

use std::collections::BTreeSet;

/// Who serves a queue.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// The FPGA's engines; requests they do not serve are punted to the CPU.
    Fpga,
    /// The CPU's software engine, for every request.
    Cpu,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Fpga => "fpga",
            Path::Cpu => "cpu",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("split policy: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("split policy: {0}")]
    Invalid(String),
}

/// The split of queues between the FPGA and the CPU.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPolicy {
    #[serde(default = "default_path")]
    pub default: Path,
    #[serde(default)]
    pub cpu_queues: BTreeSet<u16>,
    #[serde(default)]
    pub fpga_queues: BTreeSet<u16>,
    #[serde(default = "default_workers")]
    pub workers: usize,
}

fn default_path() -> Path {
    Path::Fpga
}
fn default_workers() -> usize {
    2
}

impl Default for SplitPolicy {
    fn default() -> Self {
        SplitPolicy::all(Path::Fpga)
    }
}

impl SplitPolicy {
    /// Every queue on one path.
    pub fn all(path: Path) -> Self {
        SplitPolicy {
            default: path,
            cpu_queues: BTreeSet::new(),
            fpga_queues: BTreeSet::new(),
            workers: default_workers(),
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let p: SplitPolicy = toml::from_str(text)?;
        if let Some(q) = p.cpu_queues.intersection(&p.fpga_queues).next() {
            return Err(PolicyError::Invalid(format!(
                "queue {q} is listed for both the CPU and the FPGA"
            )));
        }
        if p.workers == 0 || p.workers > 64 {
            return Err(PolicyError::Invalid(format!(
                "workers = {} (1 ..= 64)",
                p.workers
            )));
        }
        Ok(p)
    }

    pub fn path(&self, queue: u16) -> Path {
        if self.cpu_queues.contains(&queue) {
            Path::Cpu
        } else if self.fpga_queues.contains(&queue) {
            Path::Fpga
        } else {
            self.default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_from_toml() {
        let p =
            SplitPolicy::from_toml("default = \"fpga\"\ncpu_queues = [2]\nworkers = 3\n").unwrap();
        assert_eq!(
            (p.path(0), p.path(2), p.workers),
            (Path::Fpga, Path::Cpu, 3)
        );
        let p = SplitPolicy::from_toml("default = \"cpu\"\nfpga_queues = [1]").unwrap();
        assert_eq!((p.path(0), p.path(1)), (Path::Cpu, Path::Fpga));
        assert!(SplitPolicy::from_toml("cpu_queues = [1]\nfpga_queues = [1]").is_err());
        assert!(SplitPolicy::from_toml("workers = 0").is_err());
        assert!(SplitPolicy::from_toml("bogus = 1").is_err());
    }
}
