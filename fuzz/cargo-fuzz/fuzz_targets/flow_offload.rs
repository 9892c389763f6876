//! `cargo +nightly fuzz run --fuzz-dir fuzz/cargo-fuzz flow_offload fuzz/corpus/flow_offload` (from the
//! repository root): see `fpga_virtio_fuzz::flow_offload` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fpga_virtio_fuzz::flow_offload(data));
