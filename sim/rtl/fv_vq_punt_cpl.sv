// Virtqueue stage: punts out, completions in. A request the engine hands to the CPU goes out on
// the punt ring with a free tag naming its queue, head and avail position (alloc takes free_tag,
// valid while tag_free). The CPU's answers come back on the completion ring (cpl_ring CSR
// block): started while one is pending, the stage reads the entry at cpl_cons on the walk's read
// master and ends (done, for one cycle) with what the engine does with it:
//   CPL_LOAD  tag, queue and head name a punted request in flight: publish it (the tag is freed
//             and the request no longer held: taken); a status other than OK counts as an error;
//   CPL_FAIL  the completion names nothing in flight (cpl_bad; its queue fails with
//             bad_completion), or it carries QUEUE_ERROR (the CPU's walk found the chain
//             malformed: the queue fails with the CPU's cause, as if the device had found it; the
//             tag is freed);
//   CPL_DROP  the read was refused (the ring is outside the IOMMU map; the fault is reported in
//             GLOBAL.DMA_FAULT_*), or a bad completion names a queue beyond NQ.
module fv_vq_punt_cpl #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int PUNT_TAGS = 16   // punted requests in flight (a power of two)
) (
  input  logic clk,
  input  logic rst,

  // Punts.
  input  logic                            alloc,
  input  logic [$clog2(NQ)-1:0]           alloc_q,
  input  logic [15:0]                     alloc_head,
  input  logic [15:0]                     alloc_pos,
  output logic                            tag_free,    // a tag can be allocated
  output logic [$clog2(PUNT_TAGS)-1:0]    free_tag,    // the one alloc takes (lowest free)

  // The completion ring.
  input  logic [63:0]                     cpl_base,
  input  logic [4:0]                      cpl_size_log2,
  input  logic                            cpl_enable,
  input  logic [31:0]                     cpl_prod,
  output logic [31:0]                     cpl_cons,
  output logic                            cpl_pending, // an entry to read
  output logic                            cpl_bad,     // pulse: a completion named nothing in flight
  input  logic                            start,       // read the entry at cpl_cons
  output logic                            done,
  output fv_vq_pkg::cpl_result_e          result,
  output logic                            taken,       // with done: a punted request answered
  output logic [$clog2(NQ)-1:0]           c_q,         // with CPL_LOAD / CPL_FAIL: its queue,
  output logic [15:0]                     c_head,      // head, avail position, used length,
  output logic [15:0]                     c_pos,
  output logic [31:0]                     c_len,
  output logic                            c_no_irq,    // no interrupt wanted, the CPU failed it
  output logic                            c_failed,
  output logic [3:0]                      f_cause,     // with CPL_FAIL
  output logic [31:0]                     f_info,

  // The walk's read master, and the data of its reads merged into 128 bits.
  output logic                            rd_valid,
  input  logic                            rd_ready,
  output logic [63:0]                     rd_addr,
  output logic [15:0]                     rd_len,
  input  logic [127:0]                    rdata,
  input  logic                            rc_valid,
  input  logic                            rc_last,
  input  logic                            rc_error
);
  localparam int QW = $clog2(NQ);
  localparam int PW = $clog2(PUNT_TAGS);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_punt_cpl: NQ must be a power of two >= 2");
  end
  if (PUNT_TAGS < 2 || PUNT_TAGS > 256 || (PUNT_TAGS & (PUNT_TAGS - 1)) != 0) begin : g_bad_tags
    $error("fv_vq_punt_cpl: PUNT_TAGS must be a power of two in 2..256");
  end

  logic [PUNT_TAGS-1:0]         tag_valid;
  logic [PUNT_TAGS-1:0][QW-1:0] tag_q;
  logic [PUNT_TAGS-1:0][15:0]   tag_head;
  logic [PUNT_TAGS-1:0][15:0]   tag_pos;

  always_comb begin
    tag_free = !(&tag_valid);
    free_tag = '0;
    if (tag_free) begin
      for (int i = PUNT_TAGS - 1; i >= 0; i--) begin
        if (!tag_valid[i]) free_tag = PW'(i);
      end
    end
  end

  // The completion entry being read, and whether it names a punted request in flight.
  typedef enum logic [1:0] {C_IDLE, C_REQ, C_WAIT} cstate_e;
  cstate_e cstate;
  fv_regs_pkg::cpl_entry_t cpl;
  logic [PW-1:0] ct;
  logic [31:0]   cpl_mask;
  logic          cpl_ok;
  assign cpl = rdata[fv_regs_pkg::CPL_ENTRY_BYTES*8-1:0];
  assign ct = cpl.tag[PW-1:0];
  assign cpl_ok = cpl.tag < 32'(PUNT_TAGS) && tag_valid[ct] && cpl.qid < 16'(NQ)
                  && tag_q[ct] == cpl.qid[QW-1:0] && tag_head[ct] == cpl.head;
  assign cpl_mask = (32'd1 << cpl_size_log2) - 32'd1;
  assign cpl_pending = cpl_enable && cpl_prod != cpl_cons;
  assign rd_valid = cstate == C_REQ;
  assign rd_addr = cpl_base + {28'd0, cpl_cons & cpl_mask, 4'd0};
  assign rd_len = 16'(fv_regs_pkg::CPL_ENTRY_BYTES);

  assign done = cstate == C_WAIT && rc_valid && rc_last;
  assign taken = done && !rc_error && cpl_ok;
  assign c_q = cpl.qid[QW-1:0];
  assign c_head = cpl.head;
  assign c_pos = tag_pos[ct];
  assign c_len = cpl.len;
  assign c_no_irq = cpl.flags[0];
  assign c_failed = cpl.status != 8'd0;
  always_comb begin
    result = fv_vq_pkg::CPL_DROP;
    f_cause = fv_regs_pkg::QUEUE_ERROR_BAD_COMPLETION;
    f_info = cpl.tag;
    if (!rc_error && !cpl_ok && cpl.qid < 16'(NQ)) begin
      result = fv_vq_pkg::CPL_FAIL;
    end else if (!rc_error && cpl_ok) begin
      result = cpl.flags[1] ? fv_vq_pkg::CPL_FAIL : fv_vq_pkg::CPL_LOAD;
      // QUEUE_ERROR: the CPU's cause and detail.
      f_cause = cpl.status[3:0];
      f_info = cpl.len;
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      tag_valid <= '0;
      tag_q <= '0;
      tag_head <= '0;
      tag_pos <= '0;
      cstate <= C_IDLE;
      cpl_cons <= '0;
      cpl_bad <= 1'b0;
    end else begin
      cpl_bad <= 1'b0;
      unique case (cstate)
        C_IDLE: if (start) cstate <= C_REQ;
        C_REQ: if (rd_ready) cstate <= C_WAIT;
        default: begin
          if (done) begin
            cpl_cons <= cpl_cons + 32'd1;
            cpl_bad <= !rc_error && !cpl_ok;
            if (taken) tag_valid[ct] <= 1'b0;
            cstate <= C_IDLE;
          end
        end
      endcase
      if (alloc) begin
        tag_valid[free_tag] <= 1'b1;
        tag_q[free_tag] <= alloc_q;
        tag_head[free_tag] <= alloc_head;
        tag_pos[free_tag] <= alloc_pos;
      end
    end
  end
  logic unused_cpl;
  assign unused_cpl = &{1'b0, cpl.flags[7:2], cpl.rsvd, cpl.status[7:4]};
endmodule
