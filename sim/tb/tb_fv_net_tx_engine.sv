// fv_net_tx_engine alone: frames from TX chains (header and frame in one descriptor or split
// at odd places) reach the packet port byte for byte; NEEDS_CSUM inserts a checksum that
// verifies (even and odd csum_start); GSO and every malformed case are punted with their
// reason and send nothing; a DMA fault is an error; a frame longer than MTU + 18 is punted
// without being read to its end; a jumbo frame goes in reads of RD_MAX bytes.
module tb_fv_net_tx_engine;
  `include "tb_common.svh"
  localparam int DW = 128, MAX_SEGS = 16;
  logic kill, start, done, error, punt;
  logic [7:0] punt_reason;
  logic [15:0] mtu;
  logic csum_feature, turn;
  logic rd_valid, rd_ready, rc_valid, rc_last, rc_error;
  logic [63:0] rd_addr;
  logic [15:0] rd_len;
  logic [DW-1:0] rc_data;
  logic wr_valid, wr_ready, wc_valid, wc_error;
  logic [63:0] wr_addr;
  logic [15:0] wr_len;
  logic [DW-1:0] wr_data;
  logic pk_valid, pk_ready, pk_send, pk_dvalid;
  logic [15:0] pk_off, pk_len, pk_doff, pk_dlen;
  logic [DW-1:0] pk_data, pk_ddata;
  logic hold;
  logic [63:0] fault_at;

  `include "tb_chain.svh"
  fv_net_tx_engine #(.DW(DW), .MAX_SEGS(MAX_SEGS)) dut (
    .clk, .rst, .kill, .start, .seg_addr, .seg_len, .seg_write, .seg_count, .mtu, .csum_feature, .turn,
    .done, .error, .punt, .punt_reason,
    .rd_valid, .rd_ready, .rd_addr, .rd_len, .rc_valid, .rc_data, .rc_last, .rc_error,
    .pk_dvalid, .pk_doff, .pk_dlen, .pk_ddata,
    .pk_valid, .pk_ready, .pk_send, .pk_off, .pk_len, .pk_data
  );
  assign {wr_valid, wr_addr, wr_len, wr_data} = '0;
  tb_dma_mem #(.DW(DW), .DEPTH(4)) mem (.*);

  // The packet port: a frame buffer and the frames sent.
  logic [7:0] fbuf [65536];
  byte unsigned sent [$];
  int nsent = 0;
  int reads = 0;
  assign pk_ready = 1'b1;
  always @(posedge clk) begin
    if (rd_valid && rd_ready) reads++;
    if (pk_dvalid) begin
      for (int i = 0; i < int'(pk_dlen); i++) fbuf[int'(pk_doff) + i] = pk_ddata[8*i +: 8];
    end
    if (pk_valid && pk_ready) begin
      if (pk_send) begin
        sent = {};
        for (int i = 0; i < int'(pk_len); i++) sent.push_back(fbuf[i]);
        nsent++;
      end else begin
        for (int i = 0; i < int'(pk_len); i++) fbuf[int'(pk_off) + i] = pk_data[8*i +: 8];
      end
    end
  end

  localparam int MALFORMED = fv_regs_pkg::PUNT_REASON_NET_TX_MALFORMED;
  localparam int GSO = fv_regs_pkg::PUNT_REASON_NET_TX_GSO;

  // Write a header and a frame of `len` bytes at `at` (frame bytes a function of `seed`).
  task automatic put(input int at, input int flags, input int gso, input int cs, input int co,
                     input int len, input int seed);
    byte unsigned h [12] = '{8'(flags), 8'(gso), 0, 0, 0, 0, 8'(cs), 8'(cs >> 8), 8'(co),
                             8'(co >> 8), 0, 0};
    for (int i = 0; i < 12; i++) mem.mem[at + i] = h[i];
    for (int i = 0; i < len; i++) mem.mem[at + 12 + i] = 8'(i * 13 + seed + i / 251);
  endtask

  task automatic run(input int limit, output int n);
    int sent0 = nsent;
    start_chain();
    wait_done(limit, n);
    @(negedge clk);
    n = nsent - sent0;
  endtask

  // The frame's bytes as written at `at` + 12.
  function automatic bit same(input int at, input int len);
    if (sent.size() != len) return 0;
    for (int i = 0; i < len; i++) if (sent[i] != mem.mem[at + 12 + i]) return 0;
    return 1;
  endfunction

  // The Internet checksum over sent[from..] verifies (sums to all ones).
  function automatic bit csum_ok(input int from);
    longint s = 0;
    for (int i = from; i < sent.size(); i++)
      s += ((i - from) % 2 == 0) ? longint'(sent[i]) << 8 : longint'(sent[i]);
    while (s > 'hffff) s = (s & 'hffff) + (s >> 16);
    return s == 'hffff;
  endfunction

  initial begin
    int n;
    {kill, start, seg_addr, seg_len, seg_write, seg_count, hold} = '0;
    mtu = 16'd1500;
    csum_feature = 1'b1;
    turn = 1'b1;
    fault_at = 64'hffff_ffff;
    reset_dut();

    // Header and a 60-byte frame in one descriptor: sent as it is.
    put('h1000, 0, 0, 0, 0, 60, 1);
    seg(64'h1000, 72, 0);
    run(2000, n);
    check(n == 1 && !punt && !error, "one frame sent");
    check(same('h1000, 60), "the frame's bytes, in order");

    // Header split 5 + 9 (into the frame), the rest in odd pieces; NEEDS_CSUM at 34 + 16 (a
    // TCP/IPv4 frame's checksum field, zeroed: the result must verify).
    put('h2000, 1, 0, 34, 16, 1000, 7);
    mem.mem['h2000 + 12 + 50] = 0;
    mem.mem['h2000 + 12 + 51] = 0;
    for (int i = 0; i < 12 + 1000; i++) mem.mem['h6000 + i] = mem.mem['h2000 + i];
    seg(64'h6000, 5, 0); seg(64'h6005, 9, 0); seg(64'h600e, 333, 0); seg(64'h615b, 665, 0);
    seg(64'h9000, 64, 1);  // a writable buffer: ignored
    run(5000, n);
    check(n == 1 && !punt && !error, "the checksummed frame is sent");
    check(csum_ok(34), "the inserted checksum verifies");
    check(sent.size() == 1000, "its length");
    for (int i = 0; i < 1000; i++) if (i != 50 && i != 51) check(sent[i] == mem.mem['h200c + i], "bytes");

    // A jumbo frame (MTU 9000) in one descriptor, NEEDS_CSUM: many reads in flight.
    mtu = 16'd9000;
    put('hA000, 1, 0, 54, 16, 9018, 11);
    mem.mem['hA000 + 12 + 70] = 0;
    mem.mem['hA000 + 12 + 71] = 0;
    reads = 0;
    seg(64'hA000, 12 + 9018, 0);
    run(20000, n);
    check(n == 1 && !punt && !error && sent.size() == 9018, "the jumbo frame is sent");
    check(csum_ok(54), "its checksum verifies");
    check(reads == (12 + 9018 + 2047) / 2048, $sformatf("in reads of 2 KiB (%0d)", reads));
    mtu = 16'd1500;

    // Odd csum_start.
    put('h3000, 1, 0, 21, 4, 77, 3);
    mem.mem['h3000 + 12 + 25] = 0;
    mem.mem['h3000 + 12 + 26] = 0;
    seg(64'h3000, 89, 0);
    run(2000, n);
    check(n == 1 && csum_ok(21), "odd csum_start: sent, verifies");

    // Not its turn: everything but the send happens, the send waits for the turn.
    turn = 1'b0;
    put('h1000, 0, 0, 0, 0, 60, 9);
    seg(64'h1000, 72, 0);
    n = nsent;
    start_chain();
    cycles(200);
    check(!done && nsent == n, "the send waits for its turn");
    turn = 1'b1;
    wait_done(100, n);
    @(negedge clk);
    check(same('h1000, 60), "then it goes");

    // The punts: nothing is sent.
    put('h4000, 0, 1, 0, 0, 200, 0);        // GSO (TCPV4)
    seg(64'h4000, 212, 0);
    run(2000, n);
    check(n == 0 && punt && punt_reason == 8'(GSO), "GSO: punted net_tx_gso");
    put('h4000, 2, 0, 0, 0, 60, 0);         // DATA_VALID on TX
    seg(64'h4000, 72, 0);
    run(2000, n);
    check(n == 0 && punt && punt_reason == 8'(MALFORMED), "bad flags: malformed");
    put('h4000, 0, 0, 0, 0, 13, 0);         // runt
    seg(64'h4000, 25, 0);
    run(2000, n);
    check(n == 0 && punt && punt_reason == 8'(MALFORMED), "runt: malformed");
    seg(64'h4000, 8, 0);                    // shorter than the header
    run(2000, n);
    check(n == 0 && punt && punt_reason == 8'(MALFORMED), "no header: malformed");
    put('h4000, 1, 0, 40, 20, 61, 0);       // 40 + 20 + 2 > 61
    seg(64'h4000, 73, 0);
    run(2000, n);
    check(n == 0 && punt && punt_reason == 8'(MALFORMED), "csum offset past the frame");
    put('h4000, 1, 0, 40, 18, 60, 0);       // 40 + 18 + 2 = 60: fits
    mem.mem['h4000 + 12 + 58] = 0;
    mem.mem['h4000 + 12 + 59] = 0;
    seg(64'h4000, 72, 0);
    run(2000, n);
    check(n == 1 && !punt && csum_ok(40), "csum field at the frame's end");
    csum_feature = 1'b0;
    seg(64'h4000, 72, 0);
    run(2000, n);
    check(n == 0 && punt && punt_reason == 8'(MALFORMED), "NEEDS_CSUM without CSUM");
    csum_feature = 1'b1;

    // MTU 100: a 118-byte frame goes, a 119-byte one is punted; a long one is punted without
    // reading it to its end.
    mtu = 16'd100;
    put('h5000, 0, 0, 0, 0, 118, 5);
    seg(64'h5000, 130, 0);
    run(2000, n);
    check(n == 1 && same('h5000, 118), "MTU + 18: sent");
    seg(64'h5000, 131, 0);
    run(2000, n);
    check(n == 0 && punt && punt_reason == 8'(MALFORMED), "MTU + 19: malformed");
    reads = 0;
    seg(64'h5000, 12, 0); seg(64'h5100, 30000, 0);
    run(4000, n);
    check(n == 0 && punt && reads < 12, $sformatf("a long frame is not read to its end (%0d reads)", reads));
    mtu = 16'd1500;

    // A DMA fault: an error; the next frame is clean.
    fault_at = 64'h7000;
    put('h7000, 0, 0, 0, 0, 60, 0);
    seg(64'h7000, 72, 0);
    run(2000, n);
    check(n == 0 && error, "a faulting read is an error");
    fault_at = 64'hffff_ffff;
    seg(64'h1000, 72, 0);
    run(2000, n);
    check(n == 1 && !error && !punt && same('h1000, 60), "the next frame is clean");
    pass();
  end
endmodule
