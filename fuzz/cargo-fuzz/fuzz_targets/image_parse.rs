//! `cargo +nightly fuzz run --fuzz-dir fuzz/cargo-fuzz image_parse fuzz/corpus/image_parse` (from the repository
//! root): see `fpga_virtio_fuzz::image_parse` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fpga_virtio_fuzz::image_parse(data));
