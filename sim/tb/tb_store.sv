// Testbench storage port: a byte store behind one engine's storage master. Reads answer in
// DW-bit beats (waiting on rc_ready) with the request's tag after LAT cycles; write beats are
// stored and acknowledged with their tag two cycles later. `hold` freezes the answers.
module tb_store #(
  parameter int DW = 128,
  parameter int LAT = 6,
  parameter int BYTES = 1 << 16
) (
  input  logic          clk,
  input  logic          rst,
  input  logic          hold,
  input  logic          rd_valid,
  output logic          rd_ready,
  input  logic [63:0]   rd_addr,
  input  logic [15:0]   rd_len,
  input  logic [3:0]    rd_tag,
  output logic          rc_valid,
  output logic [3:0]    rc_tag,
  input  logic          rc_ready,
  output logic [DW-1:0] rc_data,
  output logic          rc_last,
  output logic          rc_error,
  input  logic          wr_valid,
  input  logic [63:0]   wr_addr,
  input  logic [15:0]   wr_len,
  input  logic [DW-1:0] wr_data,
  input  logic [3:0]    wr_tag,
  output logic          wc_valid,
  output logic [3:0]    wc_tag,
  output logic          wc_error
);
  localparam int B = DW / 8;
  logic [7:0] mem [BYTES];

  logic        rbusy;
  logic [63:0] raddr;
  logic [3:0]  rtag;
  int          rleft, rwait;
  assign rd_ready = !rbusy;
  assign rc_valid = rbusy && rwait == 0 && !hold;
  assign rc_tag = rtag;
  assign rc_last = rc_valid && rleft <= B;
  assign rc_error = 1'b0;
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
      rtag <= rd_tag;
      rwait <= LAT;
    end else if (rbusy && rwait > 0) begin
      rwait <= rwait - 1;
    end else if (rc_valid && rc_ready) begin
      raddr <= raddr + 64'(B);
      rleft <= rleft - B;
      if (rc_last) rbusy <= 1'b0;
    end
  end

  // Acknowledgements two cycles behind their beats (several may be in flight).
  logic [1:0]      wpipe;
  logic [1:0][3:0] wtags;
  assign wc_valid = wpipe[1] && !hold;
  assign wc_tag = wtags[1];
  assign wc_error = 1'b0;
  always_ff @(posedge clk) begin
    if (rst) begin
      wpipe <= '0;
    end else if (!hold) begin
      wpipe <= {wpipe[0], wr_valid};
      wtags <= {wtags[0], wr_tag};
    end
    if (wr_valid) begin
      for (int i = 0; i < B; i++) begin
        if (i < int'(wr_len)) mem[32'(wr_addr + 64'(i)) % BYTES] <= wr_data[8 * i +: 8];
      end
    end
  end
endmodule
