//! fpga-virtio firmware images: the format ([`image`]), its verification, and loading into the
//! device's flash with A/B slots and rollback.
//!
//! Every image file is untrusted input: parsing checks every length and offset and never
//! panics; nothing touches a device before an image has verified.

pub mod image;
pub mod loader;

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use image::{Image, ImageBuilder, ImageError, ImageInfo, Section, SectionKind, Version};
pub use loader::{info, load, reboot, DeviceInfo, LoadError, LoadOptions, LoadReport};
