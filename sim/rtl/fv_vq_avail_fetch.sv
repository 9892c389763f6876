// Virtqueue stage: the avail ring. Started at a pick of queue cq (start), it checks the queue's
// configuration, learns how far the driver went (avail->idx, unless the doorbell's index under
// NOTIFICATION_DATA or an earlier read already shows entries), and ends (done, for one cycle)
// with the head at last_avail (AVAIL_HEAD: the walk starts at once), with nothing available
// (AVAIL_NONE; under EVENT_IDX after writing avail_event and looking once more), or with the
// queue failed (AVAIL_FAIL: a bad configuration, an avail index that jumped more than a ring, a
// head outside the table, a refused read or write: cause, info, fault).
//
// Heads are fetched in batches of up to 8 per read (16 bytes) and kept across picks of the same
// queue (win_q) in a window of up to 16 ring entries: avail positions win_base .. win_base +
// win_len - 1, position p in win_heads[p mod 16]. The stage reads a batch itself when the window
// misses; while the walk consumes the window, the next entries are read ahead on a master of
// their own.
//
// Read-ahead: the stage's own batch read costs a DMA latency every 8 requests at best, during
// which slots that finish find no new chain. So up to 8 more entries are read once at most 8 are
// left unconsumed (the 16-entry window never overwrites an entry not yet taken), only up to the
// avail index known for win_q (read from avail->idx, or the doorbell's under NOTIFICATION_DATA),
// which the driver wrote before them, so the entries are final. One read at a time; it is stale
// (dropped when it lands) if the window was replaced or the queue stopped meanwhile. A refused
// read-ahead is not reported and not repeated (until the window is replaced): the stage's own
// read of the same entries reports it, if it gets there.
//
// DMA: the walk's read master (one read at a time; its data merged into 128 bits: rdata), the
// read-ahead's master (completion data, last and error are the walk's master's), and the
// engine's write master for avail_event (writes numbered in issue order: wseq_iss, wseq_ack).
module fv_vq_avail_fetch #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int DW = 128         // DMA data width in bits (64 .. 512)
) (
  input  logic clk,
  input  logic rst,

  // Queue contexts.
  input  logic [NQ-1:0][31:0] avail_lo,
  input  logic [NQ-1:0][31:0] avail_hi,
  input  logic [NQ-1:0][15:0] size,
  input  logic [NQ-1:0]       q_runs,        // enabled, device-owned, no error, not stopping
  input  logic [NQ-1:0]       stopped,       // disabled with nothing in hand: forget its window
  input  logic [NQ-1:0][15:0] hint,          // NOTIFICATION_DATA: the last doorbell's avail idx
  input  logic [NQ-1:0]       hint_valid,

  // A pick: queue start_q, the avail index known for it (start_hint: from its doorbell).
  input  logic                start,
  input  logic [$clog2(NQ)-1:0] start_q,
  input  logic [15:0]         start_avail,
  input  logic                start_hint,
  // The picked queue's context (the engine's, from the cycle after start).
  input  logic [$clog2(NQ)-1:0] cq,
  input  logic [3:0]          c_desc_low,    // the descriptor table's address, bits 3:0
  input  logic [63:0]         c_avail,
  input  logic [63:0]         c_used,
  input  logic [15:0]         c_size,
  input  logic [15:0]         c_mask,
  input  logic                c_evt,         // EVENT_IDX
  input  logic [15:0]         last_avail,
  output logic                done,
  output fv_vq_pkg::avail_result_e result,
  output logic [15:0]         head,          // with AVAIL_HEAD
  output logic [3:0]          f_cause,       // with AVAIL_FAIL
  output logic [31:0]         f_info,
  output logic                f_fault,
  output logic                in_ring,       // looking for the entry at last_avail
  output logic                ring_phase,    // ... or reading it
  output logic                spec_window,   // ... and waiting for it (head prediction)
  output logic                win_load,      // the window is replaced (its read landed)
  output logic                ring_wait,     // the stage's own batch read is in flight
  output logic                avail_seen,    // avail->idx of cq read: avail_val
  output logic [15:0]         avail_val,
  input  logic                take,          // the walk consumed the entry at last_avail

  // The window, for the descriptor prefetch.
  output logic [$clog2(NQ)-1:0] win_q,
  output logic [15:0]         win_base,
  output logic [4:0]          win_len,
  output logic [15:0][15:0]   win_heads,

  // The walk's read master, and the data of its reads merged into 128 bits.
  output logic                rd_valid,
  input  logic                rd_ready,
  output logic [63:0]         rd_addr,
  output logic [15:0]         rd_len,
  input  logic [127:0]        rdata,
  input  logic                rc_valid,
  input  logic [DW-1:0]       rc_data,
  input  logic                rc_last,
  input  logic                rc_error,
  // The read-ahead's read master.
  output logic                ra_rd_valid,
  input  logic                ra_rd_ready,
  output logic [63:0]         ra_rd_addr,
  output logic [15:0]         ra_rd_len,
  input  logic                ra_rc_valid,
  // avail_event on the engine's write master.
  output logic                wr_valid,
  input  logic                wr_ready,
  output logic [63:0]         wr_addr,
  output logic [15:0]         wr_data,
  input  logic [15:0]         wseq_iss,
  input  logic [15:0]         wseq_ack,
  input  logic                wc_valid,
  input  logic                wc_error
);
  localparam int QW = $clog2(NQ);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_avail_fetch: NQ must be a power of two >= 2");
  end
  if (DW < 64 || DW > 512 || (DW & (DW - 1)) != 0) begin : g_bad_dw
    $error("fv_vq_avail_fetch: DW must be 64, 128, 256 or 512");
  end

  typedef enum logic [3:0] {
    A_IDLE, A_CHECK, A_AIDX_REQ, A_AIDX_WAIT, A_AEVT_REQ, A_AEVT_WAIT, A_RING, A_RING_REQ,
    A_RING_WAIT
  } astate_e;
  astate_e astate;
  logic [15:0] avail_idx;            // the avail index known for cq
  logic        aevt_written;         // avail_event written at this pick
  logic [15:0] aevt_seq;             // its write's number

  logic [15:0][15:0] hbuf;
  logic [4:0]        hlen;
  logic [15:0]       hbase;
  logic [QW-1:0]     hq;
  logic [15:0]       hoff, hhead;
  logic              hhit;
  assign hoff = last_avail - hbase;
  assign hhit = hq == cq && hlen != 5'd0 && hoff < {11'd0, hlen};
  assign hhead = hbuf[last_avail[3:0]];
  assign win_q = hq;
  assign win_base = hbase;
  assign win_len = hlen;
  assign win_heads = hbuf;

  // Entries one avail-ring read fetches: at most 8, those known available, none past the ring's
  // end (the stage's batch and the read-ahead alike).
  function automatic logic [3:0] ring_read_len(input logic [15:0] avail, input logic [15:0] wrap);
    ring_read_len = avail < 16'd8 ? avail[3:0] : 4'd8;
    if (wrap < {12'd0, ring_read_len}) ring_read_len = wrap[3:0];
  endfunction
  logic [15:0] ring_slot, batch_avail, batch_wrap, avail_diff;
  logic [3:0]  ring_batch;
  logic        size_ok;
  assign ring_slot = last_avail & c_mask;
  assign batch_avail = avail_idx - last_avail;
  assign batch_wrap = c_size - ring_slot;
  assign ring_batch = ring_read_len(batch_avail, batch_wrap);
  assign avail_diff = rdata[15:0] - last_avail;
  assign size_ok = c_size != 16'd0 && (c_size & (c_size - 16'd1)) == 16'd0;

  logic          ra_busy, ra_stale, ra_refused;
  logic [15:0]   ra_pos;            // avail position of the first entry read
  logic [3:0]    ra_n;              // entries read
  logic [1:0]    ra_beat;
  logic [127:0]  ra_data;
  logic [15:0]   hcons;             // hq's next position to take (the window below it is consumed)
  logic [15:0]   hq_avail;          // avail index known for hq
  logic [15:0]   hend, ra_known, ra_avail, ra_wrap, ra_ahead;
  logic [3:0]    ra_want;
  logic          ra_covers;         // the read-ahead of the entry at last_avail is on its way
  assign hend = hbase + {11'd0, hlen};
  assign ra_known = hint_valid[hq] ? hint[hq] : hq_avail;
  assign ra_avail = ra_known - hend;
  assign ra_wrap = size[hq] - (hend & (size[hq] - 16'd1));
  assign ra_ahead = hend - hcons;
  assign ra_want = ring_read_len(ra_avail, ra_wrap);
  assign ra_rd_valid = hlen != 5'd0 && !ra_busy && !ra_refused && ra_avail != 16'd0
                       && ra_avail <= size[hq] && ra_ahead <= 16'd8 && q_runs[hq] && !ring_wait;
  assign ra_rd_addr = {avail_hi[hq], avail_lo[hq]} + 64'd4
                      + {47'd0, hend & (size[hq] - 16'd1), 1'b0};
  assign ra_rd_len = {11'd0, ra_want, 1'b0};
  assign ra_covers = hq == cq && ((ra_busy && !ra_stale && ra_pos == last_avail)
                                  || (ra_rd_valid && hend == last_avail));
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

  // The stage's reads and its write, and how it ends.
  assign in_ring = astate == A_RING;
  assign ring_phase = astate == A_RING || astate == A_RING_REQ || astate == A_RING_WAIT;
  assign ring_wait = astate == A_RING_WAIT;
  assign spec_window = astate == A_RING_REQ || astate == A_RING_WAIT || (astate == A_RING && !hhit);
  assign win_load = ring_wait && rc_valid && rc_last && !rc_error;
  assign avail_seen = astate == A_AIDX_WAIT && rc_valid && rc_last && !rc_error
                      && avail_diff <= c_size;
  assign avail_val = rdata[15:0];
  assign rd_valid = astate == A_AIDX_REQ || astate == A_RING_REQ;
  assign rd_addr = astate == A_AIDX_REQ ? c_avail + 64'd2 : c_avail + 64'd4 + {47'd0, ring_slot, 1'b0};
  assign rd_len = astate == A_AIDX_REQ ? 16'd2 : {11'd0, ring_batch, 1'b0};
  // avail_event after the used ring: tell the driver which avail index to kick at.
  assign wr_valid = astate == A_AEVT_REQ;
  assign wr_addr = c_used + 64'd4 + {45'd0, c_size, 3'd0};
  assign wr_data = last_avail;
  assign head = hhead;
  always_comb begin
    done = 1'b0;
    result = fv_vq_pkg::AVAIL_FAIL;
    f_cause = fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
    f_info = '0;
    f_fault = 1'b1;
    unique case (astate)
      A_CHECK: begin
        done = !size_ok || c_size > 16'd32768 || c_desc_low != 4'd0 || c_avail[0]
               || c_used[1:0] != 2'd0;
        f_cause = fv_regs_pkg::QUEUE_ERROR_BAD_CONFIG;
        f_info = {16'd0, c_size};
        f_fault = 1'b0;
      end
      A_AIDX_WAIT: begin
        if (rc_valid && rc_last) begin
          f_info = c_avail[31:0] + 32'd2;
          if (rc_error) begin
            done = 1'b1;
          end else if (avail_diff > c_size) begin
            done = 1'b1;
            f_cause = fv_regs_pkg::QUEUE_ERROR_AVAIL_JUMP;
            f_info = {rdata[15:0], last_avail};
            f_fault = 1'b0;
          end else if (avail_diff == 16'd0 && !(c_evt && !aevt_written)) begin
            done = 1'b1;
            result = fv_vq_pkg::AVAIL_NONE;
          end
        end
      end
      A_AEVT_WAIT: begin
        done = wc_valid && wseq_ack == aevt_seq && wc_error;
        f_info = c_used[31:0] + 32'd4 + {13'd0, c_size, 3'd0};
      end
      A_RING: begin
        done = hhit;
        result = hhead >= c_size ? fv_vq_pkg::AVAIL_FAIL : fv_vq_pkg::AVAIL_HEAD;
        f_cause = fv_regs_pkg::QUEUE_ERROR_BAD_INDEX;
        f_info = {16'd0, hhead};
        f_fault = 1'b0;
      end
      A_RING_WAIT: begin
        done = rc_valid && rc_last && rc_error;
        f_info = c_avail[31:0] + 32'd4 + {15'd0, ring_slot, 1'b0};
      end
      default: ;
    endcase
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      astate <= A_IDLE;
      avail_idx <= '0;
      aevt_written <= 1'b0;
      aevt_seq <= '0;
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
    end else begin
      // The read-ahead issued and landed (before the stage's window replacement, which wins).
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
      if (take && cq == hq) hcons <= last_avail + 16'd1;

      unique case (astate)
        A_IDLE: begin
          if (start) begin
            avail_idx <= start_avail;
            aevt_written <= 1'b0;
            if (start_hint && start_q == hq) hq_avail <= start_avail;
            astate <= A_CHECK;
          end
        end
        A_CHECK: begin
          if (done) begin
            astate <= A_IDLE;
          end else if (avail_idx != last_avail && avail_idx - last_avail <= c_size) begin
            astate <= A_RING;            // entries known from an earlier read or the doorbell
          end else begin
            astate <= A_AIDX_REQ;
          end
        end
        A_AIDX_REQ: if (rd_ready) astate <= A_AIDX_WAIT;
        A_AIDX_WAIT: begin
          if (avail_seen) begin
            avail_idx <= rdata[15:0];
            if (cq == hq) hq_avail <= rdata[15:0];
          end
          if (done) begin
            astate <= A_IDLE;
          end else if (avail_seen) begin
            // Entries, or (EVENT_IDX) publish avail_event and look once more.
            astate <= avail_diff != 16'd0 ? A_RING : A_AEVT_REQ;
          end
        end
        A_AEVT_REQ: begin
          if (wr_ready) begin
            aevt_seq <= wseq_iss;
            astate <= A_AEVT_WAIT;
          end
        end
        A_AEVT_WAIT: begin
          // Its acknowledgement (earlier writes' come first).
          if (wc_valid && wseq_ack == aevt_seq) begin
            aevt_written <= 1'b1;
            astate <= wc_error ? A_IDLE : A_AIDX_REQ;
          end
        end
        A_RING: begin
          if (done) begin
            astate <= A_IDLE;          // the head (from an earlier batch), or a bad one
          end else if (!ra_covers) begin
            // (Else the read-ahead of this entry is on its way, or leaves now.)
            astate <= A_RING_REQ;
          end
        end
        A_RING_REQ: if (rd_ready) astate <= A_RING_WAIT;
        A_RING_WAIT: begin
          if (done) begin
            astate <= A_IDLE;
          end else if (win_load) begin
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
            astate <= A_RING;          // the window now holds the entry
          end
        end
        default: astate <= A_IDLE;
      endcase
    end
  end
endmodule
