// Punt-ring writer: FPGA -> CPU ring of punt_entry records (fv_regs_pkg::punt_entry_t) in DMA
// memory.
//
// Sources: punt requests from the device engines (a request the engine will not serve), and
// doorbell events of CPU-owned queues (the engines never touch those rings; the runtime does).
// Doorbells of one queue coalesce until their event is written.
//
// Entry validity: flags bit 0 (PHASE) is 1 on the first pass round the ring, 0 on the second, and
// so on, so zeroed memory holds no valid entry. An entry is written in DW/8-byte pieces, last
// piece first, so the piece holding PHASE lands last (the DMA write path is in order). The
// producer index then advances; a full ring (prod - cons == size) holds the engines back, and
// nothing is dropped.
module fv_punt_writer #(
  parameter int NQ = 32,
  parameter int DW = 128
) (
  input  logic clk,
  input  logic rst,

  // Ring configuration (punt_ring CSR block).
  input  logic [63:0] base,
  input  logic [4:0]  size_log2,
  input  logic        enable,
  input  logic [31:0] cons,
  input  logic [15:0] msix_vector,
  output logic [31:0] prod,
  output logic        full,
  output logic        busy,          // an entry's write is in flight (PROD not yet moved)
  output logic [31:0] stall_cycles,

  // Doorbell events of CPU-owned queues.
  input  logic [NQ-1:0]        doorbell,
  input  logic [NQ-1:0]        cpu_owned,
  input  logic [NQ-1:0][2:0]   func,

  // Punt requests from a device engine (held until ready).
  input  logic                        punt_valid,
  output logic                        punt_ready,
  input  fv_regs_pkg::punt_entry_t    punt_entry,

  // DMA write.
  output logic          wr_valid,
  input  logic          wr_ready,
  output logic [63:0]   wr_addr,
  output logic [15:0]   wr_len,
  output logic [DW-1:0] wr_data,
  input  logic          wc_valid,
  input  logic          wc_error,

  // Interrupt request (after an entry is visible).
  output logic        irq_valid,
  input  logic        irq_ready,
  output logic [15:0] irq_vector,

  // Counting: one pulse per entry written, with its queue and reason.
  output logic        ev_punt,
  output logic [15:0] ev_qid,
  output logic [7:0]  ev_reason,
  output logic        ev_fault
);
  localparam int QW = $clog2(NQ);
  localparam int EB = fv_regs_pkg::PUNT_ENTRY_BYTES;
  localparam int PB = (DW / 8 < EB) ? DW / 8 : EB;     // bytes per piece
  localparam int NP = EB / PB;                          // pieces per entry
  localparam logic [15:0] NO_VECTOR = 16'(fv_regs_pkg::NO_VECTOR);

  if (NP * PB != EB) begin : g_bad_width
    $error("fv_punt_writer: the entry must split into whole DMA beats");
  end

  typedef enum logic [2:0] {S_IDLE, S_WR_REQ, S_WR_WAIT, S_IRQ} state_e;
  state_e state;

  logic [NQ-1:0] db_pending;
  fv_regs_pkg::punt_entry_t entry;
  logic [$clog2(NP+1)-1:0] piece;     // piece being written, counting down

  // Lowest queue with a doorbell event to report.
  logic          db_valid;
  logic [QW-1:0] db_q;
  always_comb begin
    db_valid = |db_pending;
    db_q = '0;
    if (db_valid) begin
      for (int q = NQ - 1; q >= 0; q--) begin
        if (db_pending[q]) db_q = QW'(q);
      end
    end
  end

  logic [31:0] used_slots;
  logic [31:0] mask;
  assign used_slots = prod - cons;
  assign mask = (32'd1 << size_log2) - 32'd1;
  assign full = used_slots > mask;
  logic room;
  assign room = enable && !full;

  logic phase;
  assign phase = !prod[size_log2];

  assign punt_ready = state == S_IDLE && room && !db_valid;

  // The entry as bytes, PHASE filled in.
  logic [EB*8-1:0] bytes;
  assign bytes = entry;

  assign wr_valid = state == S_WR_REQ;
  assign wr_addr = base + {27'd0, prod & mask, 5'd0} + 64'(piece) * 64'(PB);
  assign wr_len = 16'(PB);
  always_comb begin
    wr_data = '0;
    wr_data[PB*8-1:0] = bytes[piece * PB * 8 +: PB * 8];
  end
  assign irq_valid = state == S_IRQ;
  assign busy = state == S_WR_REQ || state == S_WR_WAIT;
  assign irq_vector = msix_vector;

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE;
      db_pending <= '0;
      entry <= '0;
      piece <= '0;
      prod <= '0;
      stall_cycles <= '0;
      ev_punt <= 1'b0;
      ev_qid <= '0;
      ev_reason <= '0;
      ev_fault <= 1'b0;
    end else begin
      ev_punt <= 1'b0;
      ev_fault <= 1'b0;
      db_pending <= db_pending | (doorbell & cpu_owned);
      if ((punt_valid || db_valid) && !room && stall_cycles != 32'hffff_ffff) begin
        stall_cycles <= stall_cycles + 32'd1;
      end
      unique case (state)
        S_IDLE: begin
          if (room && db_valid) begin
            entry <= '0;
            entry.qid <= 16'(db_q);
            entry.reason <= 8'(fv_regs_pkg::PUNT_REASON_DOORBELL);
            entry.func <= {5'd0, func[db_q]};
            entry.flags <= {7'd0, phase};
            db_pending[db_q] <= doorbell[db_q] && cpu_owned[db_q];  // a new ring in this cycle stays
            piece <= ($clog2(NP+1))'(NP - 1);
            state <= S_WR_REQ;
          end else if (room && punt_valid) begin
            entry <= punt_entry;
            entry.flags <= {punt_entry.flags[7:1], phase};
            piece <= ($clog2(NP+1))'(NP - 1);
            state <= S_WR_REQ;
          end
        end
        S_WR_REQ: if (wr_ready) state <= S_WR_WAIT;
        S_WR_WAIT: begin
          if (wc_valid) begin
            if (wc_error) begin
              // The ring is outside the IOMMU map: the entry is lost to the CPU; report it and
              // carry on (the fault is visible in GLOBAL.DMA_FAULT_*).
              ev_fault <= 1'b1;
              state <= S_IDLE;
            end else if (piece != '0) begin
              piece <= piece - 1'b1;
              state <= S_WR_REQ;
            end else begin
              prod <= prod + 32'd1;
              ev_punt <= 1'b1;
              ev_qid <= entry.qid;
              ev_reason <= entry.reason;
              state <= msix_vector != NO_VECTOR ? S_IRQ : S_IDLE;
            end
          end
        end
        S_IRQ: if (irq_ready) state <= S_IDLE;
        default: state <= S_IDLE;
      endcase
    end
  end
endmodule
