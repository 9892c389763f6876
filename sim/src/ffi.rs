//! Declarations of the C ABI in csrc/fv_shim.h.

use std::os::raw::{c_char, c_int};

pub const EV_MMIO_RDATA: u32 = 1;
pub const EV_DMA_READ: u32 = 2;
pub const EV_DMA_WRITE: u32 = 3;
pub const EV_FINISH: u32 = 4;
pub const EV_STORE_READ: u32 = 5;
pub const EV_STORE_WRITE: u32 = 6;
pub const EV_FLASH: u32 = 7;
pub const EV_PACKET: u32 = 8;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct FvEvent {
    pub kind: u32,
    pub tag: u32,
    pub addr: u64,
    pub len: u32,
    pub data32: u32,
    pub cycle: u64,
    pub data: [u8; 64],
}

impl Default for FvEvent {
    fn default() -> Self {
        FvEvent {
            kind: 0,
            tag: 0,
            addr: 0,
            len: 0,
            data32: 0,
            cycle: 0,
            data: [0; 64],
        }
    }
}

/// Opaque model handle.
#[repr(C)]
pub struct FvSim {
    _private: [u8; 0],
}

extern "C" {
    pub fn fv_sim_new(trace_path: *const c_char, x_seed: i64) -> *mut FvSim;
    pub fn fv_sim_free(sim: *mut FvSim);
    pub fn fv_sim_dma_bytes() -> u32;
    pub fn fv_sim_cycle(sim: *const FvSim) -> u64;
    pub fn fv_sim_error(sim: *const FvSim) -> *const c_char;
    pub fn fv_sim_mmio(sim: *mut FvSim, write: c_int, bar: u32, addr: u32, wdata: u32);
    pub fn fv_sim_read_beat(
        sim: *mut FvSim,
        due_cycle: u64,
        tag: u32,
        data: *const u8,
        last: c_int,
        error: c_int,
    );
    pub fn fv_sim_write_ack(sim: *mut FvSim, due_cycle: u64, tag: u32, error: c_int);
    pub fn fv_sim_store_beat(
        sim: *mut FvSim,
        due_cycle: u64,
        tag: u32,
        data: *const u8,
        last: c_int,
        error: c_int,
    );
    pub fn fv_sim_store_ack(sim: *mut FvSim, due_cycle: u64, tag: u32, error: c_int);
    pub fn fv_sim_flash_page_bytes() -> u32;
    pub fn fv_sim_flash_take(sim: *mut FvSim, out: *mut u8);
    pub fn fv_sim_flash_rsp(sim: *mut FvSim, due_cycle: u64, error: c_int, data: *const u8);
    pub fn fv_sim_run(sim: *mut FvSim, max_cycles: u64, events: *mut FvEvent, cap: u32) -> u32;
}
