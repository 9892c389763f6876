// fv_vq_dispatch alone: what the engine does next when idle (a decision before a slot's result
// before a completion before a new request; results and decisions even while !run; neither a
// result nor a completion while every decision entry is taken); a request's way through the avail stage, the
// walk, its avail entry consumed (saved state) and a slot or the CPU; a slot's result published,
// punted or failing its queue (watchdog, DMA error) or dropped on a failed queue; a completion
// published, failing its queue or dropped; an interrupt decision failing, raising or not.
module tb_fv_vq_dispatch;
  `include "tb_common.svh"
  localparam int NQ = 4, NSLOT = 2;
  logic run;
  logic [31:0] cycle;
  fv_vq_pkg::disp_state_e state;
  logic [NQ-1:0][31:0] desc_lo, desc_hi, avail_lo, avail_hi, used_lo, used_hi;
  logic [NQ-1:0][15:0] size, msix_vector, saved_last_avail, saved_used_idx;
  logic [NQ-1:0] event_idx, indirect, err, save_we;
  logic [15:0] save_last_avail, save_used_idx;
  logic pick_valid, pd_ready, pd_full, ds_any_ready, cpl_pending, idle_pick, idle_cpl;
  logic [1:0] pick, ready_q, c_q, dec_q, cq;
  logic a_done, a_fault, a_in_ring, w_done, w_fault, w_ind;
  fv_vq_pkg::avail_result_e a_result;
  fv_vq_pkg::walk_result_e w_result;
  fv_vq_pkg::cpl_result_e c_result;
  logic [15:0] a_head, r_head, r_pos, c_head, c_pos, dec_vec;
  logic [3:0] a_cause, w_cause, c_cause, f_cause;
  logic [31:0] a_info, w_info, w_bytes, r_walked, r_start, r_written, c_len, c_info, dec_info;
  logic [63:0] w_first_addr, r_first_addr, r_arg;
  logic ready_dslot, cs;
  logic r_ind, r_err, r_tmo, r_punt, c_done, c_no_irq, c_failed, p_published, p_done;
  logic dec_fail, dec_irq, irq_ready, punt_ready;
  logic [7:0] r_reason, p_reason;
  logic [63:0] c_desc, c_avail, c_used, first_addr, p_arg;
  logic [15:0] c_size, c_mask, c_vec, last_avail, used_idx, head, req_pos;
  logic c_evt, c_ind, in_ind, pub_no_irq, load_slot, ev_error, ev_fault, ev_irq;
  logic [31:0] walked_bytes, start_cycle, pub_len, f_info;

  fv_vq_dispatch #(.NQ(NQ), .NSLOT(NSLOT)) dut (.*);
  always @(posedge clk) cycle <= rst ? '0 : cycle + 32'd1;

  task automatic quiet();
    {pick_valid, pd_ready, pd_full, ds_any_ready, cpl_pending, a_done, a_in_ring, w_done} = '0;
    {c_done, p_published, p_done, irq_ready, punt_ready, dec_fail, dec_irq} = '0;
  endtask
  task automatic step();
    @(negedge clk);
    #1;
  endtask
  task automatic expect_state(input fv_vq_pkg::disp_state_e s, input string what);
    check(state == s, $sformatf("%s (state %s)", what, state.name()));
  endtask
  logic [31:0] ring_cycle;        // the cycle the avail stage found the ring entry
  // The way of a new request of queue q up to the walk.
  task automatic pick_and_walk(input int q, input int h);
    pick_valid = 1'b1; pick = 2'(q); run = 1'b1;
    #1;
    check(idle_pick, "a pick when nothing else waits");
    step();
    pick_valid = 1'b0;
    expect_state(fv_vq_pkg::S_AVAIL, "the avail stage");
    a_in_ring = 1'b1;
    ring_cycle = cycle;
    step();
    a_in_ring = 1'b0;
    a_done = 1'b1; a_result = fv_vq_pkg::AVAIL_HEAD; a_head = 16'(h);
    step();
    a_done = 1'b0;
    expect_state(fv_vq_pkg::S_WALK, "the walk");
    check(head == 16'(h), "the head from the avail stage");
  endtask

  initial begin
    quiet();
    {run, desc_hi, avail_hi, used_hi, err, a_head, a_cause, a_info, a_fault, w_cause, w_info} = '0;
    {w_fault, w_ind, w_bytes, w_first_addr, ready_dslot, ready_q, r_head, r_pos, r_first_addr} = '0;
    {r_walked, r_ind, r_start, r_written, r_err, r_tmo, r_punt, r_reason, r_arg, c_q, c_head} = '0;
    {c_pos, c_len, c_no_irq, c_failed, c_cause, c_info, dec_q, dec_vec, dec_info, pick} = '0;
    a_result = fv_vq_pkg::AVAIL_NONE; w_result = fv_vq_pkg::WALK_LAST; c_result = fv_vq_pkg::CPL_DROP;
    for (int q = 0; q < NQ; q++) begin
      desc_lo[q] = 32'h1000 * (q + 1); avail_lo[q] = 32'h10000 * (q + 1);
      used_lo[q] = 32'h100000 * (q + 1); size[q] = 16'(64 << q); msix_vector[q] = 16'(q + 5);
      saved_last_avail[q] = 16'(10 * q); saved_used_idx[q] = 16'(7 * q);
    end
    event_idx = 4'b0101; indirect = 4'b0011;
    reset_dut();
    #1;
    expect_state(fv_vq_pkg::S_IDLE, "idle after reset");

    // A request of queue 2: context loaded, walked, its avail entry consumed, to a slot.
    pick_and_walk(2, 33);
    check(cq == 2 && c_desc == 64'h3000 && c_avail == 64'h30000 && c_used == 64'h300000
          && c_size == 256 && c_mask == 255 && c_evt && !c_ind && c_vec == 7
          && last_avail == 20 && used_idx == 14, "queue 2's context");
    check(start_cycle == ring_cycle, "the request's start: its ring entry's cycle");
    w_done = 1'b1; w_result = fv_vq_pkg::WALK_LAST;
    w_first_addr = 64'hABC000; w_bytes = 32'd512; w_ind = 1'b1;
    step();
    w_done = 1'b0;
    expect_state(fv_vq_pkg::S_TAKE, "its avail entry is consumed");
    step();
    expect_state(fv_vq_pkg::S_DEV, "to a slot");
    check(req_pos == 20 && last_avail == 21 && first_addr == 64'hABC000 && walked_bytes == 512
          && in_ind, "the request in hand");
    check(save_we == 4'b0100 && save_last_avail == 21 && save_used_idx == 14, "saved state: 21, 14");
    step();
    expect_state(fv_vq_pkg::S_IDLE, "back to idle");

    // A chain too long for the slots: to the CPU.
    pick_and_walk(1, 9);
    w_done = 1'b1; w_result = fv_vq_pkg::WALK_PUNT;
    step();
    w_done = 1'b0;
    step();
    expect_state(fv_vq_pkg::S_PUNT, "a walk punted goes to the punt ring");
    check(p_reason == 8'(fv_regs_pkg::PUNT_REASON_CHAIN_TOO_LONG) && p_arg == 0, "chain_too_long");
    step();
    expect_state(fv_vq_pkg::S_PUNT, "until the punt writer takes it");
    punt_ready = 1'b1;
    step();
    punt_ready = 1'b0;
    expect_state(fv_vq_pkg::S_IDLE, "taken");

    // Everything at once: the decision first; then the slot's result; then (every decision
    // entry taken) neither a result, a completion nor a pick.
    pd_ready = 1'b1; ds_any_ready = 1'b1; cpl_pending = 1'b1; pick_valid = 1'b1;
    dec_q = 2'd3; dec_vec = 16'd44;
    #1;
    check(!idle_pick && !idle_cpl, "a decision goes first");
    step();
    pd_ready = 1'b0;
    expect_state(fv_vq_pkg::S_DECIDE, "the decision");
    check(cq == 3 && c_vec == 44, "the decision's queue and vector");
    dec_irq = 1'b1;
    step();
    dec_irq = 1'b0;
    expect_state(fv_vq_pkg::S_IRQ, "an interrupt is due");
    irq_ready = 1'b1;
    step();
    irq_ready = 1'b0;
    check(ev_irq && state == fv_vq_pkg::S_IDLE, "requested");
    pd_full = 1'b1;
    #1;
    check(idle_pick && !idle_cpl, "every decision entry taken: no completion, no result; a pick");
    step();
    pick_valid = 1'b0;
    expect_state(fv_vq_pkg::S_AVAIL, "the pick goes on (its result will wait)");
    a_done = 1'b1; a_result = fv_vq_pkg::AVAIL_NONE;
    step();
    a_done = 1'b0;
    step();
    expect_state(fv_vq_pkg::S_IDLE, "the slot's result still waits");
    pd_full = 1'b0;

    // A slot's result: published.
    ready_dslot = 1'b1; ready_q = 2'd0;
    r_head = 16'd5; r_pos = 16'd3; r_written = 32'd4096; r_start = 32'd77;
    step();
    ds_any_ready = 1'b0;
    expect_state(fv_vq_pkg::S_LOAD, "a slot's result");
    check(cs == 1 && cq == 0 && load_slot, "slot 1's, queue 0");
    step();
    expect_state(fv_vq_pkg::S_PUB, "published");
    check(head == 5 && req_pos == 3 && pub_len == 4096 && !pub_no_irq && start_cycle == 77
          && c_used == 64'h100000 && used_idx == 0, "the result and its queue's context");
    p_published = 1'b1;
    step();
    p_published = 1'b0;
    check(save_we == 4'b0001 && save_used_idx == 1 && save_last_avail == 0, "saved: used_idx + 1");
    p_done = 1'b1;
    step();
    p_done = 1'b0;
    expect_state(fv_vq_pkg::S_IDLE, "done");

    // Results that punt, fail or meet a failed queue.
    ds_any_ready = 1'b1; r_punt = 1'b1; r_reason = 8'd19; r_arg = 64'd99;
    step();
    step();
    ds_any_ready = 1'b0;
    expect_state(fv_vq_pkg::S_PUNT, "a result the slot punts");
    check(p_reason == 19 && p_arg == 99, "with its reason and argument");
    punt_ready = 1'b1;
    step();
    punt_ready = 1'b0;
    r_punt = 1'b0;
    ds_any_ready = 1'b1; r_tmo = 1'b1; r_err = 1'b1;
    step();
    step();
    ds_any_ready = 1'b0;
    expect_state(fv_vq_pkg::S_FAIL, "a watchdog answer fails the queue");
    check(f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_ENGINE_TIMEOUT) && f_info == 5, "engine_timeout, its head");
    step();
    check(ev_error && !ev_fault && state == fv_vq_pkg::S_IDLE, "counted, not a DMA fault");
    r_tmo = 1'b0;
    ds_any_ready = 1'b1;
    step();
    step();
    ds_any_ready = 1'b0;
    check(state == fv_vq_pkg::S_FAIL && f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_DMA_FAULT), "a DMA error");
    step();
    check(ev_error && ev_fault, "counted as a DMA fault");
    r_err = 1'b0;
    err[0] = 1'b1;
    ds_any_ready = 1'b1;
    step();
    step();
    ds_any_ready = 1'b0;
    expect_state(fv_vq_pkg::S_IDLE, "a failed queue's result is dropped");
    err[0] = 1'b0;

    // Completions: published (even without run for results, but not for completions).
    run = 1'b0; cpl_pending = 1'b1;
    #1;
    check(!idle_cpl, "no completion read while !run");
    run = 1'b1;
    #1;
    check(idle_cpl, "a completion");
    step();
    expect_state(fv_vq_pkg::S_CPL, "read");
    cpl_pending = 1'b0;
    c_done = 1'b1; c_result = fv_vq_pkg::CPL_LOAD; c_q = 2'd1; c_head = 16'd8; c_pos = 16'd6;
    c_len = 32'd100; c_no_irq = 1'b1; c_failed = 1'b1;
    step();
    c_done = 1'b0;
    expect_state(fv_vq_pkg::S_LOAD, "a completion to publish");
    check(cq == 1 && !load_slot && head == 8 && req_pos == 6 && pub_len == 100 && pub_no_irq
          && ev_error, "its queue, head, position, length; the CPU's failure counted");
    step();
    expect_state(fv_vq_pkg::S_PUB, "published");
    p_done = 1'b1;
    step();
    p_done = 1'b0;
    cpl_pending = 1'b1;
    step();
    cpl_pending = 1'b0;
    c_done = 1'b1; c_result = fv_vq_pkg::CPL_FAIL; c_q = 2'd3;
    c_cause = 4'(fv_regs_pkg::QUEUE_ERROR_BAD_COMPLETION); c_info = 32'd12;
    step();
    c_done = 1'b0;
    check(state == fv_vq_pkg::S_FAIL && cq == 3 && f_cause == c_cause && f_info == 12,
          "a bad completion fails its queue");
    step();
    cpl_pending = 1'b1;
    step();
    cpl_pending = 1'b0;
    c_done = 1'b1; c_result = fv_vq_pkg::CPL_DROP; c_q = 2'd2;
    step();
    c_done = 1'b0;
    check(state == fv_vq_pkg::S_IDLE && cq == 3, "a dropped completion changes nothing");

    // A decision whose used-ring write was refused fails its queue.
    pd_ready = 1'b1; dec_q = 2'd2;
    step();
    pd_ready = 1'b0;
    dec_fail = 1'b1; dec_info = 32'h200000;
    step();
    dec_fail = 1'b0;
    check(state == fv_vq_pkg::S_FAIL && f_info == 32'h200000, "a refused write: the decision fails");
    step();
    check(ev_fault, "a DMA fault");
    // Nothing available: the avail stage ends the pick.
    pick_valid = 1'b1; pick = 2'd0;
    step();
    pick_valid = 1'b0;
    a_done = 1'b1; a_result = fv_vq_pkg::AVAIL_NONE;
    step();
    a_done = 1'b0;
    expect_state(fv_vq_pkg::S_IDLE, "nothing available");
    pass();
  end
endmodule
