// Virtqueue stage: the dispatcher of fv_virtq_engine. One thing at a time, in this order when
// idle: the oldest interrupt decision (S_DECIDE, then S_IRQ when an interrupt is due), a slot's
// result (S_LOAD: publish S_PUB, punt S_PUNT or fail), a CPU completion (S_CPL, then S_LOAD), a
// new request of the picked queue (S_AVAIL, S_WALK, S_TAKE, then a slot S_DEV or the CPU
// S_PUNT); decisions and results are taken even while !run (work in flight drains), and while
// every decision entry is taken neither a result nor a completion is (their publish would need
// one), only new requests. It holds
// the context of the queue in hand (loaded at a pick and at S_LOAD) and of the request in hand,
// which the stages read, and records failures (S_FAIL: the queue's error state, fv_vq_sched).
module fv_vq_dispatch #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int NSLOT = 2        // device-engine slots
) (
  input  logic clk,
  input  logic rst,
  input  logic run,                              // global enable: pick new work
  input  logic [31:0] cycle,
  output fv_vq_pkg::disp_state_e state,

  // Queue contexts (queue CSR block).
  input  logic [NQ-1:0][31:0] desc_lo,
  input  logic [NQ-1:0][31:0] desc_hi,
  input  logic [NQ-1:0][31:0] avail_lo,
  input  logic [NQ-1:0][31:0] avail_hi,
  input  logic [NQ-1:0][31:0] used_lo,
  input  logic [NQ-1:0][31:0] used_hi,
  input  logic [NQ-1:0][15:0] size,
  input  logic [NQ-1:0]       event_idx,
  input  logic [NQ-1:0]       indirect,
  input  logic [NQ-1:0][15:0] msix_vector,
  input  logic [NQ-1:0][15:0] saved_last_avail,
  input  logic [NQ-1:0][15:0] saved_used_idx,
  input  logic [NQ-1:0]       err,               // queues in their error state
  output logic [NQ-1:0]       save_we,           // saved state of queue cq (a cycle later)
  output logic [15:0]         save_last_avail,
  output logic [15:0]         save_used_idx,

  // What there is to do (fv_vq_sched, fv_vq_irq_decide, fv_vq_slot_track, fv_vq_punt_cpl).
  input  logic                pick_valid,
  input  logic [$clog2(NQ)-1:0] pick,
  input  logic                pd_ready,          // the oldest interrupt decision can be taken
  input  logic                pd_full,           // no free decision entry: publish nothing
  input  logic                ds_any_ready,      // a slot's result can be taken
  input  logic                cpl_pending,       // a CPU completion waits
  output logic                idle_pick,         // a new request of pick: the avail stage starts
  output logic                idle_cpl,          // a completion: fv_vq_punt_cpl reads it

  // The avail stage (fv_vq_avail_fetch).
  input  logic                a_done,
  input  fv_vq_pkg::avail_result_e a_result,
  input  logic [15:0]         a_head,
  input  logic [3:0]          a_cause,
  input  logic [31:0]         a_info,
  input  logic                a_fault,
  input  logic                a_in_ring,
  // The walk (fv_vq_desc_walk).
  input  logic                w_done,
  input  fv_vq_pkg::walk_result_e w_result,
  input  logic [3:0]          w_cause,
  input  logic [31:0]         w_info,
  input  logic                w_fault,
  input  logic [63:0]         w_first_addr,
  input  logic [31:0]         w_bytes,
  input  logic                w_ind,
  // A slot's result (fv_vq_slot_track: ready_dslot's, then cs's).
  input  logic [(NSLOT > 1 ? $clog2(NSLOT) : 1) - 1:0] ready_dslot,
  input  logic [$clog2(NQ)-1:0] ready_q,
  input  logic [15:0]         r_head,
  input  logic [15:0]         r_pos,
  input  logic [63:0]         r_first_addr,
  input  logic [31:0]         r_walked,
  input  logic                r_ind,
  input  logic [31:0]         r_start,
  input  logic [31:0]         r_written,
  input  logic                r_err,
  input  logic                r_tmo,
  input  logic                r_punt,
  input  logic [7:0]          r_reason,
  input  logic [63:0]         r_arg,
  // A CPU completion (fv_vq_punt_cpl).
  input  logic                c_done,
  input  fv_vq_pkg::cpl_result_e c_result,
  input  logic [$clog2(NQ)-1:0] c_q,
  input  logic [15:0]         c_head,
  input  logic [15:0]         c_pos,
  input  logic [31:0]         c_len,
  input  logic                c_no_irq,
  input  logic                c_failed,
  input  logic [3:0]          c_cause,
  input  logic [31:0]         c_info,
  // Publishing (fv_vq_used_write) and the decision (fv_vq_irq_decide).
  input  logic                p_published,
  input  logic                p_done,
  input  logic [$clog2(NQ)-1:0] dec_q,
  input  logic [15:0]         dec_vec,
  input  logic                dec_fail,
  input  logic [31:0]         dec_info,
  input  logic                dec_irq,
  input  logic                irq_ready,
  input  logic                punt_ready,

  // The queue in hand and its context.
  output logic [$clog2(NQ)-1:0] cq,
  output logic [63:0]         c_desc,
  output logic [63:0]         c_avail,
  output logic [63:0]         c_used,
  output logic [15:0]         c_size,
  output logic [15:0]         c_mask,
  output logic                c_evt,
  output logic                c_ind,
  output logic [15:0]         c_vec,
  output logic [15:0]         last_avail,
  output logic [15:0]         used_idx,
  // The request in hand.
  output logic [15:0]         head,
  output logic [15:0]         req_pos,           // avail position it was fetched from
  output logic                in_ind,            // its chain is in an indirect table
  output logic [63:0]         first_addr,
  output logic [31:0]         walked_bytes,
  output logic [31:0]         start_cycle,
  output logic [31:0]         pub_len,           // used length, the CPU asked for no interrupt
  output logic                pub_no_irq,
  output logic [7:0]          p_reason,          // why it is punted
  output logic [63:0]         p_arg,
  output logic [(NSLOT > 1 ? $clog2(NSLOT) : 1) - 1:0] cs,  // slot whose result is taken
  output logic                load_slot,         // S_LOAD takes a slot's result (else a CPU's)
  output logic [3:0]          f_cause,           // the failure being recorded (S_FAIL)
  output logic [31:0]         f_info,

  // Events.
  output logic                ev_error,          // a queue entered its error state
  output logic                ev_fault,          // ... because of a DMA fault
  output logic                ev_irq             // an interrupt was requested
);
  localparam logic [15:0] NO_VECTOR = 16'(fv_regs_pkg::NO_VECTOR);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_dispatch: NQ must be a power of two >= 2");
  end
  if (NSLOT < 1 || NSLOT > 16) begin : g_bad_slots
    $error("fv_vq_dispatch: NSLOT must be in 1..16");
  end

  logic take_punt;                     // the chain walked goes to the CPU (S_TAKE), not to a slot
  logic f_fault;
  logic idle_decide, idle_load;
  assign idle_decide = state == fv_vq_pkg::S_IDLE && pd_ready;
  assign idle_load = state == fv_vq_pkg::S_IDLE && !pd_ready && ds_any_ready && !pd_full;
  assign idle_cpl = state == fv_vq_pkg::S_IDLE && !pd_ready && !(ds_any_ready && !pd_full)
                    && run && cpl_pending && !pd_full;
  assign idle_pick = state == fv_vq_pkg::S_IDLE && !pd_ready && !(ds_any_ready && !pd_full)
                     && !(run && cpl_pending && !pd_full) && run && pick_valid;

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= fv_vq_pkg::S_IDLE;
      cq <= '0;
      c_desc <= '0;
      c_avail <= '0;
      c_used <= '0;
      c_size <= '0;
      c_mask <= '0;
      c_evt <= '0;
      c_ind <= '0;
      c_vec <= NO_VECTOR;
      last_avail <= '0;
      used_idx <= '0;
      in_ind <= '0;
      head <= '0;
      req_pos <= '0;
      walked_bytes <= '0;
      first_addr <= '0;
      f_cause <= '0;
      f_info <= '0;
      f_fault <= '0;
      p_reason <= '0;
      p_arg <= '0;
      take_punt <= '0;
      start_cycle <= '0;
      save_we <= '0;
      save_last_avail <= '0;
      save_used_idx <= '0;
      ev_error <= '0;
      ev_fault <= '0;
      ev_irq <= '0;
      cs <= '0;
      load_slot <= '0;
      pub_len <= '0;
      pub_no_irq <= '0;
    end else begin
      save_we <= '0;
      ev_error <= 1'b0;
      ev_fault <= 1'b0;
      ev_irq <= 1'b0;

      if (p_published) begin
        save_we[cq] <= 1'b1;
        save_last_avail <= last_avail;
        save_used_idx <= used_idx + 16'd1;
      end

      unique case (state)
        fv_vq_pkg::S_IDLE: begin
          if (idle_decide) begin
            // The oldest publish's interrupt decision (taken even while !run).
            cq <= dec_q;
            c_vec <= dec_vec;
            state <= fv_vq_pkg::S_DECIDE;
          end else if (idle_load) begin
            // A slot finished (taken even while !run: work in flight drains).
            cs <= ready_dslot;
            cq <= ready_q;
            load_slot <= 1'b1;
            state <= fv_vq_pkg::S_LOAD;
          end else if (idle_cpl) begin
            state <= fv_vq_pkg::S_CPL;            // fv_vq_punt_cpl reads the completion
          end else if (idle_pick) begin
            cq <= pick;
            c_desc <= {desc_hi[pick], desc_lo[pick]};
            c_avail <= {avail_hi[pick], avail_lo[pick]};
            c_used <= {used_hi[pick], used_lo[pick]};
            c_size <= size[pick];
            c_mask <= size[pick] - 16'd1;
            c_evt <= event_idx[pick];
            c_ind <= indirect[pick];
            c_vec <= msix_vector[pick];
            last_avail <= saved_last_avail[pick];
            used_idx <= saved_used_idx[pick];
            state <= fv_vq_pkg::S_AVAIL;          // fv_vq_avail_fetch starts
          end
        end

        fv_vq_pkg::S_AVAIL: begin
          if (a_in_ring) start_cycle <= cycle;
          if (a_done) begin
            f_cause <= a_cause;
            f_info <= a_info;
            f_fault <= a_fault;
            unique case (a_result)
              fv_vq_pkg::AVAIL_HEAD: begin
                head <= a_head;
                state <= fv_vq_pkg::S_WALK;         // fv_vq_desc_walk starts
              end
              fv_vq_pkg::AVAIL_NONE: state <= fv_vq_pkg::S_IDLE;
              default: state <= fv_vq_pkg::S_FAIL;
            endcase
          end
        end

        fv_vq_pkg::S_WALK: begin
          if (w_done) begin
            f_cause <= w_cause;
            f_info <= w_info;
            f_fault <= w_fault;
            unique case (w_result)
              fv_vq_pkg::WALK_FAIL: state <= fv_vq_pkg::S_FAIL;
              fv_vq_pkg::WALK_PUNT: begin
                // More descriptors than the segment table holds: the CPU serves this one.
                p_reason <= 8'(fv_regs_pkg::PUNT_REASON_CHAIN_TOO_LONG);
                p_arg <= '0;
                take_punt <= 1'b1;
                state <= fv_vq_pkg::S_TAKE;
              end
              default: begin
                take_punt <= 1'b0;
                state <= fv_vq_pkg::S_TAKE;
              end
            endcase
          end
        end

        // The chain is walked: consume its avail entry (the request is held until its result
        // is published), then hand it to a slot or to the CPU. The saved state reaches the CSR
        // block a cycle later, before the next pick reads it (S_DEV and S_PUNT take a cycle at
        // least).
        fv_vq_pkg::S_TAKE: begin
          req_pos <= last_avail;
          first_addr <= w_first_addr;
          walked_bytes <= w_bytes;
          in_ind <= w_ind;
          last_avail <= last_avail + 16'd1;
          save_we[cq] <= 1'b1;
          save_last_avail <= last_avail + 16'd1;
          save_used_idx <= used_idx;
          state <= take_punt ? fv_vq_pkg::S_PUNT : fv_vq_pkg::S_DEV;
        end
        // A free slot takes the chain (the pick made sure there is one); its result is published
        // when the slot finishes.
        fv_vq_pkg::S_DEV: state <= fv_vq_pkg::S_IDLE;

        // A result to publish (a slot's, or a CPU completion read in S_CPL): the queue's
        // context as at a pick; then publish, punt or fail. A broken queue gets no more used
        // entries.
        fv_vq_pkg::S_LOAD: begin
          c_avail <= {avail_hi[cq], avail_lo[cq]};
          c_used <= {used_hi[cq], used_lo[cq]};
          c_size <= size[cq];
          c_mask <= size[cq] - 16'd1;
          c_evt <= event_idx[cq];
          c_vec <= msix_vector[cq];
          last_avail <= saved_last_avail[cq];
          used_idx <= saved_used_idx[cq];
          if (!load_slot) begin
            state <= err[cq] ? fv_vq_pkg::S_IDLE : fv_vq_pkg::S_PUB;
          end else begin
            head <= r_head;
            req_pos <= r_pos;
            first_addr <= r_first_addr;
            walked_bytes <= r_walked;
            in_ind <= r_ind;
            start_cycle <= r_start;
            pub_len <= r_written;
            pub_no_irq <= 1'b0;
            if (err[cq]) begin
              state <= fv_vq_pkg::S_IDLE;
            end else if (r_tmo) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_ENGINE_TIMEOUT;
              f_info <= {16'd0, r_head};
              f_fault <= 1'b0;
              state <= fv_vq_pkg::S_FAIL;
            end else if (r_err) begin
              f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
              f_info <= '0;
              f_fault <= 1'b1;
              state <= fv_vq_pkg::S_FAIL;
            end else if (r_punt) begin
              // The device engine hands this request to the CPU (it stays held, now as a punt).
              p_reason <= r_reason;
              p_arg <= r_arg;
              state <= fv_vq_pkg::S_PUNT;
            end else begin
              state <= fv_vq_pkg::S_PUB;
            end
          end
        end

        // fv_vq_used_write publishes (the context holds still meanwhile) and hands the
        // interrupt decision to a free entry of fv_vq_irq_decide (the publish started only with
        // one free).
        fv_vq_pkg::S_PUB: if (p_done) state <= fv_vq_pkg::S_IDLE;

        // The decision (cq and c_vec are the decision's queue and vector). Without an interrupt
        // now (none wanted, or deferred), look at avail->idx again before the queue may sleep
        // (entries added without a kick, EVENT_IDX's avail_event): on the next pick, after the
        // other queues.
        fv_vq_pkg::S_DECIDE: begin
          if (dec_fail) begin
            f_cause <= fv_regs_pkg::QUEUE_ERROR_DMA_FAULT;
            f_info <= dec_info;
            f_fault <= 1'b1;
            state <= fv_vq_pkg::S_FAIL;
          end else if (dec_irq) begin
            state <= fv_vq_pkg::S_IRQ;
          end else begin
            state <= fv_vq_pkg::S_IDLE;
          end
        end

        fv_vq_pkg::S_IRQ: begin
          if (irq_ready) begin
            ev_irq <= 1'b1;
            state <= fv_vq_pkg::S_IDLE;
          end
        end

        // The request (consumed and held already) goes out on the punt ring with a tag.
        fv_vq_pkg::S_PUNT: if (punt_ready) state <= fv_vq_pkg::S_IDLE;

        fv_vq_pkg::S_CPL: begin
          if (c_done) begin
            if (c_result != fv_vq_pkg::CPL_DROP) cq <= c_q;
            f_cause <= c_cause;
            f_info <= c_info;
            f_fault <= 1'b0;
            unique case (c_result)
              fv_vq_pkg::CPL_LOAD: begin
                head <= c_head;
                req_pos <= c_pos;
                pub_len <= c_len;
                pub_no_irq <= c_no_irq;
                ev_error <= c_failed;    // the CPU failed the request: count it
                load_slot <= 1'b0;
                state <= fv_vq_pkg::S_LOAD;
              end
              fv_vq_pkg::CPL_FAIL: state <= fv_vq_pkg::S_FAIL;
              default: state <= fv_vq_pkg::S_IDLE;
            endcase
          end
        end

        fv_vq_pkg::S_FAIL: begin                  // (the queue's error state: fv_vq_sched)
          ev_error <= 1'b1;
          ev_fault <= f_fault;
          state <= fv_vq_pkg::S_IDLE;
        end

        default: state <= fv_vq_pkg::S_IDLE;
      endcase
    end
  end
endmodule
