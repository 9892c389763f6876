// Shared by the module testbenches (included inside the bench module): a clock, a reset, and
// checks that end the bench with a non-zero exit status on the first failure. Inputs are driven
// at the falling edge and outputs sampled there (after `#1`, for combinational ones), so nothing
// races the rising edge the design uses.
logic clk = 1'b0;
logic rst = 1'b1;
always #5 clk = ~clk;
int unsigned checks = 0;

task automatic check(input bit ok, input string what);
  checks++;
  if (!ok) $fatal(1, "FAIL: %s", what);
endtask

// Hold reset for a few cycles; return at a falling edge with reset released.
task automatic reset_dut();
  rst = 1'b1;
  repeat (4) @(negedge clk);
  rst = 1'b0;
endtask

task automatic cycles(input int n);
  repeat (n) @(negedge clk);
endtask

task automatic pass();
  $display("PASS: %0d checks", checks);
  $finish;
endtask
