// Virtqueue stage: the device-engine slots seen from the engine. It keeps the request each slot
// serves (queue, head, avail position, what the punt path needs) and the slot's result once it
// answers, and says which result may be published next: a slot's result waits while an older
// chain of the same queue is still on a slot, so the device's own results reach a used ring in
// avail order; a result the slot punts waits for a free punt tag (tag_free) while the others go
// first.
//
// assign_en gives the walked chain to a free slot (there is one while slot_free) and pulses its dev_start;
// release_en frees slot rd_slot once its result is taken (the r_* outputs read it).
module fv_vq_slot_track #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int NSLOT = 2        // device-engine slots
) (
  input  logic clk,
  input  logic rst,

  // Slots' answers (dev_done pulses once per request).
  input  logic [NSLOT-1:0]              dev_done,
  input  logic [NSLOT-1:0]              dev_error,
  input  logic [NSLOT-1:0][31:0]        dev_written,
  input  logic [NSLOT-1:0]              dev_punt,
  input  logic [NSLOT-1:0]              dev_timeout,
  input  logic [NSLOT-1:0][7:0]         dev_punt_reason,
  input  logic [NSLOT-1:0][63:0]        dev_punt_arg,
  input  logic [NSLOT-1:0]              slot_blocked,  // the slot may not take a request yet
  output logic [NSLOT-1:0]              dev_start,
  output logic [NSLOT-1:0][$clog2(NQ)-1:0] slot_queue,

  // A walked chain to a free slot.
  input  logic                          assign_en,
  input  logic [$clog2(NQ)-1:0]         a_q,
  input  logic [15:0]                   a_head,
  input  logic [15:0]                   a_pos,
  input  logic [63:0]                   a_first_addr,
  input  logic [31:0]                   a_walked,
  input  logic                          a_ind,
  input  logic [31:0]                   a_start,
  output logic                          slot_free,

  // Results that may be taken now, and the one rd_slot holds.
  input  logic                          tag_free,
  output logic                          any_ready,
  output logic [(NSLOT > 1 ? $clog2(NSLOT) : 1) - 1:0] ready_slot,
  output logic [$clog2(NQ)-1:0]         ready_q,
  input  logic                          release_en,
  input  logic [(NSLOT > 1 ? $clog2(NSLOT) : 1) - 1:0] rd_slot,
  output logic [15:0]                   r_head,
  output logic [15:0]                   r_pos,
  output logic [63:0]                   r_first_addr,
  output logic [31:0]                   r_walked,
  output logic                          r_ind,
  output logic [31:0]                   r_start,
  output logic                          r_err,       // DMA error or watchdog
  output logic                          r_tmo,       // the slot's watchdog fired
  output logic                          r_punt,
  output logic [31:0]                   r_written,
  output logic [7:0]                    r_reason,
  output logic [63:0]                   r_arg
);
  localparam int QW = $clog2(NQ);
  localparam int DSW = NSLOT > 1 ? $clog2(NSLOT) : 1;

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_slot_track: NQ must be a power of two >= 2");
  end
  if (NSLOT < 1 || NSLOT > 16) begin : g_bad_slots
    $error("fv_vq_slot_track: NSLOT must be in 1..16");
  end

  logic [NSLOT-1:0]             ds_busy, ds_done;
  logic [NSLOT-1:0][QW-1:0]     ds_q;
  logic [NSLOT-1:0][15:0]       ds_head;
  logic [NSLOT-1:0][15:0]       ds_pos;
  logic [NSLOT-1:0][63:0]       ds_first_addr;
  logic [NSLOT-1:0][31:0]       ds_walked;
  logic [NSLOT-1:0]             ds_ind;
  logic [NSLOT-1:0][31:0]       ds_start;
  logic [NSLOT-1:0]             ds_err, ds_punt, ds_tmo;
  logic [NSLOT-1:0][31:0]       ds_written;
  logic [NSLOT-1:0][7:0]        ds_reason;
  logic [NSLOT-1:0][63:0]       ds_arg;
  // ds_older[k][j]: slot j held a chain when slot k got its own (j's is older).
  logic [NSLOT-1:0][NSLOT-1:0]  ds_older;
  logic [NSLOT-1:0]             ds_waits;       // an older chain of the same queue is on a slot
  logic [NSLOT-1:0]             ds_ready;       // results that can be taken now
  logic [DSW-1:0]               free_slot;      // the one assign_en gives the chain to
  always_comb begin
    ds_waits = '0;
    if (|ds_done) begin
      for (int k = 0; k < NSLOT; k++) begin
        for (int j = 0; j < NSLOT; j++) begin
          if (ds_older[k][j] && ds_q[j] == ds_q[k]) ds_waits[k] = 1'b1;
        end
      end
    end
  end
  assign ds_ready = ds_done & ~ds_waits & ~(ds_punt & {NSLOT{!tag_free}});
  always_comb begin
    slot_free = !(&(ds_busy | slot_blocked));
    free_slot = '0;
    ready_slot = '0;
    for (int k = NSLOT - 1; k >= 0; k--) begin
      if (!ds_busy[k] && !slot_blocked[k]) free_slot = DSW'(k);
      if (ds_ready[k]) ready_slot = DSW'(k);
    end
  end
  assign any_ready = |ds_ready;
  assign ready_q = ds_q[ready_slot];
  assign slot_queue = ds_q;
  assign dev_start = assign_en ? NSLOT'(1) << free_slot : '0;

  assign r_head = ds_head[rd_slot];
  assign r_pos = ds_pos[rd_slot];
  assign r_first_addr = ds_first_addr[rd_slot];
  assign r_walked = ds_walked[rd_slot];
  assign r_ind = ds_ind[rd_slot];
  assign r_start = ds_start[rd_slot];
  assign r_err = ds_err[rd_slot];
  assign r_tmo = ds_tmo[rd_slot];
  assign r_punt = ds_punt[rd_slot];
  assign r_written = ds_written[rd_slot];
  assign r_reason = ds_reason[rd_slot];
  assign r_arg = ds_arg[rd_slot];

  always_ff @(posedge clk) begin
    if (rst) begin
      ds_busy <= '0;
      ds_done <= '0;
      ds_older <= '0;
      ds_q <= '0;
      ds_head <= '0;
      ds_pos <= '0;
      ds_first_addr <= '0;
      ds_walked <= '0;
      ds_ind <= '0;
      ds_start <= '0;
      ds_err <= '0;
      ds_tmo <= '0;
      ds_punt <= '0;
      ds_written <= '0;
      ds_reason <= '0;
      ds_arg <= '0;
    end else begin
      // Results, kept until taken.
      if (|dev_done) begin
        for (int k = 0; k < NSLOT; k++) begin
          if (dev_done[k]) begin
            ds_done[k] <= 1'b1;
            ds_err[k] <= dev_error[k] || dev_timeout[k];
            ds_tmo[k] <= dev_timeout[k];
            ds_punt[k] <= dev_punt[k];
            ds_written[k] <= dev_written[k];
            ds_reason[k] <= dev_punt_reason[k];
            ds_arg[k] <= dev_punt_arg[k];
          end
        end
      end
      if (assign_en) begin
        ds_busy[free_slot] <= 1'b1;
        ds_older[free_slot] <= ds_busy;
        ds_q[free_slot] <= a_q;
        ds_head[free_slot] <= a_head;
        ds_pos[free_slot] <= a_pos;
        ds_first_addr[free_slot] <= a_first_addr;
        ds_walked[free_slot] <= a_walked;
        ds_ind[free_slot] <= a_ind;
        ds_start[free_slot] <= a_start;
      end
      if (release_en) begin
        ds_busy[rd_slot] <= 1'b0;
        ds_done[rd_slot] <= 1'b0;
        for (int k = 0; k < NSLOT; k++) ds_older[k][rd_slot] <= 1'b0;
      end
    end
  end
endmodule
