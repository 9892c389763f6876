// fv_net_tx_order alone: a net request may send only when no older net request of its queue is
// in a slot; other queues and non-net requests do not hold it; a request that left its slot
// (done, punted, killed) holds nothing; tickets wrap around 256.
module tb_fv_net_tx_order;
  `include "tb_common.svh"
  localparam int NQ = 4, NSLOT = 3;
  logic [NSLOT-1:0] dev_start, dev_done, turn;
  logic start_net;
  logic [1:0] start_q;

  fv_net_tx_order #(.NQ(NQ), .NSLOT(NSLOT)) dut (.*);

  task automatic start(input int k, input int q, input bit net);
    dev_start[k] = 1'b1; start_q = 2'(q); start_net = net;
    @(negedge clk);
    dev_start = '0;
  endtask
  task automatic finish(input int k);
    dev_done[k] = 1'b1;
    @(negedge clk);
    dev_done = '0;
  endtask

  initial begin
    {dev_start, dev_done, start_net, start_q} = '0;
    reset_dut();
    start(1, 2, 1'b1);              // oldest of queue 2
    start(0, 2, 1'b1);              // younger, queue 2
    start(2, 3, 1'b1);              // queue 3
    #1;
    check(turn == 3'b110, "slot 0 waits for slot 1 (same queue, older); the others may send");
    finish(1);
    #1;
    check(turn == 3'b111, "the older left: slot 0 may send");
    finish(0);
    start(0, 3, 1'b0);              // a blk request in slot 0 of queue 3: no ticket
    start(1, 3, 1'b1);
    #1;
    check(turn[1] == 1'b0, "slot 1 waits for slot 2's older request of queue 3");
    check(turn[0], "a non-net request is never held");
    finish(2);
    #1;
    check(turn[1], "slot 2 left");
    finish(1);
    // Tickets wrap around 256: the order holds across the wrap.
    for (int i = 0; i < 300; i++) begin
      start(0, 1, 1'b1);
      start(1, 1, 1'b1);
      #1;
      check(!turn[1], $sformatf("round %0d: the younger waits", i));
      check(turn[0], $sformatf("round %0d: the older sends", i));
      finish(0);
      #1;
      check(turn[1], $sformatf("round %0d: then the younger", i));
      finish(1);
    end
    pass();
  end
endmodule
