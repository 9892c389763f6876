//! FPGA images.
