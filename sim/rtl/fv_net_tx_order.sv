// The send order of virtio-net TX requests across the device-engine slots: a net request sends
// its frame only when no older net request of its queue is still in a slot (turn). Each net
// request gets a ticket in dispatch order when its slot starts; a request leaves its slot when
// done, also when punted or killed by the watchdog, so nothing waits on a request that is gone.
// Tickets are 8 bits and compared modulo 256 (at most NSLOT <= 16 are in the slots at once).
module fv_net_tx_order #(
  parameter int NQ = 32,         // queues
  parameter int NSLOT = 2        // device-engine slots
) (
  input  logic clk,
  input  logic rst,
  input  logic [NSLOT-1:0]      dev_start,     // the slot takes a request ...
  input  logic                  start_net,     // ... of a net function
  input  logic [$clog2(NQ)-1:0] start_q,       // ... of this queue
  input  logic [NSLOT-1:0]      dev_done,      // the slot's request left it
  output logic [NSLOT-1:0]      turn           // the slot's request may send
);
  localparam int QW = $clog2(NQ);

  if (NSLOT < 1 || NSLOT > 16) begin : g_bad_slots
    $error("fv_net_tx_order: NSLOT must be in 1..16");
  end

  logic [NSLOT-1:0]         busy;
  logic [NSLOT-1:0][7:0]    tk;
  logic [NSLOT-1:0][QW-1:0] q;
  logic [7:0]               next;
  always_ff @(posedge clk) begin
    if (rst) begin
      busy <= '0;
      tk <= '0;
      q <= '0;
      next <= '0;
    end else begin
      for (int k = 0; k < NSLOT; k++) begin
        if (dev_start[k] && start_net) begin
          busy[k] <= 1'b1;
          tk[k] <= next;
          q[k] <= start_q;
        end else if (dev_done[k]) begin
          busy[k] <= 1'b0;
        end
      end
      if (|dev_start && start_net) next <= next + 8'd1;
    end
  end
  always_comb begin
    for (int k = 0; k < NSLOT; k++) begin
      turn[k] = 1'b1;
      for (int j = 0; j < NSLOT; j++) begin
        if (j != k && busy[j] && q[j] == q[k] && $signed(8'(tk[j] - tk[k])) < 8'sd0) turn[k] = 1'b0;
      end
    end
  end
endmodule
