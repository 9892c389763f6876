// Virtqueue stage: interrupt decisions and moderation.
//
// The pending decisions of the last publishes, in publish order (a ring of NDEC entries; tail
// is the next free one, head the oldest): each entry's used_event / avail->flags read is issued
// on a read master of its own right after the publish (handoff), and once that read is back and
// both used-ring writes of the publish are acknowledged (an MSI follows the used->idx write it
// announces), the oldest entry is ready (pd_ready) and the engine takes it (decide). Each publish
// is decided on its own (used_event against its own old used->idx), so decisions in flight need
// not wait for each other; a publish waits only when all NDEC entries are taken (pd_full).
//
// EVENT_IDX: vring_need_event(used_event, new, old) with new = old + 1 holds exactly when
// used_event == old. Otherwise: no VRING_AVAIL_F_NO_INTERRUPT.
//
// Moderation: an interrupt the guest wants may be deferred until MAX_PENDING used entries were
// published since the last one, or TIMEOUT cycles passed (a deferral needs a timeout, so no
// interrupt is ever lost). A scanner looks at one queue per cycle and hands due interrupts to the
// device's interrupt arbiter (mod_fire); they announce used entries whose writes were already
// acknowledged.
//
// The engine's DMA writes are numbered in issue order and acknowledged in that order (wseq_ack:
// the number of the next acknowledgement); a publish is the used element at h_seq and used->idx
// after it, with a done-log record before them when h_rec.
module fv_vq_irq_decide #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int NDEC = 4         // decisions in flight (read masters of their own)
) (
  input  logic clk,
  input  logic rst,
  input  logic [31:0] cycle,     // the engine's cycle count (moderation deadlines)

  // A publish hands over its decision (only while !pd_full).
  input  logic                   handoff,
  input  logic                   h_uerr,    // one of its used-ring writes was refused already
  input  logic [15:0]            h_seq,     // number of its used-element write
  input  logic                   h_rec,     // a done-log record (h_seq - 1) went before
  input  logic [$clog2(NQ)-1:0]  h_q,
  input  logic [15:0]            h_vec,
  input  logic [15:0]            h_old,     // used->idx before the publish
  input  logic                   h_evt,     // EVENT_IDX
  input  logic                   h_no_irq,  // the CPU asked for no interrupt
  input  logic [63:0]            h_addr,    // used_event (EVENT_IDX) or avail->flags
  input  logic [31:0]            h_used,    // fault info: the used ring, the avail ring
  input  logic [31:0]            h_avail,
  output logic                   pd_full,

  // The oldest decision, and taking it.
  output logic                   pd_ready,
  output logic [$clog2(NQ)-1:0]  head_q,
  output logic [15:0]            head_vec,
  input  logic                   decide,
  output logic                   d_fail,    // a used-ring write or the read faulted
  output logic [31:0]            d_info,    // ... at this address
  output logic                   d_irq,     // request the interrupt now
  output logic [NQ-1:0]          q_has_dec, // queues with a decision pending

  // Reads of the decisions.
  output logic [NDEC-1:0]        ir_rd_valid,
  input  logic [NDEC-1:0]        ir_rd_ready,
  output logic [NDEC-1:0][63:0]  ir_rd_addr,
  output logic [NDEC-1:0][15:0]  ir_rd_len,
  input  logic [NDEC-1:0]        ir_rc_valid,
  input  logic [15:0]            ir_rc_data,
  input  logic                   ir_rc_error,
  output logic [NDEC-1:0][$clog2(NQ)-1:0] ir_queue,

  // Write acknowledgements.
  input  logic [15:0]            wseq_ack,
  input  logic                   wc_valid,
  input  logic                   wc_error,

  // Moderation (IRQ_MODERATION) and due interrupts.
  input  logic [NQ-1:0]          enable,
  input  logic [NQ-1:0][7:0]     mod_max_pending,
  input  logic [NQ-1:0][23:0]    mod_timeout,
  output logic [NQ-1:0]          mod_fire
);
  localparam int QW = $clog2(NQ);
  localparam int DCW = NDEC > 1 ? $clog2(NDEC) : 1;
  localparam logic [15:0] NO_VECTOR = 16'(fv_regs_pkg::NO_VECTOR);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_irq_decide: NQ must be a power of two >= 2");
  end
  if (NDEC < 1 || NDEC > 8 || (NDEC & (NDEC - 1)) != 0) begin : g_bad_ndec
    $error("fv_vq_irq_decide: NDEC must be 1, 2, 4 or 8");
  end

  logic [NDEC-1:0]         pd_busy, pd_issued, pd_got, pd_err, pd_uerr, pd_evt, pd_no_irq, pd_rec;
  logic [NDEC-1:0][15:0]   pd_val, pd_vec, pd_old, pd_seq;
  logic [NDEC-1:0][QW-1:0] pd_q;
  logic [NDEC-1:0][63:0]   pd_addr;
  logic [NDEC-1:0][31:0]   pd_used, pd_avail;
  logic [DCW-1:0]          pd_head, pd_tail;
  logic [NDEC-1:0]         ack_err_pd;
  logic                    evt_need;

  assign pd_ready = pd_busy[pd_head] && pd_got[pd_head]
                    && $signed(wseq_ack - pd_seq[pd_head] - 16'd2) >= 0;
  assign pd_full = pd_busy[pd_tail];
  assign head_q = pd_q[pd_head];
  assign head_vec = pd_vec[pd_head];
  always_comb begin
    ack_err_pd = '0;
    if (wc_valid && wc_error) begin
      for (int e = 0; e < NDEC; e++) begin
        ack_err_pd[e] = pd_busy[e] && (wseq_ack == pd_seq[e] || wseq_ack == pd_seq[e] + 16'd1
                                       || (pd_rec[e] && wseq_ack == pd_seq[e] - 16'd1));
      end
    end
  end
  always_comb begin
    q_has_dec = '0;
    for (int e = 0; e < NDEC; e++) if (pd_busy[e]) q_has_dec[pd_q[e]] = 1'b1;
  end
  assign ir_rd_valid = pd_busy & ~pd_issued;
  assign ir_rd_addr = pd_addr;
  assign ir_rd_len = {NDEC{16'd2}};
  assign ir_queue = pd_q;

  // The oldest decision.
  assign evt_need = pd_vec[pd_head] != NO_VECTOR && !pd_no_irq[pd_head]
                    && (pd_evt[pd_head] ? pd_val[pd_head] == pd_old[pd_head] : !pd_val[pd_head][0]);
  logic [NQ-1:0]       mwant;
  logic [NQ-1:0][7:0]  mcount;
  logic [NQ-1:0][31:0] mdead;
  logic [QW-1:0]       mscan;
  logic                mod_now, mod_defer, mod_scan_fire;
  assign mod_defer = mod_max_pending[head_q] > 8'd1 && mod_timeout[head_q] != 24'd0
                     && mcount[head_q] + 8'd1 < mod_max_pending[head_q];
  assign mod_now = evt_need || mwant[head_q];
  assign d_fail = pd_uerr[pd_head] || pd_err[pd_head];
  assign d_info = pd_uerr[pd_head] ? pd_used[pd_head] : pd_avail[pd_head];
  assign d_irq = !d_fail && mod_now && !mod_defer;
  // The scanner skips a queue with a decision pending (that decision may still want it).
  assign mod_scan_fire = mwant[mscan] && $signed(cycle - mdead[mscan]) >= 0 && !q_has_dec[mscan];

  always_ff @(posedge clk) begin
    if (rst) begin
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
      mwant <= '0;
      mcount <= '0;
      mdead <= '0;
      mscan <= '0;
      mod_fire <= '0;
    end else begin
      // Moderation timer: one queue per cycle.
      mod_fire <= '0;
      mscan <= mscan + QW'(1);
      if (mod_scan_fire) begin
        mod_fire[mscan] <= 1'b1;
        mcount[mscan] <= '0;
      end
      // Fired, or disabled: a disabled queue owes nothing.
      mwant <= mwant & enable & ~(mod_scan_fire ? NQ'(1) << mscan : '0);
      // Refused writes of pending publishes; the reads issued and landed.
      pd_uerr <= pd_uerr | ack_err_pd;
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
      if (handoff) begin
        pd_busy[pd_tail] <= 1'b1;
        pd_issued[pd_tail] <= 1'b0;
        pd_got[pd_tail] <= 1'b0;
        pd_uerr[pd_tail] <= h_uerr;
        pd_seq[pd_tail] <= h_seq;
        pd_q[pd_tail] <= h_q;
        pd_vec[pd_tail] <= h_vec;
        pd_old[pd_tail] <= h_old;
        pd_evt[pd_tail] <= h_evt;
        pd_no_irq[pd_tail] <= h_no_irq;
        pd_rec[pd_tail] <= h_rec;
        pd_addr[pd_tail] <= h_addr;
        pd_used[pd_tail] <= h_used;
        pd_avail[pd_tail] <= h_avail;
        pd_tail <= pd_tail + DCW'(1);
      end
      if (decide) begin
        pd_busy[pd_head] <= 1'b0;
        pd_head <= pd_head + DCW'(1);
        if (!d_fail && mod_now && !mod_defer) begin
          mwant[head_q] <= 1'b0;
          mcount[head_q] <= '0;
        end else if (!d_fail && mod_now) begin
          // Deferred: counted, with a deadline from the first deferral.
          mwant[head_q] <= 1'b1;
          mcount[head_q] <= mcount[head_q] + 8'd1;
          if (!mwant[head_q]) mdead[head_q] <= cycle + {8'd0, mod_timeout[head_q]};
        end
      end
    end
  end
endmodule
