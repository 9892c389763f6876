// fv_vq_desc_walk alone (DW 64: eight beats per 4-descriptor read; a 4-entry segment table):
// a chain read through its cache (one read for descriptors in a row, another where it jumps),
// an indirect table, a chain longer than the segment table punted, a loop caught at the table's
// size, a refused descriptor read failing with its address, the first descriptors taken from the
// prefetch (no read) and a walk waiting for a prefetch on its way.
module tb_fv_vq_desc_walk;
  `include "tb_common.svh"
  localparam int DW = 64, MAX_SEGS = 4, DPF = 4;
  localparam int NW = fv_regs_pkg::NUM_DMA_WINDOWS;
  localparam longint TABLE = 64'h2000, IND = 64'h4000;
  localparam int F_NEXT = 1 << fv_regs_pkg::VIRTQ_DESC_F_NEXT_BIT;
  localparam int F_WRITE = 1 << fv_regs_pkg::VIRTQ_DESC_F_WRITE_BIT;
  localparam int F_IND = 1 << fv_regs_pkg::VIRTQ_DESC_F_INDIRECT_BIT;
  logic start, c_ind, done, f_fault, lookup, pf_hit, pf_wait, use_hit, in_ind;
  logic [15:0] start_head, head, c_size, rd_len;
  logic [63:0] c_desc, rd_addr, first_addr, fault_at;
  logic [2:0] func, pf_n;
  logic [NW-1:0][63:0] win_base, win_end;
  fv_vq_pkg::walk_result_e result;
  logic [3:0] f_cause;
  logic [31:0] f_info, walked_bytes;
  logic [DPF*128-1:0] pf_data;
  logic rd_valid, rd_ready, rc_valid, rc_last, rc_error, hold, wr_ready, wc_valid, wc_error;
  logic [DW-1:0] rc_data;
  logic [MAX_SEGS-1:0][63:0] seg_addr;
  logic [MAX_SEGS-1:0][31:0] seg_len;
  logic [MAX_SEGS-1:0] seg_write;
  logic [2:0] seg_count;
  int reads;
  fv_vq_pkg::walk_result_e res;     // the result at done (the chain is in the outputs a cycle later)
  logic [3:0] cause;
  logic [31:0] info;
  logic fault;

  fv_vq_desc_walk #(.DW(DW), .MAX_SEGS(MAX_SEGS), .DPF(DPF)) dut (.*);
  tb_dma_mem #(.DW(DW), .LAT(4)) mem (
    .clk, .rst, .hold, .fault_at, .rd_valid, .rd_ready, .rd_addr, .rd_len, .rc_valid, .rc_data,
    .rc_last, .rc_error, .wr_valid(1'b0), .wr_ready, .wr_addr('0), .wr_len('0), .wr_data('0),
    .wc_valid, .wc_error
  );
  always @(posedge clk) if (rd_valid && rd_ready) reads <= reads + 1;

  function automatic logic [127:0] dsc(input longint a, input int l, input int flags, input int nx);
    return {16'(nx), 16'(flags), 32'(l), 64'(a)};
  endfunction
  task automatic put(input longint table_addr, input int i, input logic [127:0] d);
    for (int b = 0; b < 16; b++) mem.mem[32'(table_addr) + 16 * i + b] = d[8 * b +: 8];
  endtask
  // Walk the chain at h; return at its end.
  task automatic walk(input int h);
    int n = 0;
    @(negedge clk);
    reads = 0;
    start_head = 16'(h); head = 16'(h);
    start = 1'b1;
    @(negedge clk);
    start = 1'b0;
    #1;
    while (!done && n < 400) begin
      @(negedge clk);
      #1;
      n++;
    end
    check(done, $sformatf("the walk of head %0d ends", h));
    res = result; cause = f_cause; info = f_info; fault = f_fault;
    @(negedge clk);
    #1;
  endtask

  initial begin
    {start, start_head, head, pf_hit, pf_wait, pf_data, pf_n, hold, reads} = '0;
    fault_at = '1;
    win_base = '0; win_end = '0;
    win_base[0] = 64'h10000; win_end[0] = 64'h80000;
    win_base[1] = IND; win_end[1] = IND + 64'h100;
    func = 3'd0; c_desc = TABLE; c_size = 16'd16; c_ind = 1'b1;
    // head 2: 2 -> 3 -> 9 (a jump: a second read), readable then writable.
    put(TABLE, 2, dsc(64'h10000, 100, F_NEXT, 3));
    put(TABLE, 3, dsc(64'h11000, 200, F_NEXT | F_WRITE, 9));
    put(TABLE, 9, dsc(64'h12000, 16, F_WRITE, 0));
    // head 4: an indirect table of three.
    put(TABLE, 4, dsc(IND, 48, F_IND, 0));
    put(IND, 0, dsc(64'h20000, 10, F_NEXT, 1));
    put(IND, 1, dsc(64'h21000, 20, F_NEXT, 2));
    put(IND, 2, dsc(64'h22000, 30, F_WRITE, 0));
    // head 10: five segments, one more than the table holds.
    for (int i = 10; i < 14; i++) put(TABLE, i, dsc(64'h30000 + 64'(i), 1, F_NEXT, i + 1));
    put(TABLE, 14, dsc(64'h30000, 1, 0, 0));
    // head 1: points at itself.
    put(TABLE, 1, dsc(64'h30000, 1, F_NEXT, 1));
    reset_dut();

    walk(2);
    check(res == fv_vq_pkg::WALK_LAST && seg_count == 3 && walked_bytes == 100
          && first_addr == 64'h10000 && !in_ind, "head 2: three segments, 100 readable bytes");
    check(seg_addr[1] == 64'h11000 && seg_len[1] == 200 && seg_write == 3'b110 && seg_len[2] == 16,
          "head 2: the segment table");
    check(reads == 2, $sformatf("head 2: 2 and 3 from one read, 9 from another (%0d)", reads));

    walk(4);
    check(res == fv_vq_pkg::WALK_LAST && in_ind && seg_count == 3 && walked_bytes == 30
          && seg_addr[0] == 64'h20000 && seg_write == 3'b100, "head 4: through the indirect table");

    walk(10);
    check(res == fv_vq_pkg::WALK_PUNT && seg_count == 4, "head 10: the fifth segment punts the chain");

    c_size = 16'd4;                 // (a larger table would fill the segment table first)
    walk(1);
    c_size = 16'd16;
    check(res == fv_vq_pkg::WALK_FAIL && !fault
          && cause == 4'(fv_regs_pkg::QUEUE_ERROR_DESC_LOOP) && info == 1,
          "head 1: a loop, caught at the table's size (the fifth visit of 4)");

    fault_at = TABLE + 16 * 9;
    walk(2);
    check(res == fv_vq_pkg::WALK_FAIL && fault
          && cause == 4'(fv_regs_pkg::QUEUE_ERROR_DMA_FAULT) && info == 32'(TABLE + 16 * 9),
          "a refused descriptor read: its address");
    fault_at = '1;

    // The prefetch has head 2's first four descriptors (3 is among them; 9 is read).
    pf_data = {dsc(0, 0, 0, 0), dsc(0, 0, 0, 0), dsc(64'h11000, 200, F_NEXT | F_WRITE, 9),
               dsc(64'h10000, 100, F_NEXT, 3)};
    pf_n = 3'd2;
    @(negedge clk);
    head = 16'd2; start_head = 16'd2;
    pf_hit = 1'b1;
    start = 1'b1;
    @(negedge clk);
    start = 1'b0;
    #1;
    check(lookup, "the walk's first descriptor is looked up");
    check(use_hit && !rd_valid, "a prefetch hit is used, not read");
    @(negedge clk);
    pf_hit = 1'b0;
    begin
      int n = 0;
      reads = 0;
      #1;
      while (!done && n < 100) begin
        @(negedge clk);
        #1;
        n++;
      end
    end
    check(done && result == fv_vq_pkg::WALK_LAST && reads == 1,
          "head 2 from the prefetch: one read (for 9)");

    // A prefetch on its way: the walk waits for it and reads nothing.
    @(negedge clk);
    pf_wait = 1'b1;
    start = 1'b1;
    @(negedge clk);
    start = 1'b0;
    cycles(10);
    #1;
    check(!rd_valid && !done && reads == 1, "waiting for the prefetch in flight");
    pf_wait = 1'b0; pf_hit = 1'b1;
    @(negedge clk);
    pf_hit = 1'b0;
    pass();
  end
endmodule
