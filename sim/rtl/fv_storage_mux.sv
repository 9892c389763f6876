// Storage-port mux: the blk engines of the device-engine slots share the one storage port. The
// port tag of an access is {engine index, the engine's own tag}; answers (read beats, write
// acknowledgements) go back to the engine the tag names, with the engine's tag. Read requests are
// granted lowest index first. Writes need no arbitration: an engine writes storage only while
// streaming the beats of its own DMA read, and the one DMA read-completion port delivers one beat
// per cycle to one master, so at most one engine writes in a cycle (checked in simulation).
// An answer naming no engine (a harness bug) is consumed and dropped.
module fv_storage_mux #(
  parameter int N = 4,               // engines
  parameter int DW = 128,
  parameter int ETW = 4,             // tag bits of an engine
  parameter int TW = 8               // tag bits of the port
) (
  input  logic clk,
  input  logic rst,

  input  logic [N-1:0]          e_rd_valid,
  output logic [N-1:0]          e_rd_ready,
  input  logic [N-1:0][63:0]    e_rd_addr,
  input  logic [N-1:0][15:0]    e_rd_len,
  input  logic [N-1:0][ETW-1:0] e_rd_tag,
  output logic [N-1:0]          e_rc_valid,
  input  logic [N-1:0]          e_rc_ready,
  input  logic [N-1:0]          e_wr_valid,
  input  logic [N-1:0][63:0]    e_wr_addr,
  input  logic [N-1:0][15:0]    e_wr_len,
  input  logic [N-1:0][DW-1:0]  e_wr_data,
  input  logic [N-1:0][ETW-1:0] e_wr_tag,
  output logic [N-1:0]          e_wc_valid,
  output logic [ETW-1:0]        e_tag,     // the engine tag of the answer (read beat or ack)
  output logic [ETW-1:0]        e_wc_tag,

  output logic          st_rd_valid,
  input  logic          st_rd_ready,
  output logic [63:0]   st_rd_addr,
  output logic [15:0]   st_rd_len,
  output logic [TW-1:0] st_rd_tag,
  input  logic          st_rc_valid,
  input  logic [TW-1:0] st_rc_tag,
  output logic          st_rc_ready,
  output logic          st_wr_valid,
  output logic [63:0]   st_wr_addr,
  output logic [15:0]   st_wr_len,
  output logic [DW-1:0] st_wr_data,
  output logic [TW-1:0] st_wr_tag,
  input  logic          st_wc_valid,
  input  logic [TW-1:0] st_wc_tag
);
  localparam int EW = N > 1 ? $clog2(N) : 1;
  if (N < 1 || EW + ETW > TW) begin : g_bad_tags
    $error("fv_storage_mux: engine index and engine tag must fit the port tag");
  end

  // The engine an answer names.
  logic [TW-1:0] rc_engine, wc_engine;
  assign rc_engine = st_rc_tag >> ETW;
  assign wc_engine = st_wc_tag >> ETW;
  assign e_tag = st_rc_tag[ETW-1:0];
  assign e_wc_tag = st_wc_tag[ETW-1:0];
  always_comb begin
    e_rc_valid = '0;
    e_wc_valid = '0;
    st_rc_ready = 1'b1;
    for (int k = 0; k < N; k++) begin
      if (rc_engine == TW'(k)) begin
        e_rc_valid[k] = st_rc_valid;
        st_rc_ready = e_rc_ready[k];
      end
      if (wc_engine == TW'(k)) e_wc_valid[k] = st_wc_valid;
    end
  end

  always_comb begin
    st_rd_valid = 1'b0;
    st_rd_addr = '0;
    st_rd_len = '0;
    st_rd_tag = '0;
    e_rd_ready = '0;
    st_wr_valid = 1'b0;
    st_wr_addr = '0;
    st_wr_len = '0;
    st_wr_data = '0;
    st_wr_tag = '0;
    for (int k = N - 1; k >= 0; k--) begin
      if (e_rd_valid[k]) begin
        st_rd_valid = 1'b1;
        st_rd_addr = e_rd_addr[k];
        st_rd_len = e_rd_len[k];
        st_rd_tag = TW'({EW'(k), e_rd_tag[k]});
        e_rd_ready = '0;
        e_rd_ready[k] = st_rd_ready;
      end
      if (e_wr_valid[k]) begin
        st_wr_valid = 1'b1;
        st_wr_addr = e_wr_addr[k];
        st_wr_len = e_wr_len[k];
        st_wr_data = e_wr_data[k];
        st_wr_tag = TW'({EW'(k), e_wr_tag[k]});
      end
    end
  end

`ifndef SYNTHESIS
  // Two engines writing in one cycle would lose a beat: the premise above is broken.
  always_ff @(posedge clk) begin
    if (!rst && (e_wr_valid & (e_wr_valid - N'(1))) != '0) begin
      $display("fv_storage_mux: storage writes from several engines in one cycle (%b)", e_wr_valid);
      $finish;
    end
  end
`else
  logic unused_clk;
  assign unused_clk = &{1'b0, clk, rst};
`endif
endmodule
