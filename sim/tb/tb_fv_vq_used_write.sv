// fv_vq_used_write alone: a publish writes the used element at used_idx mod size and then
// used->idx + 1, with a done log the record first (position and new used->idx at the request's
// avail position); it numbers the used element among the engine's writes (h_seq, h_rec), counts
// the request (ev_done, bytes, cycles), and hands over with a refused write seen so far (h_uerr).
module tb_fv_vq_used_write;
  `include "tb_common.svh"
  localparam int DW = 128;
  localparam longint USED = 64'h5000, LOG = 64'h6000;
  logic start, start_rec, elem_written, published, done, h_uerr, h_rec, ev_done;
  logic [63:0] log_base, c_used, wr_addr, fault_at;
  logic [15:0] c_mask, used_idx, head, req_pos, h_seq, wseq_iss, wseq_ack, wr_len;
  logic [31:0] pub_len, start_cycle, cycle, ev_bytes, ev_cycles;
  logic wc_valid, wc_error, wr_valid, wr_ready, hold, rd_ready, rc_valid, rc_last, rc_error;
  logic [DW-1:0] wr_data, rc_data;
  logic [63:0] rd_addr;
  logic [15:0] rd_len;

  fv_vq_used_write #(.DW(DW)) dut (.*);
  tb_dma_mem #(.DW(DW)) mem (
    .clk, .rst, .hold, .fault_at, .rd_valid(1'b0), .rd_ready, .rd_addr('0), .rd_len('0), .rc_valid,
    .rc_data, .rc_last, .rc_error, .wr_valid, .wr_ready, .wr_addr, .wr_len, .wr_data, .wc_valid,
    .wc_error
  );
  // The engine's write numbering.
  always @(posedge clk) begin
    if (rst) begin
      wseq_iss <= '0;
      wseq_ack <= '0;
      cycle <= '0;
    end else begin
      if (wr_valid && wr_ready) wseq_iss <= wseq_iss + 16'd1;
      if (wc_valid) wseq_ack <= wseq_ack + 16'd1;
      cycle <= cycle + 32'd1;
    end
  end

  function automatic longint rd(input longint a, input int n);
    longint v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | longint'(mem.mem[32'(a) + i]);
    return v;
  endfunction
  // Publish; return at the cycle the decision is handed over.
  task automatic publish(input bit rec, input int idx, input int h, input int pos, input int len);
    int n = 0;
    @(negedge clk);
    start_rec = rec; used_idx = 16'(idx); head = 16'(h); req_pos = 16'(pos); pub_len = 32'(len);
    start_cycle = cycle - 32'd100;
    start = 1'b1;
    @(negedge clk);
    start = 1'b0;
    #1;
    while (!done && n < 20) begin
      @(negedge clk);
      #1;
      n++;
    end
    check(done, "the publish ends");
  endtask

  initial begin
    {start, start_rec, used_idx, head, req_pos, pub_len, start_cycle, hold} = '0;
    fault_at = '1;
    log_base = LOG; c_used = USED; c_mask = 16'd7;
    reset_dut();

    publish(1'b0, 6, 33, 14, 512);
    check(!h_rec && !h_uerr && h_seq == 0, "the used element is write 0");
    check(ev_done && ev_bytes == 512 && ev_cycles >= 100 && ev_cycles < 110, "counted with its latency");
    @(negedge clk);
    #1;
    check(rd(USED + 4 + 6 * 8, 4) == 33 && rd(USED + 8 + 6 * 8, 4) == 512 && rd(USED + 2, 2) == 7,
          "element 6 = {33, 512}, used->idx = 7");
    #1;
    check(!ev_done, "ev_done is a pulse");

    // With a done log: the record first; used_idx 7 -> slot 7, used->idx 8.
    publish(1'b1, 7, 40, 13, 64);
    check(h_rec && h_seq == 3, "the record is write 2, the element write 3");
    @(negedge clk);
    #1;
    check(rd(LOG + 4 * 5, 2) == 13 && rd(LOG + 4 * 5 + 2, 2) == 8, "record at position 13 mod 8: {13, 8}");
    check(rd(USED + 4 + 7 * 8, 4) == 40 && rd(USED + 2, 2) == 8, "element 7, used->idx 8");

    // Used index wraps around the ring (16-bit): slot 0 of the ring, used->idx 0.
    publish(1'b0, 16'hFFFF, 41, 0, 1);
    @(negedge clk);
    #1;
    check(rd(USED + 4 + 7 * 8, 4) == 41 && rd(USED + 2, 2) == 0, "used_idx 0xFFFF: slot 7, used->idx 0");

    // A refused element write is seen at the handoff.
    fault_at = USED;
    publish(1'b0, 1, 42, 0, 1);
    check(h_uerr, "a refused used-ring write reaches the decision");
    fault_at = '1;
    cycles(3);
    publish(1'b0, 2, 43, 0, 1);
    check(!h_uerr, "the next publish starts clean");
    pass();
  end
endmodule
