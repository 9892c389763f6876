// Testbench DMA target: a byte memory behind one DMA master port (the slot/engine side of the
// device's DMA mux). Reads are answered LAT cycles after they are taken, in DW-bit beats (byte 0
// of beat 0 = the byte at the address); writes are taken at once and acknowledged two cycles
// later. `hold` freezes the answers (a stuck DMA), `fault_at` makes accesses at or above it fail.
module tb_dma_mem #(
  parameter int DW = 128,
  parameter int LAT = 4,
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

  // One read at a time: the masters here have at most one outstanding.
  logic        rbusy;
  logic [63:0] raddr;
  int          rleft, rwait;
  assign rd_ready = !rbusy;
  assign rc_valid = rbusy && rwait == 0 && !hold;
  assign rc_last = rc_valid && rleft <= B;
  assign rc_error = rc_valid && raddr >= fault_at;
  always_comb begin
    rc_data = '0;
    for (int i = 0; i < B; i++) rc_data[8 * i +: 8] = mem[32'(raddr + 64'(i)) % BYTES];
  end
  always_ff @(posedge clk) begin
    if (rst) begin
      rbusy <= 1'b0;
    end else if (rd_valid && rd_ready) begin
      rbusy <= 1'b1;
      raddr <= rd_addr;
      rleft <= int'(rd_len);
      rwait <= LAT;
    end else if (rbusy && rwait > 0) begin
      rwait <= rwait - 1;
    end else if (rc_valid) begin
      raddr <= raddr + 64'(B);
      rleft <= rleft - B;
      if (rc_last) rbusy <= 1'b0;
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
