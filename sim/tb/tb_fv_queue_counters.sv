// fv_queue_counters alone: per-queue requests, bytes, errors, faults, interrupts and the latency
// histogram; punts per queue (doorbells excluded) and per reason; saturation; reset clears.
module tb_fv_queue_counters;
  `include "tb_common.svh"
  localparam int NQ = 32, NR = 64;
  logic [4:0] qid, rd_q;
  logic ev_done, ev_error, ev_fault, ev_irq, ev_punt, rd_q_en, rd_reason_en;
  logic [31:0] ev_bytes, ev_cycles;
  logic [15:0] ev_punt_qid;
  logic [7:0] ev_punt_reason;
  logic [5:0] rd_reason;
  logic [63:0] requests, bytes;
  logic [31:0] errors, dma_faults, irqs, punts, punts_by_reason;
  logic [7:0][31:0] latency;

  fv_queue_counters #(.NQ(NQ), .NR(NR)) dut (.*);

  task automatic done(input int q, input int nbytes, input int lat);
    qid = 5'(q); ev_done = 1'b1; ev_bytes = 32'(nbytes); ev_cycles = 32'(lat);
    @(negedge clk);
    ev_done = 1'b0;
  endtask

  task automatic punt(input int q, input int reason);
    ev_punt = 1'b1; ev_punt_qid = 16'(q); ev_punt_reason = 8'(reason);
    @(negedge clk);
    ev_punt = 1'b0;
  endtask

  initial begin
    {qid, ev_done, ev_error, ev_fault, ev_irq, ev_punt, ev_bytes, ev_cycles} = '0;
    {ev_punt_qid, ev_punt_reason, rd_q_en, rd_q, rd_reason_en, rd_reason} = '0;
    reset_dut();

    done(3, 4096, 10);      // bucket 0 (< 64)
    done(3, 512, 100);      // bucket 1 (64..127)
    done(3, 1, 5000);       // bucket 7 (>= 4096)
    done(7, 100, 200);      // another queue, bucket 2
    qid = 5'd3; ev_error = 1'b1; ev_fault = 1'b1; ev_irq = 1'b1;
    @(negedge clk);
    {ev_error, ev_fault, ev_irq} = '0;
    punt(3, 2);             // blk_flush
    punt(3, 1);             // a doorbell: not a punted request
    punt(3, 2);
    punt(40, 2);            // a queue beyond NQ: counted by reason only

    rd_q_en = 1'b1; rd_q = 5'd3;
    #1;
    check(requests == 3 && bytes == 64'd4609, "queue 3: requests and bytes");
    check(errors == 1 && dma_faults == 1 && irqs == 1, "queue 3: error, fault, interrupt");
    check(latency[0] == 1 && latency[1] == 1 && latency[7] == 1 && latency[2] == 0,
          "queue 3: latency buckets");
    check(punts == 2, "queue 3: punts, doorbells excluded");
    rd_q = 5'd7;
    #1;
    check(requests == 1 && bytes == 100 && latency[2] == 1 && punts == 0, "queue 7 apart");
    rd_q = 5'd9;
    #1;
    check(requests == 0 && bytes == 0 && errors == 0, "an untouched queue reads zero");
    rd_q_en = 1'b0;
    rd_q = 5'd3;
    #1;
    check(requests == 0, "read port disabled: zero");
    rd_reason_en = 1'b1; rd_reason = 6'd2;
    #1;
    check(punts_by_reason == 3, "punts by reason, every queue");
    rd_reason = 6'd1;
    #1;
    check(punts_by_reason == 1, "doorbell events by reason");

    // 32-bit counters saturate: force the error count to its top through the memory.
    dut.errors_m[3] = 32'hffff_fffe;
    qid = 5'd3; ev_error = 1'b1;
    cycles(3);
    ev_error = 1'b0;
    rd_q_en = 1'b1;
    #1;
    check(errors == 32'hffff_ffff, "32-bit counters saturate");

    // Reset clears every counter (the valid bits).
    reset_dut();
    rd_q_en = 1'b1; rd_reason_en = 1'b1; rd_q = 5'd3; rd_reason = 6'd2;
    #1;
    check(requests == 0 && errors == 0 && punts == 0 && punts_by_reason == 0,
          "reset clears the counters");
    done(3, 8, 1);
    #1;
    check(requests == 1 && bytes == 8, "the first event after reset starts from zero");
    pass();
  end
endmodule
