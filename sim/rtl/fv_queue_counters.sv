// Per-queue counters: requests, bytes (used lengths), errors, DMA faults, interrupts and a
// latency histogram in power-of-two buckets (<64, 64.., 128.., ... 4096+ cycles). 64-bit counters
// wrap; 32-bit ones saturate.
module fv_queue_counters #(
  parameter int NQ = 32,
  parameter int NR = 64          // punt reasons counted
) (
  input  logic clk,
  input  logic rst,

  input  logic [$clog2(NQ)-1:0] qid,
  input  logic        ev_done,
  input  logic [31:0] ev_bytes,
  input  logic [31:0] ev_cycles,
  input  logic        ev_error,
  input  logic        ev_fault,
  input  logic        ev_irq,
  input  logic        ev_punt,             // a punt-ring entry was written
  input  logic [15:0] ev_punt_qid,
  input  logic [7:0]  ev_punt_reason,

  output logic [NQ-1:0][63:0]     requests,
  output logic [NQ-1:0][63:0]     bytes,
  output logic [NQ-1:0][31:0]     errors,
  output logic [NQ-1:0][31:0]     dma_faults,
  output logic [NQ-1:0][31:0]     irqs,
  output logic [NQ-1:0][7:0][31:0] latency,
  output logic [NQ-1:0][31:0]     punts,         // requests punted (doorbell events excluded)
  output logic [NR-1:0][31:0]     punts_by_reason
);
  function automatic logic [31:0] sat_inc(input logic [31:0] v);
    sat_inc = v == 32'hffff_ffff ? v : v + 32'd1;
  endfunction

  // Bucket of a latency: 0 below 64 cycles, then one per power of two, 7 from 4096 on.
  logic [2:0] bucket;
  always_comb begin
    bucket = 3'd0;
    for (int b = 1; b < 8; b++) begin
      if (ev_cycles >= (32'd32 << b)) bucket = 3'(b);
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      requests <= '0;
      bytes <= '0;
      errors <= '0;
      dma_faults <= '0;
      irqs <= '0;
      latency <= '0;
      punts <= '0;
      punts_by_reason <= '0;
    end else begin
      if (ev_done) begin
        requests[qid] <= requests[qid] + 64'd1;
        bytes[qid] <= bytes[qid] + {32'd0, ev_bytes};
        latency[qid][bucket] <= sat_inc(latency[qid][bucket]);
      end
      if (ev_error) errors[qid] <= sat_inc(errors[qid]);
      if (ev_fault) dma_faults[qid] <= sat_inc(dma_faults[qid]);
      if (ev_irq) irqs[qid] <= sat_inc(irqs[qid]);
      if (ev_punt) begin
        if (ev_punt_reason < 8'(NR)) begin
          punts_by_reason[ev_punt_reason[$clog2(NR)-1:0]] <=
            sat_inc(punts_by_reason[ev_punt_reason[$clog2(NR)-1:0]]);
        end
        if (ev_punt_reason != 8'(fv_regs_pkg::PUNT_REASON_DOORBELL) && ev_punt_qid < 16'(NQ)) begin
          punts[ev_punt_qid[$clog2(NQ)-1:0]] <= sat_inc(punts[ev_punt_qid[$clog2(NQ)-1:0]]);
        end
      end
    end
  end
endmodule
