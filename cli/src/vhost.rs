//! `fpga-virtio vhost-user-blk --socket PATH --disk FILE`: serve a disk image to a VM through
//! vhost-user, with the simulated FPGA as the data plane, or a card over VFIO
//! (`--device BDF`). docs/vhost-user.md.

use crate::error::{file as file_err, CliError};
use fpga_virtio_driver::runtime::{Path as QueuePath, SplitPolicy};
use fpga_virtio_storage::{BlockStore, FileStore};
use fpga_virtio_vhost_user::{serve, Blk, Device, DeviceOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `vhost-user-blk` was asked to do.
#[derive(Debug, clap::Args)]
pub struct VhostOptions {
    /// The vhost-user socket to listen on (QEMU: -chardev socket,path=...).
    #[arg(long)]
    pub socket: PathBuf,
    /// The disk image file (with --device: the CPU's view of the volume the card serves).
    #[arg(long)]
    pub disk: PathBuf,
    /// An fpga-virtio card bound to vfio-pci (PCI address, e.g. 0000:3b:00.0) as the data
    /// plane instead of the simulated FPGA.
    #[arg(long)]
    pub device: Option<fpga_virtio_driver::vfio::sysfs::PciAddress>,
    /// Create or resize the image to this many MiB.
    #[arg(long)]
    pub size_mib: Option<u64>,
    /// Queues offered (the guest may use fewer).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub queues: u16,
    /// Largest queue size offered (a power of two).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=32768))]
    pub queue_size: u16,
    /// Split policy: fpga, cpu, split (the embedded default) or a TOML file.
    #[arg(long, default_value = "split")]
    pub policy: String,
    /// Exit after this many frontend connections (default: serve forever).
    #[arg(long)]
    pub connections: Option<usize>,
}

/// The policy named on the command line.
pub fn policy(name: &str) -> Result<SplitPolicy, CliError> {
    match name {
        "fpga" => Ok(SplitPolicy::all(QueuePath::Fpga)),
        "cpu" => Ok(SplitPolicy::all(QueuePath::Cpu)),
        "split" => Ok(SplitPolicy::from_toml(crate::demo::DEFAULT_POLICY)?),
        file => {
            let text = std::fs::read_to_string(file).map_err(file_err(file))?;
            SplitPolicy::from_toml(&text).map_err(|source| CliError::Policy {
                path: file.into(),
                source,
            })
        }
    }
}

fn open_disk(path: &Path, size_mib: Option<u64>) -> Result<Arc<dyn BlockStore>, CliError> {
    let store =
        FileStore::open(path, size_mib.map(|m| m << 20)).map_err(|source| CliError::Store {
            path: path.into(),
            source,
        })?;
    if store.size() == 0 || store.size() % 512 != 0 {
        return Err(CliError::DiskSize {
            path: path.into(),
            bytes: store.size(),
        });
    }
    Ok(Arc::new(store))
}

pub fn run(o: VhostOptions) -> Result<(), CliError> {
    if !o.queue_size.is_power_of_two() {
        return Err(CliError::QueueSize(o.queue_size));
    }
    let store = open_disk(&o.disk, o.size_mib)?;
    let policy = policy(&o.policy)?;
    let sectors = store.size() / 512;
    let opts = DeviceOptions {
        device: Arc::new(Blk {
            store,
            id: "fpga-virtio-blk".into(),
        }),
        queues: o.queues,
        queue_size: o.queue_size,
        policy: policy.clone(),
    };
    let device = match o.device {
        // The card is checked before anything is written to it.
        Some(address) => Device::with_vfio(opts, crate::card::open(address)?)?,
        None => Device::new(opts)?,
    };
    let paths: Vec<String> = (0..o.queues)
        .map(|q| format!("{q}:{}", policy.path(q).as_str()))
        .collect();
    eprintln!(
        "fpga-virtio vhost-user-blk: {} ({} sectors) on {}, {} queue(s) [{}], data plane: {}",
        o.disk.display(),
        sectors,
        o.socket.display(),
        o.queues,
        paths.join(" "),
        device.describe()
    );
    let result = serve(device.clone(), &o.socket, o.connections).map_err(CliError::from);
    device.shutdown();
    result
}
