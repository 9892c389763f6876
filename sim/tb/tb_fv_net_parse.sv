// fv_net_parse alone: TCP/IPv4 under a VLAN tag, IPv4 with options, UDP/IPv6 with VxLAN, a
// QinQ frame, an IPv4 fragment, IPv6 with an extension header, headers cut short by the frame's
// length, a runt and ARP; then every vector of sim/tb/vectors/net_parse.hex: frames of the
// seeded traffic with the metadata driver/src/net/parse.rs gives them (written by
// `cargo test -p fpga-virtio-workload --test net_parse_vectors`), which the RTL must equal.
module tb_fv_net_parse;
  `include "tb_common.svh"
  import fv_net_pkg::*;
  logic valid, meta_valid;
  logic [HDR_BYTES*8-1:0] hdr;
  logic [15:0] len;
  net_meta_t meta;
  fv_net_parse dut (.*);

  byte unsigned f [$];

  task automatic put16(input int v);
    f.push_back(8'(v >> 8));
    f.push_back(8'(v));
  endtask

  task automatic eth(input int et, input int vlan = -1, input int inner_vlan = -1);
    f = {};
    for (int i = 0; i < 6; i++) f.push_back(8'(8'h10 + i));   // dst 10:11:12:13:14:15
    for (int i = 0; i < 6; i++) f.push_back(8'(8'h20 + i));   // src 20:21:22:23:24:25
    if (vlan >= 0) begin
      put16(inner_vlan >= 0 ? 'h88a8 : 'h8100);
      put16('he000 | vlan);                                    // PCP 7: not the id
      if (inner_vlan >= 0) begin
        put16('h8100);
        put16(inner_vlan);
      end
    end
    put16(et);
  endtask

  // An IPv4 header (options: `opt` words of NOPs) for `plen` payload bytes.
  task automatic ipv4(input int proto, input int plen, input int opt = 0, input int frag = 0);
    f.push_back(8'(8'h45 + opt));
    f.push_back(8'h00);
    put16(20 + 4 * opt + plen);
    put16('h1234);
    put16(frag);
    f.push_back(8'd64);
    f.push_back(8'(proto));
    put16(0);
    f.push_back(8'd10); f.push_back(8'd0); f.push_back(8'd0); f.push_back(8'd1);
    f.push_back(8'd10); f.push_back(8'd0); f.push_back(8'd0); f.push_back(8'd2);
    for (int i = 0; i < 4 * opt; i++) f.push_back(8'h01);
  endtask

  task automatic ipv6(input int nh, input int plen);
    put16('h6000); put16(0);
    put16(plen);
    f.push_back(8'(nh));
    f.push_back(8'd64);
    for (int i = 0; i < 16; i++) f.push_back(8'(8'hf0 + (i % 16)));
    for (int i = 0; i < 16; i++) f.push_back(8'(8'h30 + i));
  endtask

  task automatic tcp(input int sp, input int dp, input int flags);
    put16(sp); put16(dp);
    put16(0); put16(1); put16(0); put16(0);
    f.push_back(8'h50); f.push_back(8'(flags));
    put16(1024); put16(0); put16(0);
  endtask

  task automatic udp(input int sp, input int dp, input int plen);
    put16(sp); put16(dp); put16(8 + plen); put16(0);
  endtask

  task automatic parse(input int n = -1);
    hdr = '0;
    for (int i = 0; i < f.size() && i < HDR_BYTES; i++) hdr[8*i +: 8] = f[i];
    len = 16'(n >= 0 ? n : f.size());
    valid = 1'b1;
    @(negedge clk);
    valid = 1'b0;
    check(meta_valid, "metadata a cycle later");
  endtask

  initial begin
    {valid, hdr, len} = '0;
    reset_dut();

    // TCP/IPv4 under VLAN 42, SYN.
    eth('h0800, 42); ipv4(6, 20); tcp(1234, 80, 'h02);
    parse();
    check(meta.dst_mac == 48'h101112131415 && meta.src_mac == 48'h202122232425, "MACs");
    check(meta.vlan_valid && meta.vlan_id == 12'd42 && meta.ethertype == 16'h0800, "the tag");
    check(meta.l3 == L3_V4 && meta.src_ip[31:0] == 32'h0a000001 && meta.dst_ip[31:0] == 32'h0a000002, "IPv4");
    check(meta.l4_proto == 8'd6 && meta.ports_valid && meta.sport == 16'd1234 && meta.dport == 16'd80, "ports");
    check(meta.tcp_flags == 8'h02 && meta.l4_off == 8'd38 && !meta.fragment && !meta.unwalked, "TCP");

    // IPv4 with two words of options, UDP.
    eth('h0800); ipv4(17, 8 + 5, 2); udp(5000, 53, 5); repeat (5) f.push_back(8'h55);
    parse();
    check(meta.l4_off == 8'd42 && meta.ports_valid && meta.dport == 16'd53 && !meta.vlan_valid, "options");

    // UDP/IPv6 to 4789 with the I flag: VxLAN VNI 0x123456.
    eth('h86dd); ipv6(17, 16); udp(5555, 4789, 8);
    f.push_back(8'h08); f.push_back(0); f.push_back(0); f.push_back(0);
    f.push_back(8'h12); f.push_back(8'h34); f.push_back(8'h56); f.push_back(0);
    parse();
    check(meta.l3 == L3_V6 && meta.src_ip[127:120] == 8'hf0 && meta.dst_ip[7:0] == 8'h3f, "IPv6");
    check(meta.l4_off == 8'd54 && meta.vni_valid && meta.vni == 24'h123456, "VxLAN");
    // The same without the I flag: no VNI.
    f[62] = 8'h00;
    parse();
    check(!meta.vni_valid, "no I flag, no VNI");

    // QinQ: the outer id, the ethertype after both tags.
    eth('h0800, 7, 9); ipv4(6, 20); tcp(1, 2, 'h10);
    parse();
    check(meta.vlan_id == 12'd7 && meta.ethertype == 16'h0800 && meta.l4_off == 8'd42 && meta.ports_valid, "QinQ");

    // An IPv4 fragment (MF): no ports.
    eth('h0800); ipv4(17, 16, 0, 'h2000); udp(1, 2, 8);
    parse();
    check(meta.fragment && !meta.ports_valid, "fragment");

    // IPv6 with a hop-by-hop header: the CPU's.
    eth('h86dd); ipv6(0, 28); repeat (28) f.push_back(0);
    parse();
    check(meta.l3 == L3_V6 && meta.unwalked && !meta.ports_valid, "extension header");

    // Headers cut short by the frame's length.
    eth('h0800); ipv4(6, 20); tcp(1, 2, 0);
    parse(40);
    check(meta.unwalked && !meta.ports_valid, "truncated TCP");

    // A runt, ARP.
    eth('h0800);
    parse(10);
    check(meta.l3 == L3_NONE && meta.ethertype == 16'd0, "runt");
    eth('h0806); repeat (28) f.push_back(0);
    parse();
    check(meta.l3 == L3_NONE && meta.ethertype == 16'h0806 && !meta.ports_valid, "ARP");

    // The Rust parser's vectors.
    begin
      logic [1507:0] vecs [1024];
      int n;
      net_meta_t want;
      for (int i = 0; i < 1024; i++) vecs[i] = 'x;
      $readmemh("sim/tb/vectors/net_parse.hex", vecs);
      n = 0;
      while (n < 1024 && !$isunknown(vecs[n])) begin
        hdr = vecs[n][1023:0];
        len = vecs[n][1506:1491];
        want = vecs[n][1490:1024];
        valid = 1'b1;
        @(negedge clk);
        valid = 1'b0;
        if (meta != want) begin
          $display("vector %0d: got  %h", n, meta);
          $display("vector %0d: want %h", n, want);
        end
        check(meta == want, $sformatf("vector %0d: the Rust parser's metadata", n));
        n++;
      end
      check(n > 200, $sformatf("%0d vectors read", n));
    end
    pass();
  end
endmodule
