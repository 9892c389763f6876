// fv_punt_writer alone: entries land in the ring with their fields and the pass's PHASE, the
// producer index moves after the whole entry, a full ring holds the engine back (nothing is
// dropped), doorbells of CPU-owned queues coalesce into one event, and an interrupt follows an
// entry when the ring has a vector.
module tb_fv_punt_writer;
  `include "tb_common.svh"
  localparam int NQ = 32, DW = 128;
  localparam longint BASE = 64'h4000;
  logic [63:0] base;
  logic [4:0] size_log2;
  logic enable, full, busy, punt_valid, punt_ready, irq_valid, irq_ready, ev_punt, ev_fault;
  logic [31:0] cons, prod, stall_cycles;
  logic [15:0] msix_vector, irq_vector, ev_qid;
  logic [7:0] ev_reason;
  logic [NQ-1:0] doorbell, cpu_owned;
  logic [NQ-1:0][2:0] func;
  fv_regs_pkg::punt_entry_t punt_entry;
  logic wr_valid, wr_ready, wc_valid, wc_error, rd_valid, rd_ready, rc_valid, rc_last, rc_error;
  logic [63:0] wr_addr, rd_addr;
  logic [15:0] wr_len, rd_len;
  logic [DW-1:0] wr_data, rc_data;
  logic hold;
  logic [63:0] fault_at;

  fv_punt_writer #(.NQ(NQ), .DW(DW)) dut (.*);
  tb_dma_mem #(.DW(DW)) mem (.*);

  function automatic longint field(input int slot, input int off, input int n);
    longint v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | longint'(mem.mem[32'(BASE) + slot * 32 + off + i]);
    return v;
  endfunction

  // Offer one punt; wait until it is taken and its entry written (PROD moved).
  task automatic punt(input int qid, input int reason, input int tag);
    int n = 0;
    int prod0 = int'(prod);
    punt_entry = '0;
    punt_entry.qid = 16'(qid);
    punt_entry.reason = 8'(reason);
    punt_entry.tag = 32'(tag);
    punt_entry.head = 16'(qid + 100);
    punt_entry.arg = 64'h1122_3344_5566_7788 + 64'(tag);
    punt_valid = 1'b1;
    #1;
    while (!punt_ready) begin
      @(negedge clk);
      n++;
      check(n < 1000, "the punt is taken");
    end
    @(negedge clk);
    punt_valid = 1'b0;
    while (int'(prod) == prod0) begin
      @(negedge clk);
      n++;
      check(n < 1000, "the entry is written");
    end
  endtask

  initial begin
    int n;
    base = 64'(BASE); size_log2 = 5'd2; enable = 1'b1; cons = '0; msix_vector = 16'hffff;
    {doorbell, cpu_owned, func, punt_valid, punt_entry, irq_ready, hold} = '0;
    fault_at = 64'hffff_ffff;
    for (int i = 0; i < 65536; i++) mem.mem[i] = 8'h00;
    reset_dut();

    // Four entries fill the 4-slot ring, PHASE 1 on the first pass.
    for (int k = 0; k < 4; k++) punt(k + 1, 2, 32'h50 + k);
    check(prod == 4 && full, "four entries: the ring is full");
    for (int k = 0; k < 4; k++) begin
      check(field(k, 0, 2) == k + 1 && field(k, 4, 1) == 2, $sformatf("slot %0d: qid, reason", k));
      check(field(k, 8, 4) == 32'h50 + k && field(k, 2, 2) == k + 101, "tag and head");
      check(field(k, 24, 8) == 64'h1122_3344_5566_7788 + 32'h50 + k, "arg");
      check(field(k, 6, 1) == 1, "PHASE 1 on the first pass");
    end
    // Full: the next punt waits, and counts stall cycles, until the CPU consumes.
    punt_entry = '0;
    punt_entry.qid = 16'd9;
    punt_entry.reason = 8'd3;
    punt_valid = 1'b1;
    cycles(20);
    check(!punt_ready && prod == 4 && stall_cycles >= 19, "a full ring holds the punt back");
    cons = 32'd1;
    #1;
    n = 0;
    while (!punt_ready) begin
      @(negedge clk);
      n++;
      check(n < 10, "room again: taken");
    end
    @(negedge clk);
    punt_valid = 1'b0;
    cycles(30);
    check(prod == 5 && field(0, 0, 2) == 9 && field(0, 6, 1) == 0, "second pass: PHASE 0");

    // Doorbells of a CPU-owned queue coalesce until their event is written (here the ring is
    // full meanwhile); an FPGA-owned queue's are not events.
    check(full, "the ring is full again");
    cpu_owned[7] = 1'b1;
    func[7] = 3'd2;
    doorbell[7] = 1'b1; doorbell[8] = 1'b1;
    @(negedge clk);
    doorbell = '0;
    cycles(3);
    doorbell[7] = 1'b1;
    @(negedge clk);
    doorbell = '0;
    cons = 32'd5;
    cycles(40);
    check(prod == 6, "two doorbells, one event");
    check(field(1, 0, 2) == 7 && field(1, 4, 1) == 8'(fv_regs_pkg::PUNT_REASON_DOORBELL)
          && field(1, 5, 1) == 2, "the doorbell event: queue, reason, function");

    // With a vector, an interrupt request follows the entry.
    msix_vector = 16'd12;
    punt_entry = '0;
    punt_entry.qid = 16'd3;
    punt_entry.reason = 8'd4;
    punt_valid = 1'b1;
    @(negedge clk);
    punt_valid = 1'b0;
    n = 0;
    while (!irq_valid) begin
      @(negedge clk);
      n++;
      check(n < 100, "an interrupt is requested");
    end
    check(irq_vector == 16'd12 && prod == 7, "after the entry, on the ring's vector");
    irq_ready = 1'b1;
    @(negedge clk);
    irq_ready = 1'b0;
    check(!irq_valid, "one request");
    pass();
  end
endmodule
