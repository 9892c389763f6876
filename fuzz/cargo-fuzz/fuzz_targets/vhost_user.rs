//! `cargo +nightly fuzz run --fuzz-dir fuzz/cargo-fuzz vhost_user fuzz/corpus/vhost_user` (from
//! the repository root): see `fpga_virtio_fuzz::vhost_user` for the input format and the
//! invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fpga_virtio_fuzz::vhost_user(data));
