// Device-engine slot: one request moving data at a time, served by the engine of its function's
// device type. The virtqueue engine hands the slot a walked chain (segment table, function,
// device type) at `start`; the slot keeps copies and starts the chosen engine a cycle later
// (the virtqueue engine walks the next chain meanwhile).
//
// Engines: the build includes the ones its parameters name (HAS_*). Adding a device type is an
// engine instance below, a line in `eng_of` and its lines in the output selects: nothing in
// fv_top changes. Only the started engine drives the slot's DMA and storage masters, and only
// it sees their answers (an engine never counts another's answers).
//
// The watchdog: an engine that holds a request longer than `engine_timeout` cycles (0: never)
// is killed and the request answered as timed out; the slot then stays `blocked` until every
// DMA read and write it had in flight was answered (a late answer must not reach the engine's
// next request).
module fv_dev_slot #(
  parameter int DW = 128,
  parameter int MAX_SEGS = 16,
  parameter int NF = fv_regs_pkg::NUM_FUNCTIONS,
  parameter bit HAS_ECHO = 1'b1,                // the echo test device (and functions of no type)
  parameter bit HAS_BLK = 1'b1,                 // virtio-blk
  parameter bit HAS_NET = 1'b1                  // virtio-net (TX)
) (
  input  logic clk,
  input  logic rst,

  // The chain to serve, from the virtqueue engine.
  input  logic                                start,
  input  logic [MAX_SEGS-1:0][63:0]           seg_addr,
  input  logic [MAX_SEGS-1:0][31:0]           seg_len,
  input  logic [MAX_SEGS-1:0]                 seg_write,
  input  logic [$clog2(MAX_SEGS+1)-1:0]       seg_count,
  input  logic [$clog2(NF)-1:0]               func,
  input  logic [7:0]                          dev_type,     // FUNCTIONS.DEVICE_TYPE of `func`

  // Configuration: the functions' (FUNCTIONS block) and the device's (GLOBAL block).
  input  logic [NF-1:0][63:0]                 blk_capacity,
  input  logic [NF-1:0][31:0]                 blk_max_sectors,
  input  logic [NF-1:0][15:0]                 net_mtu,
  input  logic [NF-1:0]                       net_csum,     // VIRTIO_NET_F_CSUM negotiated
  input  logic                                net_turn,     // the net request may send now
  input  logic [31:0]                         engine_timeout,
  input  logic [31:0]                         storage_timeout,

  // The answer.
  output logic                                done,
  output logic                                error,
  output logic [31:0]                         written,
  output logic                                punt,
  output logic [7:0]                          punt_reason,
  output logic [63:0]                         punt_arg,
  output logic                                timeout,      // the watchdog answered (with done)
  output logic                                blocked,      // quarantined after a timeout
  output logic                                st_timed_out, // a storage answer timed out

  // DMA master (answers are this slot's).
  output logic          rd_valid,
  input  logic          rd_ready,
  output logic [63:0]   rd_addr,
  output logic [15:0]   rd_len,
  input  logic          rc_valid,
  input  logic [DW-1:0] rc_data,
  input  logic          rc_last,
  input  logic          rc_error,
  output logic          wr_valid,
  input  logic          wr_ready,
  output logic [63:0]   wr_addr,
  output logic [15:0]   wr_len,
  output logic [DW-1:0] wr_data,
  input  logic          wc_valid,
  input  logic          wc_error,

  // Storage master (answers carry this slot's request tags).
  output logic          st_rd_valid,
  input  logic          st_rd_ready,
  output logic [63:0]   st_rd_addr,
  output logic [15:0]   st_rd_len,
  output logic [3:0]    st_rd_tag,
  input  logic          st_rc_valid,
  input  logic [3:0]    st_rc_tag,
  output logic          st_rc_ready,
  input  logic [DW-1:0] st_rc_data,
  input  logic          st_rc_last,
  input  logic          st_rc_error,
  output logic          st_wr_valid,
  output logic [63:0]   st_wr_addr,
  output logic [15:0]   st_wr_len,
  output logic [DW-1:0] st_wr_data,
  output logic [3:0]    st_wr_tag,
  input  logic          st_wc_valid,
  input  logic [3:0]    st_wc_tag,
  input  logic          st_wc_error,

  // Packet master (the uplink's frame buffer of this slot; see fv_net_tx_engine): data writes,
  // and control operations (checksum, send).
  output logic          pk_dvalid,
  output logic [15:0]   pk_doff,
  output logic [15:0]   pk_dlen,
  output logic [DW-1:0] pk_ddata,
  output logic          pk_valid,
  input  logic          pk_ready,
  output logic          pk_send,
  output logic [15:0]   pk_off,
  output logic [15:0]   pk_len,
  output logic [DW-1:0] pk_data,
  output logic [7:0]    pk_func
);
  localparam int SCW = $clog2(MAX_SEGS + 1);
  localparam int FW = $clog2(NF);

  // The engines, by index.
  localparam int ENG_ECHO = 0;
  localparam int ENG_BLK = 1;
  localparam int ENG_NET = 2;
  localparam int NENG = 3;
  localparam logic [NENG-1:0] BUILT = {HAS_NET, HAS_BLK, HAS_ECHO};
  if (!HAS_ECHO && !HAS_BLK && !HAS_NET) begin : g_no_engine
    $error("fv_dev_slot: the build includes no device engine");
  end

  // Which engine serves a device type (functions of no known type: echo).
  function automatic logic [NENG-1:0] eng_of(logic [7:0] t);
    eng_of = '0;
    if (t == 8'(fv_regs_pkg::VIRTIO_DEVICE_BLK)) eng_of[ENG_BLK] = 1'b1;
    else if (t == 8'(fv_regs_pkg::VIRTIO_DEVICE_NET)) eng_of[ENG_NET] = 1'b1;
    else eng_of[ENG_ECHO] = 1'b1;
  endfunction

  // The chain's copies: whole packed registers wired straight to the engines' ports.
  logic [MAX_SEGS-1:0][63:0] sa;
  logic [MAX_SEGS-1:0][31:0] sn;
  logic [MAX_SEGS-1:0]       sw;
  logic [SCW-1:0]            count;
  logic [FW-1:0]             sfunc;
  logic [NENG-1:0]           sel;        // the engine serving the slot's request (one-hot)
  logic                      go;         // start the selected engine
  logic                      missing;    // its engine is not in this build: answer an error
  always_ff @(posedge clk) begin
    if (start) begin
      sa <= seg_addr;
      sn <= seg_len;
      sw <= seg_write;
    end
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      count <= '0;
      sfunc <= '0;
      sel <= '0;
      go <= 1'b0;
      missing <= 1'b0;
    end else begin
      go <= start;
      missing <= start && (eng_of(dev_type) & BUILT) == '0;
      if (start) begin
        count <= seg_count;
        sfunc <= func;
        sel <= eng_of(dev_type);
      end
    end
  end

  // Each engine's side of the slot.
  logic [NENG-1:0]           e_done, e_error, e_rd_valid, e_wr_valid;
  logic [NENG-1:0][31:0]     e_written;
  logic [NENG-1:0][63:0]     e_rd_addr, e_wr_addr;
  logic [NENG-1:0][15:0]     e_rd_len, e_wr_len;
  logic [NENG-1:0][DW-1:0]   e_wr_data;
  logic                      b_punt, n_punt;
  logic [7:0]                b_punt_reason, n_punt_reason;
  logic [63:0]               b_punt_arg;
  logic                      wd_fire;

  if (HAS_ECHO) begin : g_echo
    fv_echo_engine #(.DW(DW), .MAX_SEGS(MAX_SEGS)) u_echo_engine (
      .clk, .rst, .kill(wd_fire),
      .start(go && sel[ENG_ECHO]), .seg_addr(sa), .seg_len(sn), .seg_write(sw),
      .seg_count(count),
      .done(e_done[ENG_ECHO]), .error(e_error[ENG_ECHO]), .written(e_written[ENG_ECHO]),
      .rd_valid(e_rd_valid[ENG_ECHO]), .rd_ready, .rd_addr(e_rd_addr[ENG_ECHO]),
      .rd_len(e_rd_len[ENG_ECHO]),
      .rc_valid(rc_valid && sel[ENG_ECHO]), .rc_data, .rc_last, .rc_error,
      .wr_valid(e_wr_valid[ENG_ECHO]), .wr_ready, .wr_addr(e_wr_addr[ENG_ECHO]),
      .wr_len(e_wr_len[ENG_ECHO]), .wr_data(e_wr_data[ENG_ECHO]),
      .wc_valid(wc_valid && sel[ENG_ECHO]), .wc_error
    );
  end else begin : g_no_echo
    assign {e_done[ENG_ECHO], e_error[ENG_ECHO], e_rd_valid[ENG_ECHO], e_wr_valid[ENG_ECHO]} = '0;
    assign {e_written[ENG_ECHO], e_rd_addr[ENG_ECHO], e_wr_addr[ENG_ECHO]} = '0;
    assign {e_rd_len[ENG_ECHO], e_wr_len[ENG_ECHO], e_wr_data[ENG_ECHO]} = '0;
  end

  if (HAS_BLK) begin : g_blk
    fv_blk_engine #(.DW(DW), .MAX_SEGS(MAX_SEGS)) u_blk_engine (
      .clk, .rst, .kill(wd_fire),
      .start(go && sel[ENG_BLK]), .seg_addr(sa), .seg_len(sn), .seg_write(sw),
      .seg_count(count),
      .capacity(blk_capacity[sfunc]), .max_sectors(blk_max_sectors[sfunc]),
      .timeout(storage_timeout), .timed_out(st_timed_out),
      .done(e_done[ENG_BLK]), .error(e_error[ENG_BLK]), .written(e_written[ENG_BLK]),
      .punt(b_punt), .punt_reason(b_punt_reason), .punt_arg(b_punt_arg),
      .rd_valid(e_rd_valid[ENG_BLK]), .rd_ready, .rd_addr(e_rd_addr[ENG_BLK]),
      .rd_len(e_rd_len[ENG_BLK]),
      .rc_valid(rc_valid && sel[ENG_BLK]), .rc_data, .rc_last, .rc_error,
      .wr_valid(e_wr_valid[ENG_BLK]), .wr_ready, .wr_addr(e_wr_addr[ENG_BLK]),
      .wr_len(e_wr_len[ENG_BLK]), .wr_data(e_wr_data[ENG_BLK]),
      .wc_valid(wc_valid && sel[ENG_BLK]), .wc_error,
      .st_rd_valid, .st_rd_ready, .st_rd_addr, .st_rd_len, .st_rd_tag,
      .st_rc_valid(st_rc_valid && sel[ENG_BLK]), .st_rc_tag, .st_rc_ready,
      .st_rc_data, .st_rc_last, .st_rc_error,
      .st_wr_valid, .st_wr_addr, .st_wr_len, .st_wr_data, .st_wr_tag,
      .st_wc_valid(st_wc_valid && sel[ENG_BLK]), .st_wc_tag, .st_wc_error
    );
  end else begin : g_no_blk
    assign {e_done[ENG_BLK], e_error[ENG_BLK], e_rd_valid[ENG_BLK], e_wr_valid[ENG_BLK]} = '0;
    assign {e_written[ENG_BLK], e_rd_addr[ENG_BLK], e_wr_addr[ENG_BLK]} = '0;
    assign {e_rd_len[ENG_BLK], e_wr_len[ENG_BLK], e_wr_data[ENG_BLK]} = '0;
    assign {b_punt, b_punt_reason, b_punt_arg, st_timed_out} = '0;
    assign {st_rd_valid, st_rd_addr, st_rd_len, st_rd_tag, st_rc_ready} = '0;
    assign {st_wr_valid, st_wr_addr, st_wr_len, st_wr_data, st_wr_tag} = '0;
    logic unused_st;
    assign unused_st = &{1'b0, st_rd_ready, st_rc_tag, st_rc_data, st_rc_last, st_rc_error,
                         st_wc_tag, st_wc_error};
  end

  if (HAS_NET) begin : g_net
    fv_net_tx_engine #(.DW(DW), .MAX_SEGS(MAX_SEGS)) u_net_tx_engine (
      .clk, .rst, .kill(wd_fire),
      .start(go && sel[ENG_NET]), .seg_addr(sa), .seg_len(sn), .seg_write(sw),
      .seg_count(count),
      .mtu(net_mtu[sfunc]), .csum_feature(net_csum[sfunc]), .turn(net_turn),
      .done(e_done[ENG_NET]), .error(e_error[ENG_NET]),
      .punt(n_punt), .punt_reason(n_punt_reason),
      .rd_valid(e_rd_valid[ENG_NET]), .rd_ready, .rd_addr(e_rd_addr[ENG_NET]),
      .rd_len(e_rd_len[ENG_NET]),
      .rc_valid(rc_valid && sel[ENG_NET]), .rc_data, .rc_last, .rc_error,
      .pk_dvalid, .pk_doff, .pk_dlen, .pk_ddata,
      .pk_valid, .pk_ready, .pk_send, .pk_off, .pk_len, .pk_data
    );
    // A TX chain writes nothing.
    assign {e_wr_valid[ENG_NET], e_wr_addr[ENG_NET], e_wr_len[ENG_NET]} = '0;
    assign {e_wr_data[ENG_NET], e_written[ENG_NET]} = '0;
    assign pk_func = 8'(sfunc);
  end else begin : g_no_net
    assign {e_done[ENG_NET], e_error[ENG_NET], e_rd_valid[ENG_NET], e_wr_valid[ENG_NET]} = '0;
    assign {e_written[ENG_NET], e_rd_addr[ENG_NET], e_wr_addr[ENG_NET]} = '0;
    assign {e_rd_len[ENG_NET], e_wr_len[ENG_NET], e_wr_data[ENG_NET]} = '0;
    assign {n_punt, n_punt_reason} = '0;
    assign {pk_valid, pk_send, pk_off, pk_len, pk_data, pk_func} = '0;
    assign {pk_dvalid, pk_doff, pk_dlen, pk_ddata} = '0;
    logic unused_pk;
    assign unused_pk = &{1'b0, pk_ready, net_mtu, net_csum, net_turn};
  end

  // The masters: only the started engine drives them (an idle engine's outputs are zero).
  always_comb begin
    rd_valid = |e_rd_valid;
    wr_valid = |e_wr_valid;
    rd_addr = '0;
    rd_len = '0;
    wr_addr = '0;
    wr_len = '0;
    wr_data = '0;
    written = '0;
    error = missing;
    for (int e = 0; e < NENG; e++) begin
      if (e_rd_valid[e]) begin
        rd_addr = e_rd_addr[e];
        rd_len = e_rd_len[e];
      end
      if (e_wr_valid[e]) begin
        wr_addr = e_wr_addr[e];
        wr_len = e_wr_len[e];
        wr_data = e_wr_data[e];
      end
      if (sel[e]) begin
        written = e_written[e];
        error = error || e_error[e];
      end
    end
  end

  // The watchdog.
  logic        busy, eng_done;
  logic [31:0] age;
  logic [15:0] rd_out, wr_out;
  assign eng_done = |e_done || missing;
  assign wd_fire = busy && !eng_done && engine_timeout != 32'd0 && age >= engine_timeout;
  always_ff @(posedge clk) begin
    if (rst) begin
      busy <= 1'b0;
      blocked <= 1'b0;
      age <= '0;
      rd_out <= '0;
      wr_out <= '0;
    end else begin
      if (go) begin
        busy <= 1'b1;
        age <= '0;
      end else if (eng_done || wd_fire) begin
        busy <= 1'b0;
      end else if (busy) begin
        age <= age + 32'd1;
      end
      rd_out <= rd_out + 16'(rd_valid && rd_ready) - 16'(rc_valid && rc_last);
      wr_out <= wr_out + 16'(wr_valid && wr_ready) - 16'(wc_valid);
      if (wd_fire) blocked <= 1'b1;
      else if (rd_out == '0 && wr_out == '0) blocked <= 1'b0;
    end
  end
  assign timeout = wd_fire;
  assign done = eng_done || wd_fire;
  assign punt = (e_done[ENG_BLK] && b_punt) || (e_done[ENG_NET] && n_punt);
  assign punt_reason = sel[ENG_NET] ? n_punt_reason : b_punt_reason;
  assign punt_arg = sel[ENG_NET] ? '0 : b_punt_arg;
endmodule
