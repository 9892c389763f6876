// Exact-match flow table (issue 17): the packet path's lookups, one per cycle, and the CPU's
// writes.
//
// The layout is flow/src/table.rs's, which is the model this module follows: a 44-byte key
// (vport, VNI, family, L4 protocol, ports, addresses; byte i at key[8*i +: 8]); two buckets per
// key, chosen by two Toeplitz hashes under secret 48-byte keys (bucket = the hash's low bits;
// the second bucket, if equal to the first, is the first with its low bit flipped); WAYS
// entries per bucket. The CPU decides where entries go (cuckoo moves, in an order that keeps
// every entry findable: the new place first, the old one cleared after) and writes them here
// one (bucket, way) at a time; this module only hashes, reads both buckets, compares and
// answers, so no lookup ever sees half of an entry: a write replaces a whole entry in one cycle.
//
// Pipeline (one lookup per cycle, answer 3 cycles after the request):
//   t0  the key goes into both Toeplitz units (per-byte partial hashes registered)
//   t1  the hashes give the two buckets; both rows are read (registered read)
//   t2  the 2 x WAYS keys are compared; the answer is registered
//   t3  rs_valid with hit, the action, and where it was found
// A write in the same cycle as a read of its row: the read returns the row as it was.
//
// Counters per entry (packets, bytes, the time of the last packet, the TCP flags seen): a hit
// updates its entry's counters the cycle after its answer. A clear hands the entry's counters
// out (`cl_*`) and zeroes them 3 cycles after the clear: by then every lookup that read the
// entry before it was cleared has counted (its update comes at most 2 cycles after the clear)
// and no lookup of an entry set after the clear has (its update comes 4 cycles after at the
// earliest). So a removed flow's final counts are exact, and so are a moved flow's: the CPU adds
// the counts its old place hands out to those of the new one (flow/src/conntrack: hw_removed,
// hw_seen). `rd_*` reads an entry's counters without touching them.
module fv_net_flow_table #(
  parameter int ENTRIES = 16,
  parameter int WAYS = 4,
  parameter int ACTION_W = 32,
  parameter int BUCKETS = ENTRIES / WAYS,
  parameter int BW = $clog2(BUCKETS),
  parameter int WW = $clog2(WAYS)
) (
  input  logic                clk,
  input  logic                rst,
  // The two hash keys (byte i at [8*i +: 8]); written by the runtime before any insert.
  input  logic [383:0]        hkey0,
  input  logic [383:0]        hkey1,
  // Lookups from the packet path, with the packet's length and TCP flags (0: not TCP).
  input  logic                lk_valid,
  input  logic [351:0]        lk_key,
  input  logic [15:0]         lk_len,
  input  logic [7:0]          lk_tcp_flags,
  // The time the counters record (the runtime's clock, in its units).
  input  logic [31:0]         now,
  output logic                rs_valid,
  output logic                rs_hit,
  output logic [ACTION_W-1:0] rs_action,
  output logic [BW-1:0]       rs_bucket,
  output logic [WW-1:0]       rs_way,
  // The key's two hashes; the first is the flow hash (the punt's argument, VxLAN's source
  // port).
  output logic [31:0]         rs_hash0,
  output logic [31:0]         rs_hash1,
  // Writes from the CPU: set (key and action, valid) or clear one entry.
  input  logic                wr_valid,
  input  logic                wr_set,
  input  logic [BW-1:0]       wr_bucket,
  input  logic [WW-1:0]       wr_way,
  input  logic [351:0]        wr_key,
  input  logic [ACTION_W-1:0] wr_action,
  // Entries in use.
  output logic [31:0]         count,
  // The counters of a cleared entry, 3 cycles after its clear.
  output logic                cl_valid,
  output logic [BW-1:0]       cl_bucket,
  output logic [WW-1:0]       cl_way,
  output logic [47:0]         cl_packets,
  output logic [47:0]         cl_bytes,
  output logic [31:0]         cl_last_seen,
  output logic [7:0]          cl_tcp_flags,
  // Reading an entry's counters: the answer the next cycle.
  input  logic                rd_valid,
  input  logic [BW-1:0]       rd_bucket,
  input  logic [WW-1:0]       rd_way,
  output logic                rd_done,
  output logic [47:0]         rd_packets,
  output logic [47:0]         rd_bytes,
  output logic [31:0]         rd_last_seen,
  output logic [7:0]          rd_tcp_flags
);
  // Parameter checks.
  if (WAYS < 1 || (WAYS & (WAYS - 1)) != 0) $error("fv_net_flow_table: WAYS must be a power of two");
  if (BUCKETS < 2 || (BUCKETS & (BUCKETS - 1)) != 0 || BUCKETS * WAYS != ENTRIES)
    $error("fv_net_flow_table: ENTRIES / WAYS must be a power of two, at least 2");
  if (BW != $clog2(BUCKETS) || WW != $clog2(WAYS)) $error("fv_net_flow_table: BW and WW are derived");

  localparam int NE = BUCKETS * WAYS;

  // ---- t0 -> t1: hashing ------------------------------------------------------------------
  logic h0_v, h1_v;
  logic [31:0] h0, h1;
  fv_net_toeplitz #(.NB(44)) u_hash0 (
    .clk, .rst, .key(hkey0), .valid(lk_valid), .data(lk_key), .nbytes(6'd44),
    .hash_valid(h0_v), .hash(h0)
  );
  fv_net_toeplitz #(.NB(44)) u_hash1 (
    .clk, .rst, .key(hkey1), .valid(lk_valid), .data(lk_key), .nbytes(6'd44),
    .hash_valid(h1_v), .hash(h1)
  );
  logic [351:0] key1;
  logic [15:0]  len1;
  logic [7:0]   fl1;
  always_ff @(posedge clk) begin
    if (lk_valid) begin
      key1 <= lk_key;
      len1 <= lk_len;
      fl1 <= lk_tcp_flags;
    end
  end

  // ---- t1 -> t2: the two buckets, read ----------------------------------------------------
  logic [BW-1:0] b0, b1;
  always_comb begin
    b0 = h0[BW-1:0];
    b1 = h1[BW-1:0];
    if (b1 == b0) b1 = b0 ^ BW'(1);
  end

  logic [351:0]        keys    [NE];
  logic [ACTION_W-1:0] actions [NE];
  logic [NE-1:0]       valid;

  logic                v2;
  logic [351:0]        key2;
  logic [BW-1:0]       b0_2;
  logic [BW-1:0]       b1_2;
  logic [31:0]         hash2_0;
  logic [31:0]         hash2_1;
  logic [15:0]         len2;
  logic [7:0]          fl2;
  logic [351:0]        rk0 [WAYS];
  logic [351:0]        rk1 [WAYS];
  logic [ACTION_W-1:0] ra0 [WAYS];
  logic [ACTION_W-1:0] ra1 [WAYS];
  logic [WAYS-1:0]     rv0;
  logic [WAYS-1:0]     rv1;
  always_ff @(posedge clk) begin
    if (rst) begin
      v2 <= 1'b0;
    end else begin
      v2 <= h0_v && h1_v;
    end
    key2 <= key1;
    b0_2 <= b0;
    b1_2 <= b1;
    hash2_0 <= h0;
    hash2_1 <= h1;
    len2 <= len1;
    fl2 <= fl1;
    for (int w = 0; w < WAYS; w++) begin
      rk0[w] <= keys[int'(b0) * WAYS + w];
      rk1[w] <= keys[int'(b1) * WAYS + w];
      ra0[w] <= actions[int'(b0) * WAYS + w];
      ra1[w] <= actions[int'(b1) * WAYS + w];
      rv0[w] <= valid[int'(b0) * WAYS + w];
      rv1[w] <= valid[int'(b1) * WAYS + w];
    end
  end

  // ---- t2 -> t3: compare, answer ----------------------------------------------------------
  logic                hit;
  logic [ACTION_W-1:0] act;
  logic [BW-1:0]       hb;
  logic [WW-1:0]       hw;
  always_comb begin
    hit = 1'b0;
    act = '0;
    hb = b0_2;
    hw = '0;
    // At most one entry holds a key (the CPU never writes a key twice but during a move, when
    // both copies carry the same action); the first bucket's ways first.
    for (int w = WAYS - 1; w >= 0; w--) begin
      if (rv1[w] && rk1[w] == key2) begin
        hit = 1'b1;
        act = ra1[w];
        hb = b1_2;
        hw = WW'(w);
      end
    end
    for (int w = WAYS - 1; w >= 0; w--) begin
      if (rv0[w] && rk0[w] == key2) begin
        hit = 1'b1;
        act = ra0[w];
        hb = b0_2;
        hw = WW'(w);
      end
    end
  end

  // The answered packet's length and flags, for its entry's counters.
  logic [15:0] rs_len;
  logic [7:0]  rs_fl;
  always_ff @(posedge clk) begin
    if (rst) begin
      rs_valid <= 1'b0;
    end else begin
      rs_valid <= v2;
    end
    rs_hit <= hit;
    rs_action <= act;
    rs_bucket <= hb;
    rs_way <= hw;
    rs_hash0 <= hash2_0;
    rs_hash1 <= hash2_1;
    rs_len <= len2;
    rs_fl <= fl2;
  end

  // ---- counters ---------------------------------------------------------------------------
  logic [47:0] c_pk [NE];
  logic [47:0] c_by [NE];
  logic [31:0] c_ls [NE];
  logic [7:0]  c_fl [NE];
  // The clears waiting to hand out their entry's counters.
  logic [2:0]                  cl_pipe_v;
  logic [$clog2(NE)-1:0]       cl_pipe_i [3];
  logic [$clog2(NE)-1:0]       hit_i;
  logic [$clog2(NE)-1:0]       cl_i;
  assign hit_i = {rs_bucket, rs_way};
  assign cl_i = cl_pipe_i[2];
  always_ff @(posedge clk) begin
    if (rst) begin
      cl_pipe_v <= '0;
      cl_valid <= 1'b0;
      rd_done <= 1'b0;
    end else begin
      cl_pipe_v <= {cl_pipe_v[1:0], wr_valid && !wr_set};
      cl_valid <= cl_pipe_v[2];
      rd_done <= rd_valid;
    end
    cl_pipe_i[0] <= {wr_bucket, wr_way};
    cl_pipe_i[1] <= cl_pipe_i[0];
    cl_pipe_i[2] <= cl_pipe_i[1];
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      for (int i = 0; i < NE; i++) begin
        c_pk[i] <= '0;
        c_by[i] <= '0;
        c_ls[i] <= '0;
        c_fl[i] <= '0;
      end
    end else begin
      // A clear's hand-out first (with a hit of the same edge in it), then the hit.
      if (cl_pipe_v[2]) begin
        cl_bucket <= cl_i[$clog2(NE)-1 -: BW];
        cl_way <= cl_i[WW-1:0];
        cl_packets <= c_pk[cl_i] + 48'((rs_valid && rs_hit && hit_i == cl_i) ? 1 : 0);
        cl_bytes <= c_by[cl_i] + ((rs_valid && rs_hit && hit_i == cl_i) ? 48'(rs_len) : 48'd0);
        cl_last_seen <= (rs_valid && rs_hit && hit_i == cl_i) ? now : c_ls[cl_i];
        cl_tcp_flags <= c_fl[cl_i] | ((rs_valid && rs_hit && hit_i == cl_i) ? rs_fl : 8'd0);
        c_pk[cl_i] <= '0;
        c_by[cl_i] <= '0;
        c_ls[cl_i] <= '0;
        c_fl[cl_i] <= '0;
      end
      if (rs_valid && rs_hit && !(cl_pipe_v[2] && hit_i == cl_i)) begin
        c_pk[hit_i] <= c_pk[hit_i] + 48'd1;
        c_by[hit_i] <= c_by[hit_i] + 48'(rs_len);
        c_ls[hit_i] <= now;
        c_fl[hit_i] <= c_fl[hit_i] | rs_fl;
      end
    end
    if (rd_valid) begin
      rd_packets <= c_pk[{rd_bucket, rd_way}];
      rd_bytes <= c_by[{rd_bucket, rd_way}];
      rd_last_seen <= c_ls[{rd_bucket, rd_way}];
      rd_tcp_flags <= c_fl[{rd_bucket, rd_way}];
    end
  end

  // ---- CPU writes -------------------------------------------------------------------------
  logic [$clog2(NE)-1:0] wi;
  assign wi = {wr_bucket, wr_way};
  always_ff @(posedge clk) begin
    if (wr_valid && wr_set) begin
      keys[wi] <= wr_key;
      actions[wi] <= wr_action;
    end
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      valid <= '0;
      count <= '0;
    end else if (wr_valid) begin
      valid[wi] <= wr_set;
      if (wr_set && !valid[wi]) count <= count + 32'd1;
      if (!wr_set && valid[wi]) count <= count - 32'd1;
    end
  end
endmodule
