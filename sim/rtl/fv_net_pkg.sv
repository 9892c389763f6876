// What the net datapath knows of a frame: the metadata fv_net_parse extracts from its headers,
// for the switch, RSS and the flow table. The Rust reference is driver/src/net/parse.rs
// `PacketMeta` (fields of the same names and meanings).
package fv_net_pkg;
  // A package's constants are unused in the modules that do not use it (every module is
  // linted as its own top with every package).
  /* verilator lint_off UNUSEDPARAM */
  localparam int HDR_BYTES = 128;     // the frame's first bytes the parser looks at
  /* verilator lint_on UNUSEDPARAM */

  typedef enum logic [1:0] {L3_NONE = 2'd0, L3_V4 = 2'd1, L3_V6 = 2'd2} l3_e;

  typedef struct packed {
    logic [47:0]  dst_mac;        // first byte on the wire in bits 47:40
    logic [47:0]  src_mac;
    logic         vlan_valid;     // the outer 802.1Q/802.1ad tag
    logic [11:0]  vlan_id;
    logic [15:0]  ethertype;      // after the tags
    l3_e          l3;
    logic [127:0] src_ip;         // IPv4: bits 31:0 (big-endian value)
    logic [127:0] dst_ip;
    logic [7:0]   l4_proto;
    logic         ports_valid;    // TCP or UDP, not a fragment
    logic [15:0]  sport;
    logic [15:0]  dport;
    logic [7:0]   tcp_flags;
    logic         fragment;       // IPv4 MF or offset
    logic         unwalked;       // IPv6 extension headers, a bad IPv4 IHL, or truncated headers
    logic [7:0]   l4_off;         // offset of the L4 header in the frame
    logic         vni_valid;      // VxLAN (UDP to 4789 with the I flag)
    logic [23:0]  vni;
  } net_meta_t;
endpackage
