// Virtqueue stage: the queues' scheduling state. Doorbells and newly enabled queues have work
// to look at (pending); the engine picks among them round-robin. Per queue it also keeps the
// error state (cause, info), the NOTIFICATION_DATA hint (the last doorbell's avail idx), the
// avail index last read, and how many requests are held (taken from the ring and not yet
// published: on a device slot or punted to the CPU), and reports the queue status (STATUS,
// ERROR_*, INFLIGHT).
//
// A queue keeps its error while it is disabled (an error of a request that drained after the
// disable must still be seen by the driver once the handshake is done) and forgets it when
// enabled again. Clearing a queue's enable is a handshake: STATUS.enabled stays up until the
// request in hand and every request held or waiting for its interrupt decision drained.
//
// Whole-vector updates; the per-queue loops run only on a doorbell or an enable edge (most
// queues are idle or disabled, and a loop over all of them every cycle dominated the
// simulator's time).
module fv_vq_sched #(
  parameter int NQ = 32          // queues (a power of two)
) (
  input  logic clk,
  input  logic rst,

  input  logic [NQ-1:0]       enable,
  input  logic [NQ-1:0]       owner,         // 1: CPU-owned, never picked
  input  logic [NQ-1:0]       doorbell,
  input  logic [NQ-1:0][15:0] doorbell_idx,
  input  logic [NQ-1:0]       notify_data,
  input  logic [NQ-1:0][15:0] saved_last_avail,

  // The engine: idle (may pick), or busy with queue cq.
  input  logic                idle,
  input  logic [$clog2(NQ)-1:0] cq,
  input  logic                can_pick,      // a punt tag and a device slot are free
  output logic                pick_valid,
  output logic [$clog2(NQ)-1:0] pick,
  output logic [15:0]         pick_avail,    // the avail index known for pick
  output logic                pick_hint,     // ... from its doorbell (NOTIFICATION_DATA)
  input  logic                take_pick,     // the engine takes pick
  input  logic                requeue,       // look at cq again later
  input  logic                fail,          // cq enters its error state
  input  logic [3:0]          fail_cause,
  input  logic [31:0]         fail_info,
  input  logic                avail_seen,    // avail->idx of cq read: avail_val
  input  logic [15:0]         avail_val,
  input  logic                held_inc,      // a request of cq taken from its ring
  input  logic                held_dec,      // a request of held_q published or dropped
  input  logic [$clog2(NQ)-1:0] held_q,
  output logic [NQ-1:0]       err,
  output logic [NQ-1:0]       stopped,       // disabled, nothing in hand
  output logic [NQ-1:0]       q_runs,        // enabled, device-owned, no error, not stopped
  output logic [NQ-1:0][15:0] hint,
  output logic [NQ-1:0]       hint_valid,

  // Status.
  input  logic                holds_request, // a request of cq is being fetched and walked
  input  logic [NQ-1:0]       q_has_dec,     // queues with an interrupt decision pending
  output logic [NQ-1:0]       st_enabled,
  output logic [NQ-1:0]       st_error,
  output logic [NQ-1:0][3:0]  st_cause,
  output logic [NQ-1:0][15:0] st_inflight,
  output logic [NQ-1:0][31:0] st_err_info
);
  localparam int QW = $clog2(NQ);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_sched: NQ must be a power of two >= 2");
  end

  logic [NQ-1:0]       pending;
  logic [NQ-1:0][3:0]  cause;
  logic [NQ-1:0][31:0] info;
  logic [NQ-1:0]       enable_q;
  logic [NQ-1:0][15:0] shadow_avail;
  logic [NQ-1:0][15:0] held;
  logic [NQ-1:0]       has_held;       // held[q] != 0
  logic [NQ-1:0]       enable_rise, runnable;
  logic [QW-1:0]       rr;
  assign enable_rise = enable & ~enable_q;
  assign stopped = ~enable & ~(!idle ? NQ'(1) << cq : '0);
  assign q_runs = enable & ~owner & ~err & ~stopped;

  assign runnable = can_pick ? pending & enable & ~owner & ~err : '0;
  always_comb begin
    pick_valid = 1'b0;
    pick = '0;
    // Only looked at when idle (and only when some queue has work).
    if (idle && |runnable) begin
      for (int k = 1; k <= NQ; k++) begin
        if (!pick_valid && runnable[rr + QW'(k)]) begin
          pick_valid = 1'b1;
          pick = rr + QW'(k);
        end
      end
    end
  end
  assign pick_hint = hint_valid[pick];
  assign pick_avail = hint_valid[pick] ? hint[pick] : shadow_avail[pick];

  always_comb begin
    // Enabled until the request in hand and every request held (slots, punts) drained.
    st_enabled = (enable & ~err) | has_held | q_has_dec;
    if (!idle) st_enabled[cq] = 1'b1;
    st_error = err;
    st_cause = cause;
    st_err_info = info;
    st_inflight = held;
    if (holds_request) st_inflight[cq] = held[cq] + 16'd1;
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      rr <= '1;
      pending <= '0;
      err <= '0;
      cause <= '0;
      info <= '0;
      enable_q <= '0;
      shadow_avail <= '0;
      hint <= '0;
      hint_valid <= '0;
      held <= '0;
      has_held <= '0;
    end else begin
      enable_q <= enable;
      pending <= (pending | doorbell | enable_rise) & ~stopped;
      err <= err & ~enable_rise;
      // NOTIFICATION_DATA: the doorbell names the new avail idx; the next pick of the queue
      // starts from it (the engine believes it only within a ring of what was consumed).
      hint_valid <= (hint_valid | (doorbell & notify_data)) & ~stopped;
      if (|doorbell) begin
        for (int q = 0; q < NQ; q++) if (doorbell[q] && notify_data[q]) hint[q] <= doorbell_idx[q];
      end
      // A queue (re-)enabled starts from its saved state: forget the avail index seen before
      // (the driver may have restored other state or rings while it was disabled).
      if (|enable_rise) begin
        for (int q = 0; q < NQ; q++) if (enable_rise[q]) shadow_avail[q] <= saved_last_avail[q];
      end

      // The engine's commands (after the above: they win).
      if (take_pick) begin
        rr <= pick;
        pending[pick] <= 1'b0;
        hint_valid[pick] <= 1'b0;
      end
      if (requeue) pending[cq] <= 1'b1;
      if (fail) begin
        err[cq] <= 1'b1;
        cause[cq] <= fail_cause;
        info[cq] <= fail_info;
        pending[cq] <= 1'b0;
      end
      if (avail_seen) shadow_avail[cq] <= avail_val;
      if (held_inc) begin
        held[cq] <= held[cq] + 16'd1;
        has_held[cq] <= 1'b1;
      end
      if (held_dec) begin
        held[held_q] <= held[held_q] - 16'd1;
        has_held[held_q] <= held[held_q] != 16'd1;
      end
    end
  end
endmodule
