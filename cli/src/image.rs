//! `fpga-virtio image pack|inspect|verify|keygen`: build and check firmware images
//! (format: docs/firmware.md).

use crate::error::{file, CliError};
use fpga_virtio_firmware_loader::{
    Image, ImageBuilder, SectionKind, SigningKey, VerifyingKey, Version,
};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Build an image from a bitstream (and optional register defaults and notes).
    Pack {
        /// Bitstream file.
        #[arg(long)]
        bitstream: PathBuf,
        /// Register defaults: a file of (BAR0 offset u32 LE, value u32 LE) pairs.
        #[arg(long)]
        defaults: Option<PathBuf>,
        /// Free-form notes stored in a metadata section.
        #[arg(long)]
        notes: Option<String>,
        /// Firmware version MAJOR.MINOR.PATCH.
        #[arg(long)]
        version: Version,
        /// Target board id (the defaults are the simulated device's, sim/rtl/fv_top.sv).
        #[arg(long, value_parser = parse_u32, default_value = "0x1ee70001")]
        board: u32,
        /// Target FPGA id.
        #[arg(long, value_parser = parse_u32, default_value = "0x0362d093")]
        fpga: u32,
        /// Product id.
        #[arg(long, value_parser = parse_u32, default_value = "0x46565254")]
        product: u32,
        /// Build date, Unix seconds (default: now).
        #[arg(long)]
        build_date: Option<u32>,
        /// First 32 bits of the source revision, hex.
        #[arg(long, value_parser = parse_u32, default_value = "0")]
        git_hash: u32,
        /// Sign with this Ed25519 secret key (a file of 64 hex digits, see `image keygen`).
        #[arg(long)]
        sign: Option<PathBuf>,
        /// Output file.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Print an image's header and sections, and whether its digest holds.
    Inspect { image: PathBuf },
    /// Check an image's layout, digest and (with --trusted-key) signature; exit 1 if it fails.
    Verify {
        image: PathBuf,
        /// Ed25519 public key file (64 hex digits). With it, unsigned images are refused.
        #[arg(long)]
        trusted_key: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair: OUT (secret) and OUT.pub (public), hex.
    Keygen {
        #[arg(short, long)]
        out: PathBuf,
    },
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(&h.replace('_', ""), 16),
        None => t.replace('_', "").parse(),
    };
    r.map_err(|_| format!("{s:?} is not a 32-bit number"))
}

fn read(p: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(p).map_err(file(p))
}

fn key_bytes(p: &Path) -> Result<[u8; 32], CliError> {
    let text = std::fs::read_to_string(p).map_err(file(p))?;
    let raw = hex::decode(text.trim()).map_err(|source| CliError::NotHex {
        path: p.into(),
        source,
    })?;
    raw.try_into().map_err(|v: Vec<u8>| CliError::KeyLength {
        path: p.into(),
        len: v.len(),
    })
}

pub fn signing_key(p: &Path) -> Result<SigningKey, CliError> {
    Ok(SigningKey::from_bytes(&key_bytes(p)?))
}

pub fn verifying_key(p: &Path) -> Result<VerifyingKey, CliError> {
    VerifyingKey::from_bytes(&key_bytes(p)?).map_err(|source| CliError::PublicKey {
        path: p.into(),
        source,
    })
}

pub fn run(cmd: ImageCommand) -> Result<(), CliError> {
    match cmd {
        ImageCommand::Pack {
            bitstream,
            defaults,
            notes,
            version,
            board,
            fpga,
            product,
            build_date,
            git_hash,
            sign,
            out,
        } => {
            let mut b = ImageBuilder::new(board, fpga, product, version)
                .section(SectionKind::Bitstream, read(&bitstream)?);
            if let Some(d) = defaults {
                let d = read(&d)?;
                if d.len() % 8 != 0 {
                    return Err(CliError::RegisterDefaults);
                }
                b = b.section(SectionKind::RegisterDefaults, d);
            }
            if let Some(n) = notes {
                b = b.section(SectionKind::Metadata, n.into_bytes());
            }
            b.info.build_date = build_date.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as u32)
            });
            b.info.git_hash = git_hash;
            let key = sign.as_deref().map(signing_key).transpose()?;
            let bytes = b.build(key.as_ref())?;
            std::fs::write(&out, &bytes).map_err(file(&out))?;
            println!(
                "wrote {} ({} bytes, version {version}, {})",
                out.display(),
                bytes.len(),
                if key.is_some() { "signed" } else { "unsigned" }
            );
            Ok(())
        }
        ImageCommand::Inspect { image } => {
            let img = Image::parse(&read(&image)?)?;
            let i = &img.info;
            println!("image {}", image.display());
            println!("  format version {}", i.format_version);
            println!(
                "  board {:#010x}  fpga {:#010x}  product {:#010x}",
                i.board_id, i.fpga_id, i.product
            );
            println!(
                "  firmware version {}  built {}  source {:08x}",
                i.version, i.build_date, i.git_hash
            );
            for s in &img.sections {
                println!(
                    "  section {:<18} offset {:>8}  {:>9} bytes",
                    s.kind.name(),
                    s.offset,
                    s.data.len()
                );
            }
            println!("  sha-256 {}", hex::encode(img.digest));
            match img.verify(None) {
                Ok(()) => println!(
                    "  digest ok; {}",
                    if i.signed {
                        "signed (check with verify --trusted-key)"
                    } else {
                        "unsigned"
                    }
                ),
                Err(e) => println!("  {e}"),
            }
            Ok(())
        }
        ImageCommand::Verify { image, trusted_key } => {
            let key = trusted_key.as_deref().map(verifying_key).transpose()?;
            let img = Image::parse(&read(&image)?)?;
            img.verify(key.as_ref())?;
            println!(
                "{}: ok (version {}, {})",
                image.display(),
                img.info.version,
                if key.is_some() {
                    "signature verified"
                } else {
                    "digest verified, no key configured"
                }
            );
            Ok(())
        }
        ImageCommand::Keygen { out } => {
            let mut seed = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
                .map_err(file("/dev/urandom"))?;
            let key = SigningKey::from_bytes(&seed);
            // OUT.pub beside OUT (appended, so `keygen k.pub` cannot name the secret and the
            // public key the same file); neither may exist already.
            let mut public = out.clone().into_os_string();
            public.push(".pub");
            let public = PathBuf::from(public);
            if public.exists() {
                return Err(CliError::Exists(public));
            }
            write_private(&out, &hex::encode(seed))?;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&public)
                .and_then(|mut f| {
                    std::io::Write::write_all(
                        &mut f,
                        hex::encode(key.verifying_key().to_bytes()).as_bytes(),
                    )
                })
                .map_err(file(&public))?;
            println!(
                "wrote {} (secret) and {} (public)",
                out.display(),
                public.display()
            );
            Ok(())
        }
    }
}

fn write_private(p: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(file(p))?;
    f.write_all(text.as_bytes()).map_err(file(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_never_writes_the_public_key_over_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        // `keygen --out k.pub` used to write the secret to k.pub, then the public key over it.
        let out = dir.path().join("k.pub");
        run(ImageCommand::Keygen { out: out.clone() }).unwrap();
        let secret = signing_key(&out).unwrap();
        let public = verifying_key(&dir.path().join("k.pub.pub")).unwrap();
        assert_eq!(secret.verifying_key(), public);
        // A second run refuses to overwrite either file.
        assert!(run(ImageCommand::Keygen { out: out.clone() }).is_err());
        assert_eq!(signing_key(&out).unwrap().to_bytes(), secret.to_bytes());
    }
}
