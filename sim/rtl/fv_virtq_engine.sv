// Virtqueue engine for split virtqueues: the stages below wired together, and the dispatcher
// that runs them.
//
//   doorbell -> avail->idx -> avail ring -> descriptor chain walk (NEXT, INDIRECT) -> device
//   engine -> used element -> used->idx -> EVENT_IDX / NO_INTERRUPT decision -> MSI-X request
//
//   fv_vq_sched          doorbells, pending queues, round-robin pick, error state, STATUS
//   fv_vq_avail_fetch    configuration check, avail->idx, avail_event, the ring window + read-ahead
//   fv_vq_desc_prefetch  look-ahead descriptor reads of the next heads, head prediction
//   fv_vq_desc_walk      the chain walk into the segment table (fv_vq_desc_check: each descriptor)
//   fv_vq_slot_track     the device-engine slots' requests and results, per-queue publish order
//   fv_vq_used_write     done-log record, used element, used->idx
//   fv_vq_irq_decide     the interrupt decisions after each publish, moderation
//   fv_vq_punt_cpl       punt tags, the CPU's completions
//
// The dispatcher does one thing at a time, in this order when idle: the oldest interrupt decision
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
  localparam logic [15:0] NO_VECTOR = 16'(fv_regs_pkg::NO_VECTOR);

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

  typedef enum logic [4:0] {
    S_IDLE,
    S_AVAIL,
    S_WALK,
    S_TAKE, S_DEV, S_LOAD,
    S_PUB, S_DECIDE,
    S_IRQ,
    S_PUNT,
    S_CPL,
    S_FAIL
  } state_e;

  state_e state;

  // Current queue, latched at pick.
  logic [QW-1:0] cq;
  logic [63:0] c_desc, c_avail, c_used;
  logic [15:0] c_size, c_mask;
  logic        c_evt, c_ind;
  logic [15:0] c_vec;
  logic [15:0] last_avail, used_idx;

  // The request in hand.
  logic        in_ind;         // its chain is in an indirect table
  logic [15:0] head;
  logic [15:0] req_pos;        // avail position the request in hand was fetched from
  logic [31:0] start_cycle, cycle;

  localparam int PW = $clog2(PUNT_TAGS);
  localparam int DSW = NSLOT > 1 ? $clog2(NSLOT) : 1;
  logic [DSW-1:0] cs;                  // slot whose result is being taken
  logic           load_slot;           // S_LOAD takes a slot's result (else a CPU's)
  logic [63:0] log_base;               // queue cq's done log (0: none)
  logic        has_log;
  assign log_base = {done_log_hi[cq], done_log_lo[cq]};
  assign has_log = |log_base;
  logic take_punt;                     // the chain walked goes to the CPU (S_TAKE), not to a slot

  // The result being published (a slot's or a CPU completion): its used length and whether the
  // CPU asked for no interrupt.
  logic [31:0] pub_len;
  logic        pub_no_irq;
  logic [31:0] walked_bytes;
  logic [63:0] first_addr;
  logic [7:0]  p_reason;               // why the request in hand is punted
  logic [63:0] p_arg;

  // The engine's DMA writes are numbered in issue order; the port acknowledges them in that
  // order, so an acknowledgement's number is the count of those before it.
  logic [15:0] wseq_iss, wseq_ack;

  // Failure being recorded.
  logic [3:0]  f_cause;
  logic [31:0] f_info;
  logic        f_fault;

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
    .ring_wait(a_ring_wait), .avail_seen, .avail_val, .take(state == S_TAKE),
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
    .use_hit(pf_use), .take(state == S_TAKE), .publish(p_elem),
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
    .assign_en(state == S_DEV), .a_q(cq), .a_head(head), .a_pos(req_pos), .a_first_addr(first_addr),
    .a_walked(walked_bytes), .a_ind(in_ind), .a_start(start_cycle),
    .slot_free(dslot_free), .tag_free, .any_ready(ds_any_ready),
    .ready_slot(ready_dslot), .ready_q, .release_en(state == S_LOAD && load_slot), .rd_slot(cs),
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
    .clk, .rst, .alloc(state == S_PUNT && punt_ready), .alloc_q(cq), .alloc_head(head),
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
  assign load_pub = state == S_LOAD && !err[cq] && (!load_slot || (!r_tmo && !r_err && !r_punt));

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
    .pd_ready, .head_q(dec_q), .head_vec(dec_vec), .decide(state == S_DECIDE),
    .d_fail(dec_fail), .d_info(dec_info), .d_irq(dec_irq), .q_has_dec,
    .ir_rd_valid, .ir_rd_ready, .ir_rd_addr, .ir_rd_len, .ir_rc_valid, .ir_rc_data, .ir_rc_error,
    .ir_queue, .wseq_ack, .wc_valid, .wc_error, .enable, .mod_max_pending, .mod_timeout, .mod_fire
  );

  // ---------------------------------------------------------------------------------------------
  // The queues: pending work, round-robin pick, errors, requests held, status. What the idle
  // engine does next, in this order: the oldest interrupt decision, a slot's result, a CPU
  // completion, a new request.
  logic          pick_valid, pick_hint, idle_decide, idle_load, idle_cpl, idle_pick;
  logic [QW-1:0] pick;
  logic [15:0]   pick_avail;
  logic [NQ-1:0] err, stopped, q_runs, hint_valid;
  logic [NQ-1:0][15:0] hint;
  logic          holds_request, requeue, held_dec;
  fv_vq_sched #(.NQ(NQ)) u_sched (
    .clk, .rst, .enable, .owner, .doorbell, .doorbell_idx, .notify_data, .saved_last_avail,
    .idle(state == S_IDLE), .cq, .can_pick(tag_free && dslot_free), .pick_valid, .pick,
    .pick_avail, .pick_hint, .take_pick(idle_pick), .requeue, .fail(state == S_FAIL),
    .fail_cause(f_cause), .fail_info(f_info), .avail_seen, .avail_val,
    .held_inc(state == S_TAKE), .held_dec, .held_q(state == S_LOAD ? cq : c_q),
    .err, .stopped, .q_runs, .hint, .hint_valid, .holds_request, .q_has_dec, .st_enabled,
    .st_error, .st_cause, .st_inflight, .st_err_info
  );
  assign requeue = state == S_TAKE || (state == S_DECIDE && !dec_fail && !dec_irq)
                   || (state == S_IRQ && irq_ready);
  assign held_dec = (state == S_LOAD && load_slot && (err[cq] || r_err || !r_punt)) || c_taken;
  // A request of the current queue is being fetched and walked (not counted in held yet).
  assign holds_request = (state == S_AVAIL && a_ring_phase) || state == S_WALK || state == S_TAKE;
  assign idle_decide = state == S_IDLE && pd_ready;
  assign idle_load = state == S_IDLE && !pd_ready && ds_any_ready && !pd_full;
  assign idle_cpl = state == S_IDLE && !pd_ready && !(ds_any_ready && !pd_full)
                    && run && cpl_pending && !pd_full;
  assign idle_pick = state == S_IDLE && !pd_ready && !(ds_any_ready && !pd_full)
                     && !(run && cpl_pending && !pd_full) && run && pick_valid;
  // ---------------------------------------------------------------------------------------------
  // DMA requests, from the state.
  // Reads on the walk's master: the avail stage's, the walk's, the completions'. Writes:
  // avail_event (the avail stage), the used ring (fv_vq_used_write).
  assign rd_valid = (state == S_AVAIL && a_rd_valid) || (state == S_WALK && w_rd_valid)
                    || (state == S_CPL && c_rd_valid);
  assign rd_addr = state == S_AVAIL ? a_rd_addr : state == S_WALK ? w_rd_addr : c_rd_addr;
  assign rd_len = state == S_AVAIL ? a_rd_len : state == S_WALK ? w_rd_len : c_rd_len;
  assign wr_valid = a_wr_valid || p_wr_valid;
  assign wr_addr = a_wr_valid ? a_wr_addr : p_wr_addr;
  assign wr_len = a_wr_valid ? 16'd2 : p_wr_len;
  assign wr_data = a_wr_valid ? DW'(a_wr_data) : p_wr_data;

  assign punt_valid = state == S_PUNT;
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

  assign irq_valid = state == S_IRQ;
  assign irq_vector = c_vec;
  assign cur_queue = cq;

  // ---------------------------------------------------------------------------------------------
  // The walk and publish state machine.

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      cq <= '0;
      c_desc <= '0;
      c_avail <= '0;
      c_used <= '0;
      c_size <= '0;
      c_mask <= '0;
      c_evt <= '0;
      c_ind <= '0;
      c_vec <= NO_VECTOR;
      last_avail <= '0;
      used_idx <= '0;
      in_ind <= '0;
      head <= '0;
      req_pos <= '0;
      walked_bytes <= '0;
      first_addr <= '0;
      f_cause <= '0;
      f_info <= '0;
      f_fault <= '0;
      p_reason <= '0;
      p_arg <= '0;
      take_punt <= '0;
      cycle <= '0;
      start_cycle <= '0;
      save_we <= '0;
      save_last_avail <= '0;
      save_used_idx <= '0;
      ev_error <= '0;
      ev_fault <= '0;
      ev_irq <= '0;
      cs <= '0;
      load_slot <= '0;
      pub_len <= '0;
      pub_no_irq <= '0;
      wseq_iss <= '0;
      wseq_ack <= '0;
    end else begin
      cycle <= cycle + 32'd1;
      // Writes issued and acknowledged; refusals of the used-ring writes being published.
      if (wr_valid && wr_ready) wseq_iss <= wseq_iss + 16'd1;
      if (wc_valid) wseq_ack <= wseq_ack + 16'd1;
      save_we <= '0;
      ev_error <= 1'b0;
      ev_fault <= 1'b0;
      ev_irq <= 1'b0;

      if (p_published) begin
        save_we[cq] <= 1'b1;
        save_last_avail <= last_avail;
        save_used_idx <= used_idx + 16'd1;
      end

      unique case (state)
        S_IDLE: begin
          if (idle_decide) begin
            // The oldest publish's interrupt decision (taken even while !run).
            cq <= dec_q;
            c_vec <= dec_vec;
            state <= S_DECIDE;
          end else if (idle_load) begin
            // A slot finished (taken even while !run: work in flight drains).
            cs <= ready_dslot;
            cq <= ready_q;
            load_slot <= 1'b1;
            state <= S_LOAD;
          end else if (idle_cpl) begin
            state <= S_CPL;            // fv_vq_punt_cpl reads the completion
          end else if (idle_pick) begin
            cq <= pick;
            c_desc <= {desc_hi[pick], desc_lo[pick]};
            c_avail <= {avail_hi[pick], avail_lo[pick]};
            c_used <= {used_hi[pick], used_lo[pick]};
            c_size <= size[pick];
            c_mask <= size[pick] - 16'd1;
            c_evt <= event_idx[pick];
            c_ind <= indirect[pick];
            c_vec <= msix_vector[pick];
            last_avail <= saved_last_avail[pick];
            used_idx <= saved_used_idx[pick];
            state <= S_AVAIL;          // fv_vq_avail_fetch starts
          end
        end

        S_AVAIL: begin
          if (a_in_ring) start_cycle <= cycle;
          if (a_done) begin
            f_cause <= a_cause;
            f_info <= a_info;
            f_fault <= a_fault;
            unique case (a_result)
              fv_vq_pkg::AVAIL_HEAD: begin
                head <= a_head;
                state <= S_WALK;         // fv_vq_desc_walk starts
              end
              fv_vq_pkg::AVAIL_NONE: state <= S_IDLE;
              default: state <= S_FAIL;
            endcase
          end
        end

        S_WALK: begin
          if (w_done) begin
            f_cause <= w_cause;
            f_info <= w_info;
            f_fault <= w_fault;
            unique case (w_result)
              fv_vq_pkg::WALK_FAIL: state <= S_FAIL;
              fv_vq_pkg::WALK_PUNT: begin
                // More descriptors than the segment table holds: the CPU serves this one.
                p_reason <= 8'(fv_regs_pkg::PUNT_REASON_CHAIN_TOO_LONG);
                p_arg <= '0;
                take_punt <= 1'b1;
                state <= S_TAKE;
              end
              default: begin
                take_punt <= 1'b0;
                state <= S_TAKE;
              end
            endcase
          end
        end

        // The chain is walked: consume its avail entry (the request is held until its result
        // is published), then hand it to a slot or to the CPU. The saved state reaches the CSR
        // block a cycle later, before the next pick reads it (S_DEV and S_PUNT take a cycle at
        // least).
        S_TAKE: begin
          req_pos <= last_avail;
          first_addr <= w_first_addr;
          walked_bytes <= w_bytes;
          in_ind <= w_ind;
          last_avail <= last_avail + 16'd1;
          save_we[cq] <= 1'b1;
          save_last_avail <= last_avail + 16'd1;
          save_used_idx <= used_idx;
          state <= take_punt ? S_PUNT : S_DEV;
        end
        // A free slot takes the chain (the pick made sure there is one); its result is published
        // when the slot finishes.
        S_DEV: state <= S_IDLE;

        // A result to publish (a slot's, or a CPU completion read in S_CPL): the queue's
        // context as at a pick; then publish, punt or fail. A broken queue gets no more used
        // entries.
        S_LOAD: begin
          c_avail <= {avail_hi[cq], avail_lo[cq]};
          c_used <= {used_hi[cq], used_lo[cq]};
          c_size <= size[cq];
          c_mask <= size[cq] - 16'd1;
          c_evt <= event_idx[cq];
          c_vec <= msix_vector[cq];
          last_avail <= saved_last_avail[cq];
          used_idx <= saved_used_idx[cq];
          if (!load_slot) begin
            state <= err[cq] ? S_IDLE : S_PUB;
          end else begin
            head <= r_head;
            req_pos <= r_pos;
            first_addr <= r_first_addr;
            walked_bytes <= r_walked;
            in_ind <= r_ind;
            start_cycle <= r_start;
            pub_len <= r_written;
            pub_no_irq <= 1'b0;
            if (err[cq]) begin
              state <= S_IDLE;
            end else if (r_tmo) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_ENGINE_TIMEOUT;
              f_info <= {16'd0, r_head};
              f_fault <= 1'b0;
              state <= S_FAIL;
            end else if (r_err) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
              f_info <= '0;
              f_fault <= 1'b1;
              state <= S_FAIL;
            end else if (r_punt) begin
              // The device engine hands this request to the CPU (it stays held, now as a punt).
              p_reason <= r_reason;
              p_arg <= r_arg;
              state <= S_PUNT;
            end else begin
              state <= S_PUB;
            end
          end
        end

        // fv_vq_used_write publishes (the context holds still meanwhile) and hands the
        // interrupt decision to a free entry of fv_vq_irq_decide (the publish started only with
        // one free).
        S_PUB: if (p_done) state <= S_IDLE;

        // The decision (cq and c_vec are the decision's queue and vector). Without an interrupt
        // now (none wanted, or deferred), look at avail->idx again before the queue may sleep
        // (entries added without a kick, EVENT_IDX's avail_event): on the next pick, after the
        // other queues.
        S_DECIDE: begin
          if (dec_fail) begin
            f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
            f_info <= dec_info;
            f_fault <= 1'b1;
            state <= S_FAIL;
          end else if (dec_irq) begin
            state <= S_IRQ;
          end else begin
            state <= S_IDLE;
          end
        end

        S_IRQ: begin
          if (irq_ready) begin
            ev_irq <= 1'b1;
            state <= S_IDLE;
          end
        end

        // The request (consumed and held already) goes out on the punt ring with a tag.
        S_PUNT: if (punt_ready) state <= S_IDLE;

        S_CPL: begin
          if (c_done) begin
            if (c_result != fv_vq_pkg::CPL_DROP) cq <= c_q;
            f_cause <= c_cause;
            f_info <= c_info;
            f_fault <= 1'b0;
            unique case (c_result)
              fv_vq_pkg::CPL_LOAD: begin
                head <= c_head;
                req_pos <= c_pos;
                pub_len <= c_len;
                pub_no_irq <= c_no_irq;
                ev_error <= c_failed;    // the CPU failed the request: count it
                load_slot <= 1'b0;
                state <= S_LOAD;
              end
              fv_vq_pkg::CPL_FAIL: state <= S_FAIL;
              default: state <= S_IDLE;
            endcase
          end
        end

        S_FAIL: begin                  // (the queue's error state: fv_vq_sched)
          ev_error <= 1'b1;
          ev_fault <= f_fault;
          state <= S_IDLE;
        end

        default: state <= S_IDLE;
      endcase
    end
  end
endmodule
