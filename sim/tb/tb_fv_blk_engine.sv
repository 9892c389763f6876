// fv_blk_engine alone: OUT then IN of several segments through the storage port, byte for
// byte; what it punts and why (malformed, too large, length sums that wrap 32 bits, out of
// range, flush); a storage that stops answering (timeout, IOERR, the late answers dropped);
// write answers that reach it while idle are not counted as its own.
module tb_fv_blk_engine;
  `include "tb_common.svh"
  localparam int DW = 128, MAX_SEGS = 16;
  logic kill, start, done, error, punt, timed_out;
  logic [63:0] capacity, punt_arg;
  logic [31:0] max_sectors, timeout, written;
  logic [7:0] punt_reason;
  logic rd_valid, rd_ready, rc_valid, rc_last, rc_error, wr_valid, wr_ready, wc_valid, wc_error;
  logic [63:0] rd_addr, wr_addr;
  logic [15:0] rd_len, wr_len;
  logic [DW-1:0] rc_data, wr_data;
  logic st_rd_valid, st_rd_ready, st_rc_valid, st_rc_ready, st_rc_last, st_rc_error;
  logic st_wr_valid, st_wc_valid, st_wc_error;
  logic [63:0] st_rd_addr, st_wr_addr;
  logic [15:0] st_rd_len, st_wr_len;
  logic [3:0] st_rd_tag, st_rc_tag, st_wr_tag, st_wc_tag;
  logic [DW-1:0] st_rc_data, st_wr_data;
  logic hold, st_hold, wc_extra;
  logic [63:0] fault_at;
  logic m_wc_valid;

  // The engine's write answers: the memory's, plus stray ones the bench injects while it idles
  // (another engine's, on a shared slot).
  assign wc_valid = m_wc_valid || wc_extra;
  `include "tb_chain.svh"
  fv_blk_engine #(.DW(DW), .MAX_SEGS(MAX_SEGS)) dut (.*);
  tb_dma_mem #(.DW(DW)) mem (.clk, .rst, .hold, .fault_at, .rd_valid, .rd_ready, .rd_addr,
    .rd_len, .rc_valid, .rc_data, .rc_last, .rc_error, .wr_valid, .wr_ready, .wr_addr, .wr_len,
    .wr_data, .wc_valid(m_wc_valid), .wc_error);
  tb_store #(.DW(DW)) store (
    .clk, .rst, .hold(st_hold),
    .rd_valid(st_rd_valid), .rd_ready(st_rd_ready), .rd_addr(st_rd_addr), .rd_len(st_rd_len),
    .rd_tag(st_rd_tag), .rc_valid(st_rc_valid), .rc_tag(st_rc_tag), .rc_ready(st_rc_ready),
    .rc_data(st_rc_data), .rc_last(st_rc_last), .rc_error(st_rc_error),
    .wr_valid(st_wr_valid), .wr_addr(st_wr_addr), .wr_len(st_wr_len), .wr_data(st_wr_data),
    .wr_tag(st_wr_tag), .wc_valid(st_wc_valid), .wc_tag(st_wc_tag), .wc_error(st_wc_error)
  );

  task automatic header(input int rtype, input longint sector);
    for (int i = 0; i < 4; i++) mem.mem[32'h100 + i] = 8'(rtype >> (8 * i));
    for (int i = 4; i < 8; i++) mem.mem[32'h100 + i] = 8'd0;
    for (int i = 0; i < 8; i++) mem.mem[32'h108 + i] = 8'(sector >> (8 * i));
  endtask

  task automatic run();
    int n;
    start_chain();
    wait_done(50000, n);
    @(negedge clk);
  endtask

  // A punted request: header, one data segment, status.
  task automatic expect_punt(input int rtype, input longint sector, input int len,
                             input int reason, input string what);
    header(rtype, sector);
    seg(64'h100, 16, 0); seg(64'h1000, len, rtype == 0); seg(64'h2000, 1, 1);
    run();
    check(punt && punt_reason == 8'(reason) && !error, $sformatf("%s (punt %0b reason %0d error %0b status %0d)", what, punt, punt_reason, error, mem.mem[32'h2000]));
  endtask

  initial begin
    {kill, start, seg_addr, seg_len, seg_write, seg_count, hold, st_hold, wc_extra} = '0;
    fault_at = 64'hffff_ffff;
    capacity = 64'd128;
    max_sectors = 32'd16;
    timeout = 32'd0;
    for (int i = 0; i < 65536; i++) mem.mem[i] = 8'(i * 31 + i / 512);
    reset_dut();

    // OUT of 3 KiB from three segments of 1 KiB at sector 10.
    header(1, 10);
    mem.mem[32'h2000] = 8'hff;
    seg(64'h100, 16, 0); seg(64'h1000, 1024, 0); seg(64'h3000, 1024, 0); seg(64'h5000, 1024, 0);
    seg(64'h2000, 1, 1);
    run();
    check(!punt && !error && written == 1 && mem.mem[32'h2000] == 0, "OUT: served, status OK");
    for (int i = 0; i < 1024; i++) begin
      check(store.mem[10 * 512 + i] == mem.mem[32'h1000 + i], "OUT: first segment stored");
      check(store.mem[12 * 512 + i] == mem.mem[32'h3000 + i], "OUT: second segment stored");
      check(store.mem[14 * 512 + i] == mem.mem[32'h5000 + i], "OUT: third segment stored");
    end

    // Stray write answers while idle (an echo engine's, on a shared slot) are not its own.
    wc_extra = 1'b1;
    cycles(3);
    wc_extra = 1'b0;

    // IN of the same 3 KiB into two segments of 1.5 KiB.
    header(0, 10);
    seg(64'h100, 16, 0); seg(64'h8000, 1536, 1); seg(64'h9000, 1536, 1); seg(64'h2000, 1, 1);
    run();
    check(!punt && !error && written == 3073 && mem.mem[32'h2000] == 0, "IN: served");
    for (int i = 0; i < 1536; i++) begin
      check(mem.mem[32'h8000 + i] == store.mem[10 * 512 + i], "IN: first segment");
      check(mem.mem[32'h9000 + i] == store.mem[10 * 512 + 1536 + i], "IN: second segment");
    end

    // What the CPU serves.
    expect_punt(4, 0, 512, fv_regs_pkg::PUNT_REASON_BLK_FLUSH, "FLUSH is punted");
    expect_punt(1, 0, 100, fv_regs_pkg::PUNT_REASON_BLK_MALFORMED, "a partial sector is punted");
    expect_punt(1, 0, 17 * 512, fv_regs_pkg::PUNT_REASON_BLK_TOO_LARGE, "too large");
    expect_punt(0, 127, 1024, fv_regs_pkg::PUNT_REASON_BLK_OUT_OF_RANGE, "past the capacity");
    check(punt_arg == 64'd127, "the punt argument is the sector");
    // Lengths whose 32-bit sum wraps to 1 KiB (0xFFFFFE00 + 0x400 + 0xFFFFFFFF + 0x201).
    header(0, 0);
    seg(64'h100, 16, 0);
    seg(64'h8000, 32'hFFFF_FE00, 1); seg(64'h8000, 32'h400, 1);
    seg(64'h8000, 32'hFFFF_FFFF, 1); seg(64'h8000, 32'h201, 1);
    seg(64'h2000, 1, 1);
    run();
    check(punt && punt_reason == 8'(fv_regs_pkg::PUNT_REASON_BLK_TOO_LARGE),
          "a wrapping length sum is too large, not 1 KiB");
    // A header that is not 16 bytes.
    seg(64'h100, 8, 0); seg(64'h2000, 1, 1);
    run();
    check(punt && punt_reason == 8'(fv_regs_pkg::PUNT_REASON_BLK_MALFORMED), "short header");

    // The storage stops answering: the request fails with IOERR after the timeout.
    timeout = 32'd200;
    st_hold = 1'b1;
    header(0, 20);
    mem.mem[32'h2000] = 8'hff;
    seg(64'h100, 16, 0); seg(64'h8000, 512, 1); seg(64'h2000, 1, 1);
    run();
    check(!punt && mem.mem[32'h2000] == 8'd1, "a stuck store: IOERR");
    st_hold = 1'b0;
    cycles(50);
    // The late answers carry the old request's tag and are dropped: the next request is clean.
    header(0, 10);
    seg(64'h100, 16, 0); seg(64'hC000, 512, 1); seg(64'h2000, 1, 1);
    run();
    check(!punt && mem.mem[32'h2000] == 8'd0, "after the timeout: OK");
    for (int i = 0; i < 512; i++) check(mem.mem[32'hC000 + i] == store.mem[10 * 512 + i], "data");

    // A DMA fault on the guest buffer: an error.
    fault_at = 64'h7000;
    header(1, 0);
    seg(64'h100, 16, 0); seg(64'h7000, 512, 0); seg(64'h2000, 1, 1);
    run();
    check(error, "a faulting guest buffer is an error");
    pass();
  end
endmodule
