//! `cargo +nightly fuzz run --fuzz-dir fuzz/cargo-fuzz chain_engine fuzz/corpus/chain_engine` (from the repository
//! root): see `fpga_virtio_fuzz::chain_engine` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fpga_virtio_fuzz::chain_engine(data));
