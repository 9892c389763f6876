//! `cargo +nightly fuzz run --fuzz-dir fuzz/cargo-fuzz conntrack fuzz/corpus/conntrack` (from the repository
//! root): see `fpga_virtio_fuzz::conntrack` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fpga_virtio_fuzz::conntrack(data));
