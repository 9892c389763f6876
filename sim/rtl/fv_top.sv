// fpga-virtio device top: the user logic behind a PCIe bridge.
//
// Cut where a PCIe bridge hands off to user logic:
//   - MMIO slave: one 32-bit register access per cycle to BAR0 (management), BAR2 (doorbells) or
//     BAR4 (MSI-X); read data returns MMIO_RVALID one cycle later (RSP order = request order).
//   - DMA master with tags: reads return DW-bit beats (byte 0 of beat 0 is the byte at the
//     address; RC_LAST ends a read), writes carry one beat of up to DW/8 bytes and are
//     acknowledged with WC; an error flag means the IOMMU refused the access.
//   - Interrupts leave as MSI-X message writes on the DMA write port, behind the writes they signal.
//   - Storage port (blk engines): reads return DW-bit beats (byte 0 of beat 0 = the byte at the
//     store address) and wait on ST_RC_READY; writes carry one beat, are always accepted and are
//     acknowledged with ST_WC. Tags are {slot, the engine's request tag}; answers come in due
//     order. In hardware it faces remote storage; in the simulator, a Rust block store with a
//     latency model.
//   - Packet port (net engines, towards the uplink): at most one operation per cycle on
//     PK_VALID, always taken; a write puts PK_LEN (<= DW/8) bytes of PK_DATA at offset PK_OFF of
//     the frame buffer PK_TAG names (one per slot), a send (PK_SEND) transmits that buffer's
//     first PK_LEN bytes as a frame of function PK_FUNC. In the simulator: the Rust wire model.
module fv_top #(
  parameter int DW = 128,                         // DMA datapath width: 64, 128, 256 or 512
  parameter int MAX_SEGS = 16,                    // descriptors per chain the engines accept
  parameter int NSLOT = 2,                        // device-engine slots (requests moving data at once)
  parameter logic [31:0] FPGA_ID = 32'h0362_d093, // firmware identity (fw_id block)
  parameter logic [31:0] BOARD_ID = 32'h1ee7_0001,
  parameter logic [31:0] PRODUCT_ID = 32'h4656_5254,
  parameter logic [7:0]  FW_MAJOR = 8'd0,
  parameter logic [7:0]  FW_MINOR = 8'd1,
  parameter logic [7:0]  FW_PATCH = 8'd0,
  parameter logic [31:0] BUILD_DATE = 32'd0,
  parameter logic [31:0] GIT_HASH = 32'd0
) (
  input  logic clk,
  input  logic rst,

  input  logic          mmio_valid,
  input  logic          mmio_write,
  input  logic [2:0]    mmio_bar,
  input  logic [15:0]   mmio_addr,
  input  logic [31:0]   mmio_wdata,
  output logic          mmio_rvalid,
  output logic [31:0]   mmio_rdata,

  output logic          dma_rd_valid,
  input  logic          dma_rd_ready,
  output logic [63:0]   dma_rd_addr,
  output logic [15:0]   dma_rd_len,
  output logic [4:0]    dma_rd_tag,
  input  logic          dma_rc_valid,
  input  logic [4:0]    dma_rc_tag,
  input  logic [DW-1:0] dma_rc_data,
  input  logic          dma_rc_last,
  input  logic          dma_rc_error,

  output logic          dma_wr_valid,
  input  logic          dma_wr_ready,
  output logic [63:0]   dma_wr_addr,
  output logic [15:0]   dma_wr_len,
  output logic [DW-1:0] dma_wr_data,
  output logic [4:0]    dma_wr_tag,
  input  logic          dma_wc_valid,
  input  logic [4:0]    dma_wc_tag,
  input  logic          dma_wc_error,

  output logic          st_rd_valid,
  input  logic          st_rd_ready,
  output logic [63:0]   st_rd_addr,
  output logic [15:0]   st_rd_len,
  output logic [7:0]    st_rd_tag,
  input  logic          st_rc_valid,
  input  logic [7:0]    st_rc_tag,
  output logic          st_rc_ready,
  input  logic [DW-1:0] st_rc_data,
  input  logic          st_rc_last,
  input  logic          st_rc_error,
  output logic          st_wr_valid,
  output logic [63:0]   st_wr_addr,
  output logic [15:0]   st_wr_len,
  output logic [DW-1:0] st_wr_data,
  output logic [7:0]    st_wr_tag,
  input  logic          st_wc_valid,
  input  logic [7:0]    st_wc_tag,
  input  logic          st_wc_error,

  // Flash port: one page request at a time (ops: 0 read, 1 program, 2 erase page, 3 get active
  // slot, 4 set active slot), answered with rsp_valid (read data, or the active slot in word 0).
  output logic                                       fl_req_valid,
  output logic [2:0]                                 fl_req_op,
  output logic [1:0]                                 fl_req_slot,
  output logic [31:0]                                fl_req_page,
  output logic [fv_regs_pkg::FLASH_PAGE_WORDS*32-1:0] fl_req_data,
  input  logic                                       fl_rsp_valid,
  input  logic                                       fl_rsp_error,
  input  logic [fv_regs_pkg::FLASH_PAGE_WORDS*32-1:0] fl_rsp_data,

  output logic          pk_valid,
  output logic          pk_send,
  output logic [15:0]   pk_off,
  output logic [15:0]   pk_len,
  output logic [DW-1:0] pk_data,
  output logic [7:0]    pk_func,
  output logic [7:0]    pk_tag
);
  localparam int NQ = fv_regs_pkg::NUM_QUEUES;
  localparam int NV = fv_regs_pkg::NUM_MSIX;
  localparam int QW = $clog2(NQ);

  // Soft reset (GLOBAL.CTRL.reset) resets everything but the bus.
  logic soft_rst, srst;
  assign srst = rst || soft_rst;

  // ---------------------------------------------------------------------------------------------
  // Register blocks on the MMIO bus, generated from hw/regmap.toml (ci/regen): their field
  // signals (connected to the blocks by name), address decode, instances and read mux.
`include "fv_csr_bus.svh"

  // ---------------------------------------------------------------------------------------------
  // Identity, global status, cycle counter.
  assign fw_id_fpga_id_id_i = FPGA_ID;
  assign fw_id_board_id_id_i = BOARD_ID;
  assign fw_id_product_id_i = PRODUCT_ID;
  // The running image's identity: from the booted flash slot's header, or the parameters when the
  // booted slot holds no image (a blank golden slot in the simulator).
  logic        img_valid, flash_reboot, flash_fallback;
  logic [31:0] img_version, img_build_date, img_git_hash;
  logic [1:0]  flash_booted;
  assign fw_id_fw_version_major_i = img_valid ? img_version[31:16] : {8'd0, FW_MAJOR};
  assign fw_id_fw_version_minor_i = img_valid ? img_version[15:8] : FW_MINOR;
  assign fw_id_fw_version_patch_i = img_valid ? img_version[7:0] : FW_PATCH;
  assign fw_id_build_date_seconds_i = img_valid ? img_build_date : BUILD_DATE;
  assign fw_id_git_hash_hash_i = img_valid ? img_git_hash : GIT_HASH;
  assign fw_id_boot_slot_i = flash_booted;
  assign fw_id_boot_fallback_i = flash_fallback;
  assign flash_slots_booted_i = flash_booted;

  fv_flash_ctrl #(.PW(fv_regs_pkg::FLASH_PAGE_WORDS), .SLOT_PAGES(fv_regs_pkg::FLASH_SLOT_PAGES))
  u_flash_ctrl (
    .clk, .rst(srst),
    .cmd_valid(flash_ctrl_cmd_pulse), .cmd(flash_ctrl_cmd), .cmd_slot(flash_ctrl_slot),
    .page_addr(flash_addr_page), .page_buf(flash_page_data_value),
    .page_we(flash_page_data_value_we), .page_d(flash_page_data_value_d),
    .busy(flash_status_busy_i), .error_set(flash_status_error_set),
    .progress(flash_progress_pages_i), .active(flash_slots_active_i), .booted(flash_booted),
    .fallback(flash_fallback), .img_valid, .img_version, .img_build_date, .img_git_hash,
    .reboot(flash_reboot),
    .fl_req_valid, .fl_req_op, .fl_req_slot, .fl_req_page, .fl_req_data,
    .fl_rsp_valid, .fl_rsp_error, .fl_rsp_data
  );

  logic [63:0] cycle;
  logic [31:0] cycle_hi_latched;
  always_ff @(posedge clk) begin
    if (rst) begin
      cycle <= '0;
      cycle_hi_latched <= '0;
      soft_rst <= 1'b0;
    end else begin
      cycle <= cycle + 64'd1;
      soft_rst <= global_ctrl_reset_pulse || flash_reboot;
      // Reading CYCLE_LO latches CYCLE_HI, so LO then HI is one consistent 64-bit value.
      if (sel_global && !mmio_write
          && mmio_addr[7:2] == 6'(fv_regs_pkg::GLOBAL_CYCLE_LO_OFFSET / 4)) begin
        cycle_hi_latched <= cycle[63:32];
      end
    end
  end
  assign global_cycle_lo_count_i = cycle[31:0];
  assign global_cycle_hi_count_i = cycle_hi_latched;
  assign global_status_ready_i = !srst;
  assign global_status_reset_busy_i = soft_rst;
  assign global_caps_dma_bytes_log2_i = 8'($clog2(DW / 8));

  // ---------------------------------------------------------------------------------------------
  // Engines.
  // DMA masters. Reads: 0 the virtqueue engine, 1 + k slot k, 1 + NSLOT + d the virtqueue
  // engine's interrupt decision d, 1 + NSLOT + NDEC + e its descriptor prefetch e, then its
  // avail-ring read-ahead. Writes: 0 the
  // virtqueue engine, 1 MSI-X, 2 the punt writer, 3 + k slot k.
  localparam int NPF = 4;
  localparam int NDEC = NSLOT > 8 ? 8 : 4;   // more slots publish faster
  localparam int PF0 = 1 + NSLOT + NDEC;     // the first prefetch master
  localparam int RA = PF0 + NPF;             // the avail-ring read-ahead master
  localparam int NR = RA + 1;
  localparam int NW = 3 + NSLOT;
  logic [NR-1:0]         m_rd_valid, m_rd_ready, m_rc_valid;
  logic [NR-1:0][63:0]   m_rd_addr;
  logic [NR-1:0][15:0]   m_rd_len;
  logic [NW-1:0]         m_wr_valid, m_wr_ready, m_wc_valid;
  logic [NW-1:0][63:0]   m_wr_addr;
  logic [NW-1:0][15:0]   m_wr_len;
  logic [NW-1:0][DW-1:0] m_wr_data;

  logic [NSLOT-1:0]                      dev_start, dev_done, dev_error;
  logic [NSLOT-1:0]                      dev_timeout, slot_blocked, wd_fire;
  logic [MAX_SEGS-1:0][63:0]             seg_addr;
  logic [MAX_SEGS-1:0][31:0]             seg_len;
  logic [MAX_SEGS-1:0]                   seg_write;
  logic [$clog2(MAX_SEGS+1)-1:0]         seg_count;
  logic [NSLOT-1:0][31:0]                dev_written;
  logic [NSLOT-1:0]                      dev_punt;
  logic [NSLOT-1:0][7:0]                 dev_punt_reason;
  logic [NSLOT-1:0][63:0]                dev_punt_arg;
  logic [NSLOT-1:0][QW-1:0]              slot_queue;
  logic [NDEC-1:0][QW-1:0]               ir_queue;
  logic                                  irq_valid, irq_ready;
  logic [15:0]                           irq_vector;
  logic                                  q_irq_valid, q_irq_ready, p_irq_valid, p_irq_ready;
  logic [15:0]                           q_irq_vector, p_irq_vector;
  logic [QW-1:0]                         cur_queue;
  logic                                  ev_done, ev_error, ev_fault, ev_irq;
  logic [31:0]                           ev_bytes, ev_cycles;
  logic [NQ-1:0]                         save_we;
  logic [15:0]                           save_last_avail, save_used_idx;
  logic [NQ-1:0]                         st_error;
  logic                                  e_punt_valid, e_punt_ready;
  fv_regs_pkg::punt_entry_t              e_punt_entry;

  // The functions' DMA windows as 64-bit bounds.
  logic [fv_regs_pkg::NUM_DMA_WINDOWS-1:0][63:0] win_base, win_end;
  always_comb begin
    for (int w = 0; w < fv_regs_pkg::NUM_DMA_WINDOWS; w++) begin
      win_base[w] = {dma_window_win_base_hi_addr[w], dma_window_win_base_lo_addr[w]};
      win_end[w] = {dma_window_win_end_hi_addr[w], dma_window_win_end_lo_addr[w]};
    end
  end

  fv_virtq_engine #(.NQ(NQ), .DW(DW), .MAX_SEGS(MAX_SEGS), .NSLOT(NSLOT), .NPF(NPF), .NDEC(NDEC)) u_virtq_engine (
    .clk, .rst(srst),
    .run(global_ctrl_enable),
    .desc_lo(queue_q_desc_lo_addr), .desc_hi(queue_q_desc_hi_addr),
    .avail_lo(queue_q_avail_lo_addr), .avail_hi(queue_q_avail_hi_addr),
    .used_lo(queue_q_used_lo_addr), .used_hi(queue_q_used_hi_addr),
    .done_log_lo(queue_q_done_log_lo_addr), .done_log_hi(queue_q_done_log_hi_addr),
    .size(queue_q_size_size),
    .enable(queue_q_ctrl_enable), .owner(queue_q_ctrl_owner),
    .event_idx(queue_q_ctrl_event_idx), .indirect(queue_q_ctrl_indirect),
    .msix_vector(queue_q_msix_vector),
    .mod_max_pending(queue_q_irq_moderation_max_pending), .mod_timeout(queue_q_irq_moderation_timeout),
    .mod_fire,
    .saved_last_avail(queue_q_state_last_avail), .saved_used_idx(queue_q_state_used_idx),
    .save_we, .save_last_avail, .save_used_idx,
    .st_enabled(queue_q_status_enabled_i), .st_error,
    .st_cause(queue_q_status_cause_i), .st_inflight(queue_q_status_inflight_i),
    .st_err_info(queue_q_err_info_info_i),
    .doorbell(doorbell_db_notify_avail_idx_pulse),
    .doorbell_idx(doorbell_db_notify_avail_idx), .notify_data(queue_q_ctrl_notification_data),
    .rd_valid(m_rd_valid[0]), .rd_ready(m_rd_ready[0]), .rd_addr(m_rd_addr[0]), .rd_len(m_rd_len[0]),
    .rc_valid(m_rc_valid[0]), .rc_data(dma_rc_data), .rc_last(dma_rc_last), .rc_error(dma_rc_error),
    .ir_rd_valid(m_rd_valid[1 + NSLOT +: NDEC]), .ir_rd_ready(m_rd_ready[1 + NSLOT +: NDEC]),
    .ir_rd_addr(m_rd_addr[1 + NSLOT +: NDEC]), .ir_rd_len(m_rd_len[1 + NSLOT +: NDEC]),
    .ir_rc_valid(m_rc_valid[1 + NSLOT +: NDEC]), .ir_rc_data(dma_rc_data[15:0]),
    .ir_rc_error(dma_rc_error), .ir_queue,
    .pf_rd_valid(m_rd_valid[PF0 +: NPF]), .pf_rd_ready(m_rd_ready[PF0 +: NPF]),
    .pf_rd_addr(m_rd_addr[PF0 +: NPF]), .pf_rd_len(m_rd_len[PF0 +: NPF]),
    .pf_rc_valid(m_rc_valid[PF0 +: NPF]),
    .ra_rd_valid(m_rd_valid[RA]), .ra_rd_ready(m_rd_ready[RA]), .ra_rd_addr(m_rd_addr[RA]),
    .ra_rd_len(m_rd_len[RA]), .ra_rc_valid(m_rc_valid[RA]),
    .wr_valid(m_wr_valid[0]), .wr_ready(m_wr_ready[0]), .wr_addr(m_wr_addr[0]), .wr_len(m_wr_len[0]),
    .wr_data(m_wr_data[0]), .wc_valid(m_wc_valid[0]), .wc_error(dma_wc_error),
    .dev_start, .seg_addr, .seg_len, .seg_write, .seg_count, .dev_done, .dev_error, .dev_written,
    .dev_timeout, .slot_blocked,
    .dev_punt, .dev_punt_reason, .dev_punt_arg, .slot_queue,
    .punt_valid(e_punt_valid), .punt_ready(e_punt_ready), .punt_entry(e_punt_entry),
    .cpl_base({cpl_ring_base_hi_addr, cpl_ring_base_lo_addr}),
    .cpl_size_log2(cpl_ring_size_log2_log2), .cpl_enable(cpl_ring_ctrl_enable),
    .cpl_prod(cpl_ring_prod_idx), .cpl_cons(cpl_ring_cons_idx_i),
    .cpl_bad(cpl_ring_status_bad_entry_set), .func(queue_q_ctrl_func),
    .win_base(win_base), .win_end(win_end),
    .irq_valid(q_irq_valid), .irq_ready(q_irq_ready), .irq_vector(q_irq_vector),
    .cur_queue, .ev_done, .ev_bytes, .ev_cycles, .ev_error, .ev_fault, .ev_irq
  );
  assign queue_q_status_error_i = st_error;
  // Function reset (FLR analogue), and the queues' saved state.
  localparam int NF = fv_regs_pkg::NUM_FUNCTIONS;
  fv_func_reset #(.NQ(NQ), .NF(NF)) u_func_reset (
    .clk, .rst(srst), .reset_pulse(functions_func_ctrl_reset_pulse),
    .reset_busy(functions_func_status_reset_busy_i), .q_func(queue_q_ctrl_func),
    .q_enabled(queue_q_status_enabled_i), .enable_we(queue_q_ctrl_enable_we), .save_we,
    .save_last_avail, .save_used_idx, .state_we(queue_q_state_last_avail_we),
    .last_avail_d(queue_q_state_last_avail_d), .used_idx_d(queue_q_state_used_idx_d)
  );
  assign queue_q_ctrl_enable_d = '0;
  assign queue_q_state_used_idx_we = queue_q_state_last_avail_we;

  // Device-engine slots (fv_dev_slot): each serves one request at a time with the engine of its
  // function's device type. A slot takes the chain's segment table, function and device type at
  // dev_start and starts its engine a cycle later from those copies (the virtqueue engine walks
  // the next chain meanwhile).
  localparam int SLW = NSLOT > 1 ? $clog2(NSLOT) : 1;
  // Storage tags carry the slot in 4 bits; DMA tags (5 bits) name 1 + NSLOT + NDEC + NPF + 1
  // read masters.
  if (NSLOT < 1 || NSLOT > 16) begin : g_bad_nslot
    $error("fv_top: NSLOT must be in 1..16");
  end
  logic [2:0] cur_func;
  assign cur_func = queue_q_ctrl_func[cur_queue];

  logic [NSLOT-1:0]          sb_st_rd_valid, sb_st_rd_ready, sb_st_rc_valid, sb_st_rc_ready;
  logic [NSLOT-1:0][63:0]    sb_st_rd_addr, sb_st_wr_addr;
  logic [NSLOT-1:0][15:0]    sb_st_rd_len, sb_st_wr_len;
  logic [NSLOT-1:0][3:0]     sb_st_rd_tag, sb_st_wr_tag;
  logic [NSLOT-1:0]          sb_st_wr_valid, sb_st_wc_valid;
  logic [NSLOT-1:0][DW-1:0]  sb_st_wr_data;
  logic [3:0]                sb_st_rc_tag, sb_st_wc_tag;
  logic [NSLOT-1:0]          st_timed_out;
  logic [NSLOT-1:0]          sb_pk_valid, sb_pk_ready, sb_pk_send, sb_pk_dvalid;
  logic [NSLOT-1:0][15:0]    sb_pk_off, sb_pk_len, sb_pk_doff, sb_pk_dlen;
  logic [NSLOT-1:0][DW-1:0]  sb_pk_data, sb_pk_ddata;
  logic [NSLOT-1:0][7:0]     sb_pk_func;
  logic [NF-1:0]             net_csum;
  always_comb begin
    for (int f = 0; f < NF; f++) net_csum[f] = functions_func_features_lo_bits[f][0];
  end

  logic [NF-1:0][63:0] blk_capacity;
  always_comb begin
    for (int f = 0; f < NF; f++) begin
      blk_capacity[f] = {functions_func_blk_capacity_hi_sectors[f],
                         functions_func_blk_capacity_lo_sectors[f]};
    end
  end

  for (genvar k = 0; k < NSLOT; k++) begin : g_slot
    fv_dev_slot #(.DW(DW), .MAX_SEGS(MAX_SEGS), .NF(NF)) u_slot (
      .clk, .rst(srst),
      .start(dev_start[k]), .seg_addr, .seg_len, .seg_write, .seg_count,
      .func(cur_func), .dev_type(functions_func_device_type_kind[cur_func]),
      .blk_capacity, .blk_max_sectors(functions_func_blk_max_sectors_sectors),
      .net_mtu(functions_func_net_mtu_bytes), .net_csum, .net_turn(nt_turn[k]),
      .engine_timeout(global_engine_timeout_cycles),
      .storage_timeout(global_storage_timeout_cycles),
      .done(dev_done[k]), .error(dev_error[k]), .written(dev_written[k]),
      .punt(dev_punt[k]), .punt_reason(dev_punt_reason[k]), .punt_arg(dev_punt_arg[k]),
      .timeout(dev_timeout[k]), .blocked(slot_blocked[k]), .st_timed_out(st_timed_out[k]),
      .rd_valid(m_rd_valid[1 + k]), .rd_ready(m_rd_ready[1 + k]), .rd_addr(m_rd_addr[1 + k]),
      .rd_len(m_rd_len[1 + k]),
      .rc_valid(m_rc_valid[1 + k]), .rc_data(dma_rc_data), .rc_last(dma_rc_last),
      .rc_error(dma_rc_error),
      .wr_valid(m_wr_valid[3 + k]), .wr_ready(m_wr_ready[3 + k]), .wr_addr(m_wr_addr[3 + k]),
      .wr_len(m_wr_len[3 + k]), .wr_data(m_wr_data[3 + k]),
      .wc_valid(m_wc_valid[3 + k]), .wc_error(dma_wc_error),
      .st_rd_valid(sb_st_rd_valid[k]), .st_rd_ready(sb_st_rd_ready[k]),
      .st_rd_addr(sb_st_rd_addr[k]), .st_rd_len(sb_st_rd_len[k]), .st_rd_tag(sb_st_rd_tag[k]),
      .st_rc_valid(sb_st_rc_valid[k]), .st_rc_tag(sb_st_rc_tag), .st_rc_ready(sb_st_rc_ready[k]),
      .st_rc_data, .st_rc_last, .st_rc_error,
      .st_wr_valid(sb_st_wr_valid[k]), .st_wr_addr(sb_st_wr_addr[k]), .st_wr_len(sb_st_wr_len[k]),
      .st_wr_data(sb_st_wr_data[k]), .st_wr_tag(sb_st_wr_tag[k]),
      .st_wc_valid(sb_st_wc_valid[k]), .st_wc_tag(sb_st_wc_tag), .st_wc_error,
      .pk_dvalid(sb_pk_dvalid[k]), .pk_doff(sb_pk_doff[k]), .pk_dlen(sb_pk_dlen[k]),
      .pk_ddata(sb_pk_ddata[k]),
      .pk_valid(sb_pk_valid[k]), .pk_ready(sb_pk_ready[k]), .pk_send(sb_pk_send[k]),
      .pk_off(sb_pk_off[k]), .pk_len(sb_pk_len[k]), .pk_data(sb_pk_data[k]),
      .pk_func(sb_pk_func[k])
    );
    assign wd_fire[k] = dev_timeout[k];
  end

  fv_storage_mux #(.N(NSLOT), .DW(DW), .ETW(4), .TW(8)) u_storage_mux (
    .clk, .rst(srst),
    .e_rd_valid(sb_st_rd_valid), .e_rd_ready(sb_st_rd_ready), .e_rd_addr(sb_st_rd_addr),
    .e_rd_len(sb_st_rd_len), .e_rd_tag(sb_st_rd_tag),
    .e_rc_valid(sb_st_rc_valid), .e_rc_ready(sb_st_rc_ready),
    .e_wr_valid(sb_st_wr_valid), .e_wr_addr(sb_st_wr_addr), .e_wr_len(sb_st_wr_len),
    .e_wr_data(sb_st_wr_data), .e_wr_tag(sb_st_wr_tag),
    .e_wc_valid(sb_st_wc_valid), .e_tag(sb_st_rc_tag), .e_wc_tag(sb_st_wc_tag),
    .st_rd_valid, .st_rd_ready, .st_rd_addr, .st_rd_len, .st_rd_tag,
    .st_rc_valid, .st_rc_tag, .st_rc_ready,
    .st_wr_valid, .st_wr_addr, .st_wr_len, .st_wr_data, .st_wr_tag,
    .st_wc_valid, .st_wc_tag
  );

  // TX order: a net request sends its frame only when no older net request of its queue is
  // still in a slot.
  logic [NSLOT-1:0] nt_turn;
  fv_net_tx_order #(.NQ(NQ), .NSLOT(NSLOT)) u_net_tx_order (
    .clk, .rst(srst), .dev_start,
    .start_net(functions_func_device_type_kind[cur_func] == 8'(fv_regs_pkg::VIRTIO_DEVICE_NET)),
    .start_q(cur_queue), .dev_done, .turn(nt_turn)
  );

  fv_pkt_mux #(.N(NSLOT), .DW(DW), .TW(8)) u_pkt_mux (
    .clk, .rst(srst),
    .e_dvalid(sb_pk_dvalid), .e_doff(sb_pk_doff), .e_dlen(sb_pk_dlen), .e_ddata(sb_pk_ddata),
    .e_valid(sb_pk_valid), .e_ready(sb_pk_ready), .e_send(sb_pk_send), .e_off(sb_pk_off),
    .e_len(sb_pk_len), .e_data(sb_pk_data), .e_func(sb_pk_func),
    .pk_valid, .pk_send, .pk_off, .pk_len, .pk_data, .pk_func, .pk_tag
  );

  // Storage timeouts, all slots together.
  logic [31:0] st_timeouts;
  logic [SLW:0] st_timed_out_n;
  always_comb begin
    st_timed_out_n = '0;
    for (int k = 0; k < NSLOT; k++) st_timed_out_n = st_timed_out_n + (SLW + 1)'(st_timed_out[k]);
  end
  always_ff @(posedge clk) begin
    if (srst) st_timeouts <= '0;
    else if (|st_timed_out) st_timeouts <= st_timeouts + 32'(st_timed_out_n);
  end
  assign global_storage_timeouts_count_i = st_timeouts;

  // Watchdog timeouts, all slots together.
  logic [31:0] wd_timeouts;
  logic [SLW:0] wd_fire_n;
  always_comb begin
    wd_fire_n = '0;
    for (int k = 0; k < NSLOT; k++) wd_fire_n = wd_fire_n + (SLW + 1)'(wd_fire[k]);
  end
  always_ff @(posedge clk) begin
    if (srst) wd_timeouts <= '0;
    else if (|wd_fire) wd_timeouts <= wd_timeouts + 32'(wd_fire_n);
  end
  assign global_engine_timeouts_count_i = wd_timeouts;

  // Interrupts the runtime raises for CPU-owned queues (QUEUE.IRQ.raise) and the engine's
  // moderated interrupts when their timeout expires: pending per queue, lowest queue first.
  logic [NQ-1:0] c_irq_pending;
  logic [NQ-1:0] mod_fire;                 // deferred (moderated) interrupts of the engine
  logic          c_irq_valid, c_irq_ready;
  logic [QW-1:0] c_irq_q;
  assign c_irq_valid = |c_irq_pending;
  always_comb begin
    c_irq_q = '0;
    if (c_irq_valid) begin
      for (int q = NQ - 1; q >= 0; q--) begin
        if (c_irq_pending[q]) c_irq_q = QW'(q);
      end
    end
  end
  logic [NQ-1:0] c_irq_raise;
  assign c_irq_raise = queue_q_irq_raise_pulse | mod_fire;
  always_ff @(posedge clk) begin
    if (srst) begin
      c_irq_pending <= '0;
    end else begin
      if (c_irq_valid && c_irq_ready) c_irq_pending[c_irq_q] <= 1'b0;
      // A raise wins over the clear of the same queue (it asks for one more interrupt).
      if (|c_irq_raise) begin
        for (int q = 0; q < NQ; q++) begin
          if (c_irq_raise[q] && queue_q_msix_vector[q] != 16'(fv_regs_pkg::NO_VECTOR)) begin
            c_irq_pending[q] <= 1'b1;
          end
        end
      end
    end
  end

  // Interrupt requests: the virtqueue engine first, then the punt writer, then the CPU's.
  assign irq_valid = q_irq_valid || p_irq_valid || c_irq_valid;
  assign irq_vector = q_irq_valid ? q_irq_vector
                    : p_irq_valid ? p_irq_vector : queue_q_msix_vector[c_irq_q];
  assign q_irq_ready = irq_ready && q_irq_valid;
  assign p_irq_ready = irq_ready && !q_irq_valid && p_irq_valid;
  assign c_irq_ready = irq_ready && !q_irq_valid && !p_irq_valid && c_irq_valid;

  // Punt ring: the engine's punts and doorbell events of CPU-owned queues.
  logic        ev_punt, ev_punt_fault;
  logic [15:0] ev_punt_qid;
  logic [7:0]  ev_punt_reason;
  fv_punt_writer #(.NQ(NQ), .DW(DW)) u_punt_writer (
    .clk, .rst(srst),
    .base({punt_ring_base_hi_addr, punt_ring_base_lo_addr}),
    .size_log2(punt_ring_size_log2_log2),
    .enable(punt_ring_ctrl_enable),
    .cons(punt_ring_cons_idx),
    .msix_vector(punt_ring_msix_vector),
    .prod(punt_ring_prod_idx_i),
    .full(punt_ring_status_full_i),
    .busy(punt_ring_status_busy_i),
    .stall_cycles(punt_ring_stalls_cycles_i),
    .doorbell(doorbell_db_notify_avail_idx_pulse),
    .cpu_owned(queue_q_ctrl_owner & queue_q_ctrl_enable),
    .func(queue_q_ctrl_func),
    .punt_valid(e_punt_valid), .punt_ready(e_punt_ready), .punt_entry(e_punt_entry),
    .wr_valid(m_wr_valid[2]), .wr_ready(m_wr_ready[2]), .wr_addr(m_wr_addr[2]), .wr_len(m_wr_len[2]),
    .wr_data(m_wr_data[2]), .wc_valid(m_wc_valid[2]), .wc_error(dma_wc_error),
    .irq_valid(p_irq_valid), .irq_ready(p_irq_ready), .irq_vector(p_irq_vector),
    .ev_punt, .ev_qid(ev_punt_qid), .ev_reason(ev_punt_reason), .ev_fault(ev_punt_fault)
  );

  logic msix_sent;
  fv_msix #(.NV(NV), .DW(DW)) u_msix (
    .clk, .rst(srst),
    .irq_valid, .irq_ready, .irq_vector,
    .tbl_addr_lo(msix_table_vec_addr_lo_addr), .tbl_addr_hi(msix_table_vec_addr_hi_addr),
    .tbl_data(msix_table_vec_data_data), .tbl_mask(msix_table_vec_ctrl_mask),
    .pba(msix_pba_pba_pending_bits_i),
    .wr_valid(m_wr_valid[1]), .wr_ready(m_wr_ready[1]), .wr_addr(m_wr_addr[1]), .wr_len(m_wr_len[1]),
    .wr_data(m_wr_data[1]), .wc_valid(m_wc_valid[1]), .wc_error(dma_wc_error),
    .sent(msix_sent)
  );

  logic        fault_valid, fault_write;
  logic [63:0] fault_addr;
  logic [4:0]  fault_tag;
  fv_dma_mux #(.NR(NR), .NW(NW), .DW(DW), .TAGW(5)) u_dma_mux (
    .clk, .rst(srst),
    .m_rd_valid, .m_rd_ready, .m_rd_addr, .m_rd_len, .m_rc_valid,
    .m_wr_valid, .m_wr_ready, .m_wr_addr, .m_wr_len, .m_wr_data, .m_wc_valid,
    .dma_rd_valid, .dma_rd_ready, .dma_rd_addr, .dma_rd_len, .dma_rd_tag,
    .dma_rc_valid, .dma_rc_tag, .dma_rc_last, .dma_rc_error,
    .dma_wr_valid, .dma_wr_ready, .dma_wr_addr, .dma_wr_len, .dma_wr_data, .dma_wr_tag,
    .dma_wc_valid, .dma_wc_tag, .dma_wc_error,
    .fault_valid, .fault_addr, .fault_write, .fault_tag
  );
  // A refused descriptor prefetch or ring read-ahead (the masters from PF0 on) is speculative: not
  // reported (the walk's own read of the same memory is, if the walk gets there).
  logic fault_seen;
  assign fault_seen = fault_valid && !(!fault_write && fault_tag >= 5'(PF0));

  // DMA faults: the first one since STATUS.dma_fault was cleared is kept; all are counted.
  logic [31:0] fault_count;
  logic [63:0] first_fault_addr;
  logic [15:0] first_fault_queue;
  logic        first_fault_write;
  // The queue a faulting master served: the virtqueue engine's current one, a slot's request's,
  // the pending interrupt decision's; MSI-X messages and punt entries (write masters 1 and 2)
  // belong to no queue.
  logic [15:0] fault_queue;
  always_comb begin
    fault_queue = 16'(cur_queue);
    if (fault_write && (fault_tag == 5'd1 || fault_tag == 5'd2)) fault_queue = 16'hffff;
    if (fault_valid) begin
      for (int k = 0; k < NSLOT; k++) begin
        if (fault_tag == 5'(fault_write ? 3 + k : 1 + k)) fault_queue = 16'(slot_queue[k]);
      end
      for (int d = 0; d < NDEC; d++) begin
        if (!fault_write && fault_tag == 5'(1 + NSLOT + d)) fault_queue = 16'(ir_queue[d]);
      end
    end
  end
  always_ff @(posedge clk) begin
    if (srst) begin
      fault_count <= '0;
      first_fault_addr <= '0;
      first_fault_queue <= '0;
      first_fault_write <= 1'b0;
    end else if (fault_seen) begin
      if (fault_count != 32'hffff_ffff) fault_count <= fault_count + 32'd1;
      if (!global_status_dma_fault) begin
        first_fault_addr <= fault_addr;
        first_fault_queue <= 16'(fault_queue);
        first_fault_write <= fault_write;
      end
    end
  end
  assign global_status_dma_fault_set = fault_seen;
  assign global_dma_fault_addr_lo_addr_i = first_fault_addr[31:0];
  assign global_dma_fault_addr_hi_addr_i = first_fault_addr[63:32];
  assign global_dma_fault_info_queue_i = first_fault_queue;
  assign global_dma_fault_info_write_i = first_fault_write;
  assign global_dma_fault_count_count_i = fault_count;

  // ---------------------------------------------------------------------------------------------
  // Counters.
  logic [7:0][31:0] c_latency;
  fv_queue_counters #(.NQ(NQ)) u_queue_counters (
    .clk, .rst(srst),
    .qid(cur_queue), .ev_done, .ev_bytes, .ev_cycles, .ev_error, .ev_fault, .ev_irq,
    .ev_punt, .ev_punt_qid, .ev_punt_reason,
    .rd_q_en(counters_qstat_rd_en), .rd_q(counters_qstat_rd_idx),
    .rd_reason_en(counters_punts_rd_en), .rd_reason(counters_punts_rd_idx),
    .requests({counters_qstat_requests_hi_count_i, counters_qstat_requests_lo_count_i}),
    .bytes({counters_qstat_bytes_hi_count_i, counters_qstat_bytes_lo_count_i}),
    .errors(counters_qstat_errors_count_i), .dma_faults(counters_qstat_dma_faults_count_i),
    .irqs(counters_qstat_irqs_count_i), .latency(c_latency),
    .punts(counters_qstat_punts_count_i),
    .punts_by_reason(counters_punts_requests_count_i)
  );
  assign counters_qstat_lat0_count_i = c_latency[0];
  assign counters_qstat_lat1_count_i = c_latency[1];
  assign counters_qstat_lat2_count_i = c_latency[2];
  assign counters_qstat_lat3_count_i = c_latency[3];
  assign counters_qstat_lat4_count_i = c_latency[4];
  assign counters_qstat_lat5_count_i = c_latency[5];
  assign counters_qstat_lat6_count_i = c_latency[6];
  assign counters_qstat_lat7_count_i = c_latency[7];

  // ---------------------------------------------------------------------------------------------
  // Blocks whose engines come with later work: the flow table and the flash controller. Their
  // status reads as idle.
  assign flow_table_action_op_we = 1'b0;
  assign flow_table_action_op_d = '0;
  assign flow_table_action_target_we = 1'b0;
  assign flow_table_action_target_d = '0;
  assign flow_table_action_arg_value_we = 1'b0;
  assign flow_table_action_arg_value_d = '0;
  assign flow_table_status_busy_i = 1'b0;
  assign flow_table_status_hit_i = 1'b0;
  assign flow_table_status_full_i = 1'b0;
  assign flow_table_entries_count_i = '0;
  assign flow_table_misses_count_i = '0;

  // Function status: a function has a queue error when one of its queues has.
  always_comb begin
    functions_func_status_queue_error_i = '0;
    if (|st_error) begin
      for (int q = 0; q < NQ; q++) begin
        if (st_error[q]) functions_func_status_queue_error_i[queue_q_ctrl_func[q]] = 1'b1;
      end
    end
  end

  // Configuration read by engines that come with later work (punt and completion rings, flow
  // table, flash, function reset and features, interrupt moderation, the MAC switch), and values only software
  // reads back (scratch, the doorbell's avail-index hint, the config vector).
  logic unused_later;
  assign unused_later = &{1'b0, msix_sent, ev_punt_fault,
    cpl_ring_status_bad_entry,
    flash_ctrl_slot_pulse, flash_status_error, flow_table_key0_value,
    flow_table_key1_value, flow_table_key2_value, flow_table_key3_value,
    flow_table_action_op, flow_table_action_target, flow_table_action_arg_value,
    flow_table_cmd_op_pulse, flow_table_cmd_op,
    functions_func_ctrl_enable, functions_func_features_lo_bits,
    functions_func_features_hi_bits, global_config_msix_vector, global_scratch_value,
    functions_func_net_mac_lo_octets, functions_func_net_mac_hi_octets};
endmodule
