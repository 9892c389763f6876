//! Fuzz the image parser and verifier: any bytes give Ok or a clear error, never a panic, and a
//! parsed image's sections lie inside it.
//!
//! `cargo +nightly fuzz run image_parse -- -max_total_time=60` (from firmware-loader/)
#![no_main]

use fpga_virtio_firmware_loader::{Image, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = Image::parse(data) {
        for s in &img.sections {
            assert!(s.offset as usize + s.data.len() <= data.len());
        }
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let _ = img.verify(Some(&key));
        let _ = img.verify(None);
    }
});
