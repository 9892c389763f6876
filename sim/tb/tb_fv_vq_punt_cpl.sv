// fv_vq_punt_cpl alone: punt tags taken lowest first until none is free; completions read from
// the ring at CPL_CONS (wrapping at its size) and judged: one naming a punted request in flight
// is published with the position of its punt and frees its tag (its status counted, NO_IRQ
// passed on); a wrong tag, queue or head, a tag already answered, a tag beyond PUNT_TAGS fail
// the queue named (bad_completion, cpl_bad) or are dropped when that queue is beyond NQ;
// QUEUE_ERROR fails the queue with the CPU's cause and frees the tag; a refused read drops the
// entry.
module tb_fv_vq_punt_cpl;
  `include "tb_common.svh"
  localparam int NQ = 8, PUNT_TAGS = 4, DW = 128;
  localparam longint RING = 64'h3000;       // 8 entries
  logic alloc, tag_free, cpl_enable, cpl_pending, cpl_bad, start, done, taken, c_no_irq, c_failed;
  logic [2:0] alloc_q, c_q;
  logic [15:0] alloc_head, alloc_pos, c_head, c_pos, rd_len;
  logic [1:0] free_tag;
  logic [63:0] cpl_base, rd_addr;
  logic [4:0] cpl_size_log2;
  logic [31:0] cpl_prod, cpl_cons, c_len, f_info;
  fv_vq_pkg::cpl_result_e result;
  logic [3:0] f_cause;
  logic rd_valid, rd_ready, rc_valid, rc_last, rc_error;
  logic [DW-1:0] rc_data;
  logic [127:0] rdata;
  logic hold, wr_ready, wc_valid, wc_error;
  logic [63:0] fault_at;

  fv_vq_punt_cpl #(.NQ(NQ), .PUNT_TAGS(PUNT_TAGS)) dut (.*);
  assign rdata = rc_data;
  tb_dma_mem #(.DW(DW), .LAT(3)) mem (
    .clk, .rst, .hold, .fault_at, .rd_valid, .rd_ready, .rd_addr, .rd_len, .rc_valid, .rc_data,
    .rc_last, .rc_error, .wr_valid(1'b0), .wr_ready, .wr_addr('0), .wr_len('0), .wr_data('0),
    .wc_valid, .wc_error
  );

  task automatic punt(input int q, input int h, input int pos, input int expect_tag);
    #1;
    check(tag_free && free_tag == 2'(expect_tag), $sformatf("tag %0d offered", expect_tag));
    alloc = 1'b1; alloc_q = 3'(q); alloc_head = 16'(h); alloc_pos = 16'(pos);
    @(negedge clk);
    alloc = 1'b0;
  endtask
  // The CPU writes a completion at ring position cpl_prod and moves the producer index.
  task automatic complete(input int tag, input int q, input int h, input int len,
                          input int status, input int flags);
    fv_regs_pkg::cpl_entry_t e;
    logic [127:0] b;
    e = '0;
    e.tag = 32'(tag); e.qid = 16'(q); e.head = 16'(h); e.len = 32'(len);
    e.status = 8'(status); e.flags = 8'(flags);
    b = e;
    for (int i = 0; i < 16; i++) mem.mem[32'(RING) + 16 * (cpl_prod % 8) + i] = b[8 * i +: 8];
    cpl_prod = cpl_prod + 1;
  endtask
  // The engine reads the next completion; returns at the cycle it is done (outputs valid).
  task automatic read_one();
    int n = 0;
    @(negedge clk);                 // the previous read (if any) went back to idle
    #1;
    check(cpl_pending, "a completion is pending");
    start = 1'b1;
    @(negedge clk);
    start = 1'b0;
    #1;
    while (!done && n < 50) begin
      @(negedge clk);
      #1;
      n++;
    end
    check(done, "the read ends");
  endtask

  initial begin
    {alloc, alloc_q, alloc_head, alloc_pos, start, cpl_prod, hold} = '0;
    fault_at = '1;
    cpl_base = RING; cpl_size_log2 = 5'd3; cpl_enable = 1'b1;
    reset_dut();
    #1;
    check(!cpl_pending && tag_free && free_tag == 0, "idle after reset");

    punt(3, 17, 100, 0);
    punt(5, 9, 200, 1);
    punt(3, 18, 101, 2);
    punt(1, 4, 7, 3);
    #1;
    check(!tag_free, "four punts take the four tags");

    // An answer to tag 1: published with its punt's position; the tag is free again.
    complete(1, 5, 9, 4096, 0, 1);
    read_one();
    check(result == fv_vq_pkg::CPL_LOAD && taken && c_q == 5 && c_head == 9 && c_pos == 200
          && c_len == 4096 && c_no_irq && !c_failed && rd_addr == RING, "tag 1 answered");
    @(negedge clk);
    #1;
    check(cpl_cons == 1 && tag_free && free_tag == 1 && !cpl_bad, "consumed; tag 1 free");

    // The same tag again: it names nothing in flight now.
    complete(1, 5, 9, 4096, 0, 0);
    read_one();
    check(result == fv_vq_pkg::CPL_FAIL && !taken && c_q == 5
          && f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_BAD_COMPLETION) && f_info == 1,
          "a second answer fails queue 5 (bad_completion)");
    @(negedge clk);
    #1;
    check(cpl_bad, "cpl_bad pulses");
    // A wrong head, a wrong queue, a tag beyond PUNT_TAGS, a queue beyond NQ.
    complete(2, 3, 19, 0, 0, 0);
    read_one();
    check(result == fv_vq_pkg::CPL_FAIL && c_q == 3, "a wrong head");
    complete(2, 4, 18, 0, 0, 0);
    read_one();
    check(result == fv_vq_pkg::CPL_FAIL && c_q == 4, "a wrong queue");
    complete(6, 3, 18, 0, 0, 0);
    read_one();
    check(result == fv_vq_pkg::CPL_FAIL && f_info == 6, "a tag beyond PUNT_TAGS");
    complete(2, 9, 18, 0, 0, 0);
    read_one();
    check(result == fv_vq_pkg::CPL_DROP, "a queue beyond NQ: dropped");
    @(negedge clk);
    #1;
    check(tag_free && free_tag == 1 && dut.tag_valid == 4'b1101, "tags 0, 2, 3 still held after the bad ones");

    // A failed request (status 10): published, counted.
    complete(2, 3, 18, 0, 10, 0);
    read_one();
    check(result == fv_vq_pkg::CPL_LOAD && c_failed && c_pos == 101, "a failed request is published");
    // QUEUE_ERROR from the CPU's walk: the queue fails with its cause, the tag is freed.
    complete(0, 3, 17, 12345, 4'(fv_regs_pkg::QUEUE_ERROR_DESC_LOOP), 2);
    read_one();
    check(result == fv_vq_pkg::CPL_FAIL && taken && c_q == 3
          && f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_DESC_LOOP) && f_info == 12345,
          "QUEUE_ERROR: the CPU's cause and detail");
    @(negedge clk);
    #1;
    check(tag_free && free_tag == 0, "its tag is free");
    check(rd_addr == RING + 16 * (cpl_cons % 8), "the ring wraps at its size");

    // A refused read: the entry is dropped (and consumed).
    fault_at = RING;
    complete(3, 1, 4, 0, 0, 0);
    read_one();
    check(result == fv_vq_pkg::CPL_DROP && !taken, "a refused read drops the entry");
    @(negedge clk);
    #1;
    check(!cpl_pending && cpl_cons == cpl_prod, "all consumed");
    cpl_enable = 1'b0;
    fault_at = '1;
    complete(3, 1, 4, 0, 0, 0);
    #1;
    check(!cpl_pending, "a disabled ring has nothing pending");
    pass();
  end
endmodule
