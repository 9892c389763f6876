//! Safe wrapper of one Verilated fv_top model.

use crate::ffi;
use std::ffi::{CStr, CString};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the Verilated model could not be created")]
    Create,
    #[error("trace path {0:?} is not valid UTF-8 without NUL bytes")]
    TracePath(std::path::PathBuf),
}

/// DMA datapath width of the built model, in bytes (`FV_SIM_DW` / 8 at build time).
pub fn dma_bytes() -> usize {
    // SAFETY: a pure function of the build, with no arguments and no state.
    unsafe { ffi::fv_sim_dma_bytes() as usize }
}

/// One fv_top model with its own Verilator context. Not shared between threads.
pub struct Model {
    sim: *mut ffi::FvSim,
    events: Vec<ffi::FvEvent>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("cycle", &self.cycle())
            .finish()
    }
}

// SAFETY: the model is single-threaded Verilator output (built without --threads) with its own
// VerilatedContext; nothing in it is tied to the thread that created it. `Model` hands out no
// references into it and all calls take `&mut self` (or `&self` for pure reads), so moving it to
// another thread cannot race.
unsafe impl Send for Model {}

impl Model {
    /// A model after reset. `trace`: write an FST waveform there. `x_seed`: start every flop
    /// at a random value from this seed (in a build with `FV_SIM_X=unique`; see build.rs).
    pub fn new(trace: Option<&Path>, x_seed: Option<u32>) -> Result<Self, ModelError> {
        let path = trace
            .map(|p| {
                p.to_str()
                    .and_then(|s| CString::new(s).ok())
                    .ok_or_else(|| ModelError::TracePath(p.to_path_buf()))
            })
            .transpose()?;
        let ptr = path.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        let seed = x_seed.map_or(-1, i64::from);
        // SAFETY: `ptr` is NULL or a NUL-terminated string that outlives the call; the shim
        // copies what it needs. `seed` is a plain value.
        let sim = unsafe { ffi::fv_sim_new(ptr, seed) };
        if sim.is_null() {
            return Err(ModelError::Create);
        }
        Ok(Model {
            sim,
            events: vec![ffi::FvEvent::default(); 64],
        })
    }

    pub fn cycle(&self) -> u64 {
        // SAFETY: `self.sim` is a live model owned by `self`.
        unsafe { ffi::fv_sim_cycle(self.sim) }
    }

    /// The $finish/$stop/$fatal message that stopped the model, if any.
    pub fn error(&self) -> Option<String> {
        // SAFETY: `self.sim` is a live model owned by `self`.
        let p = unsafe { ffi::fv_sim_error(self.sim) };
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-NULL result is a NUL-terminated string owned by the model, valid until
        // the model runs again; it is copied before this function returns.
        let msg = unsafe { CStr::from_ptr(p) };
        Some(msg.to_string_lossy().into_owned())
    }

    pub fn mmio(&mut self, write: bool, bar: u8, addr: u32, wdata: u32) {
        // SAFETY: `self.sim` is a live model owned by `self`; arguments are plain values.
        unsafe { ffi::fv_sim_mmio(self.sim, i32::from(write), u32::from(bar), addr, wdata) }
    }

    /// Schedule a read beat. `data` must hold at least [`dma_bytes`] bytes.
    pub fn read_beat(&mut self, due: u64, tag: u32, data: &[u8], last: bool, error: bool) {
        assert!(
            data.len() >= dma_bytes(),
            "a read beat is {} bytes",
            dma_bytes()
        );
        // SAFETY: `self.sim` is live and `data` holds the dma_bytes() bytes the shim copies.
        unsafe {
            ffi::fv_sim_read_beat(
                self.sim,
                due,
                tag,
                data.as_ptr(),
                i32::from(last),
                i32::from(error),
            )
        }
    }

    pub fn write_ack(&mut self, due: u64, tag: u32, error: bool) {
        // SAFETY: `self.sim` is a live model owned by `self`; arguments are plain values.
        unsafe { ffi::fv_sim_write_ack(self.sim, due, tag, i32::from(error)) }
    }

    /// Schedule a storage-port read beat. `data` must hold at least [`dma_bytes`] bytes.
    pub fn store_beat(&mut self, due: u64, tag: u32, data: &[u8], last: bool, error: bool) {
        assert!(data.len() >= dma_bytes(), "a beat is {} bytes", dma_bytes());
        // SAFETY: `self.sim` is live and `data` holds the dma_bytes() bytes the shim copies.
        unsafe {
            ffi::fv_sim_store_beat(
                self.sim,
                due,
                tag,
                data.as_ptr(),
                i32::from(last),
                i32::from(error),
            )
        }
    }

    pub fn store_ack(&mut self, due: u64, tag: u32, error: bool) {
        // SAFETY: `self.sim` is a live model owned by `self`; arguments are plain values.
        unsafe { ffi::fv_sim_store_ack(self.sim, due, tag, i32::from(error)) }
    }

    /// The page data of the oldest flash request not yet taken.
    pub fn flash_take(&mut self) -> Vec<u8> {
        // SAFETY: a pure function of the build.
        let n = unsafe { ffi::fv_sim_flash_page_bytes() } as usize;
        let mut out = vec![0u8; n];
        // SAFETY: `self.sim` is live and `out` has room for the n bytes the shim writes.
        unsafe { ffi::fv_sim_flash_take(self.sim, out.as_mut_ptr()) };
        out
    }

    /// Answer the flash request in flight. `data` must hold a page.
    pub fn flash_rsp(&mut self, due: u64, error: bool, data: &[u8]) {
        // SAFETY: a pure function of the build.
        let n = unsafe { ffi::fv_sim_flash_page_bytes() } as usize;
        assert!(data.len() >= n, "a flash page is {n} bytes");
        // SAFETY: `self.sim` is live and `data` holds the n bytes the shim copies.
        unsafe { ffi::fv_sim_flash_rsp(self.sim, due, i32::from(error), data.as_ptr()) }
    }

    /// Run until events appear or `max_cycles` pass; returns how many events [`Model::event`]
    /// now holds, in order.
    pub(crate) fn run(&mut self, max_cycles: u64) -> usize {
        let cap = self.events.len() as u32;
        // SAFETY: `self.sim` is live; `events` has room for `cap` events, and the shim writes
        // at most `cap` and returns how many it wrote.
        let n = unsafe { ffi::fv_sim_run(self.sim, max_cycles, self.events.as_mut_ptr(), cap) };
        n as usize
    }

    /// Event `i` of the last [`Model::run`].
    pub(crate) fn event(&self, i: usize) -> ffi::FvEvent {
        self.events[i]
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `self.sim` came from fv_sim_new and is freed exactly once, here.
        unsafe { ffi::fv_sim_free(self.sim) }
    }
}
