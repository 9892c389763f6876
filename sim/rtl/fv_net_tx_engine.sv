// virtio-net TX engine: sends the frame of one TX chain to the packet port.
//
// A TX chain's device-readable bytes are a virtio_net_hdr_v1 (12 bytes) and the frame, split
// across descriptors anywhere. The engine streams them in: reads of up to RD_MAX bytes, up to
// MAX_RD of them in flight (the device's DMA mux takes one per master), beats answered in order.
// Each beat goes through four stages: (1) registered with its chain offset; (2) its header bytes
// into the header, its frame bytes written into the packet port's frame buffer at their frame
// offsets; (3) its frame bytes from csum_start on paired into 16-bit big-endian words (the
// Internet checksum's); (4) the words summed (an adder tree) and added to the checksum. When
// the header is in, the engine decides; when the last beat is through, it writes the checksum
// at csum_start + csum_offset when the guest asked (NEEDS_CSUM) and sends the frame. The
// decision is driver/src/net/tx.rs `classify`, with the same punt reasons:
//
//   header flags other than NEEDS_CSUM           -> punt net_tx_malformed
//   a GSO type                                    -> punt net_tx_gso (the CPU segments)
//   NEEDS_CSUM without the CSUM feature           -> punt net_tx_malformed
//   a chain shorter than the header               -> punt net_tx_malformed
//   frame shorter than 14 or longer than MTU + 18 -> punt net_tx_malformed (reads stop one
//                                                    byte past MTU + 18: a long chain is never
//                                                    read to its end)
//   csum_start + csum_offset + 2 past the frame   -> punt net_tx_malformed
//   otherwise                                     -> sent, used length 0
//
// Nothing is sent before the decision is final: only the last operation sends the frame
// buffer (a punted frame's bytes are overwritten by the next frame). A punt or a DMA error
// stops the reads; the request ends once every read in flight was answered (a late beat never
// reaches the next request). A DMA error ends the request with `error`.
//
// Order: a queue's frames leave in the order its chains were handed to the slots. The send
// waits for `turn` (no older request of the same queue is still in a slot; fv_top keeps the
// tickets), so a short frame in one slot does not overtake a long one in another.
//
// Packet port. Data writes (`pk_dvalid`): `pk_dlen` bytes of `pk_ddata` (byte 0 first) at frame
// offset `pk_doff`, one per DMA beat; the DMA read port delivers one beat per cycle to one
// master, so the data writes of all slots never collide and need no arbitration (the frame
// buffers always take them). Control operations (`pk_valid`, arbitrated: `pk_ready`): the
// checksum (`pk_send` = 0: 2 bytes at `pk_off`), then the send (`pk_send` = 1: the frame's
// first `pk_len` bytes leave).
module fv_net_tx_engine #(
  parameter int DW = 128,
  parameter int MAX_SEGS = 16,
  parameter int RD_MAX = 2048,    // bytes per DMA read
  parameter int MAX_RD = 1        // DMA reads in flight (fv_dma_mux: one per master)
) (
  input  logic clk,
  input  logic rst,
  input  logic kill,             // the slot's watchdog: drop the request, back to idle (no done)

  input  logic                                    start,
  input  logic [MAX_SEGS-1:0][63:0]               seg_addr,
  input  logic [MAX_SEGS-1:0][31:0]               seg_len,
  input  logic [MAX_SEGS-1:0]                     seg_write,
  input  logic [$clog2(MAX_SEGS+1)-1:0]           seg_count,

  // The function's configuration.
  input  logic [15:0]                             mtu,
  input  logic                                    csum_feature, // VIRTIO_NET_F_CSUM negotiated
  input  logic                                    turn,         // this request may send now

  output logic                                    done,
  output logic                                    error,
  output logic                                    punt,         // with done: punt the request
  output logic [7:0]                              punt_reason,

  output logic          rd_valid,
  input  logic          rd_ready,
  output logic [63:0]   rd_addr,
  output logic [15:0]   rd_len,
  input  logic          rc_valid,
  input  logic [DW-1:0] rc_data,
  input  logic          rc_last,
  input  logic          rc_error,

  output logic          pk_dvalid,
  output logic [15:0]   pk_doff,
  output logic [15:0]   pk_dlen,
  output logic [DW-1:0] pk_ddata,
  output logic          pk_valid,
  input  logic          pk_ready,
  output logic          pk_send,
  output logic [15:0]   pk_off,
  output logic [15:0]   pk_len,
  output logic [DW-1:0] pk_data
);
  localparam int SW = $clog2(MAX_SEGS + 1);
  localparam int BEAT = DW / 8;
  localparam int BW = $clog2(BEAT + 1);
  localparam int RW = $clog2(MAX_RD + 1);
  localparam logic [31:0] HDR = 32'd12;
  localparam logic [7:0] F_NEEDS_CSUM = 8'd1;

  if (DW < 64 || RD_MAX < BEAT || RD_MAX > 4096 || MAX_RD < 1 || (MAX_RD & (MAX_RD - 1)) != 0)
  begin : g_bad_params
    $error("fv_net_tx_engine: DW >= 64, RD_MAX in DW/8..4096, MAX_RD a power of two");
  end

  typedef enum logic [2:0] {S_IDLE, S_RUN, S_DRAIN, S_FINISH, S_CSUM_WR, S_SEND, S_DONE} state_e;
  state_e state;

  logic          failed, punted, checked, issuing, capped;
  logic [7:0]    reason;
  logic [95:0]   hdr;             // the virtio_net_hdr_v1, byte 0 in bits 7:0
  logic [31:0]   acc;             // the checksum's running sum (not folded)

  // Header fields.
  logic [7:0]  h_flags, h_gso;
  logic [15:0] h_cs, h_co;
  assign h_flags = hdr[7:0];
  assign h_gso = hdr[15:8];
  assign h_cs = hdr[63:48];
  assign h_co = hdr[79:64];
  logic unused_hdr;                // hdr_len, gso_size, num_buffers: the CPU's (GSO)
  assign unused_hdr = &{1'b0, hdr[95:80], hdr[47:16]};
  logic need_csum;
  assign need_csum = (h_flags & F_NEEDS_CSUM) != 8'd0;

  // The reads stop one byte past the longest frame sent: a longer chain is known too long.
  logic [31:0] max_frame, cap;
  assign max_frame = {16'd0, mtu} + 32'd18;
  assign cap = HDR + max_frame + 32'd1;

  // ---- Issue: the next read (segment ri at roff, chain offset icoff).
  logic [SW-1:0] ri;
  logic [31:0]   roff, icoff;
  logic [RW-1:0] nrd;             // reads in flight
  logic          rseg_ok;
  logic [31:0]   rrem, ilen;
  always_comb begin
    rseg_ok = 1'b0;
    rrem = '0;
    if (issuing) begin
      rseg_ok = ri < seg_count && !seg_write[ri[SW-2:0]];
      rrem = seg_len[ri[SW-2:0]] - roff;
    end
    ilen = 32'(RD_MAX);
    if (rrem < ilen) ilen = rrem;
    if (cap - icoff < ilen) ilen = cap - icoff;
  end
  assign rd_valid = issuing && rseg_ok && rrem != 32'd0 && icoff < cap && nrd < RW'(MAX_RD);
  assign rd_addr = rd_valid ? seg_addr[ri[SW-2:0]] + {32'd0, roff} : '0;
  assign rd_len = ilen[15:0];

  // Lengths of the reads in flight, oldest first (answers come in order).
  localparam int RQ = MAX_RD < 2 ? 2 : MAX_RD;
  logic [RQ-1:0][12:0] rq_len;
  logic [$clog2(RQ)-1:0] rq_head, rq_tail;
  logic [12:0]   rleft;           // bytes of the oldest read not yet answered
  logic          rq_first;        // the next beat is the oldest read's first
  logic [12:0]   cur_left;
  assign cur_left = rq_first ? rq_len[rq_head] : rleft;

  // Answers count only while serving (a killed request's late beats arrive while the slot is
  // quarantined, with this engine idle).
  logic beat;
  assign beat = rc_valid && state != S_IDLE;

  // ---- Stage 1: the beat, with its chain offset and byte count.
  logic          s1_v;
  logic [DW-1:0] s1_data;
  logic [31:0]   s1_coff, ccoff;  // ccoff: chain offset of the next beat to arrive
  logic [BW-1:0] s1_nb;
  logic [BW-1:0] in_nb;
  assign in_nb = cur_left < 13'(BEAT) ? BW'(cur_left) : BW'(BEAT);

  // ---- Stage 2: header bytes in, frame bytes to the frame buffer.
  logic [31:0]   skip;            // leading header bytes of the beat
  logic          s1_frame;        // the beat has frame bytes
  logic [DW+95:0] hdr_in;
  assign skip = s1_coff < HDR ? HDR - s1_coff : '0;
  assign s1_frame = s1_v && s1_coff + 32'(s1_nb) > HDR;
  assign hdr_in = {96'd0, s1_data} << {s1_coff[3:0], 3'b000};
  assign pk_dvalid = s1_frame;
  assign pk_doff = s1_frame ? 16'(s1_coff + skip - HDR) : '0;
  assign pk_dlen = s1_frame ? 16'(32'(s1_nb) - skip) : '0;
  assign pk_ddata = s1_frame ? s1_data >> {skip[BW-1:0], 3'b000} : '0;

  // ---- Stage 3: the beat's frame bytes from csum_start on, as the 16-bit words of the sum
  // (byte i at frame offset s2_off + i is a word's high byte when its distance from csum_start
  // is even: the even bytes of the beat are high bytes when s2_off and csum_start have the same
  // parity). Stage 4: the words of the beat summed by an adder tree, then into the checksum.
  // (One cycle each: 16 masked bytes summed and accumulated at once were 33 LUT levels.)
  localparam int NW = BEAT / 2;
  logic          s2_v, s3_v, s4_v;
  logic [DW-1:0] s2_data;
  logic [15:0]   s2_off, s2_len;
  logic [DW-1:0] mbytes;                     // the beat's bytes counted (others 0)
  logic [NW-1:0][15:0] words, s3_w;
  always_comb begin
    for (int i = 0; i < BEAT; i++) begin
      mbytes[8*i +: 8] = (16'(i) < s2_len && {16'd0, s2_off} + 32'(i) >= {16'd0, h_cs})
                         ? s2_data[8*i +: 8] : 8'd0;
    end
    for (int j = 0; j < NW; j++) begin
      words[j] = (s2_off[0] ^ h_cs[0]) == 1'b0 ? {mbytes[16*j +: 8], mbytes[16*j + 8 +: 8]}
                                              : {mbytes[16*j + 8 +: 8], mbytes[16*j +: 8]};
    end
  end
  // The adder tree: NW words (4 .. 32) to one sum of at most NW * 0xFFFF.
  localparam int TW = 16 + $clog2(NW);
  logic [2*NW-2:0][TW-1:0] tree;
  logic [TW-1:0]           s4_sum;
  always_comb begin
    for (int j = 0; j < NW; j++) tree[NW - 1 + j] = TW'(s3_w[j]);
    for (int n = NW - 2; n >= 0; n--) tree[n] = tree[2 * n + 1] + tree[2 * n + 2];
  end

  // Everything read is through the stages.
  logic quiet;
  assign quiet = nrd == '0 && !s1_v && !s2_v && !s3_v && !s4_v;

  // The checksum: folded, complemented, 0 sent as 0xFFFF.
  logic [16:0] fold1;
  logic [15:0] fold2, ck;
  assign fold1 = {1'b0, acc[15:0]} + {1'b0, acc[31:16]};
  assign fold2 = fold1[15:0] + {15'd0, fold1[16]};
  assign ck = (~fold2 == 16'd0) ? 16'hffff : ~fold2;

  logic [31:0] flen;
  assign flen = icoff - HDR;

  assign pk_valid = state == S_CSUM_WR || (state == S_SEND && turn);
  assign pk_send = state == S_SEND;
  assign pk_off = state == S_CSUM_WR ? h_cs + h_co : '0;
  assign pk_len = state == S_CSUM_WR ? 16'd2 : (state == S_SEND ? flen[15:0] : '0);
  assign pk_data = state == S_CSUM_WR ? {{(DW - 16){1'b0}}, ck[7:0], ck[15:8]} : '0;
  assign done = state == S_DONE;
  assign error = failed;
  assign punt = punted;
  assign punt_reason = reason;

  logic [7:0] malformed, gso;
  assign malformed = 8'(fv_regs_pkg::PUNT_REASON_NET_TX_MALFORMED);
  assign gso = 8'(fv_regs_pkg::PUNT_REASON_NET_TX_GSO);

  // The header is in once a beat past byte 11 went through stage 2.
  logic hdr_in_done;
  assign hdr_in_done = ccoff >= HDR && !(s1_v && s1_coff < HDR);

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      {failed, punted, checked, issuing, capped} <= '0;
      reason <= '0;
      hdr <= '0;
      acc <= '0;
      ri <= '0;
      roff <= '0;
      icoff <= '0;
      nrd <= '0;
      rq_len <= '0;
      rq_head <= '0;
      rq_tail <= '0;
      rleft <= '0;
      rq_first <= 1'b1;
      ccoff <= '0;
      {s1_v, s1_data, s1_coff, s1_nb} <= '0;
      {s2_v, s2_data, s2_off, s2_len} <= '0;
      s3_v <= 1'b0;
      s3_w <= '0;
      s4_v <= 1'b0;
      s4_sum <= '0;
    end else begin
      // Issue.
      if (issuing) begin
        if (rd_valid && rd_ready) begin
          rq_len[rq_tail] <= ilen[12:0];
          rq_tail <= rq_tail + 1'b1;
          roff <= roff + ilen;
          icoff <= icoff + ilen;
        end else if (rseg_ok && rrem == 32'd0) begin
          ri <= ri + SW'(1);
          roff <= '0;
        end else if (!rseg_ok || icoff >= cap) begin
          issuing <= 1'b0;            // the chain's readable bytes are all asked for
          capped <= icoff >= cap && rseg_ok;
        end
      end
      nrd <= nrd + RW'(rd_valid && rd_ready) - RW'(beat && rc_last);

      // Beats, in order.
      s1_v <= 1'b0;
      if (beat) begin
        s1_v <= !rc_error;
        s1_data <= rc_data;
        s1_coff <= ccoff;
        s1_nb <= in_nb;
        ccoff <= ccoff + 32'(in_nb);
        rleft <= cur_left - 13'(in_nb);
        rq_first <= 1'b0;
        if (rc_last) begin
          rq_head <= rq_head + 1'b1;
          rq_first <= 1'b1;
        end
        if (rc_error) begin
          failed <= 1'b1;
          issuing <= 1'b0;
        end
      end
      s2_v <= s1_frame;
      if (s1_v) begin
        for (int i = 0; i < 12; i++) begin
          if (32'(i) >= s1_coff && 32'(i) < s1_coff + 32'(s1_nb)) hdr[8*i +: 8] <= hdr_in[8*i +: 8];
        end
        s2_data <= pk_ddata;
        s2_off <= pk_doff;
        s2_len <= pk_dlen;
      end
      s3_v <= s2_v;
      if (s2_v) s3_w <= words;
      s4_v <= s3_v;
      if (s3_v) s4_sum <= tree[0];
      if (s4_v) acc <= acc + 32'(s4_sum);

      unique case (state)
        S_IDLE: begin
          if (start) begin
            {failed, punted, checked, capped} <= '0;
            issuing <= 1'b1;
            reason <= '0;
            hdr <= '0;
            acc <= '0;
            ri <= '0;
            roff <= '0;
            icoff <= '0;
            ccoff <= '0;
            rq_head <= '0;
            rq_tail <= '0;
            rq_first <= 1'b1;
            nrd <= '0;
            state <= S_RUN;
          end
        end
        S_RUN: begin
          if (failed) begin
            state <= S_DRAIN;
          end else if (!checked && hdr_in_done) begin
            checked <= 1'b1;
            if ((h_flags & ~F_NEEDS_CSUM) != 8'd0 || (need_csum && !csum_feature)) begin
              punted <= 1'b1;
              reason <= malformed;
              issuing <= 1'b0;
              state <= S_DRAIN;
            end else if (h_gso != 8'd0) begin
              punted <= 1'b1;
              reason <= gso;
              issuing <= 1'b0;
              state <= S_DRAIN;
            end
          end else if (!issuing && quiet) begin
            state <= S_FINISH;
          end
        end
        S_DRAIN: if (quiet) state <= S_DONE;
        S_FINISH: begin
          // Everything asked for is in and checked (or the chain is shorter than a header).
          if (!checked || capped || flen < 32'd14 || flen > max_frame
              || (need_csum && {16'd0, h_cs} + {16'd0, h_co} + 32'd2 > flen)) begin
            punted <= 1'b1;
            reason <= malformed;
            state <= S_DONE;
          end else begin
            state <= need_csum ? S_CSUM_WR : S_SEND;
          end
        end
        S_CSUM_WR: if (pk_ready) state <= S_SEND;
        S_SEND: if (pk_ready && turn) state <= S_DONE;
        S_DONE: state <= S_IDLE;
        default: state <= S_IDLE;
      endcase
      if (kill) begin
        state <= S_IDLE;
        issuing <= 1'b0;
        nrd <= '0;
        s1_v <= 1'b0;
        s2_v <= 1'b0;
        s3_v <= 1'b0;
        s4_v <= 1'b0;
      end
    end
  end
endmodule
