// fv_flash_ctrl alone, on a small flash (16-word pages, 4 pages a slot): boot from a blank flash
// (golden), erase (commit page first, progress counted), program and read pages, SET_ACTIVE, a
// committed image in slot A that boots (its identity read from the header), an uncommitted one
// that falls back to golden, the golden slot and pages past a slot refused, REBOOT.
module tb_fv_flash_ctrl;
  `include "tb_common.svh"
  localparam int PW = 16, SLOT_PAGES = 4;
  logic cmd_valid, busy, error_set, fallback, img_valid, reboot;
  logic [3:0] cmd;
  logic [1:0] cmd_slot, active, booted;
  logic [31:0] page_addr, progress, img_version, img_build_date, img_git_hash;
  logic [PW-1:0][31:0] page_buf, page_d;
  logic [PW-1:0] page_we;
  logic fl_req_valid, fl_rsp_valid, fl_rsp_error;
  logic [2:0] fl_req_op;
  logic [1:0] fl_req_slot;
  logic [31:0] fl_req_page;
  logic [PW*32-1:0] fl_req_data, fl_rsp_data;

  fv_flash_ctrl #(.PW(PW), .SLOT_PAGES(SLOT_PAGES)) dut (.*);

  // The flash: 3 slots of SLOT_PAGES pages, the persisted active slot; answers 3 cycles later.
  logic [PW*32-1:0] flash [3][SLOT_PAGES];
  logic [1:0] persisted;
  int erases [$];
  int wait_n;
  logic [2:0] op_q;
  logic [1:0] slot_q;
  logic [31:0] page_q;
  logic [PW*32-1:0] data_q;
  always @(posedge clk) begin
    fl_rsp_valid <= 1'b0;
    fl_rsp_error <= 1'b0;
    if (fl_req_valid) begin
      op_q <= fl_req_op; slot_q <= fl_req_slot; page_q <= fl_req_page; data_q <= fl_req_data;
      wait_n <= 3;
    end else if (wait_n > 0) begin
      wait_n <= wait_n - 1;
      if (wait_n == 1) begin
        fl_rsp_valid <= 1'b1;
        fl_rsp_data <= '0;
        unique case (op_q)
          3'd0: fl_rsp_data <= flash[slot_q][page_q];
          3'd1: flash[slot_q][page_q] <= data_q;
          3'd2: begin
            flash[slot_q][page_q] <= '1;
            erases.push_back(int'(page_q));
          end
          3'd3: fl_rsp_data <= (PW*32)'(persisted);
          3'd4: persisted <= slot_q;
          default: fl_rsp_error <= 1'b1;
        endcase
      end
    end
  end

  task automatic command(input int c, input int s, input int p);
    int n = 0;
    cmd = 4'(c); cmd_slot = 2'(s); page_addr = 32'(p);
    cmd_valid = 1'b1;
    @(negedge clk);
    cmd_valid = 1'b0;
    while (busy) begin
      @(negedge clk);
      n++;
      check(n < 1000, "the command ends");
    end
  endtask

  task automatic boot();
    rst = 1'b1;
    cycles(3);
    rst = 1'b0;
    cycles(40);
    check(!busy, "booted");
  endtask

  logic [11:0][31:0] hdr;
  initial begin
    int n;
    logic err;
    {cmd_valid, cmd, cmd_slot, page_addr, page_buf, fl_rsp_valid, fl_rsp_error, fl_rsp_data} = '0;
    wait_n = 0;
    persisted = 2'd0;
    for (int s = 0; s < 3; s++) for (int p = 0; p < SLOT_PAGES; p++) flash[s][p] = '1;

    boot();
    check(booted == 0 && active == 0 && !img_valid && !fallback, "blank flash: golden");

    // Erase slot A: the commit page first, every page, progress counted.
    erases = {};
    command(fv_regs_pkg::FLASH_CMD_ERASE_SLOT, 1, 0);
    check(erases.size() == SLOT_PAGES && erases[0] == SLOT_PAGES - 1, "commit page first");
    check(progress == SLOT_PAGES, "progress counts the pages");

    // An image: header in page 0, then the commit record in the last page.
    hdr = '0;
    hdr[0] = 32'h4D49_5646; hdr[1] = 32'h0045_4741; hdr[2] = 32'h0080_0001;
    hdr[6] = 32'h0001_0203; hdr[7] = 32'd1_700_000_000; hdr[8] = 32'hdead_beef;
    hdr[11] = 32'd100;
    page_buf = '0;
    for (int i = 0; i < 12; i++) page_buf[i] = hdr[i];
    command(fv_regs_pkg::FLASH_CMD_PROGRAM_PAGE, 1, 0);
    check(flash[1][0][31:0] == hdr[0], "page 0 programmed");

    // Reading it back fills the page buffer.
    page_buf = '0;
    n = 0;
    cmd = 4'(fv_regs_pkg::FLASH_CMD_READ_PAGE); cmd_slot = 2'd1; page_addr = 32'd0;
    cmd_valid = 1'b1;
    @(negedge clk);
    cmd_valid = 1'b0;
    while (page_we == '0) begin
      @(negedge clk);
      n++;
      check(n < 100, "the read lands in the page buffer");
    end
    check(page_we == '1 && page_d[0] == hdr[0] && page_d[11] == hdr[11], "READ_PAGE");
    cycles(3);

    // SET_ACTIVE A without a commit record: the boot falls back to golden.
    command(fv_regs_pkg::FLASH_CMD_SET_ACTIVE, 1, 0);
    check(active == 1 && persisted == 1, "A is active (persisted)");
    boot();
    check(booted == 0 && fallback && !img_valid && active == 1,
          "an uncommitted image falls back to golden");

    // The commit record: the image boots, its identity from the header.
    page_buf = '0;
    page_buf[0] = 32'h4F43_5646; page_buf[1] = 32'h5449_4D4D; page_buf[2] = 32'd100 + 32'd32;
    for (int i = 0; i < 12; i++) page_buf[3 + i] = hdr[i];
    command(fv_regs_pkg::FLASH_CMD_PROGRAM_PAGE, 1, SLOT_PAGES - 1);
    boot();
    check(booted == 1 && !fallback && img_valid, "the committed image in A boots");
    check(img_version == hdr[6] && img_build_date == hdr[7] && img_git_hash == hdr[8],
          "its identity comes from the header");

    // Golden is read-only; pages past the slot do not exist; a command while busy is refused.
    command(fv_regs_pkg::FLASH_CMD_PROGRAM_PAGE, 0, 0);
    check(flash[0][0] == '1, "golden is not programmed");
    err = 1'b0;
    cmd = 4'(fv_regs_pkg::FLASH_CMD_ERASE_SLOT); cmd_slot = 2'd0;
    cmd_valid = 1'b1;
    #1;
    @(negedge clk);
    cmd_valid = 1'b0;
    command(fv_regs_pkg::FLASH_CMD_PROGRAM_PAGE, 2, SLOT_PAGES);
    check(flash[2][SLOT_PAGES - 1] == '1, "a page past the slot is refused");
    // REBOOT pulses the device reset.
    cmd = 4'(fv_regs_pkg::FLASH_CMD_REBOOT);
    cmd_valid = 1'b1;
    @(negedge clk);
    cmd_valid = 1'b0;
    check(reboot, "REBOOT pulses the reset");
    pass();
  end

  // Refusals raise error_set (counted over the whole run).
  int errors_seen = 0;
  always @(posedge clk) if (error_set) errors_seen++;
  final check(errors_seen >= 3, $sformatf("refusals reported (%0d)", errors_seen));
endmodule
