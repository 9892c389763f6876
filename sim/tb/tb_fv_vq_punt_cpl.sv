// fv_vq_punt_tags alone: tags are taken lowest first until none is free, a completion is
// accepted only when tag, queue and head name a punted request in flight (and gives its avail
// position back), a released tag is free again, and alloc and release may share a cycle.
module tb_fv_vq_punt_tags;
  `include "tb_common.svh"
  localparam int NQ = 8, PUNT_TAGS = 4;
  logic alloc, release_en, tag_free, cpl_ok;
  logic [2:0] alloc_q;
  logic [15:0] alloc_head, alloc_pos, cpl_qid, cpl_head, cpl_pos;
  logic [1:0] free_tag, release_tag;
  logic [31:0] cpl_tag;

  fv_vq_punt_tags #(.NQ(NQ), .PUNT_TAGS(PUNT_TAGS)) dut (.*);

  task automatic punt(input int q, input int h, input int pos, input int expect_tag);
    check(tag_free && free_tag == 2'(expect_tag), $sformatf("tag %0d offered", expect_tag));
    alloc = 1'b1; alloc_q = 3'(q); alloc_head = 16'(h); alloc_pos = 16'(pos);
    @(negedge clk);
    alloc = 1'b0;
  endtask

  // Does the completion (tag, queue, head) name a request in flight?
  task automatic names(input int tag, input int q, input int h, output bit ok);
    cpl_tag = 32'(tag); cpl_qid = 16'(q); cpl_head = 16'(h);
    #1;
    ok = cpl_ok;
  endtask
  bit ok;

  initial begin
    {alloc, release_en, alloc_q, alloc_head, alloc_pos, release_tag} = '0;
    {cpl_tag, cpl_qid, cpl_head} = '0;
    reset_dut();
    #1;
    check(tag_free && free_tag == 0, "all tags free after reset");
    names(0, 0, 0, ok);
    check(!ok, "a completion before any punt names nothing");

    punt(3, 17, 100, 0);
    punt(5, 9, 200, 1);
    punt(3, 18, 101, 2);
    punt(0, 1, 7, 3);
    #1;
    check(!tag_free, "four punts take the four tags");

    names(1, 5, 9, ok);
    check(ok && cpl_pos == 200, "tag 1 names queue 5, head 9, position 200");
    names(2, 3, 18, ok);
    check(ok && cpl_pos == 101, "tag 2 names queue 3, head 18");
    names(1, 5, 10, ok);
    check(!ok, "a wrong head is refused");
    names(1, 3, 9, ok);
    check(!ok, "a wrong queue is refused");
    names(4, 5, 9, ok);
    check(!ok, "a tag beyond PUNT_TAGS is refused");
    names(32'h1_0001, 5, 9, ok);
    check(!ok, "a tag aliasing a valid one in its low bits is refused");
    names(1, 16'h0105, 9, ok);
    check(!ok, "a queue beyond NQ aliasing 5 is refused");

    // Release tag 1; it is offered again. (The checks above took time: back to a falling edge.)
    @(negedge clk);
    release_en = 1'b1; release_tag = 2'd1;
    @(negedge clk);
    release_en = 1'b0;
    #1;
    check(tag_free && free_tag == 1, "a released tag is free again");
    names(1, 5, 9, ok);
    check(!ok, "a completion of a released tag is refused (no second answer)");

    // Alloc tag 1 and release tag 2 in one cycle.
    @(negedge clk);
    alloc = 1'b1; alloc_q = 3'd6; alloc_head = 16'd44; alloc_pos = 16'd300;
    release_en = 1'b1; release_tag = 2'd2;
    @(negedge clk);
    {alloc, release_en} = '0;
    names(1, 6, 44, ok);
    check(ok && cpl_pos == 300, "tag 1 reused for queue 6");
    names(2, 3, 18, ok);
    check(!ok && tag_free && free_tag == 2, "tag 2 released in the same cycle");
    pass();
  end
endmodule
