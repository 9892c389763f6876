// fv_vq_sched alone: doorbells make queues pending and the pick goes round-robin; CPU-owned,
// disabled and failed queues are not picked, nor anything without a free tag and slot; a
// NOTIFICATION_DATA doorbell's index is offered with the pick; errors with cause and info, kept
// while disabled and cleared by a new enable; requests held count in INFLIGHT and keep
// STATUS.enabled up after a disable until they drained.
module tb_fv_vq_sched;
  `include "tb_common.svh"
  localparam int NQ = 4;
  logic [NQ-1:0] enable, owner, doorbell, notify_data, err, stopped, q_runs, hint_valid;
  logic [NQ-1:0][15:0] doorbell_idx, saved_last_avail, hint, st_inflight;
  logic idle, can_pick, pick_valid, pick_hint, take_pick, requeue, fail, avail_seen;
  logic held_inc, held_dec, holds_request;
  logic [1:0] cq, pick, held_q;
  logic [15:0] pick_avail, avail_val;
  logic [3:0] fail_cause;
  logic [31:0] fail_info;
  logic [NQ-1:0] q_has_dec, st_enabled, st_error;
  logic [NQ-1:0][3:0] st_cause;
  logic [NQ-1:0][31:0] st_err_info;

  fv_vq_sched #(.NQ(NQ)) dut (.*);

  task automatic ring(input int q);
    doorbell[q] = 1'b1;
    @(negedge clk);
    doorbell = '0;
  endtask
  // Take the pick (checked to be q) and go back to idle.
  task automatic take(input int q);
    #1;
    check(pick_valid && pick == 2'(q), $sformatf("queue %0d picked", q));
    take_pick = 1'b1;
    @(negedge clk);
    take_pick = 1'b0;
    cq = 2'(q);
  endtask

  initial begin
    {enable, owner, doorbell, notify_data, doorbell_idx, saved_last_avail} = '0;
    {idle, can_pick, take_pick, requeue, fail, avail_seen, held_inc, held_dec} = '0;
    {holds_request, cq, held_q, avail_val, fail_cause, fail_info, q_has_dec} = '0;
    reset_dut();
    idle = 1'b1; can_pick = 1'b1;
    enable = 4'b1111; owner = 4'b0100;
    saved_last_avail[1] = 16'd40;
    @(negedge clk);                 // the enable edges make every queue pending once
    take(0);
    #1;
    check(pick == 1 && pick_avail == 16'd40, "a newly enabled queue starts from its saved position");
    take(1);
    take(3);                        // queue 2 is CPU-owned
    #1;
    check(!pick_valid, "nothing pending after each queue was looked at");

    ring(2);
    #1;
    check(!pick_valid, "a CPU-owned queue's doorbell picks nothing");
    ring(3); ring(1);
    take(1);                        // round-robin after queue 3: 0, 1, ...
    take(3);
    ring(0);
    can_pick = 1'b0;
    #1;
    check(!pick_valid, "no pick without a free punt tag and device slot");
    can_pick = 1'b1;
    take(0);

    // NOTIFICATION_DATA: the doorbell's value is offered with the pick, once.
    notify_data[1] = 1'b1; doorbell_idx[1] = 16'd77;
    ring(1);
    #1;
    check(hint_valid[1] && hint[1] == 16'd77 && pick_hint && pick_avail == 16'd77,
          "the doorbell's avail index comes with the pick");
    take(1);
    #1;
    check(!hint_valid[1], "the hint is used once");
    avail_seen = 1'b1; avail_val = 16'd90;
    @(negedge clk);
    avail_seen = 1'b0;
    notify_data[1] = 1'b0;
    ring(1);
    #1;
    check(!pick_hint && pick_avail == 16'd90, "a doorbell without data: the avail index last read");
    take(1);

    // Requests held: counted in INFLIGHT, and a disabled queue stays enabled until they drain.
    idle = 1'b0; cq = 2'd0;
    holds_request = 1'b1;
    #1;
    check(st_inflight[0] == 1, "the request being walked counts");
    held_inc = 1'b1;
    @(negedge clk);
    @(negedge clk);
    held_inc = 1'b0; holds_request = 1'b0;
    idle = 1'b1;
    enable[0] = 1'b0;
    #1;
    check(st_inflight[0] == 2 && st_enabled[0] && stopped[0] && !q_runs[0],
          "disabled with two requests held: still enabled, stopped");
    held_dec = 1'b1; held_q = 2'd0;
    @(negedge clk);
    #1;
    check(st_enabled[0] && st_inflight[0] == 1, "one left");
    @(negedge clk);
    held_dec = 1'b0;
    #1;
    check(!st_enabled[0] && st_inflight[0] == 0, "drained: STATUS.enabled drops");
    q_has_dec[0] = 1'b1;
    #1;
    check(st_enabled[0], "an interrupt decision pending keeps it up too");
    q_has_dec = '0;

    // Errors: cause and info; a failed queue is not picked, keeps its error while disabled, and
    // forgets it when enabled again.
    idle = 1'b0; cq = 2'd3;
    fail = 1'b1; fail_cause = 4'd7; fail_info = 32'hABCD;
    @(negedge clk);
    fail = 1'b0; idle = 1'b1;
    #1;
    check(err[3] && st_error[3] && st_cause[3] == 7 && st_err_info[3] == 32'hABCD,
          "the error, its cause and its info");
    ring(3);
    #1;
    check(!pick_valid, "a failed queue is not picked");
    enable[3] = 1'b0;
    cycles(2);
    #1;
    check(st_error[3], "the error stays while disabled");
    enable[3] = 1'b1;
    @(negedge clk);
    #1;
    check(!st_error[3] && pick_valid && pick == 3, "a new enable clears it and looks at the queue");
    pass();
  end
endmodule
