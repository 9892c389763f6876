// Virtqueue stage: look-ahead descriptor prefetch and head prediction.
//
// The walk's reads are dependent and one at a time, so at depth the walk bounds the engine (one
// DMA latency per chain for its descriptors). While it walks, the heads after the current one in
// the avail window (fv_vq_avail_fetch) have their first DPF descriptors read ahead, up to NPF at
// once, each on a read master of its own; the walk of such a chain starts from the prefetched
// copy (hit). A copy is valid: the head was available before the read was issued (the window was
// read after avail->idx), so its chain was final and stays so until the chain is taken and
// completed. An entry names its queue, avail position and head, and is used only by the walk of
// exactly that; entries are dropped when the walk replaces the window (but a guessed head for the
// position it walks) or their queue stops (one still in flight is marked stale and dropped when
// it lands), and when their position is taken without them. A prefetch the IOMMU refuses is not
// reported: the walk's own read of the same descriptors reports it, if the walk gets there.
//
// Head prediction: a driver whose free list is LIFO (Linux's split ring puts a freed chain at its
// head) hands out the chain it got back last, so at queue depth 1 the next head is the head last
// published on the queue. While the walk waits for the ring entry at last_avail (spec_window),
// the descriptors at the predicted head are read on a free entry keyed {cq, last_avail, guess},
// used only if the ring entry names that head: ring entry and descriptors then cost one DMA
// latency, not two. Valid for the same reason as any prefetch; a wrong guess costs a read and is
// dropped when the position is taken.
module fv_vq_desc_prefetch #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int DW = 128,        // DMA data width in bits (64 .. 512)
  parameter int NPF = 2,         // prefetches in flight (read masters of their own)
  parameter int DPF = 4          // descriptors per prefetch
) (
  input  logic clk,
  input  logic rst,

  input  logic [NQ-1:0][31:0] desc_lo,
  input  logic [NQ-1:0][31:0] desc_hi,
  input  logic [NQ-1:0][15:0] size,
  input  logic [NQ-1:0]       q_runs,        // enabled, device-owned, no error, not stopping
  input  logic [NQ-1:0]       stopped,       // disabled with nothing in hand

  // The avail window (fv_vq_avail_fetch).
  input  logic [$clog2(NQ)-1:0] win_q,
  input  logic [15:0]         win_base,
  input  logic [4:0]          win_len,
  input  logic [15:0][15:0]   win_heads,

  // The walk.
  input  logic [$clog2(NQ)-1:0] cq,
  input  logic [15:0]         last_avail,
  input  logic [15:0]         c_size,
  input  logic [63:0]         c_desc,
  input  logic [15:0]         head,          // the chain's head (once its ring entry is known)
  input  logic                ring_wait,     // the walk's own batch read is in flight
  input  logic                spec_window,   // the walk waits for the ring entry at last_avail
  input  logic                pick,          // a new pick of cq: guess again
  input  logic                ring_hit,      // the walk took its entry from the window
  input  logic                win_load,      // the walk replaced the window
  input  logic                lookup,        // the walk is at its chain's first descriptor
  output logic                hit,           // ... which is prefetched: hit_data, hit_n
  output logic                wait_pf,       // ... which is on its way
  output logic [DPF*128-1:0]  hit_data,
  output logic [2:0]          hit_n,
  input  logic                use_hit,       // the walk takes the hit (the entry is freed)
  input  logic                take,          // the walk consumed the entry at last_avail
  input  logic                publish,       // head was published on cq

  // Read masters (completion data, last and error are the walk's master's).
  output logic [NPF-1:0]       pf_rd_valid,
  input  logic [NPF-1:0]       pf_rd_ready,
  output logic [NPF-1:0][63:0] pf_rd_addr,
  output logic [NPF-1:0][15:0] pf_rd_len,
  input  logic [NPF-1:0]       pf_rc_valid,
  input  logic [DW-1:0]        rc_data,
  input  logic                 rc_last,
  input  logic                 rc_error
);
  localparam int QW = $clog2(NQ);
  localparam int PFW = NPF > 1 ? $clog2(NPF) : 1;
  localparam int DBEATS = DPF * 128 / DW;       // read beats of a full prefetch

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_desc_prefetch: NQ must be a power of two >= 2");
  end
  if (NPF < 1 || NPF > 8) begin : g_bad_npf
    $error("fv_vq_desc_prefetch: NPF must be in 1..8");
  end
  if (DPF != 4 || DW < 64 || DW > 512 || (DW & (DW - 1)) != 0) begin : g_bad_dpf
    $error("fv_vq_desc_prefetch: DPF must be 4 and DW 64, 128, 256 or 512");
  end

  logic [NPF-1:0]              pf_busy, pf_ok, pf_stale, pf_err;
  logic [NPF-1:0][QW-1:0]      pf_q;
  logic [NPF-1:0][15:0]        pf_pos, pf_head;
  logic [NPF-1:0][2:0]         pf_n;
  logic [NPF-1:0][3:0]         pf_beat;
  logic [NPF-1:0][DPF*128-1:0] pf_data;
  logic [15:0]                 pf_from;           // next avail position of the window to prefetch
  logic [15:0]                 pf_off, pf_hd, pf_room;
  logic [2:0]                  pf_len;
  logic                        pf_can, pf_any, pf_dup;
  logic [PFW-1:0]              pf_sel, pf_use;
  assign pf_off = pf_from - win_base;
  assign pf_hd = win_heads[pf_from[3:0]];
  assign pf_room = size[win_q] - pf_hd;
  assign pf_len = pf_room >= 16'(DPF) ? 3'(DPF) : pf_room[2:0];
  // A head of the window not yet prefetched, in the table, of a queue that runs (not while the
  // window is being replaced).
  assign pf_can = win_len != 5'd0 && pf_off < {11'd0, win_len} && pf_hd < size[win_q]
                  && q_runs[win_q] && !ring_wait;

  logic [NQ-1:0][15:0] pred_head;
  logic [NQ-1:0]       pred_ok;
  logic                spec_sent;          // the guess for this pick was read
  logic                spec_can;
  logic [15:0]         spec_room;
  logic [2:0]          spec_len;
  assign spec_room = c_size - pred_head[cq];
  assign spec_len = spec_room >= 16'(DPF) ? 3'(DPF) : spec_room[2:0];
  assign spec_can = !spec_sent && pred_ok[cq] && pred_head[cq] < c_size && pf_any && spec_window;

  // The head of the window to prefetch next was guessed right already (the guess's entry has it).
  always_comb begin
    pf_dup = 1'b0;
    for (int e = 0; e < NPF; e++) begin
      if ((pf_busy[e] && !pf_stale[e] || pf_ok[e]) && pf_q[e] == win_q && pf_pos[e] == pf_from
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
                               : {desc_hi[win_q], desc_lo[win_q]} + {44'd0, pf_hd, 4'd0};
      pf_rd_len[e] = {9'd0, spec_can ? spec_len : pf_len, 4'd0};
    end
  end
  // The walk's first descriptor of the chain at last_avail: a prefetched copy (hit), or one
  // still on its way (wait_pf: the walk waits for it instead of reading the same again).
  always_comb begin
    hit = 1'b0;
    wait_pf = 1'b0;
    pf_use = '0;
    for (int e = 0; e < NPF; e++) begin
      if (lookup && pf_q[e] == cq && pf_pos[e] == last_avail && pf_head[e] == head) begin
        if (pf_ok[e] && !pf_err[e]) begin
          hit = 1'b1;
          pf_use = PFW'(e);
        end
        if (pf_busy[e] && !pf_stale[e]) wait_pf = 1'b1;
      end
    end
  end
  assign hit_data = pf_data[pf_use];
  assign hit_n = pf_n[pf_use];

  always_ff @(posedge clk) begin
    if (rst) begin
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
      // Entries of stopped queues are dropped, and their guesses.
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
          pf_q[pf_sel] <= win_q;
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

      // The walk's commands (after the above: they win).
      if (pick) spec_sent <= 1'b0;
      if (ring_hit && $signed(pf_from - last_avail) <= 0) pf_from <= last_avail + 16'd1;
      if (win_load) begin
        // The walk reads this chain's descriptors, unless the guess for it was right; the ones
        // after it are prefetched.
        for (int e = 0; e < NPF; e++) begin
          if (pf_q[e] != cq || pf_pos[e] != last_avail) begin
            pf_ok[e] <= 1'b0;
            if (pf_busy[e]) pf_stale[e] <= 1'b1;
          end
        end
        pf_from <= last_avail + 16'd1;
      end
      if (use_hit) pf_ok[pf_use] <= 1'b0;
      if (take) begin
        for (int e = 0; e < NPF; e++) begin
          if (pf_q[e] == cq && pf_pos[e] == last_avail) begin
            pf_ok[e] <= 1'b0;
            if (pf_busy[e]) pf_stale[e] <= 1'b1;
          end
        end
      end
      if (publish) begin
        pred_head[cq] <= head;
        pred_ok[cq] <= 1'b1;
      end
    end
  end
endmodule
