// fv_vq_desc_prefetch alone (NPF 2): the heads after the walk's position in the avail window
// have their first descriptors read ahead on free entries (fewer at the table's end); the walk's
// lookup of exactly (queue, position, head) hits a landed copy or waits for one in flight; a
// used, taken or stopped entry is dropped; head prediction reads the last published head while
// the walk waits for its ring entry, and the guess is used only if the ring entry names it.
module tb_fv_vq_desc_prefetch;
  `include "tb_common.svh"
  localparam int NQ = 4, DW = 128, NPF = 2, DPF = 4;
  localparam longint TABLE = 64'h2000;   // queue 1's descriptor table, 64 entries
  logic [NQ-1:0][31:0] desc_lo, desc_hi;
  logic [NQ-1:0][15:0] size;
  logic [NQ-1:0] q_runs, stopped;
  logic [1:0] win_q, cq;
  logic [15:0] win_base, last_avail, c_size, head;
  logic [4:0] win_len;
  logic [15:0][15:0] win_heads;
  logic [63:0] c_desc;
  logic ring_wait, spec_window, pick, ring_hit, win_load, lookup, hit, wait_pf, use_hit, take, publish;
  logic [DPF*128-1:0] hit_data;
  logic [2:0] hit_n;
  logic [NPF-1:0] pf_rd_valid, pf_rd_ready, pf_rc_valid;
  logic [NPF-1:0][63:0] pf_rd_addr;
  logic [NPF-1:0][15:0] pf_rd_len;
  logic [DW-1:0] rc_data;
  logic rc_last, rc_error;

  fv_vq_desc_prefetch #(.NQ(NQ), .DW(DW), .NPF(NPF), .DPF(DPF)) dut (.*);

  // One memory behind the NPF masters: requests taken one at a time (lowest master first) and
  // answered in order; the answer goes to the master that asked.
  logic m_rd_valid, m_rd_ready, m_rc_valid, hold, wr_ready, wc_valid, wc_error;
  logic [63:0] m_rd_addr, fault_at;
  logic [15:0] m_rd_len;
  int sel, order[$];
  always_comb begin
    sel = 0;
    for (int e = NPF - 1; e >= 0; e--) if (pf_rd_valid[e]) sel = e;
  end
  assign m_rd_valid = |pf_rd_valid;
  assign m_rd_addr = pf_rd_addr[sel];
  assign m_rd_len = pf_rd_len[sel];
  assign pf_rd_ready = m_rd_ready ? pf_rd_valid & NPF'(1 << sel) : '0;
  assign pf_rc_valid = m_rc_valid && order.size() > 0 ? NPF'(1 << order[0]) : '0;
  always @(posedge clk) begin
    if (m_rc_valid && rc_last) void'(order.pop_front());
    if (m_rd_valid && m_rd_ready) order.push_back(sel);
  end
  tb_dma_mem #(.DW(DW), .LAT(6), .DEPTH(2)) mem (
    .clk, .rst, .hold, .fault_at, .rd_valid(m_rd_valid), .rd_ready(m_rd_ready),
    .rd_addr(m_rd_addr), .rd_len(m_rd_len), .rc_valid(m_rc_valid), .rc_data, .rc_last,
    .rc_error, .wr_valid(1'b0), .wr_ready, .wr_addr('0), .wr_len('0), .wr_data('0), .wc_valid,
    .wc_error
  );

  function automatic logic [127:0] descriptor(input int i);
    return {16'(i + 1), 16'd0, 32'(i + 1), 64'h10000 + 64'(i) * 64'h100};
  endfunction
  // One cycle of a command input.
  `define PULSE(s) begin s = 1'b1; @(negedge clk); s = 1'b0; end
  task automatic settle(input int n);
    cycles(n);
    #1;
  endtask
  // The walk at position pos with head h looks for its first descriptors.
  task automatic look(input int pos, input int h);
    last_avail = 16'(pos); head = 16'(h); lookup = 1'b1;
    #1;
  endtask

  initial begin
    for (int i = 0; i < 64; i++) begin
      logic [127:0] d = descriptor(i);
      for (int b = 0; b < 16; b++) mem.mem[32'(TABLE) + 16 * i + b] = d[8 * b +: 8];
    end
    {desc_lo, desc_hi, stopped, win_q, cq, win_base, last_avail, head, win_len, win_heads} = '0;
    {ring_wait, spec_window, pick, ring_hit, win_load, lookup, use_hit, take, publish, hold} = '0;
    fault_at = '1;
    desc_lo[1] = 32'(TABLE);
    size = {NQ{16'd64}};
    q_runs = 4'b0010;
    cq = 2'd1; c_size = 16'd64; c_desc = TABLE;
    for (int p = 0; p < 16; p++) win_heads[p] = 16'(10 + 3 * p);
    win_heads[3] = 16'd62;                // near the table's end
    reset_dut();

    // The walk loads the window 0..7 at position 0 (the window is there the cycle after):
    // positions 1 and 2 are prefetched.
    last_avail = 16'd0;
    `PULSE(win_load)
    win_q = 2'd1; win_base = 16'd0; win_len = 5'd8;
    #1;
    check(pf_rd_valid[0] && pf_rd_addr[0] == TABLE + 13 * 16 && pf_rd_len[0] == 64,
          "position 1 (head 13) prefetched first");
    @(negedge clk);
    #1;
    check(pf_rd_valid[1] && pf_rd_addr[1] == TABLE + 16 * 16, "position 2 (head 16) on the second entry");
    look(1, 13);
    check(!hit && wait_pf, "the walk at position 1 waits for the prefetch in flight");
    lookup = 1'b0;
    settle(20);
    look(1, 13);
    check(hit && hit_n == 4 && hit_data == {descriptor(16), descriptor(15), descriptor(14), descriptor(13)},
          "a hit: four descriptors from head 13");
    look(1, 14);
    check(!hit && !wait_pf, "another head at that position does not hit");
    look(1, 13);
    `PULSE(use_hit)
    lookup = 1'b0;
    #1;
    check(pf_rd_valid[0] && pf_rd_addr[0] == TABLE + 62 * 16 && pf_rd_len[0] == 32,
          "the freed entry prefetches position 3: two descriptors left in the table");
    settle(20);

    // Position 2 taken without its copy (the walk read it itself): dropped.
    last_avail = 16'd2;
    `PULSE(take)
    look(2, 16);
    check(!hit, "a taken position's copy is dropped");
    lookup = 1'b0;
    settle(20);
    look(3, 62);
    check(hit && hit_n == 2, "position 3's copy");
    lookup = 1'b0;

    // A stopped queue's copies are dropped.
    stopped[1] = 1'b1; q_runs[1] = 1'b0;
    @(negedge clk);
    stopped[1] = 1'b0;
    look(3, 62);
    check(!hit, "stopped: dropped");
    lookup = 1'b0;

    // Head prediction: head 40 published last; the next pick guesses it for position 20 while
    // the walk waits for the ring entry.
    win_len = 5'd0; q_runs[1] = 1'b1;
    head = 16'd40;
    `PULSE(publish)
    last_avail = 16'd20;
    `PULSE(pick)
    spec_window = 1'b1;
    #1;
    check(pf_rd_valid != '0 && pf_rd_addr[sel] == TABLE + 40 * 16, "the guess is read");
    @(negedge clk);
    #1;
    check(pf_rd_valid == '0, "once per pick");
    spec_window = 1'b0;
    settle(20);
    look(20, 41);
    check(!hit, "a ring entry naming another head does not use the guess");
    look(20, 40);
    check(hit && hit_data[127:0] == descriptor(40), "the ring entry names the guess: a hit");
    pass();
  end
endmodule
