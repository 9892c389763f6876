// fv_vq_irq_decide alone: a publish's decision reads avail->flags or used_event on its own
// master and waits for both used-ring writes to be acknowledged; decisions are taken oldest
// first whatever order their reads come back in; VRING_AVAIL_F_NO_INTERRUPT, EVENT_IDX
// (used_event == old used->idx), the CPU's no-interrupt flag and a vectorless queue; a refused
// used-ring write and a refused read fail the queue with their addresses; moderation defers
// until MAX_PENDING and fires a deferred interrupt after TIMEOUT cycles.
module tb_fv_vq_irq_decide;
  `include "tb_common.svh"
  localparam int NQ = 4, NDEC = 2;
  logic handoff, h_uerr, h_rec, h_evt, h_no_irq, pd_full, pd_ready, decide, d_fail, d_irq;
  logic [1:0] h_q, head_q;
  logic [15:0] h_seq, h_vec, h_old, head_vec, wseq_ack, ir_rc_data;
  logic [63:0] h_addr;
  logic [31:0] h_used, h_avail, d_info, cycle;
  logic [NQ-1:0] q_has_dec, enable, mod_fire;
  logic [NDEC-1:0] ir_rd_valid, ir_rd_ready, ir_rc_valid;
  logic [NDEC-1:0][63:0] ir_rd_addr;
  logic [NDEC-1:0][15:0] ir_rd_len;
  logic [NDEC-1:0][1:0] ir_queue;
  logic ir_rc_error, wc_valid, wc_error;
  logic [NQ-1:0][7:0] mod_max_pending;
  logic [NQ-1:0][23:0] mod_timeout;

  fv_vq_irq_decide #(.NQ(NQ), .NDEC(NDEC)) dut (.*);

  always @(posedge clk) cycle <= rst ? '0 : cycle + 32'd1;

  // A publish of queue q (its used element is write number seq) hands its decision over; its
  // read leaves on the next free master at once.
  task automatic publish(input int q, input int seq, input bit evt, input int old,
                         input bit no_irq, input int vec);
    #1;
    check(!pd_full, "a free decision entry");
    handoff = 1'b1; h_q = 2'(q); h_seq = 16'(seq); h_evt = evt; h_old = 16'(old);
    h_no_irq = no_irq; h_vec = 16'(vec); h_rec = 1'b0; h_uerr = 1'b0;
    h_addr = 64'h1000 * (q + 1) + (evt ? 64'h40 : 64'h0);
    h_used = 32'h2000 * (q + 1); h_avail = 32'h1000 * (q + 1);
    @(negedge clk);
    handoff = 1'b0;
  endtask
  // The read of entry e comes back with v (or refused).
  task automatic answer(input int e, input int v, input bit error);
    ir_rc_valid[e] = 1'b1; ir_rc_data = 16'(v); ir_rc_error = error;
    @(negedge clk);
    ir_rc_valid = '0; ir_rc_error = 1'b0;
  endtask
  task automatic take();
    decide = 1'b1;
    @(negedge clk);
    decide = 1'b0;
  endtask

  initial begin
    {handoff, h_uerr, h_rec, h_evt, h_no_irq, h_q, h_seq, h_vec, h_old, h_addr, h_used, h_avail} = '0;
    {decide, wseq_ack, ir_rc_data, ir_rc_valid, ir_rc_error, wc_valid, wc_error} = '0;
    {mod_max_pending, mod_timeout} = '0;
    ir_rd_ready = '1;
    enable = '1;
    reset_dut();

    // avail->flags without NO_INTERRUPT: an interrupt, once both writes are acknowledged.
    publish(1, 0, 1'b0, 10, 1'b0, 5);
    #1;
    check(q_has_dec[1] && ir_queue[0] == 1 && ir_rd_addr[0] == 64'h2000 && ir_rd_len[0] == 2,
          "the decision's read of avail->flags");
    @(negedge clk);
    #1;
    check(ir_rd_valid == '0, "the read left once");
    answer(0, 0, 1'b0);
    wseq_ack = 16'd1;
    #1;
    check(!pd_ready, "not before the used->idx write is acknowledged");
    wseq_ack = 16'd2;
    #1;
    check(pd_ready && head_q == 1 && head_vec == 5 && d_irq && !d_fail, "an interrupt for queue 1");
    take();
    #1;
    check(!pd_ready && !q_has_dec[1], "taken");

    // EVENT_IDX, two decisions in flight, answered out of order: taken oldest first.
    publish(2, 2, 1'b1, 7, 1'b0, 6);
    publish(3, 4, 1'b1, 8, 1'b0, 7);
    #1;
    check(pd_full && ir_rd_addr[1] == 64'h3040 && ir_rd_addr[0] == 64'h4040, "both entries busy");
    wseq_ack = 16'd6;
    answer(0, 8, 1'b0);              // queue 3: used_event == old: wanted
    #1;
    check(!pd_ready, "the younger decision waits for the older");
    answer(1, 3, 1'b0);              // queue 2: used_event 3 != old 7: not wanted
    #1;
    check(pd_ready && head_q == 2 && !d_irq && !d_fail, "queue 2: no interrupt (used_event)");
    take();
    #1;
    check(pd_ready && head_q == 3 && d_irq, "queue 3: an interrupt (used_event == old)");
    take();

    // NO_INTERRUPT, the CPU's no-interrupt flag, no vector.
    publish(1, 6, 1'b0, 0, 1'b0, 5);
    wseq_ack = 16'd8;
    answer(1, 1, 1'b0);
    #1;
    check(pd_ready && !d_irq, "VRING_AVAIL_F_NO_INTERRUPT");
    take();
    publish(1, 8, 1'b0, 0, 1'b1, 5);
    wseq_ack = 16'd10;
    answer(0, 0, 1'b0);
    #1;
    check(pd_ready && !d_irq, "the CPU asked for no interrupt");
    take();
    publish(1, 10, 1'b0, 0, 1'b0, fv_regs_pkg::NO_VECTOR);
    wseq_ack = 16'd12;
    answer(1, 0, 1'b0);
    #1;
    check(pd_ready && !d_irq, "a queue without a vector");
    take();

    // A refused used->idx write, a refused read.
    publish(2, 12, 1'b0, 0, 1'b0, 6);
    wseq_ack = 16'd13; wc_valid = 1'b1; wc_error = 1'b1;
    @(negedge clk);
    {wc_valid, wc_error} = '0;
    wseq_ack = 16'd14;
    answer(0, 0, 1'b0);
    #1;
    check(pd_ready && d_fail && d_info == 32'h6000 && !d_irq, "a refused used-ring write: the used ring");
    take();
    publish(3, 14, 1'b0, 0, 1'b0, 7);
    wseq_ack = 16'd16;
    answer(1, 0, 1'b1);
    #1;
    check(pd_ready && d_fail && d_info == 32'h4000, "a refused read: the avail ring");
    take();

    // Moderation on queue 0: up to 3 pending, or 40 cycles.
    mod_max_pending[0] = 8'd3; mod_timeout[0] = 24'd40;
    for (int i = 0; i < 3; i++) begin
      publish(0, 16 + 2 * i, 1'b0, 0, 1'b0, 9);
      wseq_ack = 16'(18 + 2 * i);
      answer(i % 2, 0, 1'b0);
      #1;
      check(pd_ready && d_irq == (i == 2), $sformatf("moderation: publish %0d %s", i,
                                                    i == 2 ? "interrupts" : "deferred"));
      take();
    end
    publish(0, 22, 1'b0, 0, 1'b0, 9);
    wseq_ack = 16'd24;
    answer(1, 0, 1'b0);
    take();                          // deferred again
    begin
      int fired = 0, waited = 0;
      while (fired == 0 && waited < 200) begin
        @(negedge clk);
        waited++;
        if (mod_fire[0]) fired = waited;
      end
      check(fired >= 40 && fired < 40 + NQ + 2, $sformatf("the deferred interrupt fires after its timeout (%0d)", fired));
    end
    pass();
  end
endmodule
