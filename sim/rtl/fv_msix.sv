// MSI-X: turns interrupt requests into message writes on the DMA write port, following the
// MSI-X table (address, data, mask) and keeping the pending-bit array for masked vectors. A
// pending vector is sent once it is unmasked. Requests arrive only after the write they signal
// was acknowledged, and the DMA write path is in order: an MSI never overtakes that write.
module fv_msix #(
  parameter int NV = 64,            // vectors (a multiple of 32)
  parameter int DW = 128
) (
  input  logic clk,
  input  logic rst,

  input  logic        irq_valid,
  output logic        irq_ready,
  input  logic [15:0] irq_vector,

  input  logic [NV-1:0][31:0]    tbl_addr_lo,
  input  logic [NV-1:0][31:0]    tbl_addr_hi,
  input  logic [NV-1:0][31:0]    tbl_data,
  input  logic [NV-1:0]          tbl_mask,
  output logic [NV/32-1:0][31:0] pba,

  output logic          wr_valid,
  input  logic          wr_ready,
  output logic [63:0]   wr_addr,
  output logic [15:0]   wr_len,
  output logic [DW-1:0] wr_data,
  input  logic          wc_valid,
  input  logic          wc_error,

  output logic sent                 // a message was written
);
  localparam int VW = $clog2(NV);
  if (NV < 32 || NV % 32 != 0) begin : g_bad_nv
    $error("fv_msix: NV must be a multiple of 32");
  end

  typedef enum logic [1:0] {S_IDLE, S_REQ, S_WAIT} state_e;
  state_e state;
  logic [NV-1:0] pending;
  logic [VW-1:0] vec;

  // Lowest pending vector that is no longer masked, searched as a tree: the lowest group of 8
  // with one, then the lowest one in that group (a flat 64-way search is a long mux chain).
  localparam int NG = NV / 8;
  localparam int GW = $clog2(NG);
  logic [NV-1:0] ready_v;
  logic [NG-1:0] gany;
  logic          unmasked_valid;
  logic [VW-1:0] unmasked;
  logic [GW-1:0] g_first;
  logic [7:0]    g_bits;
  logic [2:0]    w_first;
  always_comb begin
    ready_v = pending & ~tbl_mask;
    for (int g = 0; g < NG; g++) gany[g] = |ready_v[8 * g +: 8];
    unmasked_valid = |gany;
    g_first = '0;
    for (int g = NG - 1; g >= 0; g--) if (gany[g]) g_first = GW'(g);
    g_bits = ready_v[8 * g_first +: 8];
    w_first = '0;
    for (int b = 7; b >= 0; b--) if (g_bits[b]) w_first = 3'(b);
    unmasked = {g_first, w_first};
  end

  // The search above is a cycle ahead of its use: searching 64 vectors and clearing the one
  // found in the same cycle was the module's deepest path (16 LUT levels, docs/SYNTHESIS.md). A
  // candidate is taken only if it is still pending and unmasked, so an unmasked vector is sent
  // one cycle later than it would have been, and never twice.
  logic          cand_valid;
  logic [VW-1:0] cand;
  logic          cand_ok;
  always_ff @(posedge clk) begin
    if (rst) begin
      cand_valid <= 1'b0;
      cand <= '0;
    end else begin
      cand_valid <= unmasked_valid;
      cand <= unmasked;
    end
  end
  assign cand_ok = cand_valid && pending[cand] && !tbl_mask[cand];

  assign pba = pending;
  assign irq_ready = state == S_IDLE;
  assign wr_valid = state == S_REQ;
  assign wr_addr = {tbl_addr_hi[vec], tbl_addr_lo[vec]};
  assign wr_len = 16'd4;
  always_comb begin
    wr_data = '0;
    wr_data[31:0] = tbl_data[vec];
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      pending <= '0;
      vec <= '0;
      sent <= 1'b0;
    end else begin
      sent <= 1'b0;
      unique case (state)
        S_IDLE: begin
          if (irq_valid) begin
            if (irq_vector < 16'(NV)) begin
              if (tbl_mask[irq_vector[VW-1:0]]) begin
                pending[irq_vector[VW-1:0]] <= 1'b1;
              end else begin
                vec <= irq_vector[VW-1:0];
                state <= S_REQ;
              end
            end
          end else if (cand_ok) begin
            pending[cand] <= 1'b0;
            vec <= cand;
            state <= S_REQ;
          end
        end
        S_REQ: if (wr_ready) state <= S_WAIT;
        S_WAIT: begin
          // A faulting message write is reported by the DMA mux; nothing to retry here.
          if (wc_valid) begin
            sent <= !wc_error;
            state <= S_IDLE;
          end
        end
        default: state <= S_IDLE;
      endcase
    end
  end
endmodule
