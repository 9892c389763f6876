// See fv_shim.h. One VerilatedContext per model, so several models live in one process.
#include "fv_shim.h"

#include <cstring>
#include <deque>
#include <iterator>
#include <memory>
#include <string>

#include "Vfv_top.h"
#include "verilated.h"
#include "verilated_fst_c.h"

#ifndef FV_DW
#error "FV_DW (DMA width in bits) must be defined by the build"
#endif

// $finish, $stop and $fatal must not exit the process (that would kill cargo test): they mark
// the model as stopped and the run loop reports it.
static thread_local std::string* g_stop_msg = nullptr;

static void note_stop(const char* what, const char* file, int line, const char* hier) {
  if (g_stop_msg && g_stop_msg->empty()) {
    *g_stop_msg = std::string(what) + " at " + (file ? file : "?") + ":" + std::to_string(line) +
                  " (" + (hier ? hier : "") + ")";
  }
}
void vl_finish(const char* file, int line, const char* hier) VL_MT_UNSAFE {
  note_stop("$finish", file, line, hier);
}
void vl_stop(const char* file, int line, const char* hier) VL_MT_UNSAFE {
  note_stop("$stop", file, line, hier);
}
void vl_fatal(const char* file, int line, const char* hier, const char* msg) VL_MT_UNSAFE {
  note_stop((std::string("$fatal: ") + (msg ? msg : "")).c_str(), file, line, hier);
}

namespace {
struct Mmio {
  bool write;
  uint32_t bar, addr, wdata;
};
struct Beat {
  uint64_t due;
  uint32_t tag;
  uint8_t data[FV_DW / 8];
  bool last, error;
};
struct Ack {
  uint64_t due;
  uint32_t tag;
  bool error;
};
constexpr int FLASH_BYTES = sizeof(Vfv_top::fl_rsp_data);
struct FlashRsp {
  uint64_t due;
  bool error;
  uint8_t data[FLASH_BYTES];
};
struct FlashPage {
  uint8_t data[FLASH_BYTES];
};

// DMA data ports are QData up to 64 bits and VlWide above.
template <typename T>
void set_data(T& port, const uint8_t* bytes) {
  if constexpr (FV_DW <= 64) {
    uint64_t v = 0;
    std::memcpy(&v, bytes, FV_DW / 8);
    port = v;
  } else {
    for (int w = 0; w < FV_DW / 32; w++) {
      uint32_t v;
      std::memcpy(&v, bytes + 4 * w, 4);
      port[w] = v;
    }
  }
}
template <typename T>
void get_data(const T& port, uint8_t* bytes) {
  if constexpr (FV_DW <= 64) {
    uint64_t v = port;
    std::memcpy(bytes, &v, FV_DW / 8);
  } else {
    for (int w = 0; w < FV_DW / 32; w++) {
      uint32_t v = port[w];
      std::memcpy(bytes + 4 * w, &v, 4);
    }
  }
}
// Insert in due order, after everything due at the same cycle or earlier.
template <typename T>
void insert_by_due(std::deque<T>& q, const T& x) {
  auto it = q.end();
  while (it != q.begin() && std::prev(it)->due > x.due) --it;
  q.insert(it, x);
}
}  // namespace

struct fv_sim {
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vfv_top> top;
  std::unique_ptr<VerilatedFstC> trace;
  uint64_t cycle = 0;
  std::deque<Mmio> mmio;
  std::deque<Beat> beats;
  std::deque<Ack> acks;
  std::deque<Beat> st_beats;
  std::deque<Ack> st_acks;
  std::deque<FlashRsp> fl_rsps;
  std::deque<FlashPage> fl_pages;
  std::deque<fv_event> pending;  // produced, not yet handed out
  std::string stop_msg;
  bool stop_reported = false;

  void dump(uint64_t t) {
    if (trace) trace->dump(t);
  }

  // Queue a request event of this cycle; returns it so a payload can be added.
  fv_event& emit(uint32_t kind, uint32_t tag, uint64_t addr, uint32_t len) {
    fv_event e{};
    e.kind = kind;
    e.tag = tag;
    e.addr = addr;
    e.len = len;
    e.cycle = cycle;
    pending.push_back(e);
    return pending.back();
  }

  // One clock cycle: inputs for this cycle, sample the handshakes, rising edge.
  void step() {
    g_stop_msg = &stop_msg;
    Vfv_top& t = *top;
    t.clk = 0;
    t.mmio_valid = 0;
    t.mmio_write = 0;
    if (!mmio.empty()) {
      const Mmio m = mmio.front();
      mmio.pop_front();
      t.mmio_valid = 1;
      t.mmio_write = m.write;
      t.mmio_bar = m.bar;
      t.mmio_addr = m.addr;
      t.mmio_wdata = m.wdata;
    }
    t.dma_rd_ready = 1;
    t.dma_wr_ready = 1;
    t.dma_rc_valid = 0;
    if (!beats.empty() && beats.front().due <= cycle) {
      const Beat& b = beats.front();
      t.dma_rc_valid = 1;
      t.dma_rc_tag = b.tag;
      set_data(t.dma_rc_data, b.data);
      t.dma_rc_last = b.last;
      t.dma_rc_error = b.error;
      beats.pop_front();
    }
    t.dma_wc_valid = 0;
    if (!acks.empty() && acks.front().due <= cycle) {
      t.dma_wc_valid = 1;
      t.dma_wc_tag = acks.front().tag;
      t.dma_wc_error = acks.front().error;
      acks.pop_front();
    }
    t.st_rd_ready = 1;
    t.st_rc_valid = 0;
    const bool st_beat = !st_beats.empty() && st_beats.front().due <= cycle;
    if (st_beat) {
      const Beat& b = st_beats.front();
      t.st_rc_valid = 1;
      t.st_rc_tag = b.tag;
      set_data(t.st_rc_data, b.data);
      t.st_rc_last = b.last;
      t.st_rc_error = b.error;
    }
    t.st_wc_valid = 0;
    if (!st_acks.empty() && st_acks.front().due <= cycle) {
      t.st_wc_valid = 1;
      t.st_wc_tag = st_acks.front().tag;
      t.st_wc_error = st_acks.front().error;
      st_acks.pop_front();
    }
    t.fl_rsp_valid = 0;
    if (!fl_rsps.empty() && fl_rsps.front().due <= cycle) {
      t.fl_rsp_valid = 1;
      t.fl_rsp_error = fl_rsps.front().error;
      std::memcpy(&t.fl_rsp_data, fl_rsps.front().data, FLASH_BYTES);
      fl_rsps.pop_front();
    }
    t.eval();
    dump(2 * cycle);
    // The storage port's read beats wait on ST_RC_READY (combinational from the RTL's state).
    if (st_beat && t.st_rc_ready) st_beats.pop_front();

    if (t.mmio_rvalid) {
      fv_event e{};
      e.kind = FV_EV_MMIO_RDATA;
      e.data32 = t.mmio_rdata;
      e.cycle = cycle;
      pending.push_back(e);
    }
    if (t.dma_rd_valid) emit(FV_EV_DMA_READ, t.dma_rd_tag, t.dma_rd_addr, t.dma_rd_len);
    if (t.dma_wr_valid) {
      get_data(t.dma_wr_data, emit(FV_EV_DMA_WRITE, t.dma_wr_tag, t.dma_wr_addr, t.dma_wr_len).data);
    }
    if (t.fl_req_valid) {
      emit(FV_EV_FLASH, t.fl_req_op | (static_cast<uint32_t>(t.fl_req_slot) << 8), t.fl_req_page, 0);
      FlashPage p;
      std::memcpy(p.data, &t.fl_req_data, FLASH_BYTES);
      fl_pages.push_back(p);
    }
    if (t.st_rd_valid) emit(FV_EV_STORE_READ, t.st_rd_tag, t.st_rd_addr, t.st_rd_len);
    if (t.pk_valid) {
      const uint32_t tag = t.pk_tag | (static_cast<uint32_t>(t.pk_func) << 8) |
                           (static_cast<uint32_t>(t.pk_send) << 16);
      get_data(t.pk_data, emit(FV_EV_PACKET, tag, t.pk_off, t.pk_len).data);
    }
    if (t.st_wr_valid) {
      get_data(t.st_wr_data, emit(FV_EV_STORE_WRITE, t.st_wr_tag, t.st_wr_addr, t.st_wr_len).data);
    }

    t.clk = 1;
    t.eval();
    dump(2 * cycle + 1);
    cycle++;
    if (!stop_msg.empty() && !stop_reported) {
      stop_reported = true;
      fv_event e{};
      e.kind = FV_EV_FINISH;
      e.cycle = cycle;
      pending.push_back(e);
    }
  }
};

extern "C" {

fv_sim* fv_sim_new(const char* trace_path, int64_t x_seed) {
  auto* sim = new (std::nothrow) fv_sim();
  if (!sim) return nullptr;
  sim->ctx = std::make_unique<VerilatedContext>();
  if (x_seed >= 0) {
    sim->ctx->randReset(2);
    sim->ctx->randSeed(static_cast<int>(x_seed & 0x7fffffff));
  }
  if (trace_path) sim->ctx->traceEverOn(true);
  sim->top = std::make_unique<Vfv_top>(sim->ctx.get(), "fv_top");
  if (trace_path) {
    sim->trace = std::make_unique<VerilatedFstC>();
    sim->top->trace(sim->trace.get(), 99);
    sim->trace->open(trace_path);
  }
  sim->top->rst = 1;
  for (int i = 0; i < 8; i++) sim->step();
  sim->top->rst = 0;
  sim->pending.clear();
  return sim;
}

void fv_sim_free(fv_sim* sim) {
  if (!sim) return;
  if (sim->trace) sim->trace->close();
  sim->top->final();
  delete sim;
}

uint32_t fv_sim_dma_bytes(void) { return FV_DW / 8; }
uint64_t fv_sim_cycle(const fv_sim* sim) { return sim->cycle; }
const char* fv_sim_error(const fv_sim* sim) {
  return sim->stop_msg.empty() ? nullptr : sim->stop_msg.c_str();
}

void fv_sim_mmio(fv_sim* sim, int write, uint32_t bar, uint32_t addr, uint32_t wdata) {
  sim->mmio.push_back(Mmio{write != 0, bar, addr, wdata});
}

static Beat make_beat(uint64_t due_cycle, uint32_t tag, const uint8_t* data, int last, int error) {
  Beat b{};
  b.due = due_cycle;
  b.tag = tag;
  std::memcpy(b.data, data, FV_DW / 8);
  b.last = last != 0;
  b.error = error != 0;
  return b;
}

void fv_sim_read_beat(fv_sim* sim, uint64_t due_cycle, uint32_t tag, const uint8_t* data,
                      int last, int error) {
  sim->beats.push_back(make_beat(due_cycle, tag, data, last, error));
}

void fv_sim_write_ack(fv_sim* sim, uint64_t due_cycle, uint32_t tag, int error) {
  sim->acks.push_back(Ack{due_cycle, tag, error != 0});
}

void fv_sim_store_beat(fv_sim* sim, uint64_t due_cycle, uint32_t tag, const uint8_t* data,
                       int last, int error) {
  insert_by_due(sim->st_beats, make_beat(due_cycle, tag, data, last, error));
}

void fv_sim_store_ack(fv_sim* sim, uint64_t due_cycle, uint32_t tag, int error) {
  insert_by_due(sim->st_acks, Ack{due_cycle, tag, error != 0});
}

uint32_t fv_sim_flash_page_bytes(void) { return FLASH_BYTES; }

void fv_sim_flash_take(fv_sim* sim, uint8_t* out) {
  if (sim->fl_pages.empty()) {
    std::memset(out, 0, FLASH_BYTES);
    return;
  }
  std::memcpy(out, sim->fl_pages.front().data, FLASH_BYTES);
  sim->fl_pages.pop_front();
}

void fv_sim_flash_rsp(fv_sim* sim, uint64_t due_cycle, int error, const uint8_t* data) {
  FlashRsp r{};
  r.due = due_cycle;
  r.error = error != 0;
  std::memcpy(r.data, data, FLASH_BYTES);
  sim->fl_rsps.push_back(r);
}

uint32_t fv_sim_run(fv_sim* sim, uint64_t max_cycles, fv_event* events, uint32_t cap) {
  for (uint64_t i = 0; i < max_cycles && sim->pending.empty(); i++) {
    if (sim->stop_reported) break;
    sim->step();
  }
  uint32_t n = 0;
  while (n < cap && !sim->pending.empty()) {
    events[n++] = sim->pending.front();
    sim->pending.pop_front();
  }
  return n;
}

uint64_t fv_sim_next_due(const fv_sim* sim) {
  uint64_t due = UINT64_MAX;
  if (!sim->beats.empty()) due = sim->beats.front().due;
  if (!sim->acks.empty() && sim->acks.front().due < due) due = sim->acks.front().due;
  if (!sim->st_beats.empty() && sim->st_beats.front().due < due) due = sim->st_beats.front().due;
  if (!sim->st_acks.empty() && sim->st_acks.front().due < due) due = sim->st_acks.front().due;
  if (!sim->fl_rsps.empty() && sim->fl_rsps.front().due < due) due = sim->fl_rsps.front().due;
  return due;
}

}  // extern "C"
