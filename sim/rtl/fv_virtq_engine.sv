// Virtqueue engine for split virtqueues: the stages below wired together.
//
//   doorbell -> avail->idx -> avail ring -> descriptor chain walk (NEXT, INDIRECT) -> device
//   engine -> used element -> used->idx -> EVENT_IDX / NO_INTERRUPT decision -> MSI-X request
//
//   fv_vq_dispatch       what the engine does next (below); the queue and request in hand
//   fv_vq_sched          doorbells, pending queues, round-robin pick, error state, STATUS
//   fv_vq_avail_fetch    configuration check, avail->idx, avail_event, the ring window + read-ahead
//   fv_vq_desc_prefetch  look-ahead descriptor reads of the next heads, head prediction
//   fv_vq_desc_walk      the chain walk into the segment table (fv_vq_desc_check: each descriptor)
//   fv_vq_slot_track     the device-engine slots' requests and results, per-queue publish order
//   fv_vq_used_write     done-log record, used element, used->idx
//   fv_vq_irq_decide     the interrupt decisions after each publish, moderation
//   fv_vq_punt_cpl       punt tags, the CPU's completions
//
// The dispatcher (fv_vq_dispatch) does one thing at a time, in this order when idle: the oldest interrupt decision
// (S_DECIDE, S_IRQ), a slot's result (S_LOAD: publish S_PUB, punt S_PUNT or fail), a CPU
// completion (S_CPL, then S_LOAD), a new request of the picked queue (S_AVAIL, S_WALK, S_TAKE,
// then a slot S_DEV or the CPU S_PUNT). It hands each walked chain to one of NSLOT device-engine
// slots and goes on fetching while the slots work, so up to NSLOT requests (of any queues) move
// data at once, each slot with its own DMA master. It is the single publisher of used->idx of the
// FPGA-owned queues: a slot's result is published once the slot finished and every earlier chain
// of the same queue on a slot was published, so the device's own results reach a used ring in
// avail order (a restarted backend that resumes at used->idx then repeats nothing it completed;
// only punted requests, which the CPU answers, can complete out of order). Everything it reads
// from guest memory is validated before use: a malformed chain or a DMA fault puts only that
// queue into its error state (cause + detail), and the others go on. Clearing a queue's enable
// is a handshake: the requests in flight (walked, on a slot, punted, or waiting for their
// interrupt decision) complete, then STATUS.enabled drops and the saved state (last_avail,
// used_idx) is final.
//
// DMA: one outstanding read for the walk (avail idx and ring, descriptors, completions;
// completion beats of DW bits, byte 0 of beat 0 = the byte at the address), one per pending
// interrupt decision (NDEC), one per descriptor prefetch (NPF) and one for the avail-ring
// read-ahead, each on a master of its own; writes of a single beat of at most DW/8 bytes,
// several in flight, acknowledged in issue order.
module fv_virtq_engine #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int DW = 128,        // DMA data width in bits (64 .. 512)
  parameter int MAX_SEGS = 16,   // descriptors per chain handed to the device engine
  parameter int PUNT_TAGS = 16,  // punted requests in flight (a power of two)
  parameter int NSLOT = 2,       // device-engine slots (requests moving data at once)
  parameter int NPF = 2,         // descriptor prefetches in flight (read masters of their own)
  parameter int NDEC = 4         // interrupt decisions in flight (read masters of their own)
) (
  input  logic clk,
  input  logic rst,
  input  logic run,                              // global enable: pick new work

  // Queue contexts (queue CSR block).
  input  logic [NQ-1:0][31:0] desc_lo,
  input  logic [NQ-1:0][31:0] desc_hi,
  input  logic [NQ-1:0][31:0] avail_lo,
  input  logic [NQ-1:0][31:0] avail_hi,
  input  logic [NQ-1:0][31:0] used_lo,
  input  logic [NQ-1:0][31:0] used_hi,
  input  logic [NQ-1:0][31:0] done_log_lo,       // done log (0: none): see fv_vq_used_write
  input  logic [NQ-1:0][31:0] done_log_hi,
  input  logic [NQ-1:0][15:0] size,
  input  logic [NQ-1:0]       enable,
  input  logic [NQ-1:0]       owner,             // 1: CPU-owned, never touched here
  input  logic [NQ-1:0]       event_idx,
  input  logic [NQ-1:0]       indirect,
  input  logic [NQ-1:0][15:0] msix_vector,
  input  logic [NQ-1:0][7:0]  mod_max_pending,   // interrupt moderation (IRQ_MODERATION)
  input  logic [NQ-1:0][23:0] mod_timeout,
  output logic [NQ-1:0]       mod_fire,          // a deferred interrupt is due (pulse)
  input  logic [NQ-1:0][15:0] saved_last_avail,
  input  logic [NQ-1:0][15:0] saved_used_idx,
  output logic [NQ-1:0]       save_we,
  output logic [15:0]         save_last_avail,
  output logic [15:0]         save_used_idx,
  output logic [NQ-1:0]       st_enabled,
  output logic [NQ-1:0]       st_error,
  output logic [NQ-1:0][3:0]  st_cause,
  output logic [NQ-1:0][15:0] st_inflight,
  output logic [NQ-1:0][31:0] st_err_info,
  input  logic [NQ-1:0]       doorbell,
  input  logic [NQ-1:0][15:0] doorbell_idx,      // the doorbell's value (avail idx)
  input  logic [NQ-1:0]       notify_data,       // NOTIFICATION_DATA negotiated

  // DMA read.
  output logic          rd_valid,
  input  logic          rd_ready,
  output logic [63:0]   rd_addr,
  output logic [15:0]   rd_len,
  input  logic          rc_valid,
  input  logic [DW-1:0] rc_data,
  input  logic          rc_last,
  input  logic          rc_error,
  // DMA reads of the interrupt decisions (used_event / avail->flags after a publish): NDEC
  // masters of their own, so the engine walks and publishes on while the reads are in flight.
  output logic [NDEC-1:0]        ir_rd_valid,
  input  logic [NDEC-1:0]        ir_rd_ready,
  output logic [NDEC-1:0][63:0]  ir_rd_addr,
  output logic [NDEC-1:0][15:0]  ir_rd_len,
  input  logic [NDEC-1:0]        ir_rc_valid,
  input  logic [15:0]            ir_rc_data,          // the 2 bytes read (one beat)
  input  logic                   ir_rc_error,
  output logic [NDEC-1:0][$clog2(NQ)-1:0] ir_queue,   // the queue of each pending decision
  // Look-ahead descriptor prefetch: NPF read masters (see there); completion data, last and
  // error are those of the walk's master (rc_data, rc_last, rc_error).
  output logic [NPF-1:0]       pf_rd_valid,
  input  logic [NPF-1:0]       pf_rd_ready,
  output logic [NPF-1:0][63:0] pf_rd_addr,
  output logic [NPF-1:0][15:0] pf_rd_len,
  input  logic [NPF-1:0]       pf_rc_valid,
  // Avail-ring read-ahead (see there): a read master of its own; completion data, last and error
  // are those of the walk's master.
  output logic                 ra_rd_valid,
  input  logic                 ra_rd_ready,
  output logic [63:0]          ra_rd_addr,
  output logic [15:0]          ra_rd_len,
  input  logic                 ra_rc_valid,
  // DMA write.
  output logic          wr_valid,
  input  logic          wr_ready,
  output logic [63:0]   wr_addr,
  output logic [15:0]   wr_len,
  output logic [DW-1:0] wr_data,
  input  logic          wc_valid,
  input  logic          wc_error,

  // Device-engine slots. A slot takes the segment table with its dev_start pulse (the table
  // changes with the next chain) and answers once with dev_done; the result is read then.
  output logic [NSLOT-1:0]              dev_start,
  output logic [MAX_SEGS-1:0][63:0]     seg_addr,
  output logic [MAX_SEGS-1:0][31:0]     seg_len,
  output logic [MAX_SEGS-1:0]           seg_write,
  output logic [$clog2(MAX_SEGS+1)-1:0] seg_count,
  input  logic [NSLOT-1:0]              dev_done,
  input  logic [NSLOT-1:0]              dev_error,
  input  logic [NSLOT-1:0][31:0]        dev_written,
  input  logic [NSLOT-1:0]              dev_punt,      // with dev_done: punt the request
  input  logic [NSLOT-1:0]              dev_timeout,   // with dev_done: the slot's watchdog fired
  input  logic [NSLOT-1:0]              slot_blocked,  // the slot may not take a request yet
  input  logic [NSLOT-1:0][7:0]         dev_punt_reason,
  input  logic [NSLOT-1:0][63:0]        dev_punt_arg,
  output logic [NSLOT-1:0][$clog2(NQ)-1:0] slot_queue, // queue of each slot's request

  // Punt requests to the punt-ring writer.
  output logic                     punt_valid,
  input  logic                     punt_ready,
  output fv_regs_pkg::punt_entry_t punt_entry,

  // Completion ring (cpl_ring CSR block).
  input  logic [63:0] cpl_base,
  input  logic [4:0]  cpl_size_log2,
  input  logic        cpl_enable,
  input  logic [31:0] cpl_prod,
  output logic [31:0] cpl_cons,
  output logic        cpl_bad,                   // pulse: a completion named nothing in flight
  input  logic [NQ-1:0][2:0] func,
  // Per-function DMA windows (DMA_WINDOW block): window w of function f at f * WPF + w.
  input  logic [fv_regs_pkg::NUM_DMA_WINDOWS-1:0][63:0] win_base,
  input  logic [fv_regs_pkg::NUM_DMA_WINDOWS-1:0][63:0] win_end,

  // Interrupt request to the MSI-X block.
  output logic        irq_valid,
  input  logic        irq_ready,
  output logic [15:0] irq_vector,

  // Events (counters, fault reporting).
  output logic [$clog2(NQ)-1:0] cur_queue,
  output logic        ev_done,                   // a request was published
  output logic [31:0] ev_bytes,                  // its used length
  output logic [31:0] ev_cycles,                 // ring fetch to used->idx written
  output logic        ev_error,                  // a queue entered its error state
  output logic        ev_fault,                  // ... because of a DMA fault
  output logic        ev_irq                     // an interrupt was requested
);
  localparam int QW = $clog2(NQ);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_virtq_engine: NQ must be a power of two >= 2");
  end
  if (DW < 64 || DW > 512 || (DW & (DW - 1)) != 0) begin : g_bad_dw
    $error("fv_virtq_engine: DW must be 64, 128, 256 or 512");
  end
  if (MAX_SEGS < 2 || MAX_SEGS > 256 || (MAX_SEGS & (MAX_SEGS - 1)) != 0) begin : g_bad_segs
    $error("fv_virtq_engine: MAX_SEGS must be a power of two in 2..256");
  end
  if (NSLOT < 1 || NSLOT > 16) begin : g_bad_slots
    $error("fv_virtq_engine: NSLOT must be in 1..16");
  end
  if (NPF < 1 || NPF > 8) begin : g_bad_npf
    $error("fv_virtq_engine: NPF must be in 1..8");
  end
  if (NDEC < 1 || NDEC > 8 || (NDEC & (NDEC - 1)) != 0) begin : g_bad_ndec
    $error("fv_virtq_engine: NDEC must be 1, 2, 4 or 8");
  end

  localparam int PW = $clog2(PUNT_TAGS);
  localparam int DSW = NSLOT > 1 ? $clog2(NSLOT) : 1;

  // The dispatcher's state (fv_vq_dispatch), the queue and request in hand.
  fv_vq_pkg::disp_state_e state;
  logic in_idle, in_avail, in_walk, in_take, in_dev, in_load, in_decide, in_irq, in_punt, in_cpl;
  logic in_fail;
  assign in_idle = state == fv_vq_pkg::S_IDLE;
  assign in_avail = state == fv_vq_pkg::S_AVAIL;
  assign in_walk = state == fv_vq_pkg::S_WALK;
  assign in_take = state == fv_vq_pkg::S_TAKE;
  assign in_dev = state == fv_vq_pkg::S_DEV;
  assign in_load = state == fv_vq_pkg::S_LOAD;
  assign in_decide = state == fv_vq_pkg::S_DECIDE;
  assign in_irq = state == fv_vq_pkg::S_IRQ;
  assign in_punt = state == fv_vq_pkg::S_PUNT;
  assign in_cpl = state == fv_vq_pkg::S_CPL;
  assign in_fail = state == fv_vq_pkg::S_FAIL;
  logic [QW-1:0] cq;
  logic [63:0]   c_desc, c_avail, c_used, first_addr, p_arg;
  logic [15:0]   c_size, c_mask, c_vec, last_avail, used_idx, head, req_pos;
  logic          c_evt, c_ind, in_ind, pub_no_irq, load_slot;
  logic [31:0]   start_cycle, cycle, pub_len, walked_bytes, f_info;
  logic [7:0]    p_reason;
  logic [DSW-1:0] cs;
  logic [3:0]    f_cause;
  logic [63:0]   log_base;             // queue cq's done log (0: none)
  logic          has_log;
  assign log_base = {done_log_hi[cq], done_log_lo[cq]};
  assign has_log = |log_base;

  // The engine's DMA writes are numbered in issue order; the port acknowledges them in that
  // order, so an acknowledgement's number is the count of those before it.
  logic [15:0] wseq_iss, wseq_ack;
  always_ff @(posedge clk) begin
    if (rst) begin
      cycle <= '0;
      wseq_iss <= '0;
      wseq_ack <= '0;
    end else begin
      cycle <= cycle + 32'd1;
      if (wr_valid && wr_ready) wseq_iss <= wseq_iss + 16'd1;
      if (wc_valid) wseq_ack <= wseq_ack + 16'd1;
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Read data: beats merged into one 128-bit word (descriptors are the widest thing read).
  logic [127:0] rbuf, rdata;
  logic [2:0]   rbeat;
  if (DW >= 128) begin : g_wide
    assign rdata = rc_data[127:0];
    logic unused_rd;
    assign unused_rd = &{1'b0, rbuf, rbeat, rc_data};
  end else begin : g_narrow
    // Reads wider than 128 bits (descriptor prefetch) fill the descriptor cache instead.
    always_comb begin
      rdata = rbuf;
      if (rbeat < 3'(128 / DW)) rdata[rbeat * DW +: DW] = rc_data;
    end
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      rbuf <= '0;
      rbeat <= '0;
    end else if (rc_valid) begin
      rbuf <= rc_last ? '0 : rdata;
      rbeat <= rc_last ? '0 : rbeat + 3'd1;
    end
  end

  // ---------------------------------------------------------------------------------------------
  // The stages beside the walk.
  // The avail ring: configuration check, avail->idx, the window of heads and its read-ahead.
  logic              a_done, a_fault, a_in_ring, a_ring_phase, a_spec, a_win_load, a_ring_wait;
  logic              avail_seen, a_rd_valid, a_wr_valid, ring_hit;
  fv_vq_pkg::avail_result_e a_result;
  logic [15:0]       a_head, avail_val, a_rd_len, a_wr_data;
  logic [3:0]        a_cause;
  logic [31:0]       a_info;
  logic [63:0]       a_rd_addr, a_wr_addr;
  logic [QW-1:0]     hq;
  logic [15:0]       hbase;
  logic [4:0]        hlen;
  logic [15:0][15:0] hbuf;
  fv_vq_avail_fetch #(.NQ(NQ), .DW(DW)) u_avail (
    .clk, .rst, .avail_lo, .avail_hi, .size, .q_runs, .stopped, .hint, .hint_valid,
    .start(idle_pick), .start_q(pick), .start_avail(pick_avail), .start_hint(pick_hint), .cq,
    .c_desc_low(c_desc[3:0]), .c_avail, .c_used, .c_size, .c_mask, .c_evt, .last_avail, .done(a_done),
    .result(a_result), .head(a_head), .f_cause(a_cause), .f_info(a_info), .f_fault(a_fault),
    .in_ring(a_in_ring), .ring_phase(a_ring_phase), .spec_window(a_spec), .win_load(a_win_load),
    .ring_wait(a_ring_wait), .avail_seen, .avail_val, .take(in_take),
    .win_q(hq), .win_base(hbase), .win_len(hlen), .win_heads(hbuf),
    .rd_valid(a_rd_valid), .rd_ready, .rd_addr(a_rd_addr), .rd_len(a_rd_len), .rdata, .rc_valid,
    .rc_data, .rc_last, .rc_error, .ra_rd_valid, .ra_rd_ready, .ra_rd_addr, .ra_rd_len, .ra_rc_valid,
    .wr_valid(a_wr_valid), .wr_ready, .wr_addr(a_wr_addr), .wr_data(a_wr_data), .wseq_iss,
    .wseq_ack, .wc_valid, .wc_error
  );
  assign ring_hit = a_done && a_result == fv_vq_pkg::AVAIL_HEAD;

  // The chain walk, with the look-ahead descriptor prefetch and head prediction beside it.
  localparam int DPF = 4;                       // descriptors per read
  logic [DPF*128-1:0] pf_data;
  logic [2:0]         pf_n;
  logic               pf_hit, pf_wait, pf_lookup, pf_use;
  logic               w_done, w_fault;
  fv_vq_pkg::walk_result_e w_result;
  logic [3:0]         w_cause;
  logic [31:0]        w_info, w_bytes;
  logic [63:0]        w_first_addr, w_rd_addr;
  logic               w_ind, w_rd_valid;
  logic [15:0]        w_rd_len;
  fv_vq_desc_prefetch #(.NQ(NQ), .DW(DW), .NPF(NPF), .DPF(DPF)) u_prefetch (
    .clk, .rst, .desc_lo, .desc_hi, .size, .q_runs, .stopped,
    .win_q(hq), .win_base(hbase), .win_len(hlen), .win_heads(hbuf),
    .cq, .last_avail, .c_size, .c_desc, .head, .ring_wait(a_ring_wait), .spec_window(a_spec),
    .pick(idle_pick), .ring_hit, .win_load(a_win_load),
    .lookup(pf_lookup), .hit(pf_hit), .wait_pf(pf_wait), .hit_data(pf_data), .hit_n(pf_n),
    .use_hit(pf_use), .take(in_take), .publish(p_elem),
    .pf_rd_valid, .pf_rd_ready, .pf_rd_addr, .pf_rd_len, .pf_rc_valid, .rc_data, .rc_last, .rc_error
  );
  fv_vq_desc_walk #(.DW(DW), .MAX_SEGS(MAX_SEGS), .DPF(DPF)) u_walk (
    .clk, .rst, .start(ring_hit), .start_head(a_head), .head,
    .c_desc, .c_size, .c_ind, .func(func[cq]), .win_base, .win_end,
    .done(w_done), .result(w_result), .f_cause(w_cause), .f_info(w_info), .f_fault(w_fault),
    .lookup(pf_lookup), .pf_hit, .pf_wait, .pf_data, .pf_n, .use_hit(pf_use),
    .rd_valid(w_rd_valid), .rd_ready, .rd_addr(w_rd_addr), .rd_len(w_rd_len), .rc_valid, .rc_data,
    .rc_last, .rc_error, .seg_addr, .seg_len, .seg_write, .seg_count, .walked_bytes(w_bytes),
    .first_addr(w_first_addr), .in_ind(w_ind)
  );

  // The device-engine slots.
  logic           dslot_free, ds_any_ready;
  logic [DSW-1:0] ready_dslot;
  logic [QW-1:0]  ready_q;
  logic [15:0]    r_head, r_pos;
  logic [63:0]    r_first_addr, r_arg;
  logic [31:0]    r_walked, r_start, r_written;
  logic           r_ind, r_err, r_tmo, r_punt;
  logic [7:0]     r_reason;
  logic           tag_free;
  logic [PW-1:0]  free_tag;
  fv_vq_slot_track #(.NQ(NQ), .NSLOT(NSLOT)) u_slots (
    .clk, .rst, .dev_done, .dev_error, .dev_written, .dev_punt, .dev_timeout, .dev_punt_reason,
    .dev_punt_arg, .slot_blocked, .dev_start, .slot_queue,
    .assign_en(in_dev), .a_q(cq), .a_head(head), .a_pos(req_pos), .a_first_addr(first_addr),
    .a_walked(walked_bytes), .a_ind(in_ind), .a_start(start_cycle),
    .slot_free(dslot_free), .tag_free, .any_ready(ds_any_ready),
    .ready_slot(ready_dslot), .ready_q, .release_en(in_load && load_slot), .rd_slot(cs),
    .r_head, .r_pos, .r_first_addr, .r_walked, .r_ind, .r_start, .r_err, .r_tmo, .r_punt,
    .r_written, .r_reason, .r_arg
  );

  // Punt tags, and the CPU's completions.
  logic          cpl_pending, c_done, c_taken, c_no_irq, c_failed, c_rd_valid;
  fv_vq_pkg::cpl_result_e c_result;
  logic [QW-1:0] c_q;
  logic [15:0]   c_head, c_pos, c_rd_len;
  logic [31:0]   c_len, c_info;
  logic [3:0]    c_cause;
  logic [63:0]   c_rd_addr;
  fv_vq_punt_cpl #(.NQ(NQ), .PUNT_TAGS(PUNT_TAGS)) u_punt_cpl (
    .clk, .rst, .alloc(in_punt && punt_ready), .alloc_q(cq), .alloc_head(head),
    .alloc_pos(req_pos), .tag_free, .free_tag, .cpl_base, .cpl_size_log2, .cpl_enable, .cpl_prod,
    .cpl_cons, .cpl_pending, .cpl_bad, .start(idle_cpl), .done(c_done), .result(c_result),
    .taken(c_taken), .c_q, .c_head, .c_pos, .c_len, .c_no_irq, .c_failed, .f_cause(c_cause),
    .f_info(c_info), .rd_valid(c_rd_valid), .rd_ready, .rd_addr(c_rd_addr), .rd_len(c_rd_len),
    .rdata, .rc_valid, .rc_last, .rc_error
  );

  // The used-ring writer.
  logic          load_pub, p_elem, p_published, p_done, p_uerr, p_rec, p_wr_valid;
  logic [15:0]   p_seq, p_wr_len;
  logic [63:0]   p_wr_addr;
  logic [DW-1:0] p_wr_data;
  fv_vq_used_write #(.DW(DW)) u_used_write (
    .clk, .rst, .start(load_pub), .start_rec(has_log), .log_base, .c_used, .c_mask, .used_idx,
    .head, .req_pos, .pub_len, .start_cycle, .cycle, .elem_written(p_elem),
    .published(p_published), .done(p_done), .h_uerr(p_uerr), .h_seq(p_seq), .h_rec(p_rec),
    .wseq_iss, .wseq_ack, .wc_valid, .wc_error, .wr_valid(p_wr_valid), .wr_ready,
    .wr_addr(p_wr_addr), .wr_len(p_wr_len), .wr_data(p_wr_data), .ev_done, .ev_bytes, .ev_cycles
  );
  // A result loaded is published unless its queue failed or its slot failed or punted it.
  assign load_pub = in_load && !err[cq] && (!load_slot || (!r_tmo && !r_err && !r_punt));

  // Interrupt decisions and moderation.
  logic          pd_ready, pd_full, dec_fail, dec_irq;
  logic [QW-1:0] dec_q;
  logic [15:0]   dec_vec;
  logic [31:0]   dec_info;
  logic [NQ-1:0] q_has_dec;
  fv_vq_irq_decide #(.NQ(NQ), .NDEC(NDEC)) u_irq_decide (
    .clk, .rst, .cycle,
    .handoff(p_done), .h_uerr(p_uerr), .h_seq(p_seq), .h_rec(p_rec),
    .h_q(cq), .h_vec(c_vec), .h_old(used_idx), .h_evt(c_evt), .h_no_irq(pub_no_irq),
    // EVENT_IDX: used_event after the avail ring; otherwise avail->flags.
    .h_addr(c_evt ? c_avail + 64'd4 + {47'd0, c_size, 1'b0} : c_avail),
    .h_used(c_used[31:0]), .h_avail(c_avail[31:0]), .pd_full,
    .pd_ready, .head_q(dec_q), .head_vec(dec_vec), .decide(in_decide),
    .d_fail(dec_fail), .d_info(dec_info), .d_irq(dec_irq), .q_has_dec,
    .ir_rd_valid, .ir_rd_ready, .ir_rd_addr, .ir_rd_len, .ir_rc_valid, .ir_rc_data, .ir_rc_error,
    .ir_queue, .wseq_ack, .wc_valid, .wc_error, .enable, .mod_max_pending, .mod_timeout, .mod_fire
  );

  // ---------------------------------------------------------------------------------------------
  // The queues: pending work, round-robin pick, errors, requests held, status. What the idle
  // engine does next, in this order: the oldest interrupt decision, a slot's result, a CPU
  // completion, a new request.
  logic          pick_valid, pick_hint, idle_cpl, idle_pick;
  logic [QW-1:0] pick;
  logic [15:0]   pick_avail;
  logic [NQ-1:0] err, stopped, q_runs, hint_valid;
  logic [NQ-1:0][15:0] hint;
  logic          holds_request, requeue, held_dec;
  fv_vq_sched #(.NQ(NQ)) u_sched (
    .clk, .rst, .enable, .owner, .doorbell, .doorbell_idx, .notify_data, .saved_last_avail,
    .idle(in_idle), .cq, .can_pick(tag_free && dslot_free), .pick_valid, .pick,
    .pick_avail, .pick_hint, .take_pick(idle_pick), .requeue, .fail(in_fail),
    .fail_cause(f_cause), .fail_info(f_info), .avail_seen, .avail_val,
    .held_inc(in_take), .held_dec, .held_q(in_load ? cq : c_q),
    .err, .stopped, .q_runs, .hint, .hint_valid, .holds_request, .q_has_dec, .st_enabled,
    .st_error, .st_cause, .st_inflight, .st_err_info
  );
  assign requeue = in_take || (in_decide && !dec_fail && !dec_irq)
                   || (in_irq && irq_ready);
  assign held_dec = (in_load && load_slot && (err[cq] || r_err || !r_punt)) || c_taken;
  // A request of the current queue is being fetched and walked (not counted in held yet).
  assign holds_request = (in_avail && a_ring_phase) || in_walk || in_take;

  // The dispatcher.
  fv_vq_dispatch #(.NQ(NQ), .NSLOT(NSLOT)) u_dispatch (
    .clk, .rst, .run, .cycle, .state, .desc_lo, .desc_hi, .avail_lo, .avail_hi, .used_lo,
    .used_hi, .size, .event_idx, .indirect, .msix_vector, .saved_last_avail, .saved_used_idx,
    .err, .save_we, .save_last_avail, .save_used_idx, .pick_valid, .pick, .pd_ready, .pd_full,
    .ds_any_ready, .cpl_pending, .idle_pick, .idle_cpl, .a_done, .a_result, .a_head, .a_cause,
    .a_info, .a_fault, .a_in_ring, .w_done, .w_result, .w_cause, .w_info, .w_fault,
    .w_first_addr, .w_bytes, .w_ind, .ready_dslot, .ready_q, .r_head, .r_pos, .r_first_addr,
    .r_walked, .r_ind, .r_start, .r_written, .r_err, .r_tmo, .r_punt, .r_reason, .r_arg,
    .c_done, .c_result, .c_q, .c_head, .c_pos, .c_len, .c_no_irq, .c_failed, .c_cause, .c_info,
    .p_published, .p_done, .dec_q, .dec_vec, .dec_fail, .dec_info, .dec_irq, .irq_ready,
    .punt_ready, .cq, .c_desc, .c_avail, .c_used, .c_size, .c_mask, .c_evt, .c_ind, .c_vec,
    .last_avail, .used_idx, .head, .req_pos, .in_ind, .first_addr, .walked_bytes, .start_cycle,
    .pub_len, .pub_no_irq, .p_reason, .p_arg, .cs, .load_slot, .f_cause, .f_info, .ev_error,
    .ev_fault, .ev_irq
  );

  // ---------------------------------------------------------------------------------------------
  // DMA requests, from the state.
  // Reads on the walk's master: the avail stage's, the walk's, the completions'. Writes:
  // avail_event (the avail stage), the used ring (fv_vq_used_write).
  assign rd_valid = (in_avail && a_rd_valid) || (in_walk && w_rd_valid)
                    || (in_cpl && c_rd_valid);
  assign rd_addr = in_avail ? a_rd_addr : in_walk ? w_rd_addr : c_rd_addr;
  assign rd_len = in_avail ? a_rd_len : in_walk ? w_rd_len : c_rd_len;
  assign wr_valid = a_wr_valid || p_wr_valid;
  assign wr_addr = a_wr_valid ? a_wr_addr : p_wr_addr;
  assign wr_len = a_wr_valid ? 16'd2 : p_wr_len;
  assign wr_data = a_wr_valid ? DW'(a_wr_data) : p_wr_data;

  assign punt_valid = in_punt;
  always_comb begin
    punt_entry = '0;
    punt_entry.qid = 16'(cq);
    punt_entry.head = head;
    punt_entry.reason = p_reason;
    punt_entry.func = {5'd0, func[cq]};
    punt_entry.flags = {6'd0, in_ind, 1'b0};
    punt_entry.tag = 32'(free_tag);
    punt_entry.len = walked_bytes;
    punt_entry.addr = first_addr;
    punt_entry.arg = p_arg;
  end

  assign irq_valid = in_irq;
  assign irq_vector = c_vec;
  assign cur_queue = cq;

endmodule
