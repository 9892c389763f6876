//! `cargo +nightly fuzz run --fuzz-dir fuzz/cargo-fuzz net_packet fuzz/corpus/net_packet` (from the repository
//! root): see `fpga_virtio_fuzz::net_packet` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fpga_virtio_fuzz::net_packet(data));
