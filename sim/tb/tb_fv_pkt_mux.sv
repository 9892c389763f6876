// fv_pkt_mux alone: with every slot offering control operations all the time, grants go round
// robin (each slot once in every N grants, none starved); a slot's operation reaches the port
// with its fields and its slot tag; a data write passes at once and holds the control grants
// for its cycle; N = 3 (not a power of two) wraps correctly.
module tb_fv_pkt_mux;
  `include "tb_common.svh"
  localparam int N = 3, DW = 128, TW = 8;
  logic [N-1:0] e_valid, e_ready, e_send, e_dvalid;
  logic [N-1:0][15:0] e_doff, e_dlen;
  logic [N-1:0][DW-1:0] e_ddata;
  logic [N-1:0][15:0] e_off, e_len;
  logic [N-1:0][DW-1:0] e_data;
  logic [N-1:0][7:0] e_func;
  logic pk_valid, pk_send;
  logic [15:0] pk_off, pk_len;
  logic [DW-1:0] pk_data;
  logic [7:0] pk_func;
  logic [TW-1:0] pk_tag;

  fv_pkt_mux #(.N(N), .DW(DW), .TW(TW)) dut (.*);

  initial begin
    int grants [N];
    int prev;
    for (int k = 0; k < N; k++) begin
      e_off[k] = 16'(100 + k);
      e_len[k] = 16'(k + 1);
      e_data[k] = DW'(64'hdead_0000 + k);
      e_func[k] = 8'(5 + k);
      e_send[k] = 1'(k == 1);
      e_doff[k] = 16'(7 * k);
      e_dlen[k] = 16'(16 - k);
      e_ddata[k] = DW'(64'hbeef_0000 + k);
    end
    e_valid = '0;
    e_dvalid = '0;
    reset_dut();
    #1 check(!pk_valid && e_ready == '0, "nothing offered: nothing granted");

    // Everyone, all the time: round robin.
    e_valid = '1;
    prev = -1;
    for (int c = 0; c < 30; c++) begin
      #1;
      check(pk_valid && $onehot(e_ready), "one grant");
      check(int'(pk_tag) < N && e_ready[pk_tag], "the tag is the granted slot");
      check(pk_off == e_off[pk_tag] && pk_len == e_len[pk_tag] && pk_data == e_data[pk_tag]
            && pk_func == e_func[pk_tag] && pk_send == e_send[pk_tag], "its fields");
      if (prev >= 0) check(int'(pk_tag) == (prev + 1) % N, "round robin");
      prev = int'(pk_tag);
      grants[pk_tag]++;
      @(negedge clk);
    end
    for (int k = 0; k < N; k++) check(grants[k] == 10, "each slot one in N");

    // A data write: it passes (with its slot's tag and fields), no control grant that cycle,
    // and the control slot whose turn it was goes next.
    #1 prev = int'(pk_tag);
    e_dvalid = 3'b010;
    #1 check(e_ready == '0 && pk_valid && !pk_send && pk_tag == 8'd1, "the data write passes");
    check(pk_off == 16'd7 && pk_len == 16'd15 && pk_data == e_ddata[1] && pk_func == 8'd6, "its fields");
    @(negedge clk);
    e_dvalid = '0;
    #1 check(int'(pk_tag) == prev && e_ready[prev], "the control slot kept its turn");
    @(negedge clk);

    // One slot alone gets every grant.
    e_valid = 3'b100;
    for (int c = 0; c < 5; c++) begin
      #1 check(e_ready == 3'b100 && pk_tag == 8'd2, "a lone slot");
      @(negedge clk);
    end
    pass();
  end
endmodule
