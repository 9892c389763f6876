// Virtqueue stage: one descriptor of the walk, checked (combinational). Given the descriptor at
// idx and the walk so far, say what the walk does with it, in this order (the Rust walker in
// driver/src/virtq/ decides in the same order):
//   V_FAIL      the queue fails with cause/info: a loop (more descriptors than the table holds),
//               a bad indirect descriptor, a zero length, a device-readable buffer after a
//               device-writable one, a next index outside the table, a buffer outside the
//               function's DMA windows, or a chain longer than MAX_CHAIN_BYTES;
//   V_INDIRECT  the walk enters the indirect table at addr (len / 16 descriptors);
//   V_PUNT      the segment table is full: the CPU serves the chain (chain_too_long);
//   V_SEG       a segment of the request (the last when !has_next).
// Tenant isolation: a buffer or indirect table [addr, addr + len) must lie inside one of the DMA
// windows of the queue's function (its end computed on 65 bits: a wrapping buffer is in none).
module fv_vq_desc_check (
  input  logic [127:0] desc,           // the descriptor: addr, len, flags, next (little endian)
  input  logic [15:0]  idx,            // its index in the table being walked
  input  logic [15:0]  walked,         // descriptors visited in this table before it
  input  logic [15:0]  table_limit,    // descriptors in the table
  input  logic         c_ind,          // INDIRECT_DESC negotiated
  input  logic         in_ind,         // the walk is in an indirect table
  input  logic         seen_write,     // a device-writable buffer came before
  input  logic         seg_full,       // the segment table is full
  input  logic [33:0]  chain_bytes,    // bytes of the chain before it
  input  logic [2:0]   func,           // the queue's function
  input  logic [fv_regs_pkg::NUM_DMA_WINDOWS-1:0][63:0] win_base,
  input  logic [fv_regs_pkg::NUM_DMA_WINDOWS-1:0][63:0] win_end,

  output fv_vq_pkg::desc_verdict_e verdict,
  output logic [3:0]   cause,          // with V_FAIL (QUEUE_ERROR_*)
  output logic [31:0]  info,
  output logic [63:0]  addr,
  output logic [31:0]  len,
  output logic         is_write,
  output logic         has_next,
  output logic [15:0]  next,
  output logic [33:0]  chain_next      // chain_bytes with this buffer
);
  localparam int WPF = fv_regs_pkg::DMA_WINDOWS_PER_FUNCTION;
  localparam int WW = $clog2(WPF);
  localparam logic [33:0] MAX_CHAIN = 34'(fv_regs_pkg::MAX_CHAIN_BYTES);
  localparam int F_NEXT = fv_regs_pkg::VIRTQ_DESC_F_NEXT_BIT;
  localparam int F_WRITE = fv_regs_pkg::VIRTQ_DESC_F_WRITE_BIT;
  localparam int F_INDIRECT = fv_regs_pkg::VIRTQ_DESC_F_INDIRECT_BIT;

  if (WPF < 1 || (WPF & (WPF - 1)) != 0 || fv_regs_pkg::NUM_DMA_WINDOWS != 8 * WPF) begin : g_bad_win
    $error("fv_vq_desc_check: DMA_WINDOWS_PER_FUNCTION must be a power of two, 8 functions");
  end

  logic [15:0] flags;
  assign addr = desc[63:0];
  assign len = desc[95:64];
  assign flags = desc[111:96];
  assign next = desc[127:112];
  assign is_write = flags[F_WRITE];
  assign has_next = flags[F_NEXT];
  assign chain_next = chain_bytes + {2'd0, len};

  logic [64:0]    d_end;
  logic [WPF-1:0] win_hit;
  logic           in_window;
  assign d_end = {1'b0, addr} + {33'd0, len};
  always_comb begin
    for (int w = 0; w < WPF; w++) begin
      win_hit[w] = win_end[{func, WW'(w)}] != 64'd0 && addr >= win_base[{func, WW'(w)}]
                   && d_end <= {1'b0, win_end[{func, WW'(w)}]};
    end
  end
  assign in_window = |win_hit;

  always_comb begin
    verdict = fv_vq_pkg::V_FAIL;
    cause = '0;
    info = {16'd0, idx};
    if (walked >= table_limit) begin
      cause = fv_regs_pkg::QUEUE_ERROR_DESC_LOOP;
    end else if (flags[F_INDIRECT]) begin
      if (!c_ind || in_ind || flags[F_NEXT] || len[3:0] != 4'd0 || len == 32'd0
          || len > 32'h8_0000 || addr[3:0] != 4'd0) begin
        cause = fv_regs_pkg::QUEUE_ERROR_BAD_INDIRECT;
      end else if (!in_window) begin
        cause = fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW;
      end else begin
        verdict = fv_vq_pkg::V_INDIRECT;
      end
    end else if (len == 32'd0) begin
      cause = fv_regs_pkg::QUEUE_ERROR_ZERO_LEN;
    end else if (seen_write && !flags[F_WRITE]) begin
      cause = fv_regs_pkg::QUEUE_ERROR_BAD_DIRECTION;
    end else if (seg_full) begin
      verdict = fv_vq_pkg::V_PUNT;
    end else if (flags[F_NEXT] && next >= table_limit) begin
      cause = fv_regs_pkg::QUEUE_ERROR_BAD_INDEX;
      info = {16'd0, next};
    end else if (!in_window) begin
      cause = fv_regs_pkg::QUEUE_ERROR_DMA_WINDOW;
    end else if (chain_next > MAX_CHAIN) begin
      cause = fv_regs_pkg::QUEUE_ERROR_CHAIN_TOO_LONG;
    end else begin
      verdict = fv_vq_pkg::V_SEG;
    end
  end
  logic unused_flags;
  assign unused_flags = &{1'b0, flags};
endmodule
