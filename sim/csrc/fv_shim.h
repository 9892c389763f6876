// Plain C ABI over the Verilated fv_top model: MMIO, DMA and time. The RTL knows nothing of Rust;
// the Rust side (sim/src/model.rs) owns time and memory and answers every DMA request.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fv_sim fv_sim;

enum fv_event_kind {
  FV_EV_MMIO_RDATA = 1,  // data32: read data of the oldest outstanding MMIO read
  FV_EV_DMA_READ = 2,    // tag, addr, len: answer with fv_sim_read_beat
  FV_EV_DMA_WRITE = 3,   // tag, addr, len, data: answer with fv_sim_write_ack
  FV_EV_FINISH = 4,      // the RTL called $finish / $stop / $fatal; see fv_sim_error
  FV_EV_STORE_READ = 5,  // tag, addr, len: storage-port read; answer with fv_sim_store_beat
  FV_EV_STORE_WRITE = 6, // tag, addr, len, data: storage-port write; answer with fv_sim_store_ack
  FV_EV_FLASH = 7,       // tag = op | slot << 8, addr = page: flash-port request; its page data
                         // with fv_sim_flash_take, answer with fv_sim_flash_rsp
  FV_EV_PACKET = 8,      // packet port: tag = slot | func << 8 | send << 16; a write of len
                         // bytes (data) at frame offset addr, or (send) the slot's frame of len
                         // bytes leaves. No answer (the port takes one every cycle).
};

typedef struct fv_event {
  uint32_t kind;
  uint32_t tag;
  uint64_t addr;
  uint32_t len;
  uint32_t data32;
  uint64_t cycle;        // cycle the RTL issued it
  uint8_t data[64];      // DMA write payload, byte 0 = the byte at addr
} fv_event;

// New model, reset for 8 cycles. trace_path: FST file to write, or NULL. x_seed >= 0: start
// every flop at a random value from that seed (meaningful in a build with FV_SIM_X=unique);
// < 0: Verilator's default. NULL on failure.
fv_sim* fv_sim_new(const char* trace_path, int64_t x_seed);
void fv_sim_free(fv_sim* sim);
// DMA datapath width in bytes (one read beat, the largest write).
uint32_t fv_sim_dma_bytes(void);
uint64_t fv_sim_cycle(const fv_sim* sim);
// Message of the $finish/$stop/$fatal that stopped the model, or NULL.
const char* fv_sim_error(const fv_sim* sim);

// Queue an MMIO access (one is presented per cycle, in order). Reads answer with an event.
void fv_sim_mmio(fv_sim* sim, int write, uint32_t bar, uint32_t addr, uint32_t wdata);
// Schedule a read-completion beat for `tag` at `due_cycle` (beats are presented in the order
// scheduled, at most one per cycle, never before their due cycle). data: fv_sim_dma_bytes() bytes.
void fv_sim_read_beat(fv_sim* sim, uint64_t due_cycle, uint32_t tag, const uint8_t* data,
                      int last, int error);
// Schedule a write acknowledgement, same rules.
void fv_sim_write_ack(fv_sim* sim, uint64_t due_cycle, uint32_t tag, int error);

// Storage port: schedule a read beat or a write acknowledgement carrying the request's tag.
// Unlike DMA completions they are kept in due order (a late answer does not hold back the ones
// behind it, as with real remote storage); a beat waits while the RTL holds ST_RC_READY low.
void fv_sim_store_beat(fv_sim* sim, uint64_t due_cycle, uint32_t tag, const uint8_t* data,
                       int last, int error);
void fv_sim_store_ack(fv_sim* sim, uint64_t due_cycle, uint32_t tag, int error);

// Flash port. Bytes per page (the page data of a request or an answer).
uint32_t fv_sim_flash_page_bytes(void);
// The page data of the oldest flash request not yet taken (call once per FV_EV_FLASH, in order).
void fv_sim_flash_take(fv_sim* sim, uint8_t* out);
// Schedule the answer to the flash request in flight (data: fv_sim_flash_page_bytes() bytes).
void fv_sim_flash_rsp(fv_sim* sim, uint64_t due_cycle, int error, const uint8_t* data);

// Run until at least one event is produced or `max_cycles` have passed. Writes up to `cap`
// events and returns how many; events beyond `cap` are kept for the next call.
uint32_t fv_sim_run(fv_sim* sim, uint64_t max_cycles, fv_event* events, uint32_t cap);
// Cycles until the next scheduled completion (UINT64_MAX when none is scheduled).
uint64_t fv_sim_next_due(const fv_sim* sim);

#ifdef __cplusplus
}
#endif
