// fv_vq_avail_fetch alone (DW 64: two beats per 16-byte read, merged as the engine does): a pick
// reads avail->idx and a batch of heads and ends with the head at last_avail; the next pick of
// the queue finds its head in the window without a read; the read-ahead extends the window while
// the walk consumes it (never past the known avail index, never overwriting an entry not yet
// taken); nothing available ends the pick, under EVENT_IDX after writing avail_event and looking
// once more; a bad configuration, an avail index that jumped, a head outside the table and a
// refused read fail the queue with their cause and detail; a stopped queue forgets its window.
module tb_fv_vq_avail_fetch;
  `include "tb_common.svh"
  localparam int NQ = 4, DW = 64;
  localparam longint AVAIL = 64'h1000, USED = 64'h3000;   // queue 1, 32 entries
  logic [NQ-1:0][31:0] avail_lo, avail_hi;
  logic [NQ-1:0][15:0] size, hint;
  logic [NQ-1:0] q_runs, stopped, hint_valid;
  logic [1:0] start_q, cq, win_q;
  logic [15:0] start_avail, c_size, c_mask, last_avail, head, avail_val, win_base, rd_len, ra_rd_len;
  logic [15:0] wr_data, wseq_iss, wseq_ack;
  logic start, start_hint, c_evt, done, f_fault, in_ring, ring_phase, spec_window, win_load;
  logic ring_wait, avail_seen, take;
  logic [3:0] c_desc_low, f_cause;
  logic [63:0] c_avail, c_used, rd_addr, ra_rd_addr, wr_addr, fault_at;
  fv_vq_pkg::avail_result_e result;
  logic [31:0] f_info;
  logic [4:0] win_len;
  logic [15:0][15:0] win_heads;
  logic rd_valid, rd_ready, rc_valid, rc_last, rc_error, ra_rd_valid, ra_rd_ready, ra_rc_valid;
  logic wr_valid, wr_ready, wc_valid, wc_error, hold;
  logic [DW-1:0] rc_data;
  logic [127:0] rdata, rbuf;
  logic [2:0] rbeat;

  fv_vq_avail_fetch #(.NQ(NQ), .DW(DW)) dut (.*);

  // One memory behind the walk's master (0) and the read-ahead's (1): requests taken one at a
  // time, answered in order to the master that asked; the walk's data merged into 128 bits.
  logic m_rd_valid, m_rd_ready, m_rc_valid;
  logic [63:0] m_rd_addr;
  logic [15:0] m_rd_len;
  logic [DW-1:0] m_wr_data;
  int order[$];
  assign m_rd_valid = rd_valid || ra_rd_valid;
  assign m_rd_addr = rd_valid ? rd_addr : ra_rd_addr;
  assign m_rd_len = rd_valid ? rd_len : ra_rd_len;
  assign rd_ready = m_rd_ready;
  assign ra_rd_ready = m_rd_ready && !rd_valid;
  assign rc_valid = m_rc_valid && order.size() > 0 && order[0] == 0;
  assign ra_rc_valid = m_rc_valid && order.size() > 0 && order[0] == 1;
  always @(posedge clk) begin
    if (m_rc_valid && rc_last) void'(order.pop_front());
    if (m_rd_valid && m_rd_ready) order.push_back(rd_valid ? 0 : 1);
  end
  always_comb begin
    rdata = rbuf;
    if (rbeat < 3'(128 / DW)) rdata[rbeat * DW +: DW] = rc_data;
  end
  always @(posedge clk) begin
    if (rst) begin
      rbuf <= '0; rbeat <= '0; wseq_iss <= '0; wseq_ack <= '0;
    end else begin
      if (rc_valid) begin
        rbuf <= rc_last ? '0 : rdata;
        rbeat <= rc_last ? '0 : rbeat + 3'd1;
      end
      if (wr_valid && wr_ready) wseq_iss <= wseq_iss + 16'd1;
      if (wc_valid) wseq_ack <= wseq_ack + 16'd1;
    end
  end
  assign m_wr_data = DW'(wr_data);
  tb_dma_mem #(.DW(DW), .LAT(3), .DEPTH(2)) mem (
    .clk, .rst, .hold, .fault_at, .rd_valid(m_rd_valid), .rd_ready(m_rd_ready),
    .rd_addr(m_rd_addr), .rd_len(m_rd_len), .rc_valid(m_rc_valid), .rc_data, .rc_last, .rc_error,
    .wr_valid, .wr_ready, .wr_addr, .wr_len(16'd2), .wr_data(m_wr_data), .wc_valid, .wc_error
  );

  function automatic int entry(input int pos);
    return (7 * pos + 3) % 32;           // the head the driver put at avail position pos
  endfunction
  task automatic set16(input longint a, input int v);
    mem.mem[32'(a)] = 8'(v);
    mem.mem[32'(a) + 1] = 8'(v >> 8);
  endtask
  task automatic driver_adds(input int upto);       // avail->idx = upto
    set16(AVAIL + 2, upto);
  endtask
  // A pick of queue 1 at last_avail pos, knowing the avail index known; returns at done.
  int reads;
  always @(posedge clk) if (rd_valid && rd_ready) reads <= reads + 1;
  task automatic pick(input int pos, input int known);
    int n = 0;
    @(negedge clk);
    reads = 0;
    start = 1'b1; start_q = 2'd1; start_avail = 16'(known); start_hint = 1'b0;
    @(negedge clk);
    start = 1'b0;
    cq = 2'd1; last_avail = 16'(pos);
    #1;
    while (!done && n < 200) begin
      @(negedge clk);
      #1;
      n++;
    end
    check(done, $sformatf("the pick at %0d ends", pos));
  endtask
  task automatic consume(input int pos);
    pick(pos, 20);
    check(result == fv_vq_pkg::AVAIL_HEAD && head == 16'(entry(pos)), $sformatf("head at %0d", pos));
    @(negedge clk);
    take = 1'b1;
    @(negedge clk);
    take = 1'b0;
  endtask
  task automatic settle();
    int n = 0;
    while ((mem.rn != 0 || ra_rd_valid) && n < 100) begin
      @(negedge clk);
      n++;
    end
    #1;
  endtask

  initial begin
    for (int p = 0; p < 32; p++) set16(AVAIL + 4 + 2 * p, entry(p));
    driver_adds(20);
    {avail_hi, hint, hint_valid, stopped, start, start_q, start_avail, start_hint, cq} = '0;
    {c_evt, last_avail, take, hold, c_desc_low, reads} = '0;
    fault_at = '1;
    avail_lo = '0; avail_lo[1] = 32'(AVAIL);
    size = {NQ{16'd32}};
    q_runs = 4'b0010;
    c_avail = AVAIL; c_used = USED; c_size = 16'd32; c_mask = 16'd31;
    reset_dut();

    pick(0, 0);
    check(result == fv_vq_pkg::AVAIL_HEAD && head == 16'(entry(0)) && reads == 2,
          "first pick: avail->idx and a batch read, head at 0");
    check(win_q == 1 && win_base == 0 && win_len == 8, "the window holds 0..7");
    settle();
    check(win_len == 16, "the read-ahead brought 8..15");
    @(negedge clk);
    take = 1'b1;
    @(negedge clk);
    take = 1'b0;
    pick(1, 20);
    check(result == fv_vq_pkg::AVAIL_HEAD && head == 16'(entry(1)) && reads == 0,
          "the next pick finds its head in the window: no read");
    @(negedge clk);
    take = 1'b1;
    @(negedge clk);
    take = 1'b0;
    for (int p = 2; p < 9; p++) consume(p);
    settle();
    check(win_base == 4 && win_len == 16, "read ahead up to the known avail index: 4..19");
    for (int p = 9; p < 20; p++) consume(p);
    settle();
    check(win_base == 4, "nothing read past the avail index");

    // Nothing more available; under EVENT_IDX avail_event is written and avail->idx read again.
    pick(20, 20);
    check(result == fv_vq_pkg::AVAIL_NONE && avail_seen && avail_val == 20 && reads == 1,
          "nothing available (the avail index read is reported)");
    @(negedge clk);                      // (the last pick is back to idle)
    c_evt = 1'b1;
    pick(20, 20);
    check(result == fv_vq_pkg::AVAIL_NONE && reads == 2 && mem.mem[32'(USED) + 4 + 32 * 8] == 20,
          "EVENT_IDX: avail_event = 20 written, avail->idx read twice");
    @(negedge clk);
    c_evt = 1'b0;

    // Failures.
    driver_adds(20 + 33);
    pick(20, 20);
    check(result == fv_vq_pkg::AVAIL_FAIL && !f_fault
          && f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_AVAIL_JUMP) && f_info == {16'(53), 16'(20)},
          "an avail index more than a ring ahead");
    driver_adds(22);
    @(negedge clk);
    c_size = 16'd24;
    pick(20, 20);
    check(result == fv_vq_pkg::AVAIL_FAIL && f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_BAD_CONFIG)
          && f_info == 24, "a ring size not a power of two");
    @(negedge clk);
    c_size = 16'd32;
    set16(AVAIL + 4 + 2 * 20, 32);
    pick(20, 20);
    check(result == fv_vq_pkg::AVAIL_FAIL && f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_BAD_INDEX)
          && f_info == 32, "a head outside the table");
    fault_at = AVAIL + 4;
    stopped[1] = 1'b1;                   // (forget the window: the entry is read again)
    @(negedge clk);
    stopped[1] = 1'b0;
    #1;
    check(win_len == 0, "a stopped queue forgets its window");
    pick(21, 22);
    check(result == fv_vq_pkg::AVAIL_FAIL && f_fault
          && f_cause == 4'(fv_regs_pkg::QUEUE_ERROR_DMA_FAULT) && f_info == 32'(AVAIL + 4 + 2 * 21),
          "a refused ring read: its address");
    pass();
  end
endmodule
