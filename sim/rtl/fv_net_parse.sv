// Frame parser: the metadata (fv_net_pkg::net_meta_t) of a frame from its first HDR_BYTES
// bytes and its length, the function of driver/src/net/parse.rs `parse` for what it covers:
// Ethernet, up to two 802.1Q/802.1ad tags (the outer one's VLAN id kept), IPv4 with options
// (IHL), IPv6 (the fixed header; any extension header leaves the frame `unwalked`: the CPU
// walks those), TCP, UDP (ports, TCP flags), ICMP, and VxLAN (UDP to 4789 with the I flag:
// the VNI). A frame whose headers run past its length is `unwalked`. Checksums are not checked
// here (they need every byte: the RX path's job).
//
// `hdr` byte i (the frame's byte i) is bits [8*i +: 8]. One stage: `meta` is registered,
// `meta_valid` a cycle after `valid`.
module fv_net_parse (
  input  logic                                  clk,
  input  logic                                  rst,
  input  logic                                  valid,
  input  logic [fv_net_pkg::HDR_BYTES*8-1:0]    hdr,
  input  logic [15:0]                           len,
  output logic                                  meta_valid,
  output fv_net_pkg::net_meta_t                 meta
);
  localparam int HDR_BYTES = fv_net_pkg::HDR_BYTES;
  localparam logic [15:0] ET_VLAN = 16'h8100, ET_QINQ = 16'h88a8, ET_IPV4 = 16'h0800,
                          ET_IPV6 = 16'h86dd;

  function automatic logic [7:0] at(input logic [HDR_BYTES*8-1:0] h, input logic [7:0] i);
    at = i < 8'(HDR_BYTES) ? h[{i[6:0], 3'b000} +: 8] : 8'd0;
  endfunction
  function automatic logic [15:0] at16(input logic [HDR_BYTES*8-1:0] h, input logic [7:0] i);
    at16 = {at(h, i), at(h, i + 8'd1)};
  endfunction

  fv_net_pkg::net_meta_t m;
  logic [7:0]  l3, l4, ihl, need;
  logic [15:0] et0, et1, ff;
  logic [7:0]  tci_hi, ver, vx_flags;
  always_comb begin
    m = '0;
    l3 = 8'd14;
    l4 = '0;
    ihl = '0;
    need = '0;
    ff = '0;
    vx_flags = '0;
    tci_hi = at(hdr, 8'd14);
    for (int i = 0; i < 6; i++) begin
      m.dst_mac[47 - 8*i -: 8] = at(hdr, 8'(i));
      m.src_mac[47 - 8*i -: 8] = at(hdr, 8'(6 + i));
    end
    et0 = at16(hdr, 8'd12);
    et1 = at16(hdr, 8'd16);
    m.ethertype = et0;
    if (et0 == ET_VLAN || et0 == ET_QINQ) begin
      m.vlan_valid = 1'b1;
      m.vlan_id = {tci_hi[3:0], at(hdr, 8'd15)};
      m.ethertype = et1;
      l3 = 8'd18;
      if (et1 == ET_VLAN || et1 == ET_QINQ) begin
        m.ethertype = at16(hdr, 8'd20);
        l3 = 8'd22;
      end
    end
    ver = at(hdr, l3);
    if (m.ethertype == ET_IPV4 && ver[7:4] == 4'd4) begin
      ihl = {2'b00, ver[3:0], 2'b00};
      m.l3 = fv_net_pkg::L3_V4;
      m.l4_proto = at(hdr, l3 + 8'd9);
      m.src_ip[31:0] = {at16(hdr, l3 + 8'd12), at16(hdr, l3 + 8'd14)};
      m.dst_ip[31:0] = {at16(hdr, l3 + 8'd16), at16(hdr, l3 + 8'd18)};
      ff = at16(hdr, l3 + 8'd6);
      m.fragment = (ff & 16'h3fff) != 16'd0;
      l4 = l3 + ihl;
      if (ihl < 8'd20) m.unwalked = 1'b1;
    end else if (m.ethertype == ET_IPV6 && ver[7:4] == 4'd6) begin
      m.l3 = fv_net_pkg::L3_V6;
      m.l4_proto = at(hdr, l3 + 8'd6);
      for (int i = 0; i < 16; i++) begin
        m.src_ip[127 - 8*i -: 8] = at(hdr, l3 + 8'd8 + 8'(i));
        m.dst_ip[127 - 8*i -: 8] = at(hdr, l3 + 8'd24 + 8'(i));
      end
      l4 = l3 + 8'd40;
      // Extension headers (anything but TCP, UDP, ICMPv6, no next header) are the CPU's.
      if (m.l4_proto != 8'd6 && m.l4_proto != 8'd17 && m.l4_proto != 8'd58
          && m.l4_proto != 8'd59) m.unwalked = 1'b1;
    end
    if (m.l3 != fv_net_pkg::L3_NONE) begin
      m.l4_off = l4;
      need = l4 + (m.l4_proto == 8'd6 ? 8'd20 : (m.l4_proto == 8'd17 ? 8'd8 : 8'd0));
      if ({8'd0, need} > len || {8'd0, l3} + (m.l3 == fv_net_pkg::L3_V4 ? {8'd0, ihl} : 16'd40) > len) begin
        m.unwalked = 1'b1;
      end
      if ((m.l4_proto == 8'd6 || m.l4_proto == 8'd17) && !m.fragment && !m.unwalked) begin
        m.ports_valid = 1'b1;
        m.sport = at16(hdr, l4);
        m.dport = at16(hdr, l4 + 8'd2);
        if (m.l4_proto == 8'd6) m.tcp_flags = at(hdr, l4 + 8'd13);
        vx_flags = at(hdr, l4 + 8'd8);
        if (m.l4_proto == 8'd17 && m.dport == 16'd4789 && vx_flags[3]
            && {8'd0, l4} + 16'd16 <= len) begin
          m.vni_valid = 1'b1;
          m.vni = {at(hdr, l4 + 8'd12), at(hdr, l4 + 8'd13), at(hdr, l4 + 8'd14)};
        end
      end
    end
    // A runt has only what it holds (no L3 either: its ethertype is not there).
    if (len < 16'd14) m = '0;
    if (len >= 16'd12) begin
      for (int i = 0; i < 6; i++) begin
        m.dst_mac[47 - 8*i -: 8] = at(hdr, 8'(i));
        m.src_mac[47 - 8*i -: 8] = at(hdr, 8'(6 + i));
      end
    end
  end

  // The tag's PCP/DEI and VxLAN's other flag bits are not part of the metadata.
  logic unused_bits;
  assign unused_bits = &{1'b0, tci_hi[7:4], vx_flags[7:4], vx_flags[2:0]};

  always_ff @(posedge clk) begin
    if (rst) begin
      meta_valid <= 1'b0;
      meta <= '0;
    end else begin
      meta_valid <= valid;
      if (valid) meta <= m;
    end
  end
endmodule
