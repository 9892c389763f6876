// Per-queue counters: requests, bytes (used lengths), errors, DMA faults, interrupts, punts and a
// latency histogram in power-of-two buckets (<64, 64.., 128.., ... 4096+ cycles), plus punts by
// reason. 64-bit counters wrap; 32-bit ones saturate.
//
// Kept in RAM (one write port per memory, one read port for the CSR block, as Corundum keeps its
// queue state) rather than as flops fanned out to the register block. A reset clears the valid
// bits, not the RAM: an entry whose valid bit is clear reads as zero and is written whole (zeros
// plus the event) the first time an event touches it.
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

  // Read ports: the counters of queue rd_q and of punt reason rd_reason (zero unless enabled).
  input  logic                  rd_q_en,
  input  logic [$clog2(NQ)-1:0] rd_q,
  input  logic                  rd_reason_en,
  input  logic [$clog2(NR)-1:0] rd_reason,
  output logic [63:0]     requests,
  output logic [63:0]     bytes,
  output logic [31:0]     errors,
  output logic [31:0]     dma_faults,
  output logic [31:0]     irqs,
  output logic [7:0][31:0] latency,
  output logic [31:0]     punts,             // requests punted (doorbell events excluded)
  output logic [31:0]     punts_by_reason
);
  localparam int QW = $clog2(NQ);
  localparam int RW = $clog2(NR);

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

  logic [63:0]      requests_m [NQ];
  logic [63:0]      bytes_m [NQ];
  logic [31:0]      errors_m [NQ];
  logic [31:0]      faults_m [NQ];
  logic [31:0]      irqs_m [NQ];
  logic [7:0][31:0] lat_m [NQ];
  logic [31:0]      punts_m [NQ];
  logic [31:0]      reason_m [NR];
  logic [NQ-1:0]    qv, pv;              // valid bits: requests .. latency, punts
  logic [NR-1:0]    rv;                  // ... punts by reason

  // The engine's events name one queue per cycle: read it, count, write every memory back.
  logic             q_ev;
  logic [63:0]      q_requests, q_bytes;
  logic [31:0]      q_errors, q_faults, q_irqs;
  logic [7:0][31:0] q_lat;
  assign q_ev = ev_done || ev_error || ev_fault || ev_irq;
  always_comb begin
    q_requests = qv[qid] ? requests_m[qid] : '0;
    q_bytes = qv[qid] ? bytes_m[qid] : '0;
    q_errors = qv[qid] ? errors_m[qid] : '0;
    q_faults = qv[qid] ? faults_m[qid] : '0;
    q_irqs = qv[qid] ? irqs_m[qid] : '0;
    q_lat = qv[qid] ? lat_m[qid] : '0;
    if (ev_done) begin
      q_requests = q_requests + 64'd1;
      q_bytes = q_bytes + {32'd0, ev_bytes};
      q_lat[bucket] = sat_inc(q_lat[bucket]);
    end
    if (ev_error) q_errors = sat_inc(q_errors);
    if (ev_fault) q_faults = sat_inc(q_faults);
    if (ev_irq) q_irqs = sat_inc(q_irqs);
  end

  // Punt events: per queue (doorbell events excluded) and per reason.
  logic          p_ev, r_ev;
  logic [QW-1:0] pq;
  logic [RW-1:0] pr;
  logic [31:0]   p_count, r_count;
  assign p_ev = ev_punt && ev_punt_reason != 8'(fv_regs_pkg::PUNT_REASON_DOORBELL)
                && ev_punt_qid < 16'(NQ);
  assign r_ev = ev_punt && ev_punt_reason < 8'(NR);
  assign pq = ev_punt_qid[QW-1:0];
  assign pr = ev_punt_reason[RW-1:0];
  assign p_count = sat_inc(pv[pq] ? punts_m[pq] : '0);
  assign r_count = sat_inc(rv[pr] ? reason_m[pr] : '0);

  always_ff @(posedge clk) begin
    if (q_ev) begin
      requests_m[qid] <= q_requests;
      bytes_m[qid] <= q_bytes;
      errors_m[qid] <= q_errors;
      faults_m[qid] <= q_faults;
      irqs_m[qid] <= q_irqs;
      lat_m[qid] <= q_lat;
    end
    if (p_ev) punts_m[pq] <= p_count;
    if (r_ev) reason_m[pr] <= r_count;
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      qv <= '0;
      pv <= '0;
      rv <= '0;
    end else begin
      if (q_ev) qv[qid] <= 1'b1;
      if (p_ev) pv[pq] <= 1'b1;
      if (r_ev) rv[pr] <= 1'b1;
    end
  end

  // Read ports.
  always_comb begin
    requests = '0;
    bytes = '0;
    errors = '0;
    dma_faults = '0;
    irqs = '0;
    latency = '0;
    punts = '0;
    punts_by_reason = '0;
    if (rd_q_en) begin
      if (qv[rd_q]) begin
        requests = requests_m[rd_q];
        bytes = bytes_m[rd_q];
        errors = errors_m[rd_q];
        dma_faults = faults_m[rd_q];
        irqs = irqs_m[rd_q];
        latency = lat_m[rd_q];
      end
      if (pv[rd_q]) punts = punts_m[rd_q];
    end
    if (rd_reason_en && rv[rd_reason]) punts_by_reason = reason_m[rd_reason];
  end
endmodule
