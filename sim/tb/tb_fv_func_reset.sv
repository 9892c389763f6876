// fv_func_reset alone: a function reset disables exactly that function's queues, stays busy
// while any of them is still enabled (draining), then zeroes their saved state and ends; other
// functions' queues and the engine's saves pass untouched.
module tb_fv_func_reset;
  `include "tb_common.svh"
  localparam int NQ = 4, NF = 2;
  logic [NF-1:0] reset_pulse, reset_busy;
  logic [NQ-1:0][2:0] q_func;
  logic [NQ-1:0] q_enabled, enable_we, save_we, state_we;
  logic [15:0] save_last_avail, save_used_idx;
  logic [NQ-1:0][15:0] last_avail_d, used_idx_d;

  fv_func_reset #(.NQ(NQ), .NF(NF)) dut (.*);

  initial begin
    {reset_pulse, q_enabled, save_we, save_last_avail, save_used_idx} = '0;
    q_func[0] = 3'd0; q_func[1] = 3'd1; q_func[2] = 3'd1; q_func[3] = 3'd0;
    reset_dut();
    q_enabled = 4'b1111;
    save_we = 4'b1000; save_last_avail = 16'd9; save_used_idx = 16'd8;
    #1;
    check(state_we == 4'b1000 && last_avail_d[3] == 9 && used_idx_d[3] == 8 && enable_we == '0,
          "the engine's saves pass; nothing disabled");
    save_we = '0;
    reset_pulse = 2'b10;
    @(negedge clk);
    reset_pulse = '0;
    #1;
    check(reset_busy == 2'b10 && enable_we == 4'b0110, "function 1's queues (1, 2) disabled");
    check(state_we == '0, "nothing zeroed while they drain");
    q_enabled = 4'b1011;            // queue 2 drained, queue 1 not yet
    cycles(3);
    #1;
    check(reset_busy == 2'b10 && state_we == '0, "still busy: queue 1 is still enabled");
    q_enabled = 4'b1001;
    #1;
    check(state_we == 4'b0110 && last_avail_d[1] == 0 && used_idx_d[2] == 0,
          "drained: their saved state is zeroed");
    @(negedge clk);
    #1;
    check(reset_busy == '0 && enable_we == '0 && state_we == '0, "the reset ends");
    check(q_enabled[0] && q_enabled[3], "function 0 untouched");
    pass();
  end
endmodule
