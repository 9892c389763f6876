// fv_echo_engine alone: the readable bytes of a chain, in order, into its writable buffers
// (segments of any length, readable and writable split differently), the used length
// min(readable, writable), a DMA fault as an error.
module tb_fv_echo_engine;
  `include "tb_common.svh"
  localparam int DW = 128, MAX_SEGS = 16;
  logic kill, start, done, error;
  logic [31:0] written;
  logic rd_valid, rd_ready, rc_valid, rc_last, rc_error, wr_valid, wr_ready, wc_valid, wc_error;
  logic [63:0] rd_addr, wr_addr;
  logic [15:0] rd_len, wr_len;
  logic [DW-1:0] rc_data, wr_data;
  logic hold;
  logic [63:0] fault_at;

  `include "tb_chain.svh"
  fv_echo_engine #(.DW(DW), .MAX_SEGS(MAX_SEGS)) dut (.*);
  tb_dma_mem #(.DW(DW)) mem (.*);

  task automatic run(output int used, output bit err);
    int n;
    start_chain();
    wait_done(20000, n);
    used = int'(written);
    err = error;
    @(negedge clk);  // back to idle (a start while it answers is not taken)
  endtask

  initial begin
    int used;
    bit err;
    byte unsigned want [$];
    {kill, start, seg_addr, seg_len, seg_write, seg_count, hold} = '0;
    fault_at = 64'hffff_ffff;
    for (int i = 0; i < 65536; i++) mem.mem[i] = 8'(i * 7 + i / 256);
    reset_dut();

    // Readable 100 + 37 + 300 bytes into writable 50 + 1000: 437 bytes copied.
    seg(64'h1003, 100, 0); seg(64'h2000, 37, 0); seg(64'h3011, 300, 0);
    seg(64'h8000, 50, 1); seg(64'h9005, 1000, 1);
    want = {};
    for (int i = 0; i < 100; i++) want.push_back(mem.mem[32'h1003 + i]);
    for (int i = 0; i < 37; i++) want.push_back(mem.mem[32'h2000 + i]);
    for (int i = 0; i < 300; i++) want.push_back(mem.mem[32'h3011 + i]);
    run(used, err);
    check(!err && used == 437, $sformatf("437 bytes copied (got %0d)", used));
    for (int i = 0; i < 437; i++) begin
      int at = i < 50 ? 32'h8000 + i : 32'h9005 + i - 50;
      check(mem.mem[at] == want[i], $sformatf("byte %0d in place", i));
    end
    check(mem.mem[32'h9005 + 387] == 8'(32'h9005 + 387) * 8'd7 + 8'((32'h9005 + 387) / 256),
          "nothing written past the copied bytes");

    // Less room than data: the writable bytes fill, the rest is not copied.
    seg(64'h4000, 64, 0); seg(64'hA000, 20, 1);
    run(used, err);
    check(!err && used == 20, "room for 20: 20 copied");
    for (int i = 0; i < 20; i++) check(mem.mem[32'hA000 + i] == mem.mem[32'h4000 + i], "copied");

    // No writable segment: nothing to do.
    seg(64'h4000, 64, 0);
    run(used, err);
    check(!err && used == 0, "nothing writable: 0");

    // A DMA fault on the read: an error.
    fault_at = 64'h5000;
    seg(64'h5000, 16, 0); seg(64'hB000, 16, 1);
    run(used, err);
    check(err, "a faulting read is an error");
    fault_at = 64'hffff_ffff;
    seg(64'h4000, 16, 0); seg(64'hB000, 16, 1);
    run(used, err);
    check(!err && used == 16, "the next request is clean");
    pass();
  end
endmodule
