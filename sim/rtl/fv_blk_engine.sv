// virtio-blk device engine: serves IN and OUT requests between guest buffers and the storage
// port, and hands everything else back to the virtqueue engine to punt to the CPU.
//
// The fast path takes the layout every mainstream driver uses:
//   segment 0          device-readable, exactly 16 bytes: the request header
//                      (type u32, reserved u32, sector u64, little-endian)
//   segments 1 .. n-2  the data: all device-writable (IN) or all device-readable (OUT)
//   segment n-1        device-writable, exactly 1 byte: the status
// with a data length that is a multiple of 512, at most MAX_SECTORS sectors, inside the capacity.
// Anything else is punted with a reason (blk_malformed, blk_too_large, blk_out_of_range,
// blk_flush, blk_get_id, blk_discard, blk_write_zeroes, blk_unsupported) and the punt argument
// is the header's sector: the CPU's software engine, which takes any layout, serves it.
//
// Data moves in bursts of at most BURST bytes, one burst in flight: IN reads the storage port and
// streams each beat into a guest write (the storage port waits on st_rc_ready); OUT reads guest
// memory and streams each beat into a storage write (the storage port always accepts writes and
// acknowledges each). The status byte waits for the storage's acknowledgements (an OUT is on the
// store before it says OK) but not for those of the guest writes: the DMA port makes a master's
// writes visible in issue order, so the status never overtakes the IN data. The engine answers
// only once every acknowledgement, the status byte's too, is in, so the used entry after it
// is written only when every write landed. A storage error makes the status VIRTIO_BLK_S_IOERR;
// a DMA fault on guest memory is reported as `error` (the virtqueue engine puts the queue into its
// error state and publishes nothing for the request, whose status byte may have been written).
//
// A storage port that stops answering must not hang the device: every storage access carries the
// request's 4-bit tag, and when no answer has come for `timeout` cycles the engine gives up on the
// request (status IOERR, `timed_out` pulse). Answers that arrive later carry an old tag and are
// consumed and dropped (the tag wraps after 16 requests: a store later than that is not told
// apart).
module fv_blk_engine #(
  parameter int DW = 128,
  parameter int MAX_SEGS = 16,
  parameter int BURST = 4096      // bytes per storage / DMA burst (a power of two, <= 32768)
) (
  input  logic clk,
  input  logic rst,
  input  logic kill,             // the slot's watchdog: drop the request, back to idle (no done)

  input  logic                                    start,
  input  logic [MAX_SEGS-1:0][63:0]               seg_addr,
  input  logic [MAX_SEGS-1:0][31:0]               seg_len,
  input  logic [MAX_SEGS-1:0]                     seg_write,
  input  logic [$clog2(MAX_SEGS+1)-1:0]           seg_count,
  input  logic [63:0]                             capacity,     // sectors
  input  logic [31:0]                             max_sectors,
  input  logic [31:0]                             timeout,      // cycles, 0: none
  output logic                                    timed_out,    // pulse
  output logic                                    done,
  output logic                                    error,
  output logic [31:0]                             written,
  output logic                                    punt,         // with done: punt the request
  output logic [7:0]                              punt_reason,
  output logic [63:0]                             punt_arg,

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

  // Storage port: byte addresses on the device's backing store.
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
  input  logic          st_wc_error
);
  localparam int SW = $clog2(MAX_SEGS + 1);
  localparam int IW = SW - 1;                   // segment index bits
  localparam logic [31:0] BEAT = 32'(DW / 8);

  if (BURST < DW / 8 || BURST > 32768 || (BURST & (BURST - 1)) != 0) begin : g_bad_burst
    $error("fv_blk_engine: BURST must be a power of two in DW/8..32768");
  end

  // virtio-blk request types and status values (virtio 1.2, 5.2.6).
  localparam logic [31:0] T_IN = 32'd0;
  localparam logic [31:0] T_OUT = 32'd1;
  localparam logic [31:0] T_FLUSH = 32'd4;
  localparam logic [31:0] T_GET_ID = 32'd8;
  localparam logic [31:0] T_DISCARD = 32'd11;
  localparam logic [31:0] T_WRITE_ZEROES = 32'd13;
  localparam logic [7:0] S_OK = 8'd0;
  localparam logic [7:0] S_IOERR = 8'd1;

  typedef enum logic [3:0] {
    S_IDLE, S_HDR_REQ, S_HDR_WAIT, S_CLASSIFY, S_PICK,
    S_IN_REQ, S_IN_STREAM, S_OUT_REQ, S_OUT_STREAM,
    S_DRAIN, S_STATUS_REQ, S_STATUS_WAIT, S_DONE
  } state_e;
  state_e state;

  // Request header, collected from the read beats (two at DW = 64).
  logic [127:0] hdr;
  logic [1:0]   hbeat;
  logic [31:0]  rtype;
  logic [63:0]  sector;
  assign rtype = hdr[31:0];
  assign sector = hdr[127:64];

  // Layout of the chain, from the segment table.
  logic [IW-1:0] last_seg;
  logic          shape_ok;
  always_comb begin
    last_seg = IW'(seg_count - SW'(1));
    shape_ok = 1'b0;
    if (state == S_IDLE) begin
      shape_ok = seg_count >= SW'(2) && !seg_write[0] && seg_len[0] == 32'd16
                 && seg_write[last_seg] && seg_len[last_seg] == 32'd1;
    end
  end

  // The data segments' total length and direction, added up one segment per cycle while the
  // header is fetched: the sum of up to 14 lengths in one cycle was the module's deepest path
  // (~33 LUT levels; docs/SYNTHESIS.md). Classifying waits for it only when the header comes
  // back sooner than the chain has data segments.
  logic [IW-1:0] acc_i;            // the next data segment to add
  logic          acc_busy;
  logic          data_all_write, data_all_read;
  logic [31:0]   data_len;
  logic          data_len_ovf;     // sticky: the sum passed 32 bits at some step
  logic          acc_carry;
  logic [31:0]   acc_sum;
  assign {acc_carry, acc_sum} = {1'b0, data_len} + {1'b0, seg_len[acc_i]};
  always_ff @(posedge clk) begin
    if (rst || kill) begin
      acc_busy <= 1'b0;
    end else if (state == S_IDLE && start) begin
      acc_i <= IW'(1);
      acc_busy <= shape_ok && seg_count > SW'(2);
      data_len <= '0;
      data_len_ovf <= 1'b0;
      data_all_write <= 1'b1;
      data_all_read <= 1'b1;
    end else if (acc_busy) begin
      if (seg_write[acc_i]) data_all_read <= 1'b0;
      else data_all_write <= 1'b0;
      data_len <= acc_sum;
      data_len_ovf <= data_len_ovf | acc_carry;
      acc_i <= acc_i + IW'(1);
      if (acc_i + IW'(1) == last_seg) acc_busy <= 1'b0;
    end
  end
  logic [31:0] data_sectors;
  logic        too_large, out_of_range;
  assign data_sectors = data_len >> 9;
  assign too_large = data_len_ovf || data_sectors > max_sectors;
  assign out_of_range = sector > capacity || {32'd0, data_sectors} > capacity - sector;

  // Data loop position.
  logic          is_in;
  logic [IW-1:0] si;          // current data segment
  logic [31:0]   soff;        // offset inside it
  logic [63:0]   doff;        // byte offset on the store
  logic [31:0]   chunk;       // bytes of the burst in flight
  logic [31:0]   boff;        // offset of the current beat inside the burst
  logic [15:0]   gacks;       // guest writes not yet acknowledged
  logic [15:0]   sacks;       // storage writes not yet acknowledged
  logic          io_fail, dma_fail;
  logic [3:0]    epoch;       // tag of the request's storage accesses
  logic [31:0]   idle;        // cycles without an answer while waiting on the storage port

  // Selections from the segment table are made only in the states that use them (a select
  // into the wide table evaluated every cycle, in every slot, costs simulation time).
  logic [31:0] seg_rem, next_chunk, beat_len;
  always_comb begin
    seg_rem = '0;
    if (state == S_PICK || state == S_IN_STREAM || state == S_OUT_STREAM) seg_rem = seg_len[si] - soff;
  end
  assign next_chunk = seg_rem < 32'(BURST) ? seg_rem : 32'(BURST);
  assign beat_len = chunk - boff < BEAT ? chunk - boff : BEAT;

  // Guest reads: the header, then OUT data.
  assign rd_valid = state == S_HDR_REQ || state == S_OUT_REQ;
  always_comb begin
    rd_addr = '0;
    if (state == S_HDR_REQ) rd_addr = seg_addr[0];
    else if (state == S_OUT_REQ) rd_addr = seg_addr[si] + {32'd0, soff};
  end
  assign rd_len = state == S_HDR_REQ ? 16'd16 : chunk[15:0];

  // Guest writes: IN data beats straight from the storage port, then the status byte.
  // Storage answers of this request; older ones are consumed and dropped.
  logic rc_mine, rc_stale, wc_mine;
  assign rc_mine = st_rc_valid && st_rc_tag == epoch;
  assign rc_stale = st_rc_valid && st_rc_tag != epoch;
  assign wc_mine = st_wc_valid && st_wc_tag == epoch;
  logic stream_in;
  assign stream_in = state == S_IN_STREAM && rc_mine && !io_fail && !st_rc_error;
  assign st_rc_ready = rc_stale || (state == S_IN_STREAM && (wr_ready || io_fail || st_rc_error));
  assign wr_valid = stream_in || state == S_STATUS_REQ;
  always_comb begin
    wr_addr = '0;
    if (state == S_STATUS_REQ) wr_addr = seg_addr[last_seg];
    else if (state == S_IN_STREAM) wr_addr = seg_addr[si] + {32'd0, soff} + {32'd0, boff};
  end
  assign wr_len = state == S_STATUS_REQ ? 16'd1 : beat_len[15:0];
  logic [7:0] status;
  assign status = io_fail ? S_IOERR : S_OK;
  assign wr_data = state == S_STATUS_REQ ? {{(DW - 8){1'b0}}, status} : st_rc_data;

  assign st_rd_valid = state == S_IN_REQ;
  assign st_rd_addr = doff;
  assign st_rd_len = chunk[15:0];
  assign st_rd_tag = epoch;
  assign st_wr_tag = epoch;

  // Storage writes: OUT data beats straight from the guest reads.
  assign st_wr_valid = state == S_OUT_STREAM && rc_valid && !rc_error && !dma_fail;
  assign st_wr_addr = doff + {32'd0, boff};
  assign st_wr_len = beat_len[15:0];
  assign st_wr_data = rc_data;

  assign done = state == S_DONE;
  assign error = dma_fail;

  // Acknowledgements of the guest and storage writes (in S_STATUS_WAIT, acknowledgements come in
  // issue order: the data's first, then the status byte's).
  logic g_issue, g_ack;
  assign g_issue = wr_valid && wr_ready && state != S_STATUS_REQ;
  // Only while serving a request: the slot's DMA master is shared with the other engines of the
  // slot, whose write answers an idle blk engine must not count (an echo request before a blk
  // one on the same slot underflowed this count and hung the blk request).
  assign g_ack = wc_valid && state != S_IDLE && (state != S_STATUS_WAIT || gacks != 16'd0);

  // Waiting on the storage port (a read burst, or write acknowledgements) for too long.
  logic st_waiting, st_progress, st_expired;
  assign st_waiting = state == S_IN_STREAM || (state == S_DRAIN && sacks != 16'd0);
  assign st_progress = (state == S_IN_STREAM && rc_mine) || wc_mine;
  assign st_expired = st_waiting && !st_progress && timeout != 32'd0 && idle >= timeout;

  // The burst ends: advance through the segment, the segment table and the store.
  logic        burst_end, seg_end;
  assign seg_end = chunk == seg_rem;

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      hdr <= '0;
      hbeat <= '0;
      is_in <= 1'b0;
      si <= '0;
      soff <= '0;
      doff <= '0;
      chunk <= '0;
      boff <= '0;
      gacks <= '0;
      sacks <= '0;
      epoch <= '0;
      idle <= '0;
      timed_out <= 1'b0;
      io_fail <= 1'b0;
      dma_fail <= 1'b0;
      written <= '0;
      punt <= 1'b0;
      punt_reason <= '0;
      punt_arg <= '0;
    end else begin
      gacks <= gacks + (g_issue ? 16'd1 : 16'd0) - (g_ack ? 16'd1 : 16'd0);
      sacks <= st_expired ? 16'd0 : sacks + (st_wr_valid ? 16'd1 : 16'd0) - (wc_mine ? 16'd1 : 16'd0);
      idle <= st_waiting && !st_progress ? idle + 32'd1 : 32'd0;
      timed_out <= st_expired;
      if (wc_valid && wc_error) dma_fail <= 1'b1;
      if (wc_mine && st_wc_error) io_fail <= 1'b1;
      if (st_expired) io_fail <= 1'b1;
      unique case (state)
        S_IDLE: begin
          if (start) begin
            hbeat <= '0;
            epoch <= epoch + 4'd1;
            sacks <= '0;           // a request the watchdog aborted may leave some unanswered
            gacks <= '0;
            io_fail <= 1'b0;
            dma_fail <= 1'b0;
            written <= '0;
            punt <= 1'b0;
            punt_arg <= '0;
            if (!shape_ok) begin
              punt <= 1'b1;
              punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_MALFORMED);
              state <= S_DONE;
            end else begin
              state <= S_HDR_REQ;
            end
          end
        end
        S_HDR_REQ: if (rd_ready) state <= S_HDR_WAIT;
        S_HDR_WAIT: begin
          if (rc_valid) begin
            if (DW >= 128 || hbeat == 2'd0) hdr[63:0] <= rc_data[63:0];
            if (DW >= 128) hdr[127:64] <= rc_data[127 % DW:64 % DW];
            else if (hbeat == 2'd1) hdr[127:64] <= rc_data[63:0];
            hbeat <= hbeat + 2'd1;
            if (rc_error) dma_fail <= 1'b1;
            if (rc_last) state <= rc_error || dma_fail ? S_DONE : S_CLASSIFY;
          end
        end
        S_CLASSIFY: if (!acc_busy) begin
          punt_arg <= sector;
          si <= IW'(1);
          soff <= '0;
          doff <= {sector[54:0], 9'd0};
          is_in <= rtype == T_IN;
          if (rtype == T_IN || rtype == T_OUT) begin
            if ((rtype == T_IN ? !data_all_write : !data_all_read) || data_len[8:0] != 9'd0) begin
              punt <= 1'b1;
              punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_MALFORMED);
              state <= S_DONE;
            end else if (too_large) begin
              punt <= 1'b1;
              punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_TOO_LARGE);
              state <= S_DONE;
            end else if (out_of_range) begin
              punt <= 1'b1;
              punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_OUT_OF_RANGE);
              state <= S_DONE;
            end else begin
              written <= rtype == T_IN ? data_len + 32'd1 : 32'd1;
              state <= S_PICK;
            end
          end else begin
            punt <= 1'b1;
            unique case (rtype)
              T_FLUSH: punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_FLUSH);
              T_GET_ID: punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_GET_ID);
              T_DISCARD: punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_DISCARD);
              T_WRITE_ZEROES: punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_WRITE_ZEROES);
              default: punt_reason <= 8'(fv_regs_pkg::PUNT_REASON_BLK_UNSUPPORTED);
            endcase
            state <= S_DONE;
          end
        end
        S_PICK: begin
          if (si == last_seg || dma_fail) begin
            state <= S_DRAIN;
          end else begin
            chunk <= next_chunk;
            boff <= '0;
            state <= is_in ? S_IN_REQ : S_OUT_REQ;
          end
        end
        S_IN_REQ: if (st_rd_ready) state <= S_IN_STREAM;
        S_IN_STREAM: begin
          if (st_expired) begin
            state <= S_DRAIN;
          end else if (rc_mine && st_rc_ready) begin
            if (st_rc_error) io_fail <= 1'b1;
            boff <= boff + BEAT;
            if (st_rc_last) state <= S_PICK;
          end
        end
        S_OUT_REQ: if (rd_ready) state <= S_OUT_STREAM;
        S_OUT_STREAM: begin
          if (rc_valid) begin
            if (rc_error) dma_fail <= 1'b1;
            boff <= boff + BEAT;
            if (rc_last) state <= S_PICK;
          end
        end
        S_DRAIN: begin
          // The storage settled (a faulted request also waits for its guest writes' answers, so
          // that none arrives after it ended).
          if ((sacks == 16'd0 || st_expired) && !st_wr_valid && !g_issue) begin
            if (!dma_fail) state <= S_STATUS_REQ;
            else if (gacks == 16'd0) state <= S_DONE;
          end
        end
        S_STATUS_REQ: if (wr_ready) state <= S_STATUS_WAIT;
        S_STATUS_WAIT: begin
          if (wc_valid && gacks == 16'd0) state <= S_DONE;
        end
        S_DONE: state <= S_IDLE;
        default: state <= S_IDLE;
      endcase
      // The watchdog took the request: idle at once; DMA and storage answers still in flight
      // are ignored (storage ones by their epoch, DMA ones because the slot waits for them
      // before it takes another request).
      if (kill) state <= S_IDLE;
      // Advance past the burst once its last beat went by (S_PICK sees the new position).
      if (burst_end) begin
        doff <= doff + {32'd0, chunk};
        if (seg_end) begin
          si <= si + IW'(1);
          soff <= '0;
        end else begin
          soff <= soff + chunk;
        end
      end
    end
  end
  assign burst_end = (state == S_IN_STREAM && rc_mine && st_rc_ready && st_rc_last && !st_expired)
                     || (state == S_OUT_STREAM && rc_valid && rc_last);
  logic unused_ok;
  assign unused_ok = &{1'b0, hdr[63:32], beat_len[31:16]};
endmodule
