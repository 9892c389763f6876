// fv_net_flow_table against flow/src/table.rs's model: sim/tb/vectors/flow_table.hex (written by
// the model's test `the_rtl_replay_vectors`) fills a 64-entry table with seeded flows, IPv4 and
// IPv6, with every hardware write of every insert (cuckoo moves included) and lookups between
// the writes of each move, of each new key and of absent keys, then removes half. Every lookup
// must find what the model finds, where it finds it: the RTL's hashes, bucket choice and
// compare are the model's, and no moved key is ever missed.
module tb_fv_net_flow_table_model;
  `include "tb_common.svh"
  localparam int ENTRIES = 64;
  localparam int BW = 4;
  localparam int WW = 2;
  localparam int MAXV = 4096;

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
  fv_net_flow_table #(.ENTRIES(ENTRIES), .WAYS(4)) dut (.*);

  // op 4, bucket 8, way 4, key 352 (byte 0 first), action 32, hit 4, bucket 8, way 4.
  logic [415:0] vecs [MAXV];

  function automatic logic [351:0] kb(input logic [351:0] be);
    logic [351:0] r;
    for (int i = 0; i < 44; i++) r[8*i +: 8] = be[351 - 8*i -: 8];
    return r;
  endfunction

  int lookups = 0, writes = 0, hits = 0;
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
    for (int i = 0; i < MAXV; i++) vecs[i] = '0;
    $readmemh("sim/tb/vectors/flow_table.hex", vecs);
    {lk_valid, lk_key, wr_valid, wr_set, wr_bucket, wr_way, wr_key, wr_action} = '0;
    {lk_len, lk_tcp_flags, now, rd_valid, rd_bucket, rd_way} = '0;
    reset_dut();
    for (int n = 0; n < MAXV; n++) begin
      logic [3:0] op;
      logic [7:0] b, eb;
      logic [3:0] w, ew, eh;
      logic [351:0] k;
      logic [31:0] a;
      {op, b, w, k, a, eh, eb, ew} = vecs[n];
      if (op == 4'd0) break;
      if (op == 4'd1 || op == 4'd2) begin
        wr_valid = 1'b1;
        wr_set = op == 4'd1;
        wr_bucket = BW'(b);
        wr_way = WW'(w);
        wr_key = kb(k);
        wr_action = a;
        @(negedge clk);
        wr_valid = 1'b0;
        writes++;
      end else begin
        lk_key = kb(k);
        lk_valid = 1'b1;
        @(negedge clk);
        lk_valid = 1'b0;
        repeat (2) @(negedge clk);
        check(rs_valid, $sformatf("record %0d: an answer", n));
        check(rs_hit == eh[0], $sformatf("record %0d: hit %0d, the model says %0d", n, rs_hit, eh[0]));
        if (eh[0]) begin
          check(rs_action == a && rs_bucket == BW'(eb) && rs_way == WW'(ew),
                $sformatf("record %0d: action %h at %0d.%0d, the model says %h at %0d.%0d",
                          n, rs_action, rs_bucket, rs_way, a, eb, ew));
          hits++;
        end
        lookups++;
      end
    end
    check(writes > 60 && lookups > 150 && hits > 100,
          $sformatf("%0d writes, %0d lookups, %0d hits replayed", writes, lookups, hits));
    $display("replayed %0d writes and %0d lookups (%0d hits); %0d entries left", writes, lookups, hits, count);
    pass();
  end
endmodule
