// fv_vq_desc_check alone: each cause of a malformed descriptor in the walker's order (loop,
// bad indirect, zero length, read after write, full segment table, next out of the table,
// outside the function's DMA windows, chain too long), a wrapping buffer in no window, a window
// of another function not used, indirect entry and a plain segment.
module tb_fv_vq_desc_check;
  `include "tb_common.svh"
  localparam int NW = fv_regs_pkg::NUM_DMA_WINDOWS;
  localparam int WPF = fv_regs_pkg::DMA_WINDOWS_PER_FUNCTION;
  localparam int F_NEXT = 1 << fv_regs_pkg::VIRTQ_DESC_F_NEXT_BIT;
  localparam int F_WRITE = 1 << fv_regs_pkg::VIRTQ_DESC_F_WRITE_BIT;
  localparam int F_IND = 1 << fv_regs_pkg::VIRTQ_DESC_F_INDIRECT_BIT;
  logic [127:0] desc;
  logic [15:0] idx, walked, table_limit, next;
  logic c_ind, in_ind, seen_write, seg_full, is_write, has_next;
  logic [33:0] chain_bytes, chain_next;
  logic [2:0] func;
  logic [NW-1:0][63:0] win_base, win_end;
  fv_vq_pkg::desc_verdict_e verdict;
  logic [3:0] cause;
  logic [31:0] info, len;
  logic [63:0] addr;

  fv_vq_desc_check dut (.*);

  task automatic d(input longint a, input int l, input int flags, input int nx);
    desc = {16'(nx), 16'(flags), 32'(l), 64'(a)};
    #1;
  endtask
  task automatic expect_fail(input fv_regs_pkg::queue_error_e c, input int inf, input string what);
    check(verdict == fv_vq_pkg::V_FAIL && cause == 4'(c) && info == 32'(inf), what);
  endtask

  initial begin
    win_base = '0; win_end = '0;
    // Function 2: [0x10000, 0x20000) and [0x40000, 0x40100); function 3: [0x80000, 0x90000).
    win_base[2 * WPF] = 64'h10000; win_end[2 * WPF] = 64'h20000;
    win_base[2 * WPF + 1] = 64'h40000; win_end[2 * WPF + 1] = 64'h40100;
    win_base[3 * WPF] = 64'h80000; win_end[3 * WPF] = 64'h90000;
    func = 3'd2; idx = 16'd5; walked = 16'd0; table_limit = 16'd256;
    {c_ind, in_ind, seen_write, seg_full} = 4'b1000; chain_bytes = '0;

    d(64'h10000, 4096, F_NEXT, 6);
    check(verdict == fv_vq_pkg::V_SEG && has_next && next == 6 && !is_write && addr == 64'h10000
          && len == 4096 && chain_next == 4096, "a readable segment inside window 0");
    d(64'h400f0, 16, F_WRITE, 0);
    check(verdict == fv_vq_pkg::V_SEG && !has_next && is_write, "a last writable segment in window 1");
    d(64'h400f0, 17, F_WRITE, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW, 5, "one byte past the window");
    d(64'h80000, 16, 0, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW, 5, "another function's window");
    d(64'hFFFF_FFFF_FFFF_FF00, 32'h200, 0, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW, 5, "a buffer wrapping the address space");

    walked = 16'd256;
    d(64'h10000, 16, 0, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_DESC_LOOP, 5, "more descriptors than the table: a loop");
    walked = 16'd3;

    d(64'h10000, 64, F_IND, 0);
    check(verdict == fv_vq_pkg::V_INDIRECT && addr == 64'h10000 && len == 64, "an indirect table");
    c_ind = 1'b0;
    d(64'h10000, 64, F_IND, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_BAD_INDIRECT, 5, "indirect without INDIRECT_DESC");
    c_ind = 1'b1; in_ind = 1'b1;
    d(64'h10000, 64, F_IND, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_BAD_INDIRECT, 5, "an indirect table inside an indirect table");
    in_ind = 1'b0;
    d(64'h10000, 60, F_IND, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_BAD_INDIRECT, 5, "an indirect table not a multiple of 16 bytes");
    d(64'h10000, 64, F_IND | F_NEXT, 1);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_BAD_INDIRECT, 5, "an indirect descriptor with NEXT");
    d(64'h50000, 64, F_IND, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW, 5, "an indirect table outside the windows");

    d(64'h10000, 0, 0, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_ZERO_LEN, 5, "a zero length");
    seen_write = 1'b1;
    d(64'h10000, 16, 0, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_BAD_DIRECTION, 5, "a readable buffer after a writable one");
    seen_write = 1'b0;
    d(64'h10000, 16, F_NEXT, 256);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_BAD_INDEX, 256, "a next index outside the table (info: it)");
    seg_full = 1'b1;
    d(64'h10000, 16, F_NEXT, 256);
    check(verdict == fv_vq_pkg::V_PUNT, "a full segment table punts before the next index is looked at");
    seg_full = 1'b0;
    chain_bytes = 34'(fv_regs_pkg::MAX_CHAIN_BYTES) - 34'd16;
    d(64'h10000, 16, 0, 0);
    check(verdict == fv_vq_pkg::V_SEG, "a chain of exactly MAX_CHAIN_BYTES");
    d(64'h10000, 17, 0, 0);
    expect_fail(fv_regs_pkg::QUEUE_ERROR_CHAIN_TOO_LONG, 5, "one byte more");
    pass();
  end
endmodule
