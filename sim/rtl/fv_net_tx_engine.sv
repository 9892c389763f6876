// virtio-net TX engine: sends the frame of one TX chain to the packet port.
//
// A TX chain's device-readable bytes are a virtio_net_hdr_v1 (12 bytes) and the frame, split
// across descriptors anywhere. The engine reads the header first (its reads stop at byte 12),
// decides, then streams the frame into the packet port's frame buffer at its offsets, summing
// it from csum_start as it goes (the Internet checksum, 16-bit big-endian words). At the end
// it writes the checksum at csum_start + csum_offset when the guest asked (NEEDS_CSUM) and
// sends the frame. The decision is driver/src/net/tx.rs `classify`, in the same order:
//
//   header flags other than NEEDS_CSUM           -> punt net_tx_malformed
//   a GSO type                                    -> punt net_tx_gso (the CPU segments)
//   NEEDS_CSUM without the CSUM feature           -> punt net_tx_malformed
//   a chain shorter than the header               -> punt net_tx_malformed
//   frame shorter than 14 or longer than MTU + 18 -> punt net_tx_malformed (a long one is
//                                                    punted as soon as its length passes)
//   csum_start + csum_offset + 2 past the frame   -> punt net_tx_malformed
//   otherwise                                     -> sent, used length 0
//
// Nothing is sent before the decision is final: the port's frame buffer is only sent by the
// last operation (a punted frame's bytes are overwritten by the next frame). A DMA error ends
// the request with `error` (the virtqueue engine's DMA fault).
//
// Order: a queue's frames leave in the order its chains were handed to the slots. The send
// waits for `turn` (no older request of the same queue is still in a slot; fv_top keeps the
// tickets), so a short frame in one slot does not overtake a long one in another.
//
// Packet port: `pk_valid` with `pk_send` = 0 writes `pk_len` (<= DW/8) bytes of `pk_data`
// (byte 0 first) at frame offset `pk_off`; with `pk_send` = 1 it sends the frame's first
// `pk_len` bytes.
module fv_net_tx_engine #(
  parameter int DW = 128,
  parameter int MAX_SEGS = 16
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

  output logic          pk_valid,
  input  logic          pk_ready,
  output logic          pk_send,
  output logic [15:0]   pk_off,
  output logic [15:0]   pk_len,
  output logic [DW-1:0] pk_data
);
  localparam int SW = $clog2(MAX_SEGS + 1);
  localparam int BEAT = DW / 8;
  localparam logic [31:0] HDR = 32'd12;
  localparam logic [7:0] F_NEEDS_CSUM = 8'd1;

  if (DW % 16 != 0 || DW < 128) begin : g_bad_dw
    $error("fv_net_tx_engine: DW must be a multiple of 16 and at least 128 (the header)");
  end

  typedef enum logic [3:0] {
    S_IDLE, S_PICK, S_RD_REQ, S_RD_WAIT, S_CHECK, S_PK_WR, S_FINISH, S_CSUM_WR, S_SEND, S_DONE
  } state_e;
  state_e state;

  logic [SW-1:0] ri;              // current readable segment
  logic [31:0]   roff;            // offset inside it
  logic [31:0]   coff;            // chain offset of the next byte to read
  logic [31:0]   chunk;
  logic [DW-1:0] buffer;
  logic [95:0]   hdr;             // the virtio_net_hdr_v1, byte 0 in bits 7:0
  logic [31:0]   acc;             // the checksum's running sum (not folded)
  logic          failed, punted;
  logic [7:0]    reason;

  // Header fields.
  logic [7:0]  h_flags, h_gso;
  logic [15:0] h_cs, h_co;
  assign h_flags = hdr[7:0];
  assign h_gso = hdr[15:8];
  assign h_cs = hdr[63:48];
  assign h_co = hdr[79:64];
  logic unused_hdr;                // hdr_len, gso_size, num_buffers: the CPU's (GSO)
  assign unused_hdr = &{1'b0, hdr[95:80], hdr[47:16]};

  // The frame's length so far and its limit.
  logic [31:0] flen, max_frame;
  assign flen = coff - HDR;
  assign max_frame = {16'd0, mtu} + 32'd18;

  // The current segment (selected only where used: a select into the wide table evaluated
  // every cycle, in every slot, costs simulation time).
  logic        rseg_ok;
  logic [31:0] rrem;
  always_comb begin
    rseg_ok = 1'b0;
    rrem = '0;
    if (state == S_PICK) begin
      rseg_ok = ri < seg_count && !seg_write[ri[SW-2:0]];
      rrem = seg_len[ri[SW-2:0]] - roff;
    end
  end

  logic [31:0] next_chunk;
  always_comb begin
    next_chunk = 32'(BEAT);
    if (rrem < next_chunk) next_chunk = rrem;
    if (coff < HDR && HDR - coff < next_chunk) next_chunk = HDR - coff;
  end

  // The sum of one beat's frame bytes from csum_start on: byte i is at frame offset foff + i;
  // it is a word's high byte when its distance from csum_start is even.
  logic [31:0] foff;
  logic [20:0] beat_sum;
  assign foff = coff - chunk - HDR;   // (in S_PK_WR: coff already counts the beat)
  always_comb begin
    beat_sum = '0;
    if (state == S_PK_WR) begin
      for (int i = 0; i < BEAT; i++) begin
        if (32'(i) < chunk && foff + 32'(i) >= {16'd0, h_cs}) begin
          if ((foff[0] ^ 1'(i) ^ h_cs[0]) == 1'b0) beat_sum = beat_sum + {5'd0, buffer[8*i +: 8], 8'd0};
          else beat_sum = beat_sum + {13'd0, buffer[8*i +: 8]};
        end
      end
    end
  end

  // The checksum: folded, complemented, 0 sent as 0xFFFF.
  logic [16:0] fold1;
  logic [15:0] fold2, ck;
  assign fold1 = {1'b0, acc[15:0]} + {1'b0, acc[31:16]};
  assign fold2 = fold1[15:0] + {15'd0, fold1[16]};
  assign ck = (~fold2 == 16'd0) ? 16'hffff : ~fold2;

  // A header read's bytes moved to their header offsets (coff < 12 there).
  logic [95:0] hdr_in;
  assign hdr_in = rc_data[95:0] << {coff[3:0], 3'b000};

  logic need_csum;
  assign need_csum = (h_flags & F_NEEDS_CSUM) != 8'd0;

  assign rd_valid = state == S_RD_REQ;
  assign rd_addr = state == S_RD_REQ ? seg_addr[ri[SW-2:0]] + {32'd0, roff} : '0;
  assign rd_len = chunk[15:0];
  assign pk_valid = state == S_PK_WR || state == S_CSUM_WR || (state == S_SEND && turn);
  assign pk_send = state == S_SEND;
  always_comb begin
    pk_off = '0;
    pk_len = '0;
    pk_data = '0;
    unique case (state)
      S_PK_WR: begin
        pk_off = foff[15:0];
        pk_len = chunk[15:0];
        pk_data = buffer;
      end
      S_CSUM_WR: begin
        pk_off = h_cs + h_co;
        pk_len = 16'd2;
        pk_data = {{(DW - 16){1'b0}}, ck[7:0], ck[15:8]};
      end
      S_SEND: pk_len = flen[15:0];
      default: ;
    endcase
  end
  assign done = state == S_DONE;
  assign error = failed;
  assign punt = punted;
  assign punt_reason = reason;

  logic [7:0] malformed, gso;
  assign malformed = 8'(fv_regs_pkg::PUNT_REASON_NET_TX_MALFORMED);
  assign gso = 8'(fv_regs_pkg::PUNT_REASON_NET_TX_GSO);

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      ri <= '0;
      roff <= '0;
      coff <= '0;
      chunk <= '0;
      buffer <= '0;
      hdr <= '0;
      acc <= '0;
      failed <= 1'b0;
      punted <= 1'b0;
      reason <= '0;
    end else begin
      unique case (state)
        S_IDLE: begin
          if (start) begin
            ri <= '0;
            roff <= '0;
            coff <= '0;
            hdr <= '0;
            acc <= '0;
            failed <= 1'b0;
            punted <= 1'b0;
            reason <= '0;
            state <= S_PICK;
          end
        end
        S_PICK: begin
          if (!rseg_ok) begin
            // The chain's readable bytes are all read.
            if (coff < HDR) begin
              punted <= 1'b1;
              reason <= malformed;
              state <= S_DONE;
            end else begin
              state <= S_FINISH;
            end
          end else if (rrem == 32'd0) begin
            ri <= ri + SW'(1);
            roff <= '0;
          end else if (coff > HDR && flen > max_frame) begin
            punted <= 1'b1;
            reason <= malformed;
            state <= S_DONE;
          end else begin
            chunk <= next_chunk;
            state <= S_RD_REQ;
          end
        end
        S_RD_REQ: if (rd_ready) state <= S_RD_WAIT;
        S_RD_WAIT: begin
          if (rc_valid) begin
            buffer <= rc_data;
            if (rc_error) begin
              failed <= 1'b1;
              state <= S_DONE;
            end else if (rc_last) begin
              roff <= roff + chunk;
              coff <= coff + chunk;
              if (coff < HDR) begin
                for (int i = 0; i < 12; i++) begin
                  if (32'(i) >= coff && 32'(i) < coff + chunk) hdr[8*i +: 8] <= hdr_in[8*i +: 8];
                end
                state <= coff + chunk == HDR ? S_CHECK : S_PICK;
              end else begin
                state <= S_PK_WR;
              end
            end
          end
        end
        S_CHECK: begin
          if ((h_flags & ~F_NEEDS_CSUM) != 8'd0) begin
            punted <= 1'b1;
            reason <= malformed;
            state <= S_DONE;
          end else if (h_gso != 8'd0) begin
            punted <= 1'b1;
            reason <= gso;
            state <= S_DONE;
          end else if (need_csum && !csum_feature) begin
            punted <= 1'b1;
            reason <= malformed;
            state <= S_DONE;
          end else begin
            state <= S_PICK;
          end
        end
        S_PK_WR: begin
          if (pk_ready) begin
            acc <= acc + {11'd0, beat_sum};
            state <= S_PICK;
          end
        end
        S_FINISH: begin
          if (flen < 32'd14 || flen > max_frame
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
      if (kill) state <= S_IDLE;
    end
  end
endmodule
