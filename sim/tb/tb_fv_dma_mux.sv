// fv_dma_mux alone: fixed-priority grants, completions routed by tag, fault reports with the
// faulting request's address.
module tb_fv_dma_mux;
  `include "tb_common.svh"
  localparam int NR = 3, NW = 2, DW = 128, TAGW = 4;
  logic [NR-1:0]        m_rd_valid, m_rd_ready, m_rc_valid;
  logic [NR-1:0][63:0]  m_rd_addr;
  logic [NR-1:0][15:0]  m_rd_len;
  logic [NW-1:0]        m_wr_valid, m_wr_ready, m_wc_valid;
  logic [NW-1:0][63:0]  m_wr_addr;
  logic [NW-1:0][15:0]  m_wr_len;
  logic [NW-1:0][DW-1:0] m_wr_data;
  logic dma_rd_valid, dma_rd_ready, dma_rc_valid, dma_rc_last, dma_rc_error;
  logic [63:0] dma_rd_addr, dma_wr_addr, fault_addr;
  logic [15:0] dma_rd_len, dma_wr_len;
  logic [TAGW-1:0] dma_rd_tag, dma_rc_tag, dma_wr_tag, dma_wc_tag, fault_tag;
  logic dma_wr_valid, dma_wr_ready, dma_wc_valid, dma_wc_error, fault_valid, fault_write;
  logic [DW-1:0] dma_wr_data;

  fv_dma_mux #(.NR(NR), .NW(NW), .DW(DW), .TAGW(TAGW)) dut (.*);

  initial begin
    {m_rd_valid, m_rd_addr, m_rd_len, m_wr_valid, m_wr_addr, m_wr_len, m_wr_data} = '0;
    {dma_rd_ready, dma_rc_valid, dma_rc_tag, dma_rc_last, dma_rc_error} = '0;
    {dma_wr_ready, dma_wc_valid, dma_wc_tag, dma_wc_error} = '0;
    reset_dut();

    // Reads from masters 0 and 2 at once: 0 first; the port's ready reaches only it.
    m_rd_valid = 3'b101;
    m_rd_addr[0] = 64'h1000; m_rd_len[0] = 16'd64;
    m_rd_addr[2] = 64'h2000; m_rd_len[2] = 16'd16;
    dma_rd_ready = 1'b1;
    #1;
    check(dma_rd_valid && dma_rd_tag == 0 && dma_rd_addr == 64'h1000 && dma_rd_len == 64,
          "the lowest master is granted first");
    check(m_rd_ready == 3'b001, "only the granted master sees ready");
    @(negedge clk);
    m_rd_valid = 3'b100;
    #1;
    check(dma_rd_tag == 2 && dma_rd_addr == 64'h2000 && m_rd_ready == 3'b100, "then master 2");
    @(negedge clk);
    m_rd_valid = '0;
    // Completions go to the master their tag names; a faulting last beat is reported with
    // the address of the read it answers.
    dma_rc_valid = 1'b1; dma_rc_tag = 4'd2; dma_rc_last = 1'b1; dma_rc_error = 1'b1;
    #1;
    check(m_rc_valid == 3'b100, "a completion reaches its master only");
    @(negedge clk);
    dma_rc_valid = 1'b0; dma_rc_error = 1'b0;
    check(fault_valid && !fault_write && fault_addr == 64'h2000 && fault_tag == 2,
          "a read fault names the read's address");
    @(negedge clk);
    check(!fault_valid, "a fault is reported once");
    dma_rc_valid = 1'b1; dma_rc_tag = 4'd0; dma_rc_last = 1'b0;
    #1;
    check(m_rc_valid == 3'b001, "beats of master 0's read");
    @(negedge clk);
    dma_rc_last = 1'b1;
    @(negedge clk);
    dma_rc_valid = 1'b0;
    check(!fault_valid, "no fault without an error");

    // Writes: master 0 before master 1; a write fault names the write's address.
    m_wr_valid = 2'b11;
    m_wr_addr[0] = 64'h3000; m_wr_len[0] = 16'd4; m_wr_data[0] = 128'hAA;
    m_wr_addr[1] = 64'h4000; m_wr_len[1] = 16'd8; m_wr_data[1] = 128'hBB;
    dma_wr_ready = 1'b0;
    #1;
    check(dma_wr_valid && dma_wr_tag == 0 && m_wr_ready == 2'b00, "a write waits for the port");
    dma_wr_ready = 1'b1;
    #1;
    check(m_wr_ready == 2'b01 && dma_wr_data == 128'hAA, "master 0's write goes first");
    @(negedge clk);
    m_wr_valid = 2'b10;
    #1;
    check(dma_wr_tag == 1 && dma_wr_addr == 64'h4000 && dma_wr_len == 8, "then master 1's");
    @(negedge clk);
    m_wr_valid = '0;
    dma_wc_valid = 1'b1; dma_wc_tag = 4'd1; dma_wc_error = 1'b1;
    #1;
    check(m_wc_valid == 2'b10, "an acknowledgement reaches its master only");
    @(negedge clk);
    dma_wc_valid = 1'b0; dma_wc_error = 1'b0;
    check(fault_valid && fault_write && fault_addr == 64'h4000 && fault_tag == 1,
          "a write fault names the write's address");
    dma_wc_valid = 1'b1; dma_wc_tag = 4'd0;
    @(negedge clk);
    dma_wc_valid = 1'b0;
    check(!fault_valid, "a clean acknowledgement reports nothing");
    pass();
  end
endmodule
