// Decodes the golden vectors of hw/golden/formats.toml with the generated packed structs of
// fv_regs_pkg and prints every field as `struct.field=hex`. Run by sim/tests/formats_golden.rs,
// which writes the vectors (one 32-byte slot per struct, in the order below) to +vectors=<file>
// for $readmemh and compares the output with the golden field values.
module tb_formats;
  localparam int SLOT = 32;
  localparam int SLOTS = 5;

  logic [7:0] mem [SLOTS * SLOT];

  function automatic logic [SLOT*8-1:0] slot(input int n);
    logic [SLOT*8-1:0] v;
    v = '0;
    for (int i = 0; i < SLOT; i++) v[i*8 +: 8] = mem[n * SLOT + i];
    return v;
  endfunction

  initial begin
    string path;
    logic [SLOT*8-1:0] s;
    fv_regs_pkg::punt_entry_t punt;
    fv_regs_pkg::cpl_entry_t cpl;
    fv_regs_pkg::virtq_desc_t desc;
    fv_regs_pkg::virtq_used_elem_t used;
    fv_regs_pkg::virtio_blk_outhdr_t hdr;
    if (!$value$plusargs("vectors=%s", path)) $fatal(1, "usage: +vectors=<file>");
    $readmemh(path, mem);

    s = slot(0);
    punt = s[fv_regs_pkg::PUNT_ENTRY_BYTES*8-1:0];
    $display("punt_entry.qid=%0h", punt.qid);
    $display("punt_entry.head=%0h", punt.head);
    $display("punt_entry.reason=%0h", punt.reason);
    $display("punt_entry.func=%0h", punt.func);
    $display("punt_entry.flags=%0h", punt.flags);
    $display("punt_entry.rsvd=%0h", punt.rsvd);
    $display("punt_entry.tag=%0h", punt.tag);
    $display("punt_entry.len=%0h", punt.len);
    $display("punt_entry.addr=%0h", punt.addr);
    $display("punt_entry.arg=%0h", punt.arg);

    s = slot(1);
    cpl = s[fv_regs_pkg::CPL_ENTRY_BYTES*8-1:0];
    $display("cpl_entry.qid=%0h", cpl.qid);
    $display("cpl_entry.head=%0h", cpl.head);
    $display("cpl_entry.len=%0h", cpl.len);
    $display("cpl_entry.tag=%0h", cpl.tag);
    $display("cpl_entry.flags=%0h", cpl.flags);
    $display("cpl_entry.status=%0h", cpl.status);
    $display("cpl_entry.rsvd=%0h", cpl.rsvd);

    s = slot(2);
    desc = s[fv_regs_pkg::VIRTQ_DESC_BYTES*8-1:0];
    $display("virtq_desc.addr=%0h", desc.addr);
    $display("virtq_desc.len=%0h", desc.len);
    $display("virtq_desc.flags=%0h", desc.flags);
    $display("virtq_desc.next=%0h", desc.next);

    s = slot(3);
    used = s[fv_regs_pkg::VIRTQ_USED_ELEM_BYTES*8-1:0];
    $display("virtq_used_elem.id=%0h", used.id);
    $display("virtq_used_elem.len=%0h", used.len);

    s = slot(4);
    hdr = s[fv_regs_pkg::VIRTIO_BLK_OUTHDR_BYTES*8-1:0];
    $display("virtio_blk_outhdr.req_type=%0h", hdr.req_type);
    $display("virtio_blk_outhdr.ioprio=%0h", hdr.ioprio);
    $display("virtio_blk_outhdr.sector=%0h", hdr.sector);
    $finish;
  end
endmodule
