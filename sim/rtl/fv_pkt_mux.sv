// Packet-port mux: the net engines of the device-engine slots share the one packet port (the
// uplink's frame buffers, one per slot; the port tag is the slot index, so the operations of
// different slots may interleave). The frame buffers take an operation every cycle.
//
// Two kinds of operation:
//   - data writes (e_dvalid), one per DMA beat an engine receives: the DMA read port delivers
//     one beat per cycle to one master, so at most one slot offers one in a cycle; they pass
//     at once and need no arbitration;
//   - control operations (e_valid/e_ready: a checksum write, a send), granted round robin among
//     the slots that offer one, starting after the slot granted last (no slot waits more than
//     N - 1 grants), in the cycles without a data write.
module fv_pkt_mux #(
  parameter int N = 4,               // slots
  parameter int DW = 128,
  parameter int TW = 8               // tag bits of the port
) (
  input  logic clk,
  input  logic rst,

  input  logic [N-1:0]          e_dvalid,
  input  logic [N-1:0][15:0]    e_doff,
  input  logic [N-1:0][15:0]    e_dlen,
  input  logic [N-1:0][DW-1:0]  e_ddata,
  input  logic [N-1:0]          e_valid,
  output logic [N-1:0]          e_ready,
  input  logic [N-1:0]          e_send,
  input  logic [N-1:0][15:0]    e_off,
  input  logic [N-1:0][15:0]    e_len,
  input  logic [N-1:0][DW-1:0]  e_data,
  input  logic [N-1:0][7:0]     e_func,

  output logic          pk_valid,
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

  // The data write of this cycle (at most one slot has one).
  logic [EW-1:0] dpick;
  logic          dany;
  always_comb begin
    dpick = '0;
    dany = |e_dvalid;
    for (int k = N - 1; k >= 0; k--) begin
      if (e_dvalid[k]) dpick = EW'(k);
    end
  end

  // Control: the slot after the last granted one comes first.
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

  logic grant;
  assign grant = any && !dany;
  assign pk_valid = dany || any;
  assign pk_send = grant && e_send[pick];
  assign pk_off = dany ? e_doff[dpick] : (any ? e_off[pick] : '0);
  assign pk_len = dany ? e_dlen[dpick] : (any ? e_len[pick] : '0);
  assign pk_data = dany ? e_ddata[dpick] : (any ? e_data[pick] : '0);
  assign pk_func = dany ? e_func[dpick] : (any ? e_func[pick] : '0);
  assign pk_tag = dany ? TW'(dpick) : TW'(pick);
  always_comb begin
    e_ready = '0;
    e_ready[pick] = grant;
  end

  always_ff @(posedge clk) begin
    if (rst) last <= EW'(N - 1);
    else if (grant) last <= pick;
  end
endmodule
