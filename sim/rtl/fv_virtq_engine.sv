// Virtqueue engine for split virtqueues.
//
//   doorbell -> avail->idx -> avail ring -> descriptor chain walk (NEXT, INDIRECT) -> device
//   engine -> used element -> used->idx -> EVENT_IDX / NO_INTERRUPT decision -> MSI-X request
//
// The engine walks one chain at a time, picking queues round-robin among those with work, and
// hands each walked chain to one of NSLOT device-engine slots; it goes on fetching while the slots
// work, so up to NSLOT requests (of any queues) move data at once, each slot with its own DMA
// master. It is the single publisher of used->idx of the FPGA-owned queues: a slot's result is
// published once the slot finished and every earlier chain of the same queue on a slot was
// published, so the device's own results reach a used ring in avail order (a restarted backend
// that resumes at used->idx then repeats nothing it completed; only punted requests, which the CPU
// answers, can complete out of order). A queue with a done log gets a record of each publish, its
// avail position and used->idx, written just before the used element, from which a restarted
// driver tells completed requests from those in flight (S_REC_REQ). The interrupt decision after a
// publish runs beside the engine (see S_HANDOFF / S_DECIDE). Requests it hands to the CPU (chains
// longer than its segment table, and whatever a device engine declines) go out on the punt ring
// with a tag, and the CPU's answers come back on the completion ring, which the engine merges into
// the used rings (interrupt decisions first, then slot results, completions, new requests). A
// completion whose tag, queue and head do not name a punted request in flight is dropped and fails
// its queue (bad_completion). Everything it reads from guest memory is validated before use: a
// malformed chain or a DMA fault puts only that queue into its error state (cause + detail), and
// the others go on. Clearing a queue's enable is a handshake: the requests in flight (walked, on a
// slot, punted, or waiting for their interrupt decision) complete, then STATUS.enabled drops and
// the saved state (last_avail, used_idx) is final.
//
// DMA: one outstanding read for the walk (completion beats of DW bits, byte 0 of beat 0 = the
// byte at the address), one per pending interrupt decision (NDEC), one per descriptor prefetch
// (NPF) and one for the avail-ring read-ahead, each on a master of its own; writes of a single
// beat of at most DW/8 bytes, several in flight, acknowledged in issue order.
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
  input  logic [NQ-1:0][31:0] done_log_lo,       // done log (0: none): see S_REC_REQ
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
  localparam int SW = $clog2(MAX_SEGS + 1);
  localparam logic [15:0] NO_VECTOR = 16'(fv_regs_pkg::NO_VECTOR);
  localparam int WPF = fv_regs_pkg::DMA_WINDOWS_PER_FUNCTION;
  localparam int WW = $clog2(WPF);
  localparam logic [33:0] MAX_CHAIN = 34'(fv_regs_pkg::MAX_CHAIN_BYTES);

  if (WPF < 1 || (WPF & (WPF - 1)) != 0 || fv_regs_pkg::NUM_DMA_WINDOWS != 8 * WPF) begin : g_bad_win
    $error("fv_virtq_engine: DMA_WINDOWS_PER_FUNCTION must be a power of two, 8 per function");
  end

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

  // Virtio descriptor flags.
  // Descriptor flag bits (hw/regmap.toml, one definition for the RTL and the Rust walkers).
  localparam int F_NEXT = fv_regs_pkg::VIRTQ_DESC_F_NEXT_BIT;
  localparam int F_WRITE = fv_regs_pkg::VIRTQ_DESC_F_WRITE_BIT;
  localparam int F_INDIRECT = fv_regs_pkg::VIRTQ_DESC_F_INDIRECT_BIT;

  typedef enum logic [4:0] {
    S_IDLE,
    S_CHECK,
    S_AIDX_REQ, S_AIDX_WAIT,
    S_RING, S_RING_REQ, S_RING_WAIT,
    S_DESC_REQ, S_DESC_WAIT, S_DESC_USE,
    S_TAKE, S_DEV, S_LOAD,
    S_REC_REQ, S_ELEM_REQ,
    S_UIDX_REQ,
    S_HANDOFF, S_DECIDE,
    S_IRQ,
    S_AEVT_REQ, S_AEVT_WAIT,
    S_PUNT,
    S_CPL_REQ, S_CPL_WAIT,
    S_FAIL
  } state_e;

  state_e state;

  // Current queue, latched at pick.
  logic [QW-1:0] cq;
  logic [63:0] c_desc, c_avail, c_used;
  logic [15:0] c_size, c_mask;
  logic        c_evt, c_ind;
  logic [15:0] c_vec;
  logic [15:0] last_avail, used_idx, avail_idx;
  logic        aevt_written;

  // Chain walk.
  logic [15:0] idx;            // descriptor index in the current table
  logic        in_ind;
  logic [63:0] ind_base;
  logic [15:0] ind_n;
  logic [15:0] walked;         // descriptors visited in the current table
  logic [15:0] table_limit;    // descriptors in the current table
  logic        seen_write;
  logic [15:0] head;
  logic [15:0] req_pos;        // avail position the request in hand was fetched from
  logic [31:0] start_cycle, cycle;

  // Per-queue state.
  logic [NQ-1:0]       pending;
  logic [NQ-1:0]       err;
  logic [NQ-1:0][3:0]  cause;
  logic [NQ-1:0][31:0] info;
  logic [NQ-1:0]       enable_q;
  logic [NQ-1:0][15:0] shadow_avail;
  logic [NQ-1:0][15:0] hint;             // NOTIFICATION_DATA: the last doorbell's avail idx
  logic [NQ-1:0]       hint_valid;

  // Punted requests in flight, by punt tag (the device slots are ds_*).
  localparam int PW = $clog2(PUNT_TAGS);
  logic [PUNT_TAGS-1:0]         tag_valid;
  logic [PUNT_TAGS-1:0][QW-1:0] tag_q;
  logic [PUNT_TAGS-1:0][15:0]   tag_head;
  logic [PUNT_TAGS-1:0][15:0]   tag_pos;
  logic                          tag_free;
  logic [PW-1:0]                 free_tag;
  always_comb begin
    tag_free = !(&tag_valid);
    free_tag = '0;
    if (tag_free) begin
      for (int i = PUNT_TAGS - 1; i >= 0; i--) begin
        if (!tag_valid[i]) free_tag = PW'(i);
      end
    end
  end
  // Requests taken from a queue's ring and not yet published: on a device slot or punted to the
  // CPU (counts: incremented when the chain is handed on, decremented when its result is taken).
  logic [NQ-1:0][15:0] held;
  logic [NQ-1:0]       has_held;       // held[q] != 0

  // Device-engine slots: the request each one serves, and its result once done.
  localparam int DSW = NSLOT > 1 ? $clog2(NSLOT) : 1;
  logic [NSLOT-1:0]             ds_busy, ds_done;
  logic [NSLOT-1:0][QW-1:0]     ds_q;
  logic [NSLOT-1:0][15:0]       ds_head;
  logic [NSLOT-1:0][15:0]       ds_pos;
  logic [NSLOT-1:0][63:0]       ds_first_addr;
  logic [NSLOT-1:0][31:0]       ds_walked;
  logic [NSLOT-1:0]             ds_ind;
  logic [NSLOT-1:0][31:0]       ds_start;
  logic [NSLOT-1:0]             ds_err, ds_punt, ds_tmo;
  logic [NSLOT-1:0][31:0]       ds_written;
  logic [NSLOT-1:0][7:0]        ds_reason;
  logic [NSLOT-1:0][63:0]       ds_arg;
  logic [DSW-1:0]               cs;             // slot whose result is being taken
  logic                         load_slot;      // S_LOAD takes a slot's result (else a CPU's)
  logic                         dslot_free;
  logic [DSW-1:0]               free_dslot;
  logic [NSLOT-1:0]             ds_ready;       // results that can be taken now
  logic [DSW-1:0]               ready_dslot;
  // ds_older[k][j]: slot j held a chain when slot k got its own (j's is older).
  logic [NSLOT-1:0][NSLOT-1:0]  ds_older;
  logic [NSLOT-1:0]             ds_waits;       // an older chain of the same queue is on a slot
  always_comb begin
    ds_waits = '0;
    if (|ds_done) begin
      for (int k = 0; k < NSLOT; k++) begin
        for (int j = 0; j < NSLOT; j++) begin
          if (ds_older[k][j] && ds_q[j] == ds_q[k]) ds_waits[k] = 1'b1;
        end
      end
    end
  end
  // A result to punt needs a punt tag; while none is free the others go first (completions free
  // tags).
  assign ds_ready = ds_done & ~ds_waits & ~(ds_punt & {NSLOT{!tag_free}});
  always_comb begin
    dslot_free = !(&(ds_busy | slot_blocked));
    free_dslot = '0;
    ready_dslot = '0;
    for (int k = NSLOT - 1; k >= 0; k--) begin
      if (!ds_busy[k] && !slot_blocked[k]) free_dslot = DSW'(k);
      if (ds_ready[k]) ready_dslot = DSW'(k);
    end
  end
  assign slot_queue = ds_q;
  assign dev_start = state == S_DEV ? NSLOT'(1) << free_dslot : '0;
  logic [63:0] log_base;       // queue cq's done log (0: none)
  logic        has_log;
  assign log_base = {done_log_hi[cq], done_log_lo[cq]};
  assign has_log = |log_base;
  logic take_punt;             // the chain walked goes to the CPU (S_TAKE), not to a slot

  // The result being published (a slot's or a CPU completion): its used length and whether the
  // CPU asked for no interrupt.
  logic [31:0] pub_len;
  logic        pub_no_irq;
  logic [31:0] walked_bytes;
  logic [63:0] first_addr;
  logic [7:0]  p_reason;       // why the request in hand is punted
  logic [63:0] p_arg;
  logic        cpl_pending;
  logic [31:0] cpl_mask;
  assign cpl_mask = (32'd1 << cpl_size_log2) - 32'd1;
  assign cpl_pending = cpl_enable && cpl_prod != cpl_cons;

  // Batched avail-ring fetch: up to 8 heads per read (16 bytes), kept across picks of the same
  // queue hq in a window of up to 16 ring entries: avail positions hbase .. hbase + hlen - 1,
  // position p in hbuf[p mod 16]. The walk reads a batch when the window misses (S_RING_REQ);
  // the read-ahead extends it while the walk consumes it (see there).
  logic [15:0][15:0] hbuf;
  logic [4:0]        hlen;
  logic [15:0]       hbase;
  logic [QW-1:0]     hq;
  logic [15:0]       hoff;
  logic              hhit;
  logic [3:0]       ring_batch;
  logic [15:0]      batch_avail, batch_wrap;
  assign hoff = last_avail - hbase;
  assign hhit = hq == cq && hlen != 5'd0 && hoff < {11'd0, hlen};
  // Entries one avail-ring read fetches: at most 8, those known available, none past the ring's
  // end (the walk's batch and the read-ahead alike).
  function automatic logic [3:0] ring_read_len(input logic [15:0] avail, input logic [15:0] wrap);
    ring_read_len = avail < 16'd8 ? avail[3:0] : 4'd8;
    if (wrap < {12'd0, ring_read_len}) ring_read_len = wrap[3:0];
  endfunction
  assign batch_avail = avail_idx - last_avail;
  assign batch_wrap = c_size - ring_slot;
  assign ring_batch = ring_read_len(batch_avail, batch_wrap);

  // The engine's DMA writes are numbered in issue order; the port acknowledges them in that
  // order, so an acknowledgement's number is the count of those before it. pub_seq is the
  // number of the used element being published (used->idx is pub_seq + 1); pub_uerr: one of the
  // two was refused.
  logic [15:0] wseq_iss, wseq_ack, pub_seq, aevt_seq;
  logic        pub_uerr, ack_err_pub, pub_rec;
  // pub_rec: a done-log record (numbered pub_seq - 1) went before the used element.
  assign ack_err_pub = wc_valid && wc_error && (wseq_ack == pub_seq || wseq_ack == pub_seq + 16'd1
                                                || (pub_rec && wseq_ack == pub_seq - 16'd1));

  // The pending interrupt decisions of the last publishes, in publish order (a ring of NDEC
  // entries; pd_tail is the next free one, pd_head the oldest): each entry's used_event /
  // avail->flags read is issued on a master of its own right after the publish, and once that
  // read is back and both used-ring writes are acknowledged (an MSI follows the used->idx write
  // it announces), the oldest entry's decision is taken (S_DECIDE). Each publish is decided on
  // its own (used_event against its own old used->idx), so decisions in flight need not wait
  // for each other; a publish waits only when all NDEC entries are taken.
  localparam int DCW = NDEC > 1 ? $clog2(NDEC) : 1;
  logic [NDEC-1:0]              pd_busy, pd_issued, pd_got, pd_err, pd_uerr, pd_evt, pd_no_irq, pd_rec;
  logic [NDEC-1:0][15:0]        pd_val, pd_vec, pd_old, pd_seq;
  logic [NDEC-1:0][QW-1:0]      pd_q;
  logic [NDEC-1:0][63:0]        pd_addr;
  logic [NDEC-1:0][31:0]        pd_used, pd_avail;
  logic [DCW-1:0]               pd_head, pd_tail;
  logic                         pd_ready, pd_full, evt_need;
  logic [NDEC-1:0]              ack_err_pd;
  // The oldest decision (S_DECIDE takes it; it stays the oldest until then).
  logic          dh_evt, dh_no_irq, dh_err, dh_uerr;
  logic [15:0]   dh_val, dh_vec, dh_old;
  logic [31:0]   dh_used, dh_avail;
  assign dh_evt = pd_evt[pd_head];
  assign dh_no_irq = pd_no_irq[pd_head];
  assign dh_err = pd_err[pd_head];
  assign dh_uerr = pd_uerr[pd_head];
  assign dh_val = pd_val[pd_head];
  assign dh_vec = pd_vec[pd_head];
  assign dh_old = pd_old[pd_head];
  assign dh_used = pd_used[pd_head];
  assign dh_avail = pd_avail[pd_head];
  assign pd_ready = pd_busy[pd_head] && pd_got[pd_head]
                    && $signed(wseq_ack - pd_seq[pd_head] - 16'd2) >= 0;
  assign pd_full = pd_busy[pd_tail];
  always_comb begin
    ack_err_pd = '0;
    if (wc_valid && wc_error) begin
      for (int e = 0; e < NDEC; e++) begin
        ack_err_pd[e] = pd_busy[e] && (wseq_ack == pd_seq[e] || wseq_ack == pd_seq[e] + 16'd1
                                       || (pd_rec[e] && wseq_ack == pd_seq[e] - 16'd1));
      end
    end
  end
  assign ir_rd_valid = pd_busy & ~pd_issued;
  assign ir_rd_addr = pd_addr;
  assign ir_rd_len = {NDEC{16'd2}};
  assign ir_queue = pd_q;
  // EVENT_IDX: vring_need_event(used_event, new, old) with new = old + 1 holds exactly when
  // used_event == old. Otherwise: no VRING_AVAIL_F_NO_INTERRUPT.
  assign evt_need = dh_vec != NO_VECTOR && !dh_no_irq && (dh_evt ? dh_val == dh_old : !dh_val[0]);

  // Interrupt moderation: an interrupt the guest wants may be deferred until MAX_PENDING used
  // entries were published since the last one, or TIMEOUT cycles passed (a deferral needs a
  // timeout, so no interrupt is ever lost). A scanner looks at one queue per cycle and hands due
  // interrupts to the device's interrupt arbiter (mod_fire); they announce used entries whose
  // writes were already acknowledged.
  logic [NQ-1:0]       mwant;
  logic [NQ-1:0][7:0]  mcount;
  logic [NQ-1:0][31:0] mdead;
  logic [QW-1:0]       mscan;
  logic                mod_now, mod_defer;
  assign mod_defer = mod_max_pending[cq] > 8'd1 && mod_timeout[cq] != 24'd0
                     && mcount[cq] + 8'd1 < mod_max_pending[cq];
  assign mod_now = evt_need || mwant[cq];

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

  // Descriptor prefetch: up to DPF consecutive descriptors per read (drivers hand out
  // descriptors mostly in order), kept for the rest of the walk of the same table. A chain may
  // not change while it is available, but a descriptor may be reused by the next chain: the cache
  // is dropped at every new chain and when the walk enters an indirect table.
  localparam int DPF = 4;
  localparam int DBEATS = DPF * 128 / DW;       // read beats of a full prefetch (1 .. 8)
  logic [DPF*128-1:0] dcache;
  logic [15:0]        dc_base;                  // index of dcache's first descriptor
  logic [2:0]         dc_n;                     // descriptors held (0: empty)
  logic [2:0]         dc_want;                  // descriptors the read in flight brings
  logic [3:0]         dbeat;
  logic [15:0]        dc_off, dc_rem;
  logic               dc_hit;
  logic [2:0]         dpf_n;
  assign dc_off = idx - dc_base;
  assign dc_hit = dc_n != 3'd0 && dc_off < {13'd0, dc_n};
  assign dc_rem = table_limit - idx;
  assign dpf_n = dc_rem >= 16'(DPF) ? 3'(DPF) : (dc_rem == 16'd0 ? 3'd1 : dc_rem[2:0]);

  // Descriptor fields, of descriptor idx in the cache.
  logic [127:0] cur_desc;
  logic [63:0]  d_addr;
  logic [31:0]  d_len;
  logic [15:0]  d_flags, d_next;
  assign cur_desc = dcache[dc_off[1:0] * 128 +: 128];
  assign d_addr = cur_desc[63:0];
  assign d_len = cur_desc[95:64];
  assign d_flags = cur_desc[111:96];
  assign d_next = cur_desc[127:112];

  // Tenant isolation: the buffer (or indirect table) [d_addr, d_addr + d_len) must lie inside one
  // of the DMA windows of the queue's function, or nothing of the chain is moved (dma_window).
  // The end is computed on 65 bits: a wrapping buffer is in no window.
  logic [64:0]    d_end;
  logic [WPF-1:0] d_win_hit;
  logic           d_in_window;
  assign d_end = {1'b0, d_addr} + {33'd0, d_len};
  always_comb begin
    for (int w = 0; w < WPF; w++) begin
      d_win_hit[w] = win_end[{func[cq], WW'(w)}] != 64'd0
                     && d_addr >= win_base[{func[cq], WW'(w)}]
                     && d_end <= {1'b0, win_end[{func[cq], WW'(w)}]};
    end
  end
  assign d_in_window = |d_win_hit;
  // Bytes of the chain so far and with this descriptor (at most MAX_CHAIN + 2^32: 34 bits).
  logic [33:0] chain_bytes, chain_next;
  assign chain_next = chain_bytes + {2'd0, d_len};

  // Avail-ring read-ahead. The walk's own batch read (S_RING_REQ) costs it a DMA latency every
  // 8 requests at best, during which slots that finish find no new chain. While the walk consumes
  // the window of queue hq, the next entries are read on a master of their own: up to 8 more
  // once at most 8 entries are left unconsumed (so the 16-entry window never overwrites an entry
  // not yet taken), only up to the avail index known for hq (ra_known: read from avail->idx, or
  // the doorbell's under NOTIFICATION_DATA), which the driver wrote before it, so the entries
  // are final. One read at a time; it is stale (dropped when it lands) if the window was
  // replaced or the queue stopped meanwhile. A refused read-ahead is not reported and not
  // repeated (ra_refused, until the window is replaced): the walk's own read of the same entries
  // reports it, if the walk gets there.
  logic          ra_busy, ra_stale, ra_refused;
  logic [15:0]   ra_pos;            // avail position of the first entry read
  logic [3:0]    ra_n;              // entries read
  logic [1:0]    ra_beat;
  logic [127:0]  ra_data;
  logic [15:0]   hcons;             // hq's next position to take (the window below it is consumed)
  logic [15:0]   hq_avail;           // avail index known for hq
  logic [15:0]   hend, ra_known, ra_avail, ra_wrap, ra_ahead;
  logic [3:0]    ra_want;
  logic          ra_can;
  assign hend = hbase + {11'd0, hlen};
  assign ra_known = hint_valid[hq] ? hint[hq] : hq_avail;
  assign ra_avail = ra_known - hend;
  assign ra_wrap = size[hq] - (hend & (size[hq] - 16'd1));
  assign ra_ahead = hend - hcons;
  assign ra_want = ring_read_len(ra_avail, ra_wrap);
  assign ra_can = hlen != 5'd0 && !ra_busy && !ra_refused && ra_avail != 16'd0 && ra_avail <= size[hq]
                  && ra_ahead <= 16'd8 && enable[hq] && !owner[hq] && !err[hq] && !stopped[hq]
                  && state != S_RING_WAIT;
  assign ra_rd_valid = ra_can;
  assign ra_rd_addr = {avail_hi[hq], avail_lo[hq]} + 64'd4
                      + {47'd0, hend & (size[hq] - 16'd1), 1'b0};
  assign ra_rd_len = {11'd0, ra_want, 1'b0};
  logic [127:0] ra_rdata;           // the read-ahead's data so far, with this beat
  if (DW >= 128) begin : g_ra_wide
    assign ra_rdata = rc_data[127:0];
    logic unused_ra;
    assign unused_ra = &{1'b0, ra_data, ra_beat};
  end else begin : g_ra_narrow
    always_comb begin
      ra_rdata = ra_data;
      if (ra_beat < 2'(128 / DW)) ra_rdata[ra_beat * DW +: DW] = rc_data;
    end
  end

  // Look-ahead descriptor prefetch. The walk's reads are dependent and one at a time, so at depth the walk
  // bounds the engine (one DMA latency per chain for its descriptors). While it walks, the
  // heads after the current one in the batch (hbuf) have their first DPF descriptors read ahead,
  // up to NPF at once, each on a read master of its own; the walk of such a chain starts from the
  // prefetched copy. A copy is valid: the head was available before the read was issued (hbuf
  // was read after avail->idx), so its chain was final and stays so until the chain is taken
  // and completed. An entry names its queue, avail position and head, and is used only by the
  // walk of exactly that; entries are dropped when the walk replaces the window (but a guessed
  // head for the position it walks, see head prediction) or their queue stops (one still in
  // flight is marked stale and dropped when it lands), and when their position is taken without
  // them. A prefetch the IOMMU refuses is not reported: the walk's own read of the
  // same descriptors reports it, if the walk gets there.
  localparam int PFW = NPF > 1 ? $clog2(NPF) : 1;
  logic [NPF-1:0]              pf_busy, pf_ok, pf_stale, pf_err;
  logic [NPF-1:0][QW-1:0]      pf_q;
  logic [NPF-1:0][15:0]        pf_pos, pf_head;
  logic [NPF-1:0][2:0]         pf_n;
  logic [NPF-1:0][3:0]         pf_beat;
  logic [NPF-1:0][DPF*128-1:0] pf_data;
  logic [15:0]                 pf_from;           // next avail position of hbuf to prefetch
  logic [15:0]                 pf_off, pf_hd, pf_room;
  logic [2:0]                  pf_len;
  logic                        pf_can, pf_any;
  logic [PFW-1:0]              pf_sel;
  assign pf_off = pf_from - hbase;
  assign pf_hd = hbuf[pf_from[3:0]];
  assign pf_room = size[hq] - pf_hd;
  assign pf_len = pf_room >= 16'(DPF) ? 3'(DPF) : pf_room[2:0];
  // A head of the batch not yet prefetched, in the table, of a queue that runs (not while the
  // batch is being replaced).
  assign pf_can = hlen != 5'd0 && pf_off < {11'd0, hlen} && pf_hd < size[hq]
                  && enable[hq] && !owner[hq] && !err[hq] && !stopped[hq]
                  && state != S_RING_WAIT;

  // Head prediction. A driver whose free list is LIFO (Linux's split ring puts a freed chain at
  // its head) hands out the chain it got back last, so at queue depth 1 the next head is the
  // head last published on the queue (pred_head). While the walk waits for the ring entry at
  // last_avail, the descriptors at the predicted head are read on a free prefetch entry keyed
  // {cq, last_avail, predicted head}, which the walk uses only if the ring entry names that
  // head: the ring entry and the descriptors then cost one DMA latency, not two. Such a copy is
  // valid for the same reason as any prefetch (the walk is in S_RING* only for a position that
  // avail->idx, or the doorbell's under NOTIFICATION_DATA, showed available before the read
  // left, so the chain there was final); a wrong guess costs a read and is dropped when the
  // position is taken.
  logic [NQ-1:0][15:0] pred_head;
  logic [NQ-1:0]       pred_ok;
  logic                spec_sent;          // the guess for this pick was read
  logic                spec_can;
  logic [15:0]         spec_room;
  logic [2:0]          spec_len;
  assign spec_room = c_size - pred_head[cq];
  assign spec_len = spec_room >= 16'(DPF) ? 3'(DPF) : spec_room[2:0];
  assign spec_can = !spec_sent && pred_ok[cq] && pred_head[cq] < c_size && pf_any
                    && (state == S_RING_REQ || state == S_RING_WAIT || (state == S_RING && !hhit));

  // The head of the batch to prefetch next was guessed right already (the guess's entry has it).
  logic pf_dup;
  always_comb begin
    pf_dup = 1'b0;
    for (int e = 0; e < NPF; e++) begin
      if ((pf_busy[e] && !pf_stale[e] || pf_ok[e]) && pf_q[e] == hq && pf_pos[e] == pf_from
          && pf_head[e] == pf_hd) pf_dup = 1'b1;
    end
  end
  always_comb begin
    pf_any = 1'b0;
    pf_sel = '0;
    for (int e = NPF - 1; e >= 0; e--) begin
      if (!pf_busy[e] && !pf_ok[e]) begin
        pf_any = 1'b1;
        pf_sel = PFW'(e);
      end
    end
  end
  always_comb begin
    pf_rd_valid = '0;
    if (spec_can || (pf_can && !pf_dup && pf_any)) pf_rd_valid[pf_sel] = 1'b1;
    for (int e = 0; e < NPF; e++) begin
      pf_rd_addr[e] = spec_can ? c_desc + {44'd0, pred_head[cq], 4'd0}
                               : {desc_hi[hq], desc_lo[hq]} + {44'd0, pf_hd, 4'd0};
      pf_rd_len[e] = {9'd0, spec_can ? spec_len : pf_len, 4'd0};
    end
  end
  // The walk's first descriptor of the chain at last_avail: a prefetched copy (pf_hit), or one
  // still on its way (pf_wait: the walk waits for it instead of reading the same again).
  logic           pf_first, pf_hit, pf_wait;
  logic [PFW-1:0] pf_use;
  assign pf_first = !in_ind && walked == 16'd0 && idx == head;
  always_comb begin
    pf_hit = 1'b0;
    pf_wait = 1'b0;
    pf_use = '0;
    for (int e = 0; e < NPF; e++) begin
      if (pf_first && pf_q[e] == cq && pf_pos[e] == last_avail && pf_head[e] == head) begin
        if (pf_ok[e] && !pf_err[e]) begin
          pf_hit = 1'b1;
          pf_use = PFW'(e);
        end
        if (pf_busy[e] && !pf_stale[e]) pf_wait = 1'b1;
      end
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Round-robin pick among queues with work.
  logic [NQ-1:0] runnable;
  logic          pick_valid;
  logic [QW-1:0] pick, rr;
  assign runnable = (tag_free && dslot_free ? pending & enable & ~owner & ~err : '0);
  always_comb begin
    pick_valid = 1'b0;
    pick = '0;
    // Only looked at when idle (and only when some queue has work).
    if (state == S_IDLE && |runnable) begin
      for (int k = 1; k <= NQ; k++) begin
        if (!pick_valid && runnable[rr + QW'(k)]) begin
          pick_valid = 1'b1;
          pick = rr + QW'(k);
        end
      end
    end
  end

  // ---------------------------------------------------------------------------------------------
  // DMA requests, from the state.
  logic [15:0] ring_slot, used_slot;
  assign ring_slot = last_avail & c_mask;
  assign used_slot = used_idx & c_mask;

  always_comb begin
    rd_valid = 1'b0;
    rd_addr = '0;
    rd_len = 16'd2;
    unique case (state)
      S_AIDX_REQ: begin
        rd_valid = 1'b1;
        rd_addr = c_avail + 64'd2;
      end
      S_RING_REQ: begin
        rd_valid = 1'b1;
        rd_addr = c_avail + 64'd4 + {47'd0, ring_slot, 1'b0};
        rd_len = {11'd0, ring_batch, 1'b0};
      end
      S_DESC_REQ: begin
        rd_valid = !dc_hit && !pf_hit && !pf_wait;
        rd_addr = (in_ind ? ind_base : c_desc) + {44'd0, idx, 4'd0};
        rd_len = {9'd0, dpf_n, 4'd0};
      end
      S_CPL_REQ: begin
        rd_valid = 1'b1;
        rd_addr = cpl_base + {28'd0, cpl_cons & cpl_mask, 4'd0};
        rd_len = 16'(fv_regs_pkg::CPL_ENTRY_BYTES);
      end
      default: ;
    endcase
  end

  always_comb begin
    wr_valid = 1'b0;
    wr_addr = '0;
    wr_len = 16'd2;
    wr_data = '0;
    unique case (state)
      S_REC_REQ: begin
        wr_valid = 1'b1;
        wr_addr = log_base + {46'd0, req_pos & c_mask, 2'd0};
        wr_len = 16'd4;
        wr_data[31:0] = {used_idx + 16'd1, req_pos};
      end
      S_ELEM_REQ: begin
        wr_valid = 1'b1;
        wr_addr = c_used + 64'd4 + {45'd0, used_slot, 3'd0};
        wr_len = 16'd8;
        wr_data[63:0] = {pub_len, 16'd0, head};
      end
      S_UIDX_REQ: begin
        wr_valid = 1'b1;
        wr_addr = c_used + 64'd2;
        wr_data[15:0] = used_idx + 16'd1;
      end
      S_AEVT_REQ: begin
        // avail_event after the used ring: tell the driver which avail index to kick at.
        wr_valid = 1'b1;
        wr_addr = c_used + 64'd4 + {45'd0, c_size, 3'd0};
        wr_data[15:0] = last_avail;
      end
      default: ;
    endcase
  end

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

  // The completion entry being read.
  fv_regs_pkg::cpl_entry_t cpl;
  assign cpl = rdata[fv_regs_pkg::CPL_ENTRY_BYTES*8-1:0];
  logic cpl_ok;
  assign cpl_ok = cpl.tag < 32'(PUNT_TAGS) && tag_valid[cpl.tag[PW-1:0]]
                  && cpl.qid < 16'(NQ) && tag_q[cpl.tag[PW-1:0]] == cpl.qid[QW-1:0]
                  && tag_head[cpl.tag[PW-1:0]] == cpl.head;

  assign irq_valid = state == S_IRQ;
  assign irq_vector = c_vec;
  assign cur_queue = cq;

  // ---------------------------------------------------------------------------------------------
  // Queue status.
  logic busy, holds_request;
  assign busy = state != S_IDLE;
  // Queues being enabled, and queues disabled with nothing of theirs in hand.
  logic [NQ-1:0] enable_rise, stopped;
  assign enable_rise = enable & ~enable_q;
  assign stopped = ~enable & ~(busy ? NQ'(1) << cq : '0);
  logic mod_scan_fire;
  logic pd_of_mscan;            // a decision of queue mscan is pending
  always_comb begin
    pd_of_mscan = 1'b0;
    for (int e = 0; e < NDEC; e++) if (pd_busy[e] && pd_q[e] == mscan) pd_of_mscan = 1'b1;
  end
  assign mod_scan_fire = mwant[mscan] && $signed(cycle - mdead[mscan]) >= 0 && !pd_of_mscan;
  // A request of the current queue is being fetched and walked (not counted in held yet).
  assign holds_request = state == S_RING || state == S_RING_REQ || state == S_RING_WAIT
                         || state == S_DESC_REQ || state == S_DESC_WAIT || state == S_DESC_USE
                         || state == S_TAKE;
  // Whole-vector operations plus the one queue in hand: no per-queue loop is evaluated every
  // cycle (it dominated the simulator's time).
  always_comb begin
    // Enabled until the request in hand and every request held (slots, punts) drained.
    st_enabled = (enable & ~err) | has_held;
    if (busy) st_enabled[cq] = 1'b1;
    if (|pd_busy) begin
      for (int e = 0; e < NDEC; e++) if (pd_busy[e]) st_enabled[pd_q[e]] = 1'b1;
    end
    st_error = err;
    st_cause = cause;
    st_err_info = info;
    st_inflight = held;
    if (holds_request) st_inflight[cq] = held[cq] + 16'd1;
  end

  // ---------------------------------------------------------------------------------------------
  // The state machine.
  logic [15:0] avail_diff;
  assign avail_diff = rdata[15:0] - last_avail;

  logic size_ok;
  assign size_ok = c_size != 16'd0 && (c_size & (c_size - 16'd1)) == 16'd0;

  assign table_limit = in_ind ? ind_n : c_size;

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      cq <= '0;
      rr <= '1;
      pending <= '0;
      err <= '0;
      cause <= '0;
      info <= '0;
      enable_q <= '0;
      shadow_avail <= '0;
      hint <= '0;
      hint_valid <= '0;
      c_desc <= '0;
      c_avail <= '0;
      c_used <= '0;
      req_pos <= '0;
      ds_pos <= '0;
      tag_pos <= '0;
      pub_rec <= 1'b0;
      c_size <= '0;
      c_mask <= '0;
      c_evt <= 1'b0;
      c_ind <= 1'b0;
      c_vec <= NO_VECTOR;
      last_avail <= '0;
      used_idx <= '0;
      avail_idx <= '0;
      aevt_written <= 1'b0;
      idx <= '0;
      in_ind <= 1'b0;
      ind_base <= '0;
      ind_n <= '0;
      walked <= '0;
      seen_write <= 1'b0;
      head <= '0;
      seg_addr <= '0;
      seg_len <= '0;
      seg_write <= '0;
      seg_count <= '0;
      f_cause <= '0;
      f_info <= '0;
      f_fault <= 1'b0;
      cycle <= '0;
      start_cycle <= '0;
      save_we <= '0;
      save_last_avail <= '0;
      save_used_idx <= '0;
      ev_done <= 1'b0;
      ev_bytes <= '0;
      ev_cycles <= '0;
      ev_error <= 1'b0;
      ev_fault <= 1'b0;
      ev_irq <= 1'b0;
      tag_valid <= '0;
      held <= '0;
      ds_busy <= '0;
      ds_done <= '0;
      ds_older <= '0;
      ds_q <= '0;
      ds_head <= '0;
      ds_first_addr <= '0;
      ds_walked <= '0;
      ds_ind <= '0;
      ds_start <= '0;
      ds_err <= '0;
      ds_tmo <= '0;
      ds_punt <= '0;
      ds_written <= '0;
      ds_reason <= '0;
      ds_arg <= '0;
      cs <= '0;
      load_slot <= 1'b0;
      take_punt <= 1'b0;
      has_held <= '0;
      tag_q <= '0;
      tag_head <= '0;
      pub_len <= '0;
      pub_no_irq <= 1'b0;
      cpl_cons <= '0;
      cpl_bad <= 1'b0;
      walked_bytes <= '0;
      chain_bytes <= '0;
      first_addr <= '0;
      p_reason <= '0;
      p_arg <= '0;
      mwant <= '0;
      mcount <= '0;
      mdead <= '0;
      mscan <= '0;
      mod_fire <= '0;
      dcache <= '0;
      dc_base <= '0;
      dc_n <= '0;
      dc_want <= '0;
      dbeat <= '0;
      wseq_iss <= '0;
      wseq_ack <= '0;
      pub_seq <= '0;
      aevt_seq <= '0;
      pub_uerr <= 1'b0;
      pd_busy <= '0;
      pd_issued <= '0;
      pd_got <= '0;
      pd_err <= '0;
      pd_uerr <= '0;
      pd_evt <= '0;
      pd_no_irq <= '0;
      pd_rec <= '0;
      pd_val <= '0;
      pd_vec <= {NDEC{NO_VECTOR}};
      pd_old <= '0;
      pd_head <= '0;
      pd_tail <= '0;
      pd_seq <= '0;
      pd_q <= '0;
      pd_addr <= '0;
      pd_used <= '0;
      pd_avail <= '0;
      hbuf <= '0;
      hlen <= '0;
      hbase <= '0;
      hq <= '0;
      hcons <= '0;
      hq_avail <= '0;
      ra_busy <= 1'b0;
      ra_stale <= 1'b0;
      ra_refused <= 1'b0;
      ra_pos <= '0;
      ra_n <= '0;
      ra_beat <= '0;
      ra_data <= '0;
      pf_busy <= '0;
      pf_ok <= '0;
      pf_stale <= '0;
      pf_err <= '0;
      pf_q <= '0;
      pf_pos <= '0;
      pf_head <= '0;
      pf_n <= '0;
      pf_beat <= '0;
      pf_data <= '0;
      pf_from <= '0;
      pred_head <= '0;
      pred_ok <= '0;
      spec_sent <= 1'b0;
    end else begin
      cycle <= cycle + 32'd1;
      // Moderation timer: one queue per cycle, not the one a decision is pending for.
      mod_fire <= '0;
      mscan <= mscan + QW'(1);
      if (mod_scan_fire) begin
        mod_fire[mscan] <= 1'b1;
        mcount[mscan] <= '0;
      end
      // Fired, or disabled: a disabled queue owes nothing.
      mwant <= mwant & enable & ~(mod_scan_fire ? NQ'(1) << mscan : '0);
      cpl_bad <= 1'b0;
      // Device-engine results, kept until the state machine takes them.
      if (|dev_done) begin
        for (int k = 0; k < NSLOT; k++) begin
          if (dev_done[k]) begin
            ds_done[k] <= 1'b1;
            ds_err[k] <= dev_error[k] || dev_timeout[k];
            ds_tmo[k] <= dev_timeout[k];
            ds_punt[k] <= dev_punt[k];
            ds_written[k] <= dev_written[k];
            ds_reason[k] <= dev_punt_reason[k];
            ds_arg[k] <= dev_punt_arg[k];
          end
        end
      end
      // Writes issued and acknowledged; refusals of the used-ring writes being published and
      // of those of the pending decision.
      if (wr_valid && wr_ready) wseq_iss <= wseq_iss + 16'd1;
      if (wc_valid) wseq_ack <= wseq_ack + 16'd1;
      if (ack_err_pub) pub_uerr <= 1'b1;
      pd_uerr <= pd_uerr | ack_err_pd;
      // The pending decisions' reads.
      pd_issued <= pd_issued | (ir_rd_valid & ir_rd_ready);
      if (|ir_rc_valid) begin
        for (int e = 0; e < NDEC; e++) begin
          if (ir_rc_valid[e]) begin
            pd_got[e] <= 1'b1;
            pd_val[e] <= ir_rc_data;
            pd_err[e] <= ir_rc_error;
          end
        end
      end
      save_we <= '0;
      ev_done <= 1'b0;
      ev_error <= 1'b0;
      ev_fault <= 1'b0;
      ev_irq <= 1'b0;

      // Doorbells and newly enabled queues have work to look at. A queue keeps its error while
      // it is disabled (an error of a request that drained after the disable must still be
      // seen by the driver once the handshake is done) and forgets it when enabled again.
      // Whole-vector updates; the per-queue loops run only on a doorbell or an enable edge
      // (most queues are idle or disabled, and a loop over all of them every cycle dominated
      // the simulator's time).
      enable_q <= enable;
      pending <= (pending | doorbell | enable_rise) & ~stopped;
      err <= err & ~enable_rise;
      // NOTIFICATION_DATA: the doorbell names the new avail idx; the next pick of the queue
      // starts from it (S_CHECK believes it only within a ring of what was consumed).
      hint_valid <= (hint_valid | (doorbell & notify_data)) & ~stopped;
      if (|doorbell) begin
        for (int q = 0; q < NQ; q++) if (doorbell[q] && notify_data[q]) hint[q] <= doorbell_idx[q];
      end
      // A queue (re-)enabled starts from its saved state: forget the avail index seen before
      // (the driver may have restored other state or rings while it was disabled).
      if (|enable_rise) begin
        for (int q = 0; q < NQ; q++) if (enable_rise[q]) shadow_avail[q] <= saved_last_avail[q];
      end
      // ... and the heads fetched.
      // The read-ahead issued and landed (before the state machine, whose window replacement
      // in S_RING_WAIT wins).
      if (ra_rd_valid && ra_rd_ready) begin
        ra_busy <= 1'b1;
        ra_stale <= 1'b0;
        ra_pos <= hend;
        ra_n <= ra_want;
        ra_beat <= '0;
      end
      if (ra_rc_valid) begin
        ra_data <= ra_rdata;
        ra_beat <= ra_beat + 2'd1;
        if (rc_last) begin
          ra_busy <= 1'b0;
          if (!ra_stale && rc_error) ra_refused <= 1'b1;
          if (!ra_stale && !rc_error && ra_pos == hend) begin
            for (int i = 0; i < 8; i++) begin
              if (4'(i) < ra_n) hbuf[4'(ra_pos[3:0] + 4'(i))] <= ra_rdata[i*16 +: 16];
            end
            // The window keeps its last 16 entries (those dropped were taken).
            if ({1'b0, hlen} + {2'd0, ra_n} > 6'd16) begin
              hbase <= hend + {12'd0, ra_n} - 16'd16;
              hlen <= 5'd16;
            end else begin
              hlen <= hlen + {1'b0, ra_n};
            end
          end
        end
      end
      if (stopped[hq]) begin
        hlen <= '0;
        ra_stale <= ra_stale | ra_busy;
      end
      // ... and the descriptors prefetched for it, and the head guessed.
      for (int e = 0; e < NPF; e++) begin
        if (stopped[pf_q[e]]) begin
          pf_ok[e] <= 1'b0;
          if (pf_busy[e]) pf_stale[e] <= 1'b1;
        end
      end
      pred_ok <= pred_ok & ~stopped;
      // Prefetches issued and landed; a head guessed right is not read again.
      if (pf_can && pf_dup && !spec_can) pf_from <= pf_from + 16'd1;
      if (|(pf_rd_valid & pf_rd_ready)) begin
        pf_busy[pf_sel] <= 1'b1;
        pf_stale[pf_sel] <= 1'b0;
        pf_beat[pf_sel] <= '0;
        if (spec_can) begin
          pf_q[pf_sel] <= cq;
          pf_pos[pf_sel] <= last_avail;
          pf_head[pf_sel] <= pred_head[cq];
          pf_n[pf_sel] <= spec_len;
          spec_sent <= 1'b1;
        end else begin
          pf_q[pf_sel] <= hq;
          pf_pos[pf_sel] <= pf_from;
          pf_head[pf_sel] <= pf_hd;
          pf_n[pf_sel] <= pf_len;
          pf_from <= pf_from + 16'd1;
        end
      end
      if (|pf_rc_valid) begin
        for (int e = 0; e < NPF; e++) begin
          if (pf_rc_valid[e]) begin
            for (int k = 0; k < DBEATS; k++) begin
              if (pf_beat[e] == 4'(k)) pf_data[e][k*DW +: DW] <= rc_data;
            end
            pf_beat[e] <= pf_beat[e] + 4'd1;
            if (rc_last) begin
              pf_busy[e] <= 1'b0;
              pf_ok[e] <= !pf_stale[e];
              pf_err[e] <= rc_error;
            end
          end
        end
      end

      unique case (state)
        S_IDLE: begin
          if (pd_ready) begin
            // The oldest publish's interrupt decision (taken even while !run).
            cq <= pd_q[pd_head];
            c_vec <= dh_vec;
            state <= S_DECIDE;
          end else if (|ds_ready && !pd_full) begin
            // A slot finished (taken even while !run: work in flight drains).
            cs <= ready_dslot;
            cq <= ds_q[ready_dslot];
            load_slot <= 1'b1;
            state <= S_LOAD;
          end else if (run && cpl_pending && !pd_full) begin
            state <= S_CPL_REQ;
          end else if (run && pick_valid) begin
            cq <= pick;
            rr <= pick;
            pending[pick] <= 1'b0;
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
            avail_idx <= hint_valid[pick] ? hint[pick] : shadow_avail[pick];
            hint_valid[pick] <= 1'b0;
            spec_sent <= 1'b0;
            if (pick == hq && hint_valid[pick]) hq_avail <= hint[pick];
            aevt_written <= 1'b0;
            state <= S_CHECK;
          end
        end

        S_CHECK: begin
          if (!size_ok || c_size > 16'd32768 || c_desc[3:0] != 4'd0 || c_avail[0] || c_used[1:0] != 2'd0) begin
            f_cause <= fv_regs_pkg::QUEUE_ERROR_BAD_CONFIG;
            f_info <= {16'd0, c_size};
            f_fault <= 1'b0;
            state <= S_FAIL;
          end else if (avail_idx != last_avail && avail_idx - last_avail <= c_size) begin
            state <= S_RING;             // entries known from an earlier read or the doorbell
          end else begin
            state <= S_AIDX_REQ;
          end
        end

        S_AIDX_REQ: if (rd_ready) state <= S_AIDX_WAIT;
        S_AIDX_WAIT: begin
          if (rc_valid && rc_last) begin
            if (rc_error) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
              f_info <= c_avail[31:0] + 32'd2;
              f_fault <= 1'b1;
              state <= S_FAIL;
            end else if (avail_diff > c_size) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_AVAIL_JUMP;
              f_info <= {rdata[15:0], last_avail};
              f_fault <= 1'b0;
              state <= S_FAIL;
            end else begin
              avail_idx <= rdata[15:0];
              shadow_avail[cq] <= rdata[15:0];
              if (cq == hq) hq_avail <= rdata[15:0];
              if (avail_diff != 16'd0) begin
                state <= S_RING;
              end else if (c_evt && !aevt_written) begin
                state <= S_AEVT_REQ;     // publish avail_event, then look once more
              end else begin
                state <= S_IDLE;
              end
            end
          end
        end

        S_AEVT_REQ: begin
          if (wr_ready) begin
            aevt_seq <= wseq_iss;
            state <= S_AEVT_WAIT;
          end
        end
        S_AEVT_WAIT: begin
          // Its acknowledgement (earlier writes' come first).
          if (wc_valid && wseq_ack == aevt_seq) begin
            aevt_written <= 1'b1;
            if (wc_error) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
              f_info <= c_used[31:0] + 32'd4 + {13'd0, c_size, 3'd0};
              f_fault <= 1'b1;
              state <= S_FAIL;
            end else begin
              state <= S_AIDX_REQ;
            end
          end
        end

        S_RING: begin
          start_cycle <= cycle;
          if (hhit) begin
            // The head was fetched with an earlier batch.
            if (hbuf[last_avail[3:0]] >= c_size) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_BAD_INDEX;
              f_info <= {16'd0, hbuf[last_avail[3:0]]};
              f_fault <= 1'b0;
              state <= S_FAIL;
            end else begin
              if ($signed(pf_from - last_avail) <= 0) pf_from <= last_avail + 16'd1;
              head <= hbuf[last_avail[3:0]];
              idx <= hbuf[last_avail[3:0]];
              dc_n <= 3'd0;
              in_ind <= 1'b0;
              walked <= '0;
              seen_write <= 1'b0;
              seg_count <= '0;
              walked_bytes <= '0;
              chain_bytes <= '0;
              state <= S_DESC_REQ;
            end
          end else if (hq == cq && ((ra_busy && !ra_stale && ra_pos == last_avail)
                                    || (ra_rd_valid && hend == last_avail))) begin
            // The read-ahead of this entry is on its way (or leaves now).
          end else begin
            state <= S_RING_REQ;
          end
        end
        S_RING_REQ: if (rd_ready) state <= S_RING_WAIT;
        S_RING_WAIT: begin
          if (rc_valid && rc_last) begin
            if (rc_error) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
              f_info <= c_avail[31:0] + 32'd4 + {15'd0, ring_slot, 1'b0};
              f_fault <= 1'b1;
              state <= S_FAIL;
            end else begin
              for (int i = 0; i < 8; i++) begin
                if (4'(i) < ring_batch) hbuf[4'(last_avail[3:0] + 4'(i))] <= rdata[i*16 +: 16];
              end
              hlen <= {1'b0, ring_batch};
              hbase <= last_avail;
              hq <= cq;
              hcons <= last_avail;
              hq_avail <= avail_idx;
              ra_stale <= ra_stale | ra_busy;
              ra_refused <= 1'b0;
              // The walk reads this chain's descriptors, unless the guess for it was right; the
              // ones after it are prefetched.
              for (int e = 0; e < NPF; e++) begin
                if (pf_q[e] != cq || pf_pos[e] != last_avail) begin
                  pf_ok[e] <= 1'b0;
                  if (pf_busy[e]) pf_stale[e] <= 1'b1;
                end
              end
              pf_from <= last_avail + 16'd1;
              state <= S_RING;
            end
          end
        end

        S_DESC_REQ: begin
          if (dc_hit) begin
            state <= S_DESC_USE;
          end else if (pf_hit) begin
            dcache <= pf_data[pf_use];
            dc_base <= idx;
            dc_n <= pf_n[pf_use];
            pf_ok[pf_use] <= 1'b0;
            state <= S_DESC_USE;
          end else if (pf_wait) begin
            // The prefetch of these descriptors is on its way.
          end else if (rd_ready) begin
            dc_base <= idx;
            dc_n <= 3'd0;
            dc_want <= dpf_n;
            dbeat <= '0;
            state <= S_DESC_WAIT;
          end
        end
        S_DESC_WAIT: begin
          if (rc_valid) begin
            for (int k = 0; k < DBEATS; k++) begin
              if (dbeat == 4'(k)) dcache[k*DW +: DW] <= rc_data;
            end
            dbeat <= dbeat + 4'd1;
            if (rc_last) begin
              if (rc_error) begin
                f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
                f_info <= (in_ind ? ind_base[31:0] : c_desc[31:0]) + {12'd0, idx, 4'd0};
                f_fault <= 1'b1;
                state <= S_FAIL;
              end else begin
                dc_n <= dc_want;
                state <= S_DESC_USE;
              end
            end
          end
        end
        S_DESC_USE: begin
          begin
            walked <= walked + 16'd1;
            f_fault <= 1'b0;
            if (walked >= table_limit) begin
              // More descriptors than the table holds: the chain loops.
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DESC_LOOP;
              f_info <= {16'd0, idx};
              state <= S_FAIL;
            end else if (d_flags[F_INDIRECT]) begin
              if (!c_ind || in_ind || d_flags[F_NEXT] || d_len[3:0] != 4'd0 || d_len == 32'd0
                  || d_len > 32'h8_0000 || d_addr[3:0] != 4'd0) begin
                f_cause <= fv_regs_pkg::QUEUE_ERROR_BAD_INDIRECT;
                f_info <= {16'd0, idx};
                state <= S_FAIL;
              end else if (!d_in_window) begin
                f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW;
                f_info <= {16'd0, idx};
                state <= S_FAIL;
              end else begin
                in_ind <= 1'b1;
                dc_n <= 3'd0;
                ind_base <= d_addr;
                ind_n <= d_len[19:4];
                idx <= '0;
                walked <= '0;
                state <= S_DESC_REQ;
              end
            end else if (d_len == 32'd0) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_ZERO_LEN;
              f_info <= {16'd0, idx};
              state <= S_FAIL;
            end else if (seen_write && !d_flags[F_WRITE]) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_BAD_DIRECTION;
              f_info <= {16'd0, idx};
              state <= S_FAIL;
            end else if (seg_count == SW'(MAX_SEGS)) begin
              // More descriptors than the segment table holds: the CPU serves this one.
              p_reason <= 8'(fv_regs_pkg::PUNT_REASON_CHAIN_TOO_LONG);
              p_arg <= '0;
              take_punt <= 1'b1;
              state <= S_TAKE;
            end else if (d_flags[F_NEXT] && d_next >= table_limit) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_BAD_INDEX;
              f_info <= {16'd0, d_next};
              state <= S_FAIL;
            end else if (!d_in_window) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW;
              f_info <= {16'd0, idx};
              state <= S_FAIL;
            end else if (chain_next > MAX_CHAIN) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_CHAIN_TOO_LONG;
              f_info <= {16'd0, idx};
              state <= S_FAIL;
            end else begin
              seg_addr[seg_count[SW-2:0]] <= d_addr;
              seg_len[seg_count[SW-2:0]] <= d_len;
              seg_write[seg_count[SW-2:0]] <= d_flags[F_WRITE];
              seg_count <= seg_count + SW'(1);
              chain_bytes <= chain_next;
              if (seg_count == '0) first_addr <= d_addr;
              if (!d_flags[F_WRITE]) walked_bytes <= walked_bytes + d_len;
              seen_write <= seen_write | d_flags[F_WRITE];
              if (d_flags[F_NEXT]) begin
                idx <= d_next;
                state <= S_DESC_REQ;
              end else begin
                take_punt <= 1'b0;
                state <= S_TAKE;
              end
            end
          end
        end

        // The chain is walked: consume its avail entry (the request is held until its result
        // is published), then hand it to a slot or to the CPU. The saved state reaches the CSR
        // block a cycle later, before the next pick reads it (S_DEV and S_PUNT take a cycle at
        // least).
        S_TAKE: begin
          req_pos <= last_avail;
          for (int e = 0; e < NPF; e++) begin
            if (pf_q[e] == cq && pf_pos[e] == last_avail) begin
              pf_ok[e] <= 1'b0;
              if (pf_busy[e]) pf_stale[e] <= 1'b1;
            end
          end
          held[cq] <= held[cq] + 16'd1;
          has_held[cq] <= 1'b1;
          last_avail <= last_avail + 16'd1;
          if (cq == hq) hcons <= last_avail + 16'd1;
          save_we[cq] <= 1'b1;
          save_last_avail <= last_avail + 16'd1;
          save_used_idx <= used_idx;
          pending[cq] <= 1'b1;
          state <= take_punt ? S_PUNT : S_DEV;
        end
        // A free slot takes the chain (the pick made sure there is one); its result is published
        // when the slot finishes.
        S_DEV: begin
          ds_busy[free_dslot] <= 1'b1;
          ds_older[free_dslot] <= ds_busy;
          ds_q[free_dslot] <= cq;
          ds_head[free_dslot] <= head;
          ds_pos[free_dslot] <= req_pos;
          ds_first_addr[free_dslot] <= first_addr;
          ds_walked[free_dslot] <= walked_bytes;
          ds_ind[free_dslot] <= in_ind;
          ds_start[free_dslot] <= start_cycle;
          state <= S_IDLE;
        end

        // A result to publish (a slot's, or a CPU completion read in S_CPL_WAIT): the queue's
        // context as at a pick; then publish, punt or fail. A broken queue gets no more used
        // entries.
        S_LOAD: begin
          c_avail <= {avail_hi[cq], avail_lo[cq]};
          c_used <= {used_hi[cq], used_lo[cq]};
          pub_rec <= 1'b0;
          c_size <= size[cq];
          c_mask <= size[cq] - 16'd1;
          c_evt <= event_idx[cq];
          c_vec <= msix_vector[cq];
          last_avail <= saved_last_avail[cq];
          used_idx <= saved_used_idx[cq];
          if (!load_slot) begin
            state <= err[cq] ? S_IDLE : (has_log ? S_REC_REQ : S_ELEM_REQ);
          end else begin
            ds_busy[cs] <= 1'b0;
            ds_done[cs] <= 1'b0;
            for (int k = 0; k < NSLOT; k++) ds_older[k][cs] <= 1'b0;
            head <= ds_head[cs];
            req_pos <= ds_pos[cs];
            first_addr <= ds_first_addr[cs];
            walked_bytes <= ds_walked[cs];
            in_ind <= ds_ind[cs];
            start_cycle <= ds_start[cs];
            pub_len <= ds_written[cs];
            pub_no_irq <= 1'b0;
            if (err[cq] || ds_err[cs] || !ds_punt[cs]) begin
              held[cq] <= held[cq] - 16'd1;
              has_held[cq] <= held[cq] != 16'd1;
            end
            if (err[cq]) begin
              state <= S_IDLE;
            end else if (ds_tmo[cs]) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_ENGINE_TIMEOUT;
              f_info <= {16'd0, ds_head[cs]};
              f_fault <= 1'b0;
              state <= S_FAIL;
            end else if (ds_err[cs]) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
              f_info <= '0;
              f_fault <= 1'b1;
              state <= S_FAIL;
            end else if (ds_punt[cs]) begin
              // The device engine hands this request to the CPU (it stays held, now as a punt).
              p_reason <= ds_reason[cs];
              p_arg <= ds_arg[cs];
              state <= S_PUNT;
            end else begin
              state <= has_log ? S_REC_REQ : S_ELEM_REQ;
            end
          end
        end

        // A queue with a done log: the request's record first (see the DONE_LOG registers).
        // Posted writes land in issue order, so the record is in memory before the used element
        // and used->idx it announces; a refused record fails the queue like a refused used write.
        S_REC_REQ: begin
          if (wr_ready) begin
            // The used element is the engine's next write.
            pub_rec <= 1'b1;
            pub_seq <= wseq_iss + 16'd1;
            pub_uerr <= 1'b0;
            state <= S_ELEM_REQ;
          end
        end

        // The used element and used->idx are written back to back, and the used_event /
        // avail->flags read follows them (a read does not pass earlier posted writes) on the
        // decision's own master; the acknowledgements are collected before the decision takes
        // effect (S_DECIDE), so an MSI still follows the used->idx write it announces, and a
        // faulted write still fails the queue.
        S_ELEM_REQ: begin
          if (wr_ready) begin
            pred_head[cq] <= head;
            pred_ok[cq] <= 1'b1;
            if (!pub_rec) begin
              pub_seq <= wseq_iss;
              pub_uerr <= 1'b0;
            end
            state <= S_UIDX_REQ;
          end
        end
        S_UIDX_REQ: begin
          if (wr_ready) begin
            // Published (visible once acknowledged). The request consumed its avail entry when
            // it went to its slot or to the CPU.
            used_idx <= used_idx + 16'd1;
            save_we[cq] <= 1'b1;
            save_last_avail <= last_avail;
            save_used_idx <= used_idx + 16'd1;
            ev_done <= 1'b1;
            ev_bytes <= pub_len;
            ev_cycles <= cycle - start_cycle;
            state <= S_HANDOFF;
          end
        end
        // Hand the interrupt decision over to a free entry (the publish started only with one
        // free) and go on.
        S_HANDOFF: begin
          pd_busy[pd_tail] <= 1'b1;
          pd_issued[pd_tail] <= 1'b0;
          pd_got[pd_tail] <= 1'b0;
          pd_uerr[pd_tail] <= pub_uerr || ack_err_pub;
          pd_seq[pd_tail] <= pub_seq;
          pd_q[pd_tail] <= cq;
          pd_vec[pd_tail] <= c_vec;
          pd_old[pd_tail] <= used_idx - 16'd1;
          pd_evt[pd_tail] <= c_evt;
          pd_no_irq[pd_tail] <= pub_no_irq;
          pd_rec[pd_tail] <= pub_rec;
          // EVENT_IDX: used_event after the avail ring; otherwise avail->flags.
          pd_addr[pd_tail] <= c_evt ? c_avail + 64'd4 + {47'd0, c_size, 1'b0} : c_avail;
          pd_used[pd_tail] <= c_used[31:0];
          pd_avail[pd_tail] <= c_avail[31:0];
          pd_tail <= pd_tail + DCW'(1);
          state <= S_IDLE;
        end

        // The decision (cq and c_vec are the decision's queue and vector).
        S_DECIDE: begin
          pd_busy[pd_head] <= 1'b0;
          pd_head <= pd_head + DCW'(1);
          if (dh_uerr || dh_err) begin
            f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
            f_info <= dh_uerr ? dh_used : dh_avail;
            f_fault <= 1'b1;
            state <= S_FAIL;
          end else if (mod_now && !mod_defer) begin
            mwant[cq] <= 1'b0;
            mcount[cq] <= '0;
            state <= S_IRQ;
          end else if (mod_now) begin
            // Deferred: counted, with a deadline from the first deferral.
            mwant[cq] <= 1'b1;
            mcount[cq] <= mcount[cq] + 8'd1;
            if (!mwant[cq]) mdead[cq] <= cycle + {8'd0, mod_timeout[cq]};
            state <= S_IDLE;
            pending[cq] <= 1'b1;
          end else begin
            // Look at avail->idx again before the queue may sleep (entries added without a
            // kick, EVENT_IDX's avail_event): on the next pick, after the other queues.
            state <= S_IDLE;
            pending[cq] <= 1'b1;
          end
        end

        S_IRQ: begin
          if (irq_ready) begin
            ev_irq <= 1'b1;
            state <= S_IDLE;
            pending[cq] <= 1'b1;
          end
        end

        // The request (consumed and held already) goes out on the punt ring with a tag.
        S_PUNT: begin
          if (punt_ready) begin
            tag_valid[free_tag] <= 1'b1;
            tag_q[free_tag] <= cq;
            tag_head[free_tag] <= head;
            tag_pos[free_tag] <= req_pos;
            state <= S_IDLE;
          end
        end

        S_CPL_REQ: if (rd_ready) state <= S_CPL_WAIT;
        S_CPL_WAIT: begin
          if (rc_valid && rc_last) begin
            cpl_cons <= cpl_cons + 32'd1;
            if (rc_error) begin
              // The completion ring is outside the IOMMU map: drop the entry (the fault is
              // reported in GLOBAL.DMA_FAULT_*).
              state <= S_IDLE;
            end else if (!cpl_ok) begin
              cpl_bad <= 1'b1;
              if (cpl.qid < 16'(NQ)) begin
                cq <= cpl.qid[QW-1:0];
                f_cause <= fv_regs_pkg::QUEUE_ERROR_BAD_COMPLETION;
                f_info <= cpl.tag;
                f_fault <= 1'b0;
                state <= S_FAIL;
              end else begin
                state <= S_IDLE;
              end
            end else if (cpl.flags[1]) begin
              // QUEUE_ERROR: the CPU's walk found the chain malformed; the queue fails as if
              // this walk had found it, and nothing is published.
              tag_valid[cpl.tag[PW-1:0]] <= 1'b0;
              held[cpl.qid[QW-1:0]] <= held[cpl.qid[QW-1:0]] - 16'd1;
              has_held[cpl.qid[QW-1:0]] <= held[cpl.qid[QW-1:0]] != 16'd1;
              cq <= cpl.qid[QW-1:0];
              f_cause <= cpl.status[3:0];
              f_info <= cpl.len;
              f_fault <= 1'b0;
              state <= S_FAIL;
            end else begin
              tag_valid[cpl.tag[PW-1:0]] <= 1'b0;
              held[cpl.qid[QW-1:0]] <= held[cpl.qid[QW-1:0]] - 16'd1;
              has_held[cpl.qid[QW-1:0]] <= held[cpl.qid[QW-1:0]] != 16'd1;
              cq <= cpl.qid[QW-1:0];
              head <= cpl.head;
              req_pos <= tag_pos[cpl.tag[PW-1:0]];
              pub_len <= cpl.len;
              pub_no_irq <= cpl.flags[0];
              ev_error <= cpl.status != 8'd0;    // the CPU failed the request: count it
              load_slot <= 1'b0;
              state <= S_LOAD;
            end
          end
        end

        S_FAIL: begin
          err[cq] <= 1'b1;
          cause[cq] <= f_cause;
          info[cq] <= f_info;
          ev_error <= 1'b1;
          ev_fault <= f_fault;
          pending[cq] <= 1'b0;
          state <= S_IDLE;
        end

        default: state <= S_IDLE;
      endcase
    end
  end
  logic unused_ok;
  assign unused_ok = &{1'b0, cpl.flags[7:2], cpl.rsvd};
endmodule
