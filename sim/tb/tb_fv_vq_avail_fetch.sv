// fv_vq_avail_fetch alone (DW 64: two beats per 16-byte read): the walk's batch read sizes
// (at most 8, those known available, none past the ring's end), the window and its hits, the
// read-ahead extending it while the walk consumes it (never overwriting an entry not yet taken,
// never past the known avail index), a doorbell's index extending what is known, a stopped
// queue forgetting its window and a read-ahead landing late dropped, a refused read-ahead not
// repeated until the window is replaced.
module tb_fv_vq_avail_fetch;
  `include "tb_common.svh"
  localparam int NQ = 4, DW = 64;
  localparam longint RING = 64'h1000;    // queue 1's avail ring, 32 entries
  logic [NQ-1:0][31:0] avail_lo, avail_hi;
  logic [NQ-1:0][15:0] size, hint;
  logic [NQ-1:0] q_runs, stopped, hint_valid;
  logic [1:0] cq, note_q, win_q;
  logic [15:0] last_avail, avail_idx, c_size, ring_slot, hit_head, note_val, win_base;
  logic ring_wait, hit, ahead_covers, load, take, note;
  logic [3:0] ring_batch;
  logic [127:0] load_data;
  logic [4:0] win_len;
  logic [15:0][15:0] win_heads;
  logic ra_rd_valid, ra_rd_ready, ra_rc_valid, rc_last, rc_error;
  logic [63:0] ra_rd_addr;
  logic [15:0] ra_rd_len;
  logic [DW-1:0] rc_data;
  // The memory behind the read-ahead's master.
  logic hold, unused_rd_ready, wr_ready, wc_valid, wc_error;
  logic [63:0] fault_at;

  fv_vq_avail_fetch #(.NQ(NQ), .DW(DW)) dut (.*);
  tb_dma_mem #(.DW(DW), .LAT(3)) mem (
    .clk, .rst, .hold, .fault_at, .rd_valid(ra_rd_valid), .rd_ready(ra_rd_ready),
    .rd_addr(ra_rd_addr), .rd_len(ra_rd_len), .rc_valid(ra_rc_valid), .rc_data, .rc_last,
    .rc_error, .wr_valid(1'b0), .wr_ready, .wr_addr('0), .wr_len('0), .wr_data('0), .wc_valid,
    .wc_error
  );

  function automatic int entry(input int pos);
    return 100 + pos;                    // the head the driver put at avail position pos
  endfunction
  task automatic at(input int pos);
    last_avail = 16'(pos); ring_slot = 16'(pos % 32);
    #1;
  endtask
  task automatic consume(input int pos);
    at(pos);
    check(hit && hit_head == 16'(entry(pos)), $sformatf("position %0d in the window", pos));
    take = 1'b1;
    @(negedge clk);
    take = 1'b0;
  endtask
  task automatic wait_idle_ra();
    int n = 0;
    while ((mem.rn != 0 || ra_rd_valid) && n < 100) begin
      @(negedge clk);
      n++;
    end
  endtask

  initial begin
    for (int p = 0; p < 32; p++) begin
      mem.mem[32'(RING) + 4 + 2 * p] = 8'(entry(p));
      mem.mem[32'(RING) + 5 + 2 * p] = 8'(entry(p) >> 8);
    end
    {avail_lo, avail_hi, hint, hint_valid, stopped, cq, note_q, last_avail, avail_idx} = '0;
    {ring_slot, note_val, ring_wait, load, take, note, load_data, hold} = '0;
    fault_at = '1;
    avail_lo[1] = 32'(RING);
    size = {NQ{16'd32}};
    q_runs = 4'b0010;
    cq = 2'd1; c_size = 16'd32;
    reset_dut();

    avail_idx = 16'd20;
    at(0);
    check(!hit && ring_batch == 8 && !ra_rd_valid, "no window: a batch of 8 to read");
    avail_idx = 16'd3;
    #1;
    check(ring_batch == 3, "only what is known available");
    avail_idx = 16'd20;
    at(29);
    check(ring_batch == 3, "none past the ring's end");
    at(0);

    // The walk's batch lands; the read-ahead of the next 8 leaves at once.
    for (int i = 0; i < 8; i++) load_data[16 * i +: 16] = 16'(entry(i));
    load = 1'b1;
    @(negedge clk);
    load = 1'b0;
    #1;
    check(hit && hit_head == 16'(entry(0)) && win_q == 1 && win_base == 0 && win_len == 8,
          "the window holds 0..7");
    check(ra_rd_valid && ra_rd_addr == RING + 4 + 16 && ra_rd_len == 16, "read-ahead of 8..15");
    at(8);
    check(ahead_covers, "the read-ahead covers position 8");
    wait_idle_ra();
    at(0);
    check(win_len == 16 && !ra_rd_valid, "the window holds 0..15; nothing more while 16 are unconsumed");
    for (int p = 0; p < 8; p++) consume(p);
    // 8 consumed: the rest up to the known avail index (16..19) is read ahead.
    at(8);
    wait_idle_ra();
    check(win_base == 4 && win_len == 16, "the window keeps its last 16 entries (4..19)");
    consume(8);
    at(19);
    check(hit && hit_head == 16'(entry(19)), "position 19 read ahead");
    at(3);
    check(!hit, "position 3 left the window");
    at(20);
    check(!hit && !ra_rd_valid, "nothing past the known avail index");

    // A doorbell's index (NOTIFICATION_DATA) makes more known.
    hint[1] = 16'd26; hint_valid[1] = 1'b1;
    for (int p = 9; p < 12; p++) consume(p);
    at(12);
    wait_idle_ra();
    at(25);
    check(hit && hit_head == 16'(entry(25)), "read ahead up to the doorbell's index");

    // A stopped queue forgets its window; a read-ahead in flight lands stale.
    hint[1] = 16'd30;
    for (int p = 12; p < 18; p++) consume(p);
    #1;
    check(ra_rd_valid, "a read-ahead leaves");
    @(negedge clk);
    stopped[1] = 1'b1;
    @(negedge clk);
    stopped[1] = 1'b0;
    wait_idle_ra();
    at(18);
    check(!hit && win_len == 0, "stopped: the window is gone, the late read-ahead dropped");

    // A refused read-ahead is not repeated until the walk replaces the window.
    fault_at = RING + 4 + 16;
    at(0);
    for (int i = 0; i < 8; i++) load_data[16 * i +: 16] = 16'(entry(i));
    load = 1'b1;
    @(negedge clk);
    load = 1'b0;
    wait_idle_ra();
    cycles(5);
    #1;
    check(win_len == 8 && !ra_rd_valid, "refused: the window stays 0..7, no retry");
    fault_at = '1;
    load = 1'b1;
    @(negedge clk);
    load = 1'b0;
    #1;
    check(ra_rd_valid, "a new window reads ahead again");
    pass();
  end
endmodule
