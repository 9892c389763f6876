// Virtqueue stage: the avail ring. Heads are fetched in batches of up to 8 per read (16 bytes)
// and kept across picks of the same queue (win_q) in a window of up to 16 ring entries: avail
// positions win_base .. win_base + win_len - 1, position p in win_heads[p mod 16]. The walk reads
// a batch itself when the window misses (load, with the read's data); while it consumes the
// window, the next entries are read ahead on a master of its own.
//
// Read-ahead: the walk's own batch read costs it a DMA latency every 8 requests at best, during
// which slots that finish find no new chain. So up to 8 more entries are read once at most 8 are
// left unconsumed (the 16-entry window never overwrites an entry not yet taken), only up to the
// avail index known for win_q (read from avail->idx, or the doorbell's under NOTIFICATION_DATA),
// which the driver wrote before them, so the entries are final. One read at a time; it is stale
// (dropped when it lands) if the window was replaced or the queue stopped meanwhile. A refused
// read-ahead is not reported and not repeated (until the window is replaced): the walk's own
// read of the same entries reports it, if the walk gets there.
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

  // The walk: its queue, position and what it knows of avail->idx.
  input  logic [$clog2(NQ)-1:0] cq,
  input  logic [15:0]         last_avail,
  input  logic [15:0]         avail_idx,
  input  logic [15:0]         c_size,
  input  logic [15:0]         ring_slot,     // last_avail mod c_size
  input  logic                ring_wait,     // the walk's own batch read is in flight
  output logic [3:0]          ring_batch,    // entries the walk's batch read fetches
  output logic                hit,           // the window holds the entry at last_avail
  output logic [15:0]         hit_head,      // ... this head
  output logic                ahead_covers,  // the read-ahead of that entry is on its way
  input  logic                load,          // the walk's batch read is back (load_data)
  input  logic [127:0]        load_data,
  input  logic                take,          // the walk consumed the entry at last_avail
  input  logic                note,          // avail index note_val seen for queue note_q
  input  logic [$clog2(NQ)-1:0] note_q,
  input  logic [15:0]         note_val,

  // The window, for the descriptor prefetch.
  output logic [$clog2(NQ)-1:0] win_q,
  output logic [15:0]         win_base,
  output logic [4:0]          win_len,
  output logic [15:0][15:0]   win_heads,

  // The read-ahead's read master (data, last and error are the walk's master's).
  output logic                ra_rd_valid,
  input  logic                ra_rd_ready,
  output logic [63:0]         ra_rd_addr,
  output logic [15:0]         ra_rd_len,
  input  logic                ra_rc_valid,
  input  logic [DW-1:0]       rc_data,
  input  logic                rc_last,
  input  logic                rc_error
);
  localparam int QW = $clog2(NQ);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_avail_fetch: NQ must be a power of two >= 2");
  end
  if (DW < 64 || DW > 512 || (DW & (DW - 1)) != 0) begin : g_bad_dw
    $error("fv_vq_avail_fetch: DW must be 64, 128, 256 or 512");
  end

  logic [15:0][15:0] hbuf;
  logic [4:0]        hlen;
  logic [15:0]       hbase;
  logic [QW-1:0]     hq;
  logic [15:0]       hoff;
  assign hoff = last_avail - hbase;
  assign hit = hq == cq && hlen != 5'd0 && hoff < {11'd0, hlen};
  assign hit_head = hbuf[last_avail[3:0]];
  assign win_q = hq;
  assign win_base = hbase;
  assign win_len = hlen;
  assign win_heads = hbuf;

  // Entries one avail-ring read fetches: at most 8, those known available, none past the ring's
  // end (the walk's batch and the read-ahead alike).
  function automatic logic [3:0] ring_read_len(input logic [15:0] avail, input logic [15:0] wrap);
    ring_read_len = avail < 16'd8 ? avail[3:0] : 4'd8;
    if (wrap < {12'd0, ring_read_len}) ring_read_len = wrap[3:0];
  endfunction
  logic [15:0] batch_avail, batch_wrap;
  assign batch_avail = avail_idx - last_avail;
  assign batch_wrap = c_size - ring_slot;
  assign ring_batch = ring_read_len(batch_avail, batch_wrap);

  logic          ra_busy, ra_stale, ra_refused;
  logic [15:0]   ra_pos;            // avail position of the first entry read
  logic [3:0]    ra_n;              // entries read
  logic [1:0]    ra_beat;
  logic [127:0]  ra_data;
  logic [15:0]   hcons;             // hq's next position to take (the window below it is consumed)
  logic [15:0]   hq_avail;          // avail index known for hq
  logic [15:0]   hend, ra_known, ra_avail, ra_wrap, ra_ahead;
  logic [3:0]    ra_want;
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
  assign ahead_covers = hq == cq && ((ra_busy && !ra_stale && ra_pos == last_avail)
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

  always_ff @(posedge clk) begin
    if (rst) begin
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
      // The read-ahead issued and landed (before the walk's window replacement, which wins).
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
      if (note && note_q == hq) hq_avail <= note_val;
      if (take && cq == hq) hcons <= last_avail + 16'd1;
      if (load) begin
        for (int i = 0; i < 8; i++) begin
          if (4'(i) < ring_batch) hbuf[4'(last_avail[3:0] + 4'(i))] <= load_data[i*16 +: 16];
        end
        hlen <= {1'b0, ring_batch};
        hbase <= last_avail;
        hq <= cq;
        hcons <= last_avail;
        hq_avail <= avail_idx;
        ra_stale <= ra_stale | ra_busy;
        ra_refused <= 1'b0;
      end
    end
  end
endmodule
