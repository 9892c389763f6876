// Flash controller: a read-only golden slot and two updatable slots (A, B) on a page-programmed
// flash behind the flash port, the boot-time slot choice, and the identity of the booted image.
//
// Boot (after every reset, including the soft reset of the REBOOT command): read the persisted
// active slot; for A or B, check the image header in page 0 (magic, format 1, header length,
// length inside the slot) and the commit record in the slot's last page ("FVCOMMIT", the image
// length and a copy of the header's first 12 words). The loader writes the commit record last,
// after reading the whole image back, and ERASE_SLOT erases the commit page first, so a slot
// whose programming was interrupted never boots: the device falls back to golden and says so.
// (The check is structural: the flash port stands for the configuration logic's own CRC check of
// the bitstream, which the simulator does not model.)
//
// Commands (one at a time, STATUS.busy while running; STATUS.error on a refused or failed one):
// ERASE_SLOT (page by page, commit page first, PROGRESS counts), PROGRAM_PAGE (the page buffer),
// READ_PAGE (into the page buffer), SET_ACTIVE (persisted), REBOOT (pulse to the device reset).
module fv_flash_ctrl #(
  parameter int PW = 64,              // 32-bit words per page
  parameter int SLOT_PAGES = 4096     // pages per slot
) (
  input  logic clk,
  input  logic rst,

  input  logic                 cmd_valid,
  input  logic [3:0]           cmd,
  input  logic [1:0]           cmd_slot,
  input  logic [31:0]          page_addr,
  input  logic [PW-1:0][31:0]  page_buf,
  output logic [PW-1:0]        page_we,
  output logic [PW-1:0][31:0]  page_d,
  output logic                 busy,
  output logic                 error_set,
  output logic [31:0]          progress,
  output logic [1:0]           active,
  output logic [1:0]           booted,
  output logic                 fallback,
  output logic                 img_valid,      // the booted slot holds an image header
  output logic [31:0]          img_version,
  output logic [31:0]          img_build_date,
  output logic [31:0]          img_git_hash,
  output logic                 reboot,

  // Flash port: one request at a time, answered by rsp_valid.
  output logic                 fl_req_valid,
  output logic [2:0]           fl_req_op,
  output logic [1:0]           fl_req_slot,
  output logic [31:0]          fl_req_page,
  output logic [PW*32-1:0]     fl_req_data,
  input  logic                 fl_rsp_valid,
  input  logic                 fl_rsp_error,
  input  logic [PW*32-1:0]     fl_rsp_data
);
  if (PW < 16 || SLOT_PAGES < 2) begin : g_bad_geometry
    $error("fv_flash_ctrl: a page holds at least 16 words and a slot at least 2 pages");
  end

  localparam logic [2:0] OP_READ = 3'd0;
  localparam logic [2:0] OP_PROGRAM = 3'd1;
  localparam logic [2:0] OP_ERASE = 3'd2;
  localparam logic [2:0] OP_GET_ACTIVE = 3'd3;
  localparam logic [2:0] OP_SET_ACTIVE = 3'd4;

  localparam logic [1:0] GOLDEN = 2'(fv_regs_pkg::FLASH_SLOT_GOLDEN);
  localparam logic [31:0] LAST_PAGE = 32'(SLOT_PAGES - 1);
  // Image bytes that fit before the commit page.
  localparam logic [31:0] MAX_IMAGE = 32'((SLOT_PAGES - 1) * PW * 4);

  typedef enum logic [3:0] {
    S_BOOT_GET, S_BOOT_HDR, S_BOOT_COMMIT, S_BOOT_GOLDEN,
    S_IDLE, S_REQ, S_WAIT, S_ERASE_NEXT
  } state_e;
  state_e state, after;

  logic [2:0]          op;
  logic [1:0]          slot;
  logic [31:0]         page;
  logic [11:0][31:0]   hdr;          // the image header: page 0 of the slot being booted
  logic [31:0]         erased;

  assign fl_req_valid = state == S_REQ;
  assign fl_req_op = op;
  assign fl_req_slot = slot;
  assign fl_req_page = page;
  assign fl_req_data = page_buf;
  // Busy from the cycle the command arrives (a STATUS read right behind the CTRL write sees it)
  // until its error, if any, has reached STATUS.error.
  assign busy = state != S_IDLE || cmd_valid || error_set;

  // Header checks (docs/firmware.md): words 0-1 magic, word 2 format | header length << 16,
  // word 9 flags, word 11 body length; the image is the body, the digest and the signature.
  // The last answer, latched (the port presents it for one cycle).
  logic [PW-1:0][31:0] rsp;
  logic                rsp_err;
  logic        hdr_ok, commit_ok;
  logic [31:0] img_len;
  always_comb begin
    img_len = hdr[11] + 32'd32 + (hdr[9][0] ? 32'd64 : 32'd0);
    hdr_ok = hdr[0] == 32'h4D49_5646 && hdr[1] == 32'h0045_4741 && hdr[2] == 32'h0080_0001
             && hdr[11] < MAX_IMAGE && img_len <= MAX_IMAGE;
    commit_ok = rsp[0] == 32'h4F43_5646 && rsp[1] == 32'h5449_4D4D && rsp[2] == img_len;
    for (int i = 0; i < 12; i++) begin
      if (rsp[3 + i] != hdr[i]) commit_ok = 1'b0;
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= S_BOOT_GET;
      after <= S_BOOT_GET;
      op <= OP_GET_ACTIVE;
      slot <= GOLDEN;
      page <= '0;
      hdr <= '0;
      erased <= '0;
      active <= GOLDEN;
      booted <= GOLDEN;
      fallback <= 1'b0;
      img_valid <= 1'b0;
      img_version <= '0;
      img_build_date <= '0;
      img_git_hash <= '0;
      progress <= '0;
      error_set <= 1'b0;
      reboot <= 1'b0;
      page_we <= '0;
      page_d <= '0;
      rsp <= '0;
      rsp_err <= 1'b0;
    end else begin
      error_set <= 1'b0;
      reboot <= 1'b0;
      page_we <= '0;
      unique case (state)
        // ---- boot ----
        S_BOOT_GET: begin
          op <= OP_GET_ACTIVE;
          after <= S_BOOT_HDR;
          state <= S_REQ;
        end
        S_BOOT_HDR: begin
          // `after` of the GET_ACTIVE request: rsp holds the persisted slot.
          active <= rsp[0][1:0] == 2'd3 ? GOLDEN : rsp[0][1:0];
          if (rsp[0][1:0] == GOLDEN || rsp[0][1:0] == 2'd3) begin
            slot <= GOLDEN;
            op <= OP_READ;
            page <= '0;
            after <= S_BOOT_GOLDEN;
            state <= S_REQ;
          end else begin
            slot <= rsp[0][1:0];
            op <= OP_READ;
            page <= '0;
            after <= S_BOOT_COMMIT;
            state <= S_REQ;
          end
        end
        S_BOOT_COMMIT: begin
          if (page == '0) begin
            // Page 0 arrived: keep it, then read the commit page.
            hdr <= rsp[11:0];
            page <= LAST_PAGE;
            op <= OP_READ;
            after <= S_BOOT_COMMIT;
            state <= S_REQ;
          end else if (hdr_ok && commit_ok && !rsp_err) begin
            booted <= slot;
            fallback <= 1'b0;
            img_valid <= 1'b1;
            img_version <= hdr[6];
            img_build_date <= hdr[7];
            img_git_hash <= hdr[8];
            state <= S_IDLE;
          end else begin
            // Not a committed image: boot golden.
            fallback <= 1'b1;
            slot <= GOLDEN;
            op <= OP_READ;
            page <= '0;
            after <= S_BOOT_GOLDEN;
            state <= S_REQ;
          end
        end
        S_BOOT_GOLDEN: begin
          booted <= GOLDEN;
          hdr <= rsp[11:0];
          img_valid <= 1'b0;
          // A factory image in golden names the version; a blank golden leaves the parameters.
          if (rsp[0] == 32'h4D49_5646 && rsp[1] == 32'h0045_4741 && rsp[2] == 32'h0080_0001) begin
            img_valid <= 1'b1;
            img_version <= rsp[6];
            img_build_date <= rsp[7];
            img_git_hash <= rsp[8];
          end
          state <= S_IDLE;
        end

        // ---- commands ----
        S_IDLE: begin
          if (cmd_valid) begin
            slot <= cmd_slot;
            page <= page_addr;
            unique case (cmd)
              4'(fv_regs_pkg::FLASH_CMD_ERASE_SLOT): begin
                if (cmd_slot == GOLDEN || cmd_slot == 2'd3) begin
                  error_set <= 1'b1;
                end else begin
                  erased <= '0;
                  progress <= '0;
                  page <= LAST_PAGE;          // the commit page first
                  op <= OP_ERASE;
                  after <= S_ERASE_NEXT;
                  state <= S_REQ;
                end
              end
              4'(fv_regs_pkg::FLASH_CMD_PROGRAM_PAGE): begin
                if (cmd_slot == GOLDEN || cmd_slot == 2'd3 || page_addr > LAST_PAGE) begin
                  error_set <= 1'b1;
                end else begin
                  op <= OP_PROGRAM;
                  after <= S_IDLE;
                  state <= S_REQ;
                end
              end
              4'(fv_regs_pkg::FLASH_CMD_READ_PAGE): begin
                if (cmd_slot == 2'd3 || page_addr > LAST_PAGE) begin
                  error_set <= 1'b1;
                end else begin
                  op <= OP_READ;
                  after <= S_IDLE;
                  state <= S_REQ;
                end
              end
              4'(fv_regs_pkg::FLASH_CMD_SET_ACTIVE): begin
                if (cmd_slot == 2'd3) begin
                  error_set <= 1'b1;
                end else begin
                  op <= OP_SET_ACTIVE;
                  after <= S_IDLE;
                  state <= S_REQ;
                end
              end
              4'(fv_regs_pkg::FLASH_CMD_REBOOT): reboot <= 1'b1;
              default: error_set <= 1'b1;
            endcase
          end
        end
        S_REQ: state <= S_WAIT;
        S_WAIT: begin
          if (fl_rsp_valid) begin
            rsp <= fl_rsp_data;
            rsp_err <= fl_rsp_error;
            if (fl_rsp_error) error_set <= 1'b1;
            if (op == OP_READ && after == S_IDLE) begin
              page_we <= '1;
              page_d <= fl_rsp_data;
            end
            if (op == OP_SET_ACTIVE && !fl_rsp_error) active <= slot;
            if (after == S_ERASE_NEXT && fl_rsp_error) state <= S_IDLE;
            else state <= after;
          end
        end
        S_ERASE_NEXT: begin
          progress <= erased + 32'd1;
          erased <= erased + 32'd1;
          if (erased + 32'd1 == 32'(SLOT_PAGES)) begin
            state <= S_IDLE;
          end else begin
            page <= erased;                 // then pages 0 .. SLOT_PAGES-2
            op <= OP_ERASE;
            state <= S_REQ;
          end
        end
        default: state <= S_IDLE;
      endcase
      // A command while another runs (or while booting) is refused, not queued.
      if (cmd_valid && state != S_IDLE) error_set <= 1'b1;
    end
  end
endmodule
