// Testbench DMA target: a byte memory behind one DMA master port (the slot/engine side of the
// device's DMA mux). Reads are answered in order, each LAT cycles after the previous one ended
// (or it was taken), in DW-bit beats (byte 0 of beat 0 = the byte at the address), up to DEPTH
// outstanding; writes are taken at once and acknowledged two cycles later. `hold` freezes the answers (a stuck DMA), `fault_at` makes accesses at or above it fail.
module tb_dma_mem #(
  parameter int DW = 128,
  parameter int LAT = 4,
  parameter int DEPTH = 1,           // reads outstanding at once
  parameter int BYTES = 1 << 16
) (
  input  logic          clk,
  input  logic          rst,
  input  logic          hold,
  input  logic [63:0]   fault_at,
  input  logic          rd_valid,
  output logic          rd_ready,
  input  logic [63:0]   rd_addr,
  input  logic [15:0]   rd_len,
  output logic          rc_valid,
  output logic [DW-1:0] rc_data,
  output logic          rc_last,
  output logic          rc_error,
  input  logic          wr_valid,
  output logic          wr_ready,
  input  logic [63:0]   wr_addr,
  input  logic [15:0]   wr_len,
  input  logic [DW-1:0] wr_data,
  output logic          wc_valid,
  output logic          wc_error
);
  localparam int B = DW / 8;
  logic [7:0] mem [BYTES];

  // Reads in order, up to DEPTH outstanding (a FIFO of requests; the head one answers).
  logic [DEPTH-1:0][63:0] raddr;
  int                     rleft [DEPTH];
  int                     rwait;
  int                     rn;
  assign rd_ready = rn < DEPTH;
  assign rc_valid = rn > 0 && rwait == 0 && !hold;
  assign rc_last = rc_valid && rleft[0] <= B;
  assign rc_error = rc_valid && raddr[0] >= fault_at;
  always_comb begin
    rc_data = '0;
    for (int i = 0; i < B; i++) rc_data[8 * i +: 8] = mem[32'(raddr[0] + 64'(i)) % BYTES];
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      rn <= 0;
      rwait <= 0;
    end else begin
      automatic int n = rn;
      if (rc_valid) begin
        if (rc_last) begin
          for (int k = 0; k < DEPTH - 1; k++) begin
            raddr[k] <= raddr[k + 1];
            rleft[k] <= rleft[k + 1];
          end
          n = n - 1;
          rwait <= LAT;
        end else begin
          raddr[0] <= raddr[0] + 64'(B);
          rleft[0] <= rleft[0] - B;
        end
      end else if (rn > 0 && rwait > 0) begin
        rwait <= rwait - 1;
      end
      if (rd_valid && rd_ready) begin
        if (rn == 0 || (n == 0)) rwait <= LAT;
        raddr[n] <= rd_addr;
        rleft[n] <= int'(rd_len);
        n = n + 1;
      end
      rn <= n;
    end
  end

  logic [1:0] wpipe, werr;
  assign wr_ready = !hold;
  assign wc_valid = wpipe[1] && !hold;
  assign wc_error = wc_valid && werr[1];
  always_ff @(posedge clk) begin
    if (rst) begin
      wpipe <= '0;
      werr <= '0;
    end else if (!hold) begin
      wpipe <= {wpipe[0], wr_valid};
      werr <= {werr[0], wr_valid && wr_addr >= fault_at};
      if (wr_valid && wr_addr < fault_at) begin
        for (int i = 0; i < B; i++) begin
          if (i < int'(wr_len)) mem[32'(wr_addr + 64'(i)) % BYTES] <= wr_data[8 * i +: 8];
        end
      end
    end
  end
endmodule
