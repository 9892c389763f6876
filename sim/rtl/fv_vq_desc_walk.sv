// Virtqueue stage: the descriptor chain walk. Started at a chain's head, it reads the chain's
// descriptors (NEXT, one level of INDIRECT) into the segment table the device-engine slots take,
// each descriptor checked by fv_vq_desc_check before anything of it is used, and ends (done,
// for one cycle) with the chain walked (WALK_LAST), handed to the CPU because the segment table
// is full (WALK_PUNT), or the queue failed (WALK_FAIL: cause, info, fault).
//
// Descriptors come from a cache of up to DPF consecutive descriptors per read (drivers hand out
// descriptors mostly in order), kept for the rest of the walk of the same table. A chain may not
// change while it is available, but a descriptor may be reused by the next chain: the cache is
// dropped at every new chain and when the walk enters an indirect table. The first read of a
// chain is taken from the look-ahead prefetch (fv_vq_desc_prefetch) when it has the chain's
// first descriptors (pf_hit) or waits for them when they are on their way (pf_wait).
//
// DMA: one read at a time on the walk's master (completion beats of DW bits, byte 0 of beat 0 =
// the byte at the address).
module fv_vq_desc_walk #(
  parameter int DW = 128,        // DMA data width in bits (64 .. 512)
  parameter int MAX_SEGS = 16,   // segments of a chain the slots take
  parameter int DPF = 4          // descriptors per read
) (
  input  logic clk,
  input  logic rst,

  input  logic         start,          // walk the chain at start_head (in the queue's table)
  input  logic [15:0]  start_head,
  input  logic [15:0]  head,           // the chain being walked (from start on)
  input  logic [63:0]  c_desc,         // the queue's descriptor table, size, INDIRECT_DESC
  input  logic [15:0]  c_size,
  input  logic         c_ind,
  input  logic [2:0]   func,           // the queue's function (its DMA windows)
  input  logic [fv_regs_pkg::NUM_DMA_WINDOWS-1:0][63:0] win_base,
  input  logic [fv_regs_pkg::NUM_DMA_WINDOWS-1:0][63:0] win_end,
  output logic         done,
  output fv_vq_pkg::walk_result_e result,
  output logic [3:0]   f_cause,        // with RESULT_FAIL
  output logic [31:0]  f_info,
  output logic         f_fault,        // ... a DMA fault

  // The look-ahead prefetch.
  output logic         lookup,         // at the chain's first descriptor
  input  logic         pf_hit,
  input  logic         pf_wait,
  input  logic [DPF*128-1:0] pf_data,
  input  logic [2:0]   pf_n,
  output logic         use_hit,

  // The walk's read master.
  output logic         rd_valid,
  input  logic         rd_ready,
  output logic [63:0]  rd_addr,
  output logic [15:0]  rd_len,
  input  logic         rc_valid,
  input  logic [DW-1:0] rc_data,
  input  logic         rc_last,
  input  logic         rc_error,

  // The chain walked (from the cycle after done until the next start).
  output logic [MAX_SEGS-1:0][63:0]     seg_addr,
  output logic [MAX_SEGS-1:0][31:0]     seg_len,
  output logic [MAX_SEGS-1:0]           seg_write,
  output logic [$clog2(MAX_SEGS+1)-1:0] seg_count,
  output logic [31:0]  walked_bytes,   // device-readable bytes
  output logic [63:0]  first_addr,     // the first buffer
  output logic         in_ind          // the chain is in an indirect table
);
  localparam int SW = $clog2(MAX_SEGS + 1);
  localparam int DBEATS = DPF * 128 / DW;       // read beats of a full cache fill (1 .. 8)

  if (DW < 64 || DW > 512 || (DW & (DW - 1)) != 0) begin : g_bad_dw
    $error("fv_vq_desc_walk: DW must be 64, 128, 256 or 512");
  end
  if (MAX_SEGS < 2 || MAX_SEGS > 256 || (MAX_SEGS & (MAX_SEGS - 1)) != 0) begin : g_bad_segs
    $error("fv_vq_desc_walk: MAX_SEGS must be a power of two in 2..256");
  end
  if (DPF != 4) begin : g_bad_dpf
    $error("fv_vq_desc_walk: DPF must be 4");
  end

  typedef enum logic [1:0] {W_IDLE, W_REQ, W_WAIT, W_USE} wstate_e;
  wstate_e wstate;

  logic [15:0] idx;            // descriptor index in the current table
  logic [63:0] ind_base;
  logic [15:0] ind_n;
  logic [15:0] walked;         // descriptors visited in the current table
  logic [15:0] table_limit;    // descriptors in the current table
  logic        seen_write;
  logic [33:0] chain_bytes, chain_next;
  assign table_limit = in_ind ? ind_n : c_size;

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

  // The descriptor at idx, checked.
  fv_vq_pkg::desc_verdict_e d_verdict;
  logic [3:0]  d_cause;
  logic [31:0] d_info, d_len;
  logic [63:0] d_addr;
  logic        d_write, d_has_next;
  logic [15:0] d_next;
  fv_vq_desc_check u_check (
    .desc(dcache[dc_off[1:0] * 128 +: 128]), .idx, .walked, .table_limit, .c_ind, .in_ind,
    .seen_write, .seg_full(seg_count == SW'(MAX_SEGS)), .chain_bytes, .func, .win_base,
    .win_end, .verdict(d_verdict), .cause(d_cause), .info(d_info), .addr(d_addr), .len(d_len),
    .is_write(d_write), .has_next(d_has_next), .next(d_next), .chain_next
  );

  assign lookup = !in_ind && walked == 16'd0 && idx == head;
  assign use_hit = wstate == W_REQ && !dc_hit && pf_hit;
  assign rd_valid = wstate == W_REQ && !dc_hit && !pf_hit && !pf_wait;
  assign rd_addr = (in_ind ? ind_base : c_desc) + {44'd0, idx, 4'd0};
  assign rd_len = {9'd0, dpf_n, 4'd0};

  // The end of the walk, decided in W_WAIT (a refused read) or W_USE.
  always_comb begin
    done = 1'b0;
    result = fv_vq_pkg::WALK_FAIL;
    f_cause = fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
    f_info = (in_ind ? ind_base[31:0] : c_desc[31:0]) + {12'd0, idx, 4'd0};
    f_fault = 1'b1;
    if (wstate == W_WAIT) begin
      done = rc_valid && rc_last && rc_error;
    end else if (wstate == W_USE) begin
      f_fault = 1'b0;
      f_cause = d_cause;
      f_info = d_info;
      unique case (d_verdict)
        fv_vq_pkg::V_FAIL: done = 1'b1;
        fv_vq_pkg::V_PUNT: begin
          done = 1'b1;
          result = fv_vq_pkg::WALK_PUNT;
        end
        fv_vq_pkg::V_SEG: begin
          done = !d_has_next;
          result = fv_vq_pkg::WALK_LAST;
        end
        default: ;
      endcase
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      wstate <= W_IDLE;
      idx <= '0;
      in_ind <= '0;
      ind_base <= '0;
      ind_n <= '0;
      walked <= '0;
      seen_write <= '0;
      chain_bytes <= '0;
      seg_addr <= '0;
      seg_len <= '0;
      seg_write <= '0;
      seg_count <= '0;
      walked_bytes <= '0;
      first_addr <= '0;
      dcache <= '0;
      dc_base <= '0;
      dc_n <= '0;
      dc_want <= '0;
      dbeat <= '0;
    end else begin
      unique case (wstate)
        W_IDLE: begin
          if (start) begin
            idx <= start_head;
            dc_n <= 3'd0;
            in_ind <= 1'b0;
            walked <= '0;
            seen_write <= 1'b0;
            seg_count <= '0;
            walked_bytes <= '0;
            chain_bytes <= '0;
            wstate <= W_REQ;
          end
        end
        W_REQ: begin
          if (dc_hit) begin
            wstate <= W_USE;
          end else if (pf_hit) begin
            dcache <= pf_data;
            dc_base <= idx;
            dc_n <= pf_n;
            wstate <= W_USE;
          end else if (pf_wait) begin
            // The prefetch of these descriptors is on its way.
          end else if (rd_ready) begin
            dc_base <= idx;
            dc_n <= 3'd0;
            dc_want <= dpf_n;
            dbeat <= '0;
            wstate <= W_WAIT;
          end
        end
        W_WAIT: begin
          if (rc_valid) begin
            for (int k = 0; k < DBEATS; k++) begin
              if (dbeat == 4'(k)) dcache[k*DW +: DW] <= rc_data;
            end
            dbeat <= dbeat + 4'd1;
            if (rc_last) begin
              if (rc_error) begin
                wstate <= W_IDLE;
              end else begin
                dc_n <= dc_want;
                wstate <= W_USE;
              end
            end
          end
        end
        W_USE: begin
          walked <= walked + 16'd1;
          unique case (d_verdict)
            fv_vq_pkg::V_INDIRECT: begin
              in_ind <= 1'b1;
              dc_n <= 3'd0;
              ind_base <= d_addr;
              ind_n <= d_len[19:4];
              idx <= '0;
              walked <= '0;
              wstate <= W_REQ;
            end
            fv_vq_pkg::V_SEG: begin
              seg_addr[seg_count[SW-2:0]] <= d_addr;
              seg_len[seg_count[SW-2:0]] <= d_len;
              seg_write[seg_count[SW-2:0]] <= d_write;
              seg_count <= seg_count + SW'(1);
              chain_bytes <= chain_next;
              if (seg_count == '0) first_addr <= d_addr;
              if (!d_write) walked_bytes <= walked_bytes + d_len;
              seen_write <= seen_write | d_write;
              if (d_has_next) begin
                idx <= d_next;
                wstate <= W_REQ;
              end else begin
                wstate <= W_IDLE;
              end
            end
            default: wstate <= W_IDLE;         // failed, or punted
          endcase
        end
        default: wstate <= W_IDLE;
      endcase
    end
  end
endmodule
