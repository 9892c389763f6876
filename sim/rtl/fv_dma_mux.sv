// DMA mux: several masters, each with at most one read and one write outstanding, onto the one
// DMA port. The tag of a request is its master's index; completions go back by tag. Writes are
// issued in the order they are granted and the port serves them in order, so the order in which
// a master issues its writes is the order they become visible. A completion with an error (the
// IOMMU refused the address) is reported once on the fault port with the request's address.
module fv_dma_mux #(
  parameter int NR = 2,              // read masters
  parameter int NW = 3,              // write masters
  parameter int DW = 128,
  parameter int TAGW = 4
) (
  input  logic clk,
  input  logic rst,

  input  logic [NR-1:0]        m_rd_valid,
  output logic [NR-1:0]        m_rd_ready,
  input  logic [NR-1:0][63:0]  m_rd_addr,
  input  logic [NR-1:0][15:0]  m_rd_len,
  output logic [NR-1:0]        m_rc_valid,

  input  logic [NW-1:0]         m_wr_valid,
  output logic [NW-1:0]         m_wr_ready,
  input  logic [NW-1:0][63:0]   m_wr_addr,
  input  logic [NW-1:0][15:0]   m_wr_len,
  input  logic [NW-1:0][DW-1:0] m_wr_data,
  output logic [NW-1:0]         m_wc_valid,

  output logic            dma_rd_valid,
  input  logic            dma_rd_ready,
  output logic [63:0]     dma_rd_addr,
  output logic [15:0]     dma_rd_len,
  output logic [TAGW-1:0] dma_rd_tag,
  input  logic            dma_rc_valid,
  input  logic [TAGW-1:0] dma_rc_tag,
  input  logic            dma_rc_last,
  input  logic            dma_rc_error,

  output logic            dma_wr_valid,
  input  logic            dma_wr_ready,
  output logic [63:0]     dma_wr_addr,
  output logic [15:0]     dma_wr_len,
  output logic [DW-1:0]   dma_wr_data,
  output logic [TAGW-1:0] dma_wr_tag,
  input  logic            dma_wc_valid,
  input  logic [TAGW-1:0] dma_wc_tag,
  input  logic            dma_wc_error,

  output logic            fault_valid,
  output logic [63:0]     fault_addr,
  output logic            fault_write,
  output logic [TAGW-1:0] fault_tag
);
  if (NR > (1 << TAGW) || NW > (1 << TAGW)) begin : g_bad_tags
    $error("fv_dma_mux: more masters than tags");
  end

  // Fixed-priority grant (masters wait on ready; each has one request at a time).
  always_comb begin
    dma_rd_valid = 1'b0;
    dma_rd_addr = '0;
    dma_rd_len = '0;
    dma_rd_tag = '0;
    m_rd_ready = '0;
    for (int i = NR - 1; i >= 0; i--) begin
      if (m_rd_valid[i]) begin
        dma_rd_valid = 1'b1;
        dma_rd_addr = m_rd_addr[i];
        dma_rd_len = m_rd_len[i];
        dma_rd_tag = TAGW'(i);
        m_rd_ready = '0;
        m_rd_ready[i] = dma_rd_ready;
      end
    end
  end

  always_comb begin
    dma_wr_valid = 1'b0;
    dma_wr_addr = '0;
    dma_wr_len = '0;
    dma_wr_data = '0;
    dma_wr_tag = '0;
    m_wr_ready = '0;
    for (int i = NW - 1; i >= 0; i--) begin
      if (m_wr_valid[i]) begin
        dma_wr_valid = 1'b1;
        dma_wr_addr = m_wr_addr[i];
        dma_wr_len = m_wr_len[i];
        dma_wr_data = m_wr_data[i];
        dma_wr_tag = TAGW'(i);
        m_wr_ready = '0;
        m_wr_ready[i] = dma_wr_ready;
      end
    end
  end

  always_comb begin
    for (int i = 0; i < NR; i++) m_rc_valid[i] = dma_rc_valid && dma_rc_tag == TAGW'(i);
    for (int i = 0; i < NW; i++) m_wc_valid[i] = dma_wc_valid && dma_wc_tag == TAGW'(i);
  end

  // Addresses of the outstanding requests, for fault reports.
  logic [NR-1:0][63:0] rd_addr_q;
  logic [NW-1:0][63:0] wr_addr_q;
  always_ff @(posedge clk) begin
    if (rst) begin
      rd_addr_q <= '0;
      wr_addr_q <= '0;
      fault_valid <= 1'b0;
      fault_addr <= '0;
      fault_write <= 1'b0;
      fault_tag <= '0;
    end else begin
      for (int i = 0; i < NR; i++) if (m_rd_valid[i] && m_rd_ready[i]) rd_addr_q[i] <= m_rd_addr[i];
      for (int i = 0; i < NW; i++) if (m_wr_valid[i] && m_wr_ready[i]) wr_addr_q[i] <= m_wr_addr[i];
      fault_valid <= 1'b0;
      if (dma_wc_valid && dma_wc_error) begin
        fault_valid <= 1'b1;
        fault_addr <= wr_addr_q[dma_wc_tag[$clog2(NW)-1:0]];
        fault_write <= 1'b1;
        fault_tag <= dma_wc_tag;
      end else if (dma_rc_valid && dma_rc_last && dma_rc_error) begin
        fault_valid <= 1'b1;
        fault_addr <= rd_addr_q[dma_rc_tag[$clog2(NR)-1:0]];
        fault_write <= 1'b0;
        fault_tag <= dma_rc_tag;
      end
    end
  end

  // Protocol check (simulation only): every completion must answer a request in flight. A
  // bridge (or harness) that breaks this stops the simulation ($finish; the simulator reports it
  // as an error). Not $fatal: in Verilator 5.006 a $fatal gives the model scopes whose
  // destructor deadlocks when several models live in one process.
`ifndef SYNTHESIS
  logic [NR-1:0] rd_out;
  logic [NW-1:0][7:0] wr_out;
  always_ff @(posedge clk) begin
    if (rst) begin
      rd_out <= '0;
      wr_out <= '0;
    end else begin
      for (int i = 0; i < NR; i++) begin
        if (m_rd_valid[i] && m_rd_ready[i]) rd_out[i] <= 1'b1;
        if (m_rc_valid[i] && dma_rc_last) rd_out[i] <= 1'b0;
      end
      for (int i = 0; i < NW; i++) begin
        wr_out[i] <= wr_out[i] + 8'(m_wr_valid[i] && m_wr_ready[i]) - 8'(m_wc_valid[i]);
      end
      if (dma_rc_valid && (32'(dma_rc_tag) >= NR || !rd_out[dma_rc_tag[$clog2(NR)-1:0]])) begin
        $display("fv_dma_mux: read completion with tag %0d, which has no read outstanding",
                 dma_rc_tag);
        $finish;
      end
      if (dma_wc_valid && (32'(dma_wc_tag) >= NW || wr_out[dma_wc_tag[$clog2(NW)-1:0]] == 8'd0)) begin
        $display("fv_dma_mux: write acknowledgement with tag %0d, which has no write outstanding",
                 dma_wc_tag);
        $finish;
      end
    end
  end
`endif

  logic unused_ok;
  assign unused_ok = &{1'b0, dma_rc_tag, dma_wc_tag};
endmodule
