// Packet-port mux: the net engines of the device-engine slots share the one packet port (the
// uplink's frame buffers). An operation (a frame-buffer write, or a send) is granted round
// robin among the slots that offer one, starting after the slot granted last, so no slot
// waits behind another for more than N - 1 operations. The port tag is the slot index: the
// port keeps one frame buffer per slot, so the operations of different slots may interleave.
module fv_pkt_mux #(
  parameter int N = 4,               // slots
  parameter int DW = 128,
  parameter int TW = 8               // tag bits of the port
) (
  input  logic clk,
  input  logic rst,

  input  logic [N-1:0]          e_valid,
  output logic [N-1:0]          e_ready,
  input  logic [N-1:0]          e_send,
  input  logic [N-1:0][15:0]    e_off,
  input  logic [N-1:0][15:0]    e_len,
  input  logic [N-1:0][DW-1:0]  e_data,
  input  logic [N-1:0][7:0]     e_func,

  output logic          pk_valid,
  input  logic          pk_ready,
  output logic          pk_send,
  output logic [15:0]   pk_off,
  output logic [15:0]   pk_len,
  output logic [DW-1:0] pk_data,
  output logic [7:0]    pk_func,
  output logic [TW-1:0] pk_tag
);
  localparam int EW = N > 1 ? $clog2(N) : 1;
  if (N < 1 || EW > TW) begin : g_bad_tags
    $error("fv_pkt_mux: the slot index must fit the port tag");
  end

  // The slot after the last granted one comes first.
  logic [EW-1:0] last;
  logic [EW-1:0] pick;
  logic          any;
  always_comb begin
    pick = '0;
    any = 1'b0;
    for (int i = N; i >= 1; i--) begin
      logic [EW:0] k;
      k = {1'b0, last} + (EW + 1)'(i);
      if (k >= (EW + 1)'(N)) k = k - (EW + 1)'(N);
      if (e_valid[k[EW-1:0]]) begin
        pick = k[EW-1:0];
        any = 1'b1;
      end
    end
  end

  assign pk_valid = any;
  assign pk_send = any && e_send[pick];
  assign pk_off = any ? e_off[pick] : '0;
  assign pk_len = any ? e_len[pick] : '0;
  assign pk_data = any ? e_data[pick] : '0;
  assign pk_func = any ? e_func[pick] : '0;
  assign pk_tag = TW'(pick);
  always_comb begin
    e_ready = '0;
    e_ready[pick] = any && pk_ready;
  end

  always_ff @(posedge clk) begin
    if (rst) last <= EW'(N - 1);
    else if (any && pk_ready) last <= pick;
  end
endmodule
