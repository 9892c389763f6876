// fv_msix alone: a request becomes the table's message write; a masked vector is kept pending
// (PBA) and sent once unmasked; a faulting write is not counted as sent.
module tb_fv_msix;
  `include "tb_common.svh"
  localparam int NV = 64, DW = 128;
  logic irq_valid, irq_ready, wr_valid, wr_ready, wc_valid, wc_error, sent;
  logic [15:0] irq_vector, wr_len;
  logic [NV-1:0][31:0] tbl_addr_lo, tbl_addr_hi, tbl_data;
  logic [NV-1:0] tbl_mask;
  logic [NV/32-1:0][31:0] pba;
  logic [63:0] wr_addr;
  logic [DW-1:0] wr_data;

  fv_msix #(.NV(NV), .DW(DW)) dut (.*);

  // Wait for the message write, check it, acknowledge it (with `err`).
  task automatic expect_msg(input int v, input bit err);
    int n = 0;
    while (!wr_valid) begin
      @(negedge clk);
      n++;
      check(n < 20, "a message write comes");
    end
    check(wr_addr == {tbl_addr_hi[v], tbl_addr_lo[v]}, $sformatf("vector %0d's address", v));
    check(wr_len == 16'd4 && wr_data[31:0] == tbl_data[v], $sformatf("vector %0d's data", v));
    wr_ready = 1'b1;
    @(negedge clk);
    wr_ready = 1'b0;
    cycles(2);
    wc_valid = 1'b1; wc_error = err;
    @(negedge clk);
    wc_valid = 1'b0; wc_error = 1'b0;
    check(sent == !err, "sent says whether the message went out");
  endtask

  initial begin
    for (int v = 0; v < NV; v++) begin
      tbl_addr_lo[v] = 32'hfee0_0000 + 32'(v * 16);
      tbl_addr_hi[v] = 32'(v);
      tbl_data[v] = 32'h100 + 32'(v);
    end
    tbl_mask = '0;
    {irq_valid, irq_vector, wr_ready, wc_valid, wc_error} = '0;
    reset_dut();

    check(irq_ready, "idle: takes a request");
    irq_valid = 1'b1; irq_vector = 16'd5;
    @(negedge clk);
    irq_valid = 1'b0;
    expect_msg(5, 1'b0);

    // Masked: pending in the PBA, nothing written; unmasking sends it.
    tbl_mask[40] = 1'b1;
    irq_valid = 1'b1; irq_vector = 16'd40;
    @(negedge clk);
    irq_valid = 1'b0;
    cycles(5);
    check(!wr_valid, "a masked vector is not written");
    check(pba[1][8], "it is pending in the PBA");
    tbl_mask[40] = 1'b0;
    expect_msg(40, 1'b0);
    check(pba == '0, "sent: no longer pending");

    // A faulting message write.
    irq_valid = 1'b1; irq_vector = 16'd63;
    @(negedge clk);
    irq_valid = 1'b0;
    expect_msg(63, 1'b1);

    // A vector beyond the table is ignored.
    irq_valid = 1'b1; irq_vector = 16'd64;
    @(negedge clk);
    irq_valid = 1'b0;
    cycles(5);
    check(!wr_valid && pba == '0, "an out-of-range vector is ignored");
    pass();
  end
endmodule
