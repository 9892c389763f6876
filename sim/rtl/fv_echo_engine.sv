// Echo device engine: copies the bytes of a chain's device-readable descriptors into its
// device-writable descriptors, in order, and reports how many bytes it wrote (the used length:
// min(readable, writable)). A stand-in device that exercises the virtqueue engine's path; the blk
// and net engines take its place.
//
// Copies in chunks of at most DW/8 bytes: one single-beat DMA read, then one DMA write.
module fv_echo_engine #(
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
  output logic                                    done,
  output logic                                    error,
  output logic [31:0]                             written,

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
  input  logic          wc_error
);
  localparam int SW = $clog2(MAX_SEGS + 1);
  localparam logic [31:0] BEAT = 32'(DW / 8);

  typedef enum logic [2:0] {S_IDLE, S_PICK, S_RD_REQ, S_RD_WAIT, S_WR_REQ, S_WR_WAIT, S_DONE} state_e;
  state_e state;

  logic [SW-1:0] ri, wi;          // current readable / writable segment
  logic [31:0]   roff, woff;      // offsets inside them
  logic [31:0]   chunk;
  logic [DW-1:0] buffer;
  logic          failed;

  // Remaining bytes of the current segments.
  logic [31:0] rrem, wrem;
  logic        rseg_ok, wseg_ok;
  // Selections from the segment table are made only in the states that use them (a select
  // into the wide table evaluated every cycle, in every slot, costs simulation time).
  assign wseg_ok = wi < seg_count;
  always_comb begin
    rseg_ok = 1'b0;
    rrem = '0;
    wrem = '0;
    if (state == S_PICK || state == S_WR_WAIT) begin
      rseg_ok = ri < seg_count && !seg_write[ri[SW-2:0]];
      rrem = seg_len[ri[SW-2:0]] - roff;
      wrem = seg_len[wi[SW-2:0]] - woff;
    end
  end

  logic [31:0] next_chunk;
  always_comb begin
    next_chunk = BEAT;
    if (rrem < next_chunk) next_chunk = rrem;
    if (wrem < next_chunk) next_chunk = wrem;
  end

  assign rd_valid = state == S_RD_REQ;
  assign rd_addr = state == S_RD_REQ ? seg_addr[ri[SW-2:0]] + {32'd0, roff} : '0;
  assign rd_len = chunk[15:0];
  assign wr_valid = state == S_WR_REQ;
  assign wr_addr = state == S_WR_REQ ? seg_addr[wi[SW-2:0]] + {32'd0, woff} : '0;
  assign wr_len = chunk[15:0];
  assign wr_data = buffer;
  assign done = state == S_DONE;
  assign error = failed;

  // The first writable segment: readable ones come first (the virtqueue engine checked it).
  // Looked at only when a chain starts (a loop evaluated every cycle costs simulation time).
  logic [SW-1:0] first_write;
  always_comb begin
    first_write = seg_count;
    if (state == S_IDLE) begin
      for (int i = MAX_SEGS - 1; i >= 0; i--) begin
        if (SW'(i) < seg_count && seg_write[i]) first_write = SW'(i);
      end
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      ri <= '0;
      wi <= '0;
      roff <= '0;
      woff <= '0;
      chunk <= '0;
      buffer <= '0;
      failed <= 1'b0;
      written <= '0;
    end else begin
      unique case (state)
        S_IDLE: begin
          if (start) begin
            ri <= '0;
            wi <= first_write;
            roff <= '0;
            woff <= '0;
            failed <= 1'b0;
            written <= '0;
            state <= S_PICK;
          end
        end
        S_PICK: begin
          if (!rseg_ok || !wseg_ok) begin
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
              state <= S_WR_REQ;
            end
          end
        end
        S_WR_REQ: if (wr_ready) state <= S_WR_WAIT;
        S_WR_WAIT: begin
          if (wc_valid) begin
            if (wc_error) begin
              failed <= 1'b1;
              state <= S_DONE;
            end else begin
              written <= written + chunk;
              if (chunk == rrem) begin
                ri <= ri + SW'(1);
                roff <= '0;
              end else begin
                roff <= roff + chunk;
              end
              if (chunk == wrem) begin
                wi <= wi + SW'(1);
                woff <= '0;
              end else begin
                woff <= woff + chunk;
              end
              state <= S_PICK;
            end
          end
        end
        S_DONE: state <= S_IDLE;
        default: state <= S_IDLE;
      endcase
      // The watchdog took the request: idle at once; DMA and storage answers still in flight
      // are ignored (storage ones by their epoch, DMA ones because the slot waits for them
      // before it takes another request).
      if (kill) state <= S_IDLE;
    end
  end
endmodule
