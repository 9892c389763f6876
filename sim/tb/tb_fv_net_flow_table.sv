// fv_net_flow_table alone: the two hashes of three keys under two hash keys equal
// flow/src/table.rs's (its test `the_rtl_bench_vectors` pins the same numbers); entries written
// in a key's first or second bucket are found, in a wrong bucket not; one lookup per cycle,
// answers in order 3 cycles later; a cleared entry misses; the count follows; a move (the new
// place written before the old one cleared) never makes the key miss. Counters: hits add
// packets, bytes, the time and the TCP flags to their entry; a clear hands the entry's counts
// out 3 cycles later with every hit that read the entry before the clear, and none after.
module tb_fv_net_flow_table;
  `include "tb_common.svh"
  localparam int ENTRIES = 16;
  localparam int WAYS = 4;
  localparam int BUCKETS = ENTRIES / WAYS;
  localparam int BW = 2;
  localparam int WW = 2;

  logic [383:0] hkey0, hkey1;
  logic lk_valid, rs_valid, rs_hit, wr_valid, wr_set;
  logic [351:0] lk_key, wr_key;
  logic [31:0] rs_action, wr_action, rs_hash0, rs_hash1, count;
  logic [BW-1:0] rs_bucket, wr_bucket, cl_bucket, rd_bucket;
  logic [WW-1:0] rs_way, wr_way, cl_way, rd_way;
  logic [15:0] lk_len;
  logic [7:0] lk_tcp_flags, cl_tcp_flags, rd_tcp_flags;
  logic [31:0] now, cl_last_seen, rd_last_seen;
  logic [47:0] cl_packets, cl_bytes, rd_packets, rd_bytes;
  logic cl_valid, rd_valid, rd_done;
  fv_net_flow_table #(.ENTRIES(ENTRIES), .WAYS(WAYS)) dut (.*);

  // A key written as in flow/src/table.rs's vectors (byte 0 first) into the port's order
  // (byte i at [8*i +: 8]).
  function automatic logic [351:0] kb(input logic [351:0] be);
    logic [351:0] r;
    for (int i = 0; i < 44; i++) r[8*i +: 8] = be[351 - 8*i -: 8];
    return r;
  endfunction

  localparam logic [351:0] K0 = 352'h0005010203040600009b01bb0000000000000000000000000a0000050000000000000000000000000a000006;
  localparam logic [351:0] K1 = 352'h000000000006110014e9003520010db800000000000000000000000120010db8000000000000000000000002;
  localparam logic [351:0] K2 = 352'hffffffffff040100ffff0000000000000000000000000000ffffffff00000000000000000000000001020304;
  localparam logic [31:0] H0 [3] = '{32'h76ecbfe4, 32'hf2e084b1, 32'h5e379e07};
  localparam logic [31:0] H1 [3] = '{32'h76df17fe, 32'h582d4b43, 32'haf50dae5};

  function automatic logic [351:0] key_of(input int i);
    case (i)
      0: return kb(K0);
      1: return kb(K1);
      default: return kb(K2);
    endcase
  endfunction

  // The key's two buckets, as the model computes them.
  function automatic logic [BW-1:0] bucket(input int i, input int which);
    logic [BW-1:0] a = H0[i][BW-1:0];
    logic [BW-1:0] b = H1[i][BW-1:0];
    if (b == a) b = a ^ BW'(1);
    return which == 0 ? a : b;
  endfunction

  // Look one key up; the answer 3 cycles later.
  task automatic lookup(input logic [351:0] k, output logic hit, output logic [31:0] act,
                        output logic [31:0] h0, output logic [31:0] h1);
    lk_key = k;
    lk_valid = 1'b1;
    @(negedge clk);
    lk_valid = 1'b0;
    repeat (2) begin
      check(!rs_valid, "no answer before its time");
      @(negedge clk);
    end
    check(rs_valid, "the answer 3 cycles after the request");
    hit = rs_hit;
    act = rs_action;
    h0 = rs_hash0;
    h1 = rs_hash1;
  endtask

  task automatic write(input logic set, input logic [BW-1:0] b, input logic [WW-1:0] w,
                       input logic [351:0] k, input logic [31:0] a);
    wr_valid = 1'b1;
    wr_set = set;
    wr_bucket = b;
    wr_way = w;
    wr_key = k;
    wr_action = a;
    @(negedge clk);
    wr_valid = 1'b0;
  endtask

  // Read an entry's counters.
  task automatic counters(input logic [BW-1:0] b, input logic [WW-1:0] w,
                          output logic [47:0] pk, output logic [47:0] by,
                          output logic [31:0] ls, output logic [7:0] fl);
    rd_bucket = b;
    rd_way = w;
    rd_valid = 1'b1;
    @(negedge clk);
    rd_valid = 1'b0;
    check(rd_done, "counters read the next cycle");
    pk = rd_packets;
    by = rd_bytes;
    ls = rd_last_seen;
    fl = rd_tcp_flags;
  endtask

  // Time moves with the clock.
  always @(posedge clk) now <= now + 32'd1;

  logic hit;
  logic [31:0] act, h0, h1;
  logic [47:0] pk, by;
  logic [31:0] ls;
  logic [7:0] fl;
  initial begin
    byte unsigned rss [40] = '{8'h6d, 8'h5a, 8'h56, 8'hda, 8'h25, 8'h5b, 8'h0e, 8'hc2, 8'h41,
                               8'h67, 8'h25, 8'h3d, 8'h43, 8'ha3, 8'h8f, 8'hb0, 8'hd0, 8'hca,
                               8'h2b, 8'hcb, 8'hae, 8'h7b, 8'h30, 8'hb4, 8'h77, 8'hcb, 8'h2d,
                               8'ha3, 8'h80, 8'h30, 8'hf2, 8'h0c, 8'h6a, 8'h42, 8'hb7, 8'h3b,
                               8'hbe, 8'hac, 8'h01, 8'hfa};
    for (int i = 0; i < 48; i++) begin
      hkey0[8*i +: 8] = i < 40 ? rss[i] : 8'(i - 39);
      hkey1[8*i +: 8] = 8'(i * 37 + 11);
    end
    {lk_valid, lk_key, wr_valid, wr_set, wr_bucket, wr_way, wr_key, wr_action} = '0;
    {lk_len, lk_tcp_flags, now, rd_valid, rd_bucket, rd_way} = '0;
    reset_dut();
    check(count == 0, "empty after reset");

    // The hashes, and misses in the empty table.
    for (int i = 0; i < 3; i++) begin
      lookup(key_of(i), hit, act, h0, h1);
      check(h0 == H0[i] && h1 == H1[i], $sformatf("key %0d: hashes %h %h, want %h %h",
                                                  i, h0, h1, H0[i], H1[i]));
      check(!hit, "an empty table misses");
    end

    // Key 0 in its first bucket, key 1 in its second, key 2 in a bucket that is not its own.
    write(1'b1, bucket(0, 0), 2'd3, key_of(0), 32'h1000);
    write(1'b1, bucket(1, 1), 2'd0, key_of(1), 32'h1001);
    begin
      logic [BW-1:0] a2, b2, wrong;
      a2 = bucket(2, 0);
      b2 = bucket(2, 1);
      wrong = '0;
      for (int t = 0; t < BUCKETS; t++) begin
        if (BW'(t) != a2 && BW'(t) != b2) wrong = BW'(t);
      end
      check(wrong != a2 && wrong != b2, "a bucket that is not key 2's");
      write(1'b1, wrong, 2'd1, key_of(2), 32'h1002);
    end
    check(count == 3, $sformatf("count %0d after three writes", count));
    lookup(key_of(0), hit, act, h0, h1);
    check(hit && act == 32'h1000, "key 0 in its first bucket");
    check(rs_bucket == bucket(0, 0) && rs_way == 2'd3, "where key 0 was found");
    lookup(key_of(1), hit, act, h0, h1);
    check(hit && act == 32'h1001, "key 1 in its second bucket");
    lookup(key_of(2), hit, act, h0, h1);
    check(!hit, "key 2 outside its buckets is not found");

    // One lookup per cycle, answers in order.
    for (int i = 0; i < 3; i++) begin
      lk_key = key_of(i);
      lk_valid = 1'b1;
      @(negedge clk);
    end
    lk_valid = 1'b0;
    for (int i = 0; i < 3; i++) begin
      check(rs_valid, $sformatf("answer %0d of a burst", i));
      check(rs_hit == (i != 2), $sformatf("answer %0d: hit %0d", i, rs_hit));
      check(rs_hash0 == H0[i], $sformatf("answer %0d in order", i));
      @(negedge clk);
    end
    check(!rs_valid, "three answers for three lookups");

    // A move of key 1 to its first bucket, new place first; looked up between the writes.
    write(1'b1, bucket(1, 0), 2'd2, key_of(1), 32'h1001);
    lookup(key_of(1), hit, act, h0, h1);
    check(hit && act == 32'h1001, "key 1 during its move");
    write(1'b0, bucket(1, 1), 2'd0, '0, '0);
    lookup(key_of(1), hit, act, h0, h1);
    check(hit && rs_bucket == bucket(1, 0) && rs_way == 2'd2, "key 1 after its move");
    check(count == 3, $sformatf("count %0d after the move", count));

    // Counters: three hits on key 1 (now in its first bucket, way 2; the two lookups above
    // counted there already, 0 bytes each).
    begin
      logic [31:0] t_last;
      logic [47:0] pk0, by0;
      int unsigned lens [3] = '{100, 200, 1500};
      logic [7:0] fls [3] = '{8'h02, 8'h10, 8'h18};
      @(negedge clk);  // a hit counts the cycle after its answer
      counters(bucket(1, 0), 2'd2, pk0, by0, ls, fl);
      check(pk0 == 2 && by0 == 0, $sformatf("the move's lookups counted: %0d", pk0));
      for (int i = 0; i < 3; i++) begin
        lk_len = 16'(lens[i]);
        lk_tcp_flags = fls[i];
        lookup(key_of(1), hit, act, h0, h1);
        check(hit, "key 1 hit");
      end
      @(negedge clk);
      t_last = now;
      counters(bucket(1, 0), 2'd2, pk, by, ls, fl);
      check(pk == 5 && by == 1800 && fl == 8'h1a,
            $sformatf("counters %0d packets %0d bytes flags %h", pk, by, fl));
      check(ls != 0 && ls < t_last, $sformatf("last seen %0d before %0d", ls, t_last));
      // A miss counts nothing.
      lookup(key_of(2), hit, act, h0, h1);
      counters(bucket(1, 0), 2'd2, pk, by, ls, fl);
      check(pk == 5, "a miss counts nothing");
    end

    // A burst of hits, the entry cleared right behind it: every hit is in the hand-out.
    for (int i = 0; i < 4; i++) begin
      lk_key = key_of(1);
      lk_len = 16'd10;
      lk_tcp_flags = 8'h01;
      lk_valid = 1'b1;
      @(negedge clk);
    end
    lk_valid = 1'b0;
    wr_valid = 1'b1;
    wr_set = 1'b0;
    wr_bucket = bucket(1, 0);
    wr_way = 2'd2;
    @(negedge clk);
    wr_valid = 1'b0;
    // Set again at once with key 1 (a new flow), looked up: its hit must not be handed out.
    write(1'b1, bucket(1, 0), 2'd2, key_of(1), 32'h2001);
    lk_key = key_of(1);
    lk_len = 16'd7;
    lk_valid = 1'b1;
    @(negedge clk);
    lk_valid = 1'b0;
    begin
      int waited = 0;
      while (!cl_valid && waited < 8) begin
        @(negedge clk);
        waited++;
      end
      check(cl_valid, "the cleared entry's counters handed out");
      check(cl_bucket == bucket(1, 0) && cl_way == 2'd2, "from its place");
      check(cl_packets == 9 && cl_bytes == 1840 && cl_tcp_flags == 8'h1b,
            $sformatf("handed out %0d packets %0d bytes flags %h (want 9, 1840, 1b)",
                      cl_packets, cl_bytes, cl_tcp_flags));
    end
    cycles(4);
    counters(bucket(1, 0), 2'd2, pk, by, ls, fl);
    check(pk == 1 && by == 7, $sformatf("the new flow's own counts: %0d packets %0d bytes", pk, by));

    // Cleared: missed; clearing again changes nothing.
    write(1'b0, bucket(0, 0), 2'd3, '0, '0);
    lookup(key_of(0), hit, act, h0, h1);
    check(!hit, "key 0 cleared");
    write(1'b0, bucket(0, 0), 2'd3, '0, '0);
    check(count == 2, $sformatf("count %0d", count));

    // Reset empties the table.
    reset_dut();
    check(count == 0, "empty after a reset");
    lookup(key_of(1), hit, act, h0, h1);
    check(!hit, "nothing survives a reset");
    pass();
  end
endmodule
