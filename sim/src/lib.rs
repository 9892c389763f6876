//! The simulated FPGA (see docs/ARCHITECTURE.md).
