//! The fpga-virtio firmware image format (docs/firmware.md).
//!
//! ```text
//! 0    header (128 bytes, little-endian)
//!        magic "FVIMAGE\0", format version, header length, board id, FPGA id, product,
//!        firmware version, build date, source revision, flags, section count, body length
//! 128  section table: count x (kind u32, offset u32, length u32, reserved u32)
//! ...  section payloads (offsets from the image start, inside the body, not overlapping)
//! body_len   SHA-256 of bytes [0, body_len)
//! +32        Ed25519 signature of bytes [0, body_len + 32) (flag SIGNED only)
//! ```
//!
//! Every image file is untrusted: [`Image::parse`] checks every length and offset before use and
//! never panics; [`Image::verify`] checks the digest and, with a trusted key, the signature.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

pub const MAGIC: [u8; 8] = *b"FVIMAGE\0";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 128;
pub const SECTION_ENTRY_LEN: usize = 16;
pub const MAX_SECTIONS: usize = 16;
pub const DIGEST_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;
/// Largest image accepted (a flash slot is 1 MiB; leave room for growth).
pub const MAX_IMAGE_LEN: usize = 64 << 20;
/// Flag: an Ed25519 signature follows the digest.
pub const FLAG_SIGNED: u32 = 1;

/// What a section holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SectionKind {
    /// The FPGA configuration bitstream (required).
    Bitstream,
    /// Register defaults: (BAR0 offset u32, value u32) pairs for the runtime to apply after boot
    /// (carried and checked; not applied by anything yet).
    RegisterDefaults,
    /// Free-form UTF-8 notes (build host, tool versions).
    Metadata,
    /// A kind this version does not know: kept, not interpreted.
    Other(u32),
}

impl SectionKind {
    pub fn raw(self) -> u32 {
        match self {
            SectionKind::Bitstream => 1,
            SectionKind::RegisterDefaults => 2,
            SectionKind::Metadata => 3,
            SectionKind::Other(k) => k,
        }
    }

    pub fn from_raw(k: u32) -> Self {
        match k {
            1 => SectionKind::Bitstream,
            2 => SectionKind::RegisterDefaults,
            3 => SectionKind::Metadata,
            k => SectionKind::Other(k),
        }
    }

    pub fn name(self) -> String {
        match self {
            SectionKind::Bitstream => "bitstream".into(),
            SectionKind::RegisterDefaults => "register_defaults".into(),
            SectionKind::Metadata => "metadata".into(),
            SectionKind::Other(k) => format!("unknown({k})"),
        }
    }
}

/// Firmware version, as the fw_id block reports it (major.minor.patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u8,
    pub patch: u8,
}

impl Version {
    pub fn raw(self) -> u32 {
        (u32::from(self.major) << 16) | (u32::from(self.minor) << 8) | u32::from(self.patch)
    }

    pub fn from_raw(v: u32) -> Self {
        Version {
            major: (v >> 16) as u16,
            minor: (v >> 8) as u8,
            patch: v as u8,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let p: Vec<&str> = s.split('.').collect();
        let bad = || format!("version {s:?}: expected MAJOR.MINOR.PATCH (0..65535.0..255.0..255)");
        if p.len() != 3 {
            return Err(bad());
        }
        Ok(Version {
            major: p[0].parse().map_err(|_| bad())?,
            minor: p[1].parse().map_err(|_| bad())?,
            patch: p[2].parse().map_err(|_| bad())?,
        })
    }
}

/// The identity fields of an image (what it is for and what it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub format_version: u16,
    pub board_id: u32,
    pub fpga_id: u32,
    pub product: u32,
    pub version: Version,
    /// Unix seconds.
    pub build_date: u32,
    /// First 32 bits of the source revision.
    pub git_hash: u32,
    pub signed: bool,
}

/// One section of a parsed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    pub offset: u32,
    pub data: Vec<u8>,
}

/// A parsed image: layout checked, digest and signature not yet (see [`Image::verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub info: ImageInfo,
    pub sections: Vec<Section>,
    pub digest: [u8; DIGEST_LEN],
    pub signature: Option<[u8; SIGNATURE_LEN]>,
    body_len: usize,
    bytes: Vec<u8>,
}

/// Why an image was refused. Each names what was found and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("image truncated: {what} needs {need} bytes, the file has {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("not an fpga-virtio image (magic {0:02x?})")]
    BadMagic([u8; 8]),
    #[error("image format version {found}, this tool reads version {supported}")]
    FormatVersion { found: u16, supported: u16 },
    #[error("header length {0}, expected {HEADER_LEN}")]
    HeaderLength(u16),
    #[error("{0} sections, at most {MAX_SECTIONS}")]
    TooManySections(u32),
    #[error("image of {0} bytes is larger than the {MAX_IMAGE_LEN}-byte limit")]
    TooLarge(usize),
    #[error("section {index} ({kind}) at {offset}+{len} is outside the body [{start}, {end})")]
    SectionOutside {
        index: usize,
        kind: String,
        offset: u32,
        len: u32,
        start: usize,
        end: usize,
    },
    #[error("sections {0} and {1} overlap")]
    SectionsOverlap(usize, usize),
    #[error("the image has no bitstream section")]
    NoBitstream,
    #[error("{0} trailing bytes after the image")]
    TrailingBytes(usize),
    #[error("unknown header flags {0:#x}")]
    UnknownFlags(u32),
    #[error("reserved header bytes are not zero")]
    Reserved,
    #[error("digest mismatch: the image says {expected}, its contents hash to {actual}")]
    Digest { expected: String, actual: String },
    #[error("signature does not verify with the trusted key {key}")]
    BadSignature { key: String },
    #[error("a trusted key is configured but the image is not signed")]
    Unsigned,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Image {
    /// Parse and check the layout of an image file. Does not check the digest or signature.
    pub fn parse(bytes: &[u8]) -> Result<Image, ImageError> {
        let have = bytes.len();
        if have > MAX_IMAGE_LEN {
            return Err(ImageError::TooLarge(have));
        }
        if have < HEADER_LEN {
            return Err(ImageError::Truncated {
                what: "the header",
                need: HEADER_LEN,
                have,
            });
        }
        let magic: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(ImageError::BadMagic(magic));
        }
        let format_version = u16_at(bytes, 8);
        if format_version != FORMAT_VERSION {
            return Err(ImageError::FormatVersion {
                found: format_version,
                supported: FORMAT_VERSION,
            });
        }
        let header_len = u16_at(bytes, 10);
        if usize::from(header_len) != HEADER_LEN {
            return Err(ImageError::HeaderLength(header_len));
        }
        let flags = u32_at(bytes, 36);
        if flags & !FLAG_SIGNED != 0 {
            return Err(ImageError::UnknownFlags(flags));
        }
        if bytes[48..HEADER_LEN].iter().any(|&b| b != 0) {
            return Err(ImageError::Reserved);
        }
        let count = u32_at(bytes, 40);
        if count as usize > MAX_SECTIONS {
            return Err(ImageError::TooManySections(count));
        }
        let count = count as usize;
        let body_len = u32_at(bytes, 44) as usize;
        let table_end = HEADER_LEN + count * SECTION_ENTRY_LEN;
        let signed = flags & FLAG_SIGNED != 0;
        let trailer = DIGEST_LEN + if signed { SIGNATURE_LEN } else { 0 };
        let need = body_len.max(table_end) + trailer;
        if have < need {
            return Err(ImageError::Truncated {
                what: "the body and its trailer",
                need,
                have,
            });
        }
        if body_len < table_end {
            return Err(ImageError::Truncated {
                what: "the section table",
                need: table_end,
                have: body_len,
            });
        }
        if have > need {
            return Err(ImageError::TrailingBytes(have - need));
        }
        let mut sections: Vec<Section> = Vec::with_capacity(count);
        let mut spans: Vec<(usize, usize, usize)> = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
            let kind = SectionKind::from_raw(u32_at(bytes, at));
            let offset = u32_at(bytes, at + 4);
            let len = u32_at(bytes, at + 8);
            let start = offset as usize;
            let end = start.checked_add(len as usize);
            match end {
                Some(end) if start >= table_end && end <= body_len => {
                    spans.push((start, end, i));
                    sections.push(Section {
                        kind,
                        offset,
                        data: bytes[start..end].to_vec(),
                    });
                }
                _ => {
                    return Err(ImageError::SectionOutside {
                        index: i,
                        kind: kind.name(),
                        offset,
                        len,
                        start: table_end,
                        end: body_len,
                    })
                }
            }
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(ImageError::SectionsOverlap(
                    w[0].2.min(w[1].2),
                    w[0].2.max(w[1].2),
                ));
            }
        }
        if !sections.iter().any(|s| s.kind == SectionKind::Bitstream) {
            return Err(ImageError::NoBitstream);
        }
        let digest: [u8; DIGEST_LEN] = bytes[body_len..body_len + DIGEST_LEN]
            .try_into()
            .expect("32 bytes");
        let signature = signed.then(|| {
            bytes[body_len + DIGEST_LEN..body_len + DIGEST_LEN + SIGNATURE_LEN]
                .try_into()
                .expect("64 bytes")
        });
        Ok(Image {
            info: ImageInfo {
                format_version,
                board_id: u32_at(bytes, 12),
                fpga_id: u32_at(bytes, 16),
                product: u32_at(bytes, 20),
                version: Version::from_raw(u32_at(bytes, 24)),
                build_date: u32_at(bytes, 28),
                git_hash: u32_at(bytes, 32),
                signed,
            },
            sections,
            digest,
            signature,
            body_len,
            bytes: bytes.to_vec(),
        })
    }

    /// Check the digest, and the signature against `trusted` when a key is configured (an
    /// unsigned image is then refused).
    pub fn verify(&self, trusted: Option<&VerifyingKey>) -> Result<(), ImageError> {
        let actual: [u8; DIGEST_LEN] = Sha256::digest(&self.bytes[..self.body_len]).into();
        if actual != self.digest {
            return Err(ImageError::Digest {
                expected: hex::encode(self.digest),
                actual: hex::encode(actual),
            });
        }
        let Some(key) = trusted else { return Ok(()) };
        let Some(sig) = self.signature else {
            return Err(ImageError::Unsigned);
        };
        key.verify(
            &self.bytes[..self.body_len + DIGEST_LEN],
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| ImageError::BadSignature {
            key: hex::encode(key.to_bytes()),
        })
    }

    /// The whole image file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The first section of `kind`.
    pub fn section(&self, kind: SectionKind) -> Option<&Section> {
        self.sections.iter().find(|s| s.kind == kind)
    }
}

/// Builds an image.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    pub info: ImageInfo,
    pub sections: Vec<(SectionKind, Vec<u8>)>,
}

impl ImageBuilder {
    pub fn new(board_id: u32, fpga_id: u32, product: u32, version: Version) -> Self {
        ImageBuilder {
            info: ImageInfo {
                format_version: FORMAT_VERSION,
                board_id,
                fpga_id,
                product,
                version,
                build_date: 0,
                git_hash: 0,
                signed: false,
            },
            sections: Vec::new(),
        }
    }

    pub fn section(mut self, kind: SectionKind, data: Vec<u8>) -> Self {
        self.sections.push((kind, data));
        self
    }

    /// The image bytes, signed with `key` when given.
    pub fn build(&self, key: Option<&SigningKey>) -> Result<Vec<u8>, ImageError> {
        if self.sections.len() > MAX_SECTIONS {
            return Err(ImageError::TooManySections(self.sections.len() as u32));
        }
        if !self
            .sections
            .iter()
            .any(|(k, _)| *k == SectionKind::Bitstream)
        {
            return Err(ImageError::NoBitstream);
        }
        let table_end = HEADER_LEN + self.sections.len() * SECTION_ENTRY_LEN;
        let body_len = table_end + self.sections.iter().map(|(_, d)| d.len()).sum::<usize>();
        if body_len + DIGEST_LEN + SIGNATURE_LEN > MAX_IMAGE_LEN {
            return Err(ImageError::TooLarge(body_len));
        }
        let mut b = vec![0u8; table_end];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        let i = &self.info;
        for (at, v) in [
            (12, i.board_id),
            (16, i.fpga_id),
            (20, i.product),
            (24, i.version.raw()),
            (28, i.build_date),
            (32, i.git_hash),
            (36, if key.is_some() { FLAG_SIGNED } else { 0 }),
            (40, self.sections.len() as u32),
            (44, body_len as u32),
        ] {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        let mut offset = table_end;
        for (n, (kind, data)) in self.sections.iter().enumerate() {
            let at = HEADER_LEN + n * SECTION_ENTRY_LEN;
            b[at..at + 4].copy_from_slice(&kind.raw().to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&(offset as u32).to_le_bytes());
            b[at + 8..at + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
            offset += data.len();
        }
        for (_, data) in &self.sections {
            b.extend_from_slice(data);
        }
        let digest = Sha256::digest(&b);
        b.extend_from_slice(&digest);
        if let Some(k) = key {
            let sig = k.sign(&b);
            b.extend_from_slice(&sig.to_bytes());
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn sample() -> ImageBuilder {
        ImageBuilder::new(
            0x1ee7_0001,
            0x0362_d093,
            0x4656_5254,
            "1.2.3".parse().unwrap(),
        )
        .section(
            SectionKind::Bitstream,
            (0..3000u32).map(|i| i as u8).collect(),
        )
        .section(
            SectionKind::RegisterDefaults,
            vec![0x40, 1, 0, 0, 7, 0, 0, 0],
        )
        .section(SectionKind::Metadata, b"built by tests".to_vec())
    }

    #[test]
    fn round_trip_unsigned_and_signed() {
        let bytes = sample().build(None).unwrap();
        let img = Image::parse(&bytes).unwrap();
        assert_eq!(img.info.version.to_string(), "1.2.3");
        assert_eq!(img.sections.len(), 3);
        assert_eq!(
            img.section(SectionKind::Bitstream).unwrap().data.len(),
            3000
        );
        img.verify(None).unwrap();
        assert_eq!(
            img.verify(Some(&key(1).verifying_key())),
            Err(ImageError::Unsigned)
        );

        let signed = sample().build(Some(&key(1))).unwrap();
        let img = Image::parse(&signed).unwrap();
        assert!(img.info.signed);
        img.verify(Some(&key(1).verifying_key())).unwrap();
        assert!(matches!(
            img.verify(Some(&key(2).verifying_key())),
            Err(ImageError::BadSignature { .. })
        ));
    }

    #[test]
    fn every_kind_of_damage_is_a_clear_error() {
        let good = sample().build(Some(&key(1))).unwrap();
        let k = key(1).verifying_key();
        // Truncated anywhere.
        for cut in [0, 7, 100, 200, good.len() - 65, good.len() - 1] {
            assert!(
                matches!(
                    Image::parse(&good[..cut]),
                    Err(ImageError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        // One flipped bit in the body: the digest catches it.
        let mut b = good.clone();
        b[HEADER_LEN + 3 * SECTION_ENTRY_LEN + 10] ^= 1;
        assert!(matches!(
            Image::parse(&b).unwrap().verify(Some(&k)),
            Err(ImageError::Digest { .. })
        ));
        // A flipped bit in the digest or signature.
        let body = u32_at(&good, 44) as usize;
        let mut b = good.clone();
        b[body] ^= 1;
        assert!(matches!(
            Image::parse(&b).unwrap().verify(None),
            Err(ImageError::Digest { .. })
        ));
        let mut b = good.clone();
        b[body + DIGEST_LEN + 5] ^= 1;
        assert!(matches!(
            Image::parse(&b).unwrap().verify(Some(&k)),
            Err(ImageError::BadSignature { .. })
        ));
        // Format version, magic, header fields.
        let mut b = good.clone();
        b[8] = 2;
        assert_eq!(
            Image::parse(&b),
            Err(ImageError::FormatVersion {
                found: 2,
                supported: 1
            })
        );
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(Image::parse(&b), Err(ImageError::BadMagic(_))));
        let mut b = good.clone();
        b[40] = 200;
        assert_eq!(Image::parse(&b), Err(ImageError::TooManySections(200)));
        let mut b = good.clone();
        b[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Image::parse(&b),
            Err(ImageError::SectionOutside { .. })
        ));
        let mut b = good.clone();
        b[HEADER_LEN + SECTION_ENTRY_LEN + 4..HEADER_LEN + SECTION_ENTRY_LEN + 8]
            .copy_from_slice(&(HEADER_LEN as u32 + 48 + 100).to_le_bytes());
        assert!(matches!(
            Image::parse(&b),
            Err(ImageError::SectionsOverlap(0, 1))
        ));
        let mut b = good.clone();
        b.push(0);
        assert_eq!(Image::parse(&b), Err(ImageError::TrailingBytes(1)));
        assert!(ImageBuilder::new(1, 2, 3, Version::from_raw(0))
            .build(None)
            .is_err());
    }

    /// Seeded mutations of a valid image: parse and verify return errors, never panic, and
    /// only the untouched image verifies. (The cargo-fuzz target in fuzz/ explores further.)
    #[test]
    fn seeded_mutations_never_panic() {
        let good = sample().build(Some(&key(3))).unwrap();
        let k = key(3).verifying_key();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut b = good.clone();
            match next() % 4 {
                0 => {
                    let i = (next() as usize) % b.len();
                    b[i] ^= 1 << (next() % 8);
                }
                1 => b.truncate((next() as usize) % b.len()),
                2 => {
                    let i = (next() as usize) % (b.len() - 4);
                    b[i..i + 4].copy_from_slice(&(next() as u32).to_le_bytes());
                }
                _ => {
                    let i = (next() as usize) % b.len();
                    b.insert(i, next() as u8);
                }
            }
            if let Ok(img) = Image::parse(&b) {
                if img.verify(Some(&k)).is_ok() {
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, 0, "a damaged image verified");
    }
}
