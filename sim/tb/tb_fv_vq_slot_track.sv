// fv_vq_slot_track alone: chains go to the lowest free, unblocked slot with a dev_start pulse;
// a slot's result waits while an older chain of the same queue is still on a slot (avail order
// per queue), results of other queues pass it; a result to punt waits for a punt tag; a released
// slot is free again and no longer holds younger results back.
module tb_fv_vq_slot_track;
  `include "tb_common.svh"
  localparam int NQ = 4, NSLOT = 3;
  logic [NSLOT-1:0] dev_done, dev_error, dev_punt, dev_timeout, slot_blocked, dev_start;
  logic [NSLOT-1:0][31:0] dev_written;
  logic [NSLOT-1:0][7:0] dev_punt_reason;
  logic [NSLOT-1:0][63:0] dev_punt_arg;
  logic [NSLOT-1:0][1:0] slot_queue;
  logic assign_en, a_ind, slot_free, tag_free, any_ready, release_en;
  logic [1:0] a_q, ready_q, ready_slot, rd_slot;
  logic [15:0] a_head, a_pos, r_head, r_pos;
  logic [63:0] a_first_addr, r_first_addr, r_arg;
  logic [31:0] a_walked, a_start, r_walked, r_start, r_written;
  logic r_ind, r_err, r_tmo, r_punt;
  logic [7:0] r_reason;

  fv_vq_slot_track #(.NQ(NQ), .NSLOT(NSLOT)) dut (.*);

  task automatic give(input int q, input int h, input int expect_slot);
    #1;
    check(slot_free, "a slot is free");
    assign_en = 1'b1; a_q = 2'(q); a_head = 16'(h); a_pos = 16'(h + 1000);
    a_first_addr = 64'(h) << 12; a_walked = 32'(h * 3); a_ind = h[0]; a_start = 32'(h * 7);
    #1;
    check(dev_start == NSLOT'(1) << expect_slot, $sformatf("head %0d starts slot %0d", h, expect_slot));
    @(negedge clk);
    assign_en = 1'b0;
    #1;
    check(dev_start == '0, "dev_start is a pulse");
  endtask

  task automatic done(input int k, input bit punt, input int written);
    dev_done[k] = 1'b1; dev_punt[k] = punt; dev_written[k] = 32'(written);
    dev_punt_reason[k] = 8'(k + 20); dev_punt_arg[k] = 64'(k + 77);
    @(negedge clk);
    dev_done = '0; dev_punt = '0;
  endtask

  task automatic take(input int k);
    rd_slot = 2'(k); release_en = 1'b1;
    @(negedge clk);
    release_en = 1'b0;
  endtask

  initial begin
    {dev_done, dev_error, dev_punt, dev_timeout, slot_blocked, dev_written} = '0;
    {dev_punt_reason, dev_punt_arg, assign_en, a_q, a_head, a_pos, a_first_addr} = '0;
    {a_walked, a_ind, a_start, release_en, rd_slot} = '0;
    tag_free = 1'b1;
    reset_dut();

    slot_blocked = 3'b001;          // slot 0 may not take a request yet (quarantine)
    give(1, 10, 1);
    slot_blocked = '0;
    give(1, 11, 0);                 // queue 1 again: younger than slot 1's
    give(2, 20, 2);
    #1;
    check(!slot_free, "three chains fill three slots");
    check(slot_queue[1] == 1 && slot_queue[0] == 1 && slot_queue[2] == 2, "slot queues");

    done(0, 1'b0, 512);             // the younger chain of queue 1 finishes first
    #1;
    check(!any_ready, "a result waits for the older chain of its queue");
    done(2, 1'b0, 64);              // queue 2's result passes it
    #1;
    check(any_ready && ready_slot == 2 && ready_q == 2, "another queue's result is ready");
    rd_slot = 2'd2;
    #1;
    check(r_head == 20 && r_pos == 1020 && r_written == 64 && r_first_addr == 64'(20) << 12
          && r_walked == 60 && !r_ind && r_start == 140 && !r_punt && !r_err, "slot 2's result");
    take(2);
    #1;
    check(slot_free && !any_ready, "slot 2 free; queue 1's younger result still waits");

    tag_free = 1'b0;
    done(1, 1'b1, 0);               // the older chain: punted, but no punt tag is free
    #1;
    check(!any_ready, "a punted result waits for a free punt tag");
    tag_free = 1'b1;
    #1;
    check(any_ready && ready_slot == 1 && ready_q == 1, "the older result goes first");
    rd_slot = 2'd1;
    #1;
    check(r_punt && r_reason == 21 && r_arg == 78 && r_head == 10, "the punt's reason and argument");
    take(1);
    #1;
    check(any_ready && ready_slot == 0, "the younger result of queue 1 is ready once the older one left");
    rd_slot = 2'd0;
    #1;
    check(r_head == 11 && r_written == 512 && r_ind, "slot 0's result");
    take(0);

    // A watchdog answer is an error with its own flag.
    give(3, 30, 0);
    dev_timeout[0] = 1'b1;
    done(0, 1'b0, 0);
    dev_timeout = '0;
    rd_slot = 2'd0;
    #1;
    check(r_err && r_tmo, "a watchdog answer reads as an error and a timeout");
    pass();
  end
endmodule
