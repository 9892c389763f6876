//! What a command of the CLI can fail with: the libraries' errors as they are, and the few the
//! CLI finds itself, each with the file or device it concerns.

use fpga_virtio_driver::vfio::sysfs::PciAddress;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Policy {
        path: PathBuf,
        source: fpga_virtio_driver::runtime::PolicyError,
    },
    #[error(transparent)]
    EmbeddedPolicy(#[from] fpga_virtio_driver::runtime::PolicyError),
    #[error(transparent)]
    Workload(#[from] fpga_virtio_workload::WorkloadError),
    #[error("simulator: {0}")]
    Sim(#[from] fpga_virtio_sim::SimError),
    #[error(transparent)]
    Load(#[from] fpga_virtio_firmware_loader::LoadError),
    #[error(transparent)]
    Image(#[from] fpga_virtio_firmware_loader::ImageError),
    #[error("{}: {source}", path.display())]
    Store {
        path: PathBuf,
        source: fpga_virtio_storage::StoreError,
    },
    #[error("{}: {bytes} bytes is not a whole number of 512-byte sectors (use --size-mib to size it)", path.display())]
    DiskSize { path: PathBuf, bytes: u64 },
    #[error("--queue-size {0} is not a power of two")]
    QueueSize(u16),
    #[error("{}: {bytes} bytes or more; a slot holds at most {max}", path.display())]
    ImageTooLarge { path: PathBuf, bytes: u64, max: u64 },
    #[error("register defaults: the file must hold 8-byte pairs")]
    RegisterDefaults,
    #[error("{}: not hex: {source}", path.display())]
    NotHex {
        path: PathBuf,
        source: hex::FromHexError,
    },
    #[error("{}: {len} bytes, a key is 32", path.display())]
    KeyLength { path: PathBuf, len: usize },
    #[error("{}: not an Ed25519 public key: {source}", path.display())]
    PublicKey {
        path: PathBuf,
        source: ed25519_dalek::SignatureError,
    },
    #[error("{}: exists; not overwriting it", .0.display())]
    Exists(PathBuf),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Progress(#[from] indicatif::style::TemplateError),
    #[error(transparent)]
    Open(#[from] fpga_virtio_driver::vfio::OpenError),
    #[error("{address}: {source}")]
    Close {
        address: PciAddress,
        source: fpga_virtio_driver::vfio::CloseError,
    },
    #[error("{address}: {source}")]
    Card {
        address: PciAddress,
        source: Box<CliError>,
    },
    #[error("{address} [{vendor:04x}:{device:04x}] is not an fpga-virtio device: {why}")]
    NotOurs {
        address: PciAddress,
        vendor: u16,
        device: u16,
        why: NotOurs,
    },
    #[error("register access: {0}")]
    Io(#[from] fpga_virtio_driver::hw::IoError),
    #[error(transparent)]
    Probe(#[from] fpga_virtio_driver::probe::ProbeError),
    #[error(transparent)]
    Device(#[from] fpga_virtio_vhost_user::DeviceError),
    #[error(transparent)]
    Serve(#[from] fpga_virtio_vhost_user::ServeError),
}

/// Why a PCI device is not an fpga-virtio card.
#[derive(Debug, thiserror::Error)]
pub enum NotOurs {
    #[error("it has no {0}")]
    NoBar(fpga_virtio_driver::hw::Bar),
    #[error("{bar} starts with {first:#010x}, not the firmware-id block ({want:#010x})")]
    FirstWord {
        bar: fpga_virtio_driver::hw::Bar,
        first: u32,
        want: u32,
    },
}

/// `map_err` for a file operation on `path`.
pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.into();
    move |source| CliError::File { path, source }
}
