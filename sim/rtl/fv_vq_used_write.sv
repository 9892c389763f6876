// Virtqueue stage: the used-ring writer. Publishes one result (start): with a done log, the
// request's record first (see the DONE_LOG registers: posted writes land in issue order, so the
// record is in memory before the used element and used->idx it announces); then the used
// element and used->idx, back to back; then it hands the interrupt decision over
// (fv_vq_irq_decide: its used_event / avail->flags read follows these writes, a read not
// passing earlier posted writes) and is done. The acknowledgements are collected by the
// decision before it takes effect, so an MSI still follows the used->idx write it announces,
// and a refused write (pub_uerr) still fails the queue.
//
// The engine's DMA writes are numbered in issue order (wseq_iss: the number of the next write
// issued; wseq_ack: of the next acknowledgement). h_seq is the number of the used element
// (used->idx is h_seq + 1; a record is h_seq - 1 when h_rec). The context (queue, head, rings,
// used_idx, ...) is the engine's and holds still from start to done.
module fv_vq_used_write #(
  parameter int DW = 128         // DMA data width in bits (64 .. 512)
) (
  input  logic clk,
  input  logic rst,

  input  logic         start,
  input  logic         start_rec,      // the queue has a done log (log_base)
  input  logic [63:0]  log_base,
  input  logic [63:0]  c_used,         // the used ring
  input  logic [15:0]  c_mask,         // ring size - 1
  input  logic [15:0]  used_idx,       // used->idx before this publish
  input  logic [15:0]  head,
  input  logic [15:0]  req_pos,        // the request's avail position (the record's)
  input  logic [31:0]  pub_len,        // its used length
  input  logic [31:0]  start_cycle,    // when its ring entry was fetched
  input  logic [31:0]  cycle,
  output logic         elem_written,   // the used element leaves (head published on the queue)
  output logic         published,      // used->idx leaves: the request is published
  output logic         done,           // hand the decision over (h_*), back to idle

  output logic         h_uerr,         // one of the publish's writes was refused already
  output logic [15:0]  h_seq,
  output logic         h_rec,

  input  logic [15:0]  wseq_iss,
  input  logic [15:0]  wseq_ack,
  input  logic         wc_valid,
  input  logic         wc_error,
  output logic         wr_valid,
  input  logic         wr_ready,
  output logic [63:0]  wr_addr,
  output logic [15:0]  wr_len,
  output logic [DW-1:0] wr_data,

  // Events: a request was published, its used length and ring-fetch-to-used->idx cycles.
  output logic         ev_done,
  output logic [31:0]  ev_bytes,
  output logic [31:0]  ev_cycles
);
  if (DW < 64 || DW > 512 || (DW & (DW - 1)) != 0) begin : g_bad_dw
    $error("fv_vq_used_write: DW must be 64, 128, 256 or 512");
  end

  typedef enum logic [2:0] {P_IDLE, P_REC, P_ELEM, P_UIDX, P_HANDOFF} pstate_e;
  pstate_e pstate;

  logic [15:0] pub_seq;
  logic        pub_uerr, pub_rec, ack_err_pub;
  assign ack_err_pub = wc_valid && wc_error && (wseq_ack == pub_seq || wseq_ack == pub_seq + 16'd1
                                                || (pub_rec && wseq_ack == pub_seq - 16'd1));
  assign elem_written = pstate == P_ELEM && wr_ready;
  assign published = pstate == P_UIDX && wr_ready;
  assign done = pstate == P_HANDOFF;
  assign h_uerr = pub_uerr || ack_err_pub;
  assign h_seq = pub_seq;
  assign h_rec = pub_rec;

  always_comb begin
    wr_valid = pstate == P_REC || pstate == P_ELEM || pstate == P_UIDX;
    wr_addr = c_used + 64'd2;
    wr_len = 16'd2;
    wr_data = '0;
    unique case (pstate)
      P_REC: begin
        wr_addr = log_base + {46'd0, req_pos & c_mask, 2'd0};
        wr_len = 16'd4;
        wr_data[31:0] = {used_idx + 16'd1, req_pos};
      end
      P_ELEM: begin
        wr_addr = c_used + 64'd4 + {45'd0, used_idx & c_mask, 3'd0};
        wr_len = 16'd8;
        wr_data[63:0] = {pub_len, 16'd0, head};
      end
      P_UIDX: wr_data[15:0] = used_idx + 16'd1;
      default: ;
    endcase
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      pstate <= P_IDLE;
      pub_seq <= '0;
      pub_uerr <= 1'b0;
      pub_rec <= 1'b0;
      ev_done <= 1'b0;
      ev_bytes <= '0;
      ev_cycles <= '0;
    end else begin
      if (ack_err_pub) pub_uerr <= 1'b1;
      ev_done <= 1'b0;
      unique case (pstate)
        P_IDLE: begin
          if (start) begin
            pub_rec <= 1'b0;
            pstate <= start_rec ? P_REC : P_ELEM;
          end
        end
        P_REC: begin
          if (wr_ready) begin
            // The used element is the engine's next write.
            pub_rec <= 1'b1;
            pub_seq <= wseq_iss + 16'd1;
            pub_uerr <= 1'b0;
            pstate <= P_ELEM;
          end
        end
        P_ELEM: begin
          if (wr_ready) begin
            if (!pub_rec) begin
              pub_seq <= wseq_iss;
              pub_uerr <= 1'b0;
            end
            pstate <= P_UIDX;
          end
        end
        P_UIDX: begin
          if (wr_ready) begin
            // Published (visible once acknowledged). The request consumed its avail entry when
            // it went to its slot or to the CPU.
            ev_done <= 1'b1;
            ev_bytes <= pub_len;
            ev_cycles <= cycle - start_cycle;
            pstate <= P_HANDOFF;
          end
        end
        default: pstate <= P_IDLE;             // P_HANDOFF: the decision is handed over
      endcase
    end
  end
endmodule
