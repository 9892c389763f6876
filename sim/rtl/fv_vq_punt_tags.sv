// Virtqueue stage: the punt tags. A request the engine hands to the CPU goes out on the punt
// ring with a free tag naming its queue, head and avail position; the CPU's completion comes back
// with the tag, and is merged into the used ring only if tag, queue and head name a punted
// request in flight (cpl_ok) — anything else is a bad completion that fails its queue.
//
// alloc takes free_tag (valid while tag_free) for the request (q, head, pos); release frees a
// tag when its completion is taken. Both may come in one cycle for different tags.
module fv_vq_punt_tags #(
  parameter int NQ = 32,         // queues (a power of two)
  parameter int PUNT_TAGS = 16   // punted requests in flight (a power of two)
) (
  input  logic clk,
  input  logic rst,

  input  logic                            alloc,
  input  logic [$clog2(NQ)-1:0]           alloc_q,
  input  logic [15:0]                     alloc_head,
  input  logic [15:0]                     alloc_pos,
  output logic                            tag_free,    // a tag can be allocated
  output logic [$clog2(PUNT_TAGS)-1:0]    free_tag,    // the one alloc takes (lowest free)

  input  logic                            release_en,
  input  logic [$clog2(PUNT_TAGS)-1:0]    release_tag,

  // The completion being looked at: does it name a punted request in flight, and from which
  // avail position was that fetched.
  input  logic [31:0]                     cpl_tag,
  input  logic [15:0]                     cpl_qid,
  input  logic [15:0]                     cpl_head,
  output logic                            cpl_ok,
  output logic [15:0]                     cpl_pos
);
  localparam int QW = $clog2(NQ);
  localparam int PW = $clog2(PUNT_TAGS);

  if (NQ < 2 || (NQ & (NQ - 1)) != 0) begin : g_bad_nq
    $error("fv_vq_punt_tags: NQ must be a power of two >= 2");
  end
  if (PUNT_TAGS < 2 || PUNT_TAGS > 256 || (PUNT_TAGS & (PUNT_TAGS - 1)) != 0) begin : g_bad_tags
    $error("fv_vq_punt_tags: PUNT_TAGS must be a power of two in 2..256");
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

  logic [PW-1:0] ct;
  assign ct = cpl_tag[PW-1:0];
  assign cpl_ok = cpl_tag < 32'(PUNT_TAGS) && tag_valid[ct] && cpl_qid < 16'(NQ)
                  && tag_q[ct] == cpl_qid[QW-1:0] && tag_head[ct] == cpl_head;
  assign cpl_pos = tag_pos[ct];

  always_ff @(posedge clk) begin
    if (rst) begin
      tag_valid <= '0;
      tag_q <= '0;
      tag_head <= '0;
      tag_pos <= '0;
    end else begin
      if (release_en) tag_valid[release_tag] <= 1'b0;
      if (alloc) begin
        tag_valid[free_tag] <= 1'b1;
        tag_q[free_tag] <= alloc_q;
        tag_head[free_tag] <= alloc_head;
        tag_pos[free_tag] <= alloc_pos;
      end
    end
  end
endmodule
