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

  // In the counters block's shape (32-bit halves, one array per histogram bucket), so they
  // connect to it without a copy.
  output logic [NQ-1:0][31:0] requests_lo,
  output logic [NQ-1:0][31:0] requests_hi,
  output logic [NQ-1:0][31:0] bytes_lo,
  output logic [NQ-1:0][31:0] bytes_hi,
  output logic [NQ-1:0][31:0] errors,
  output logic [NQ-1:0][31:0] dma_faults,
  output logic [NQ-1:0][31:0] irqs,
  output logic [NQ-1:0][31:0] lat0,
  output logic [NQ-1:0][31:0] lat1,
  output logic [NQ-1:0][31:0] lat2,
  output logic [NQ-1:0][31:0] lat3,
  output logic [NQ-1:0][31:0] lat4,
  output logic [NQ-1:0][31:0] lat5,
  output logic [NQ-1:0][31:0] lat6,
  output logic [NQ-1:0][31:0] lat7,
  output logic [NQ-1:0][31:0] punts,         // requests punted (doorbell events excluded)
  output logic [NR-1:0][31:0] punts_by_reason
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
      requests_lo <= '0;
      requests_hi <= '0;
      bytes_lo <= '0;
      bytes_hi <= '0;
      errors <= '0;
      dma_faults <= '0;
      irqs <= '0;
      lat0 <= '0;
      lat1 <= '0;
      lat2 <= '0;
      lat3 <= '0;
      lat4 <= '0;
      lat5 <= '0;
      lat6 <= '0;
      lat7 <= '0;
      punts <= '0;
      punts_by_reason <= '0;
    end else begin
      if (ev_done) begin
        {requests_hi[qid], requests_lo[qid]} <= {requests_hi[qid], requests_lo[qid]} + 64'd1;
        {bytes_hi[qid], bytes_lo[qid]} <= {bytes_hi[qid], bytes_lo[qid]} + {32'd0, ev_bytes};
        unique case (bucket)
          3'd0: lat0[qid] <= sat_inc(lat0[qid]);
          3'd1: lat1[qid] <= sat_inc(lat1[qid]);
          3'd2: lat2[qid] <= sat_inc(lat2[qid]);
          3'd3: lat3[qid] <= sat_inc(lat3[qid]);
          3'd4: lat4[qid] <= sat_inc(lat4[qid]);
          3'd5: lat5[qid] <= sat_inc(lat5[qid]);
          3'd6: lat6[qid] <= sat_inc(lat6[qid]);
          default: lat7[qid] <= sat_inc(lat7[qid]);
        endcase
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
