// Function reset (FUNCTIONS.CTRL.reset, an FLR analogue): the function's queues are disabled
// (QUEUE.CTRL.enable cleared by the device), drain like any disable (the request in flight,
// requests on slots or punted), and then their saved state (last_avail, used_idx) is zeroed and
// the function's reset_busy drops. The other functions' queues are not touched. Besides, the
// saved-state registers take the virtqueue engine's saves (save_we).
module fv_func_reset #(
  parameter int NQ = 32,         // queues
  parameter int NF = 8           // functions
) (
  input  logic clk,
  input  logic rst,
  input  logic [NF-1:0]             reset_pulse,    // FUNCTIONS.CTRL.reset written
  output logic [NF-1:0]             reset_busy,     // FUNCTIONS.STATUS.reset_busy
  input  logic [NQ-1:0][2:0]        q_func,         // QUEUE.CTRL.func
  input  logic [NQ-1:0]             q_enabled,      // QUEUE.STATUS.enabled
  output logic [NQ-1:0]             enable_we,      // QUEUE.CTRL.enable <= 0
  input  logic [NQ-1:0]             save_we,        // the engine saves queue state
  input  logic [15:0]               save_last_avail,
  input  logic [15:0]               save_used_idx,
  output logic [NQ-1:0]             state_we,       // QUEUE.STATE written
  output logic [NQ-1:0][15:0]       last_avail_d,
  output logic [NQ-1:0][15:0]       used_idx_d
);
  if (NF < 1 || NF > 8) begin : g_bad_nf
    $error("fv_func_reset: NF must be in 1..8");
  end

  logic [NF-1:0] freset, fbusy, fdone;
  logic [NQ-1:0] zero_state;
  // (The per-queue loops run only while a function reset is in progress.)
  always_comb begin
    fbusy = '0;
    enable_we = '0;
    zero_state = '0;
    if (|freset) begin
      for (int q = 0; q < NQ; q++) begin
        if (q_enabled[q]) fbusy[q_func[q]] = 1'b1;
      end
      for (int q = 0; q < NQ; q++) begin
        enable_we[q] = freset[q_func[q]];
        zero_state[q] = fdone[q_func[q]];
      end
    end
  end
  assign fdone = freset & ~fbusy;
  always_ff @(posedge clk) begin
    if (rst) freset <= '0;
    else freset <= (freset & ~fdone) | reset_pulse;
  end
  assign reset_busy = freset;

  assign state_we = save_we | zero_state;
  always_comb begin
    last_avail_d = {NQ{save_last_avail}};
    used_idx_d = {NQ{save_used_idx}};
    if (|zero_state) begin
      for (int q = 0; q < NQ; q++) begin
        if (zero_state[q]) begin
          last_avail_d[q] = 16'd0;
          used_idx_d[q] = 16'd0;
        end
      end
    end
  end
endmodule
