// fv_net_toeplitz alone: Microsoft's RSS verification vectors (IPv4 and IPv6, with and without
// ports, under its key), the same ones driver/src/net/rss.rs checks; bytes past `nbytes` do
// not count; one cycle of latency.
module tb_fv_net_toeplitz;
  `include "tb_common.svh"
  logic [319:0] key;
  logic valid, hash_valid;
  logic [287:0] data;
  logic [5:0] nbytes;
  logic [31:0] hash;
  fv_net_toeplitz dut (.*);

  byte unsigned k [40] = '{8'h6d, 8'h5a, 8'h56, 8'hda, 8'h25, 8'h5b, 8'h0e, 8'hc2, 8'h41, 8'h67,
                           8'h25, 8'h3d, 8'h43, 8'ha3, 8'h8f, 8'hb0, 8'hd0, 8'hca, 8'h2b, 8'hcb,
                           8'hae, 8'h7b, 8'h30, 8'hb4, 8'h77, 8'hcb, 8'h2d, 8'ha3, 8'h80, 8'h30,
                           8'hf2, 8'h0c, 8'h6a, 8'h42, 8'hb7, 8'h3b, 8'hbe, 8'hac, 8'h01, 8'hfa};

  // Hash `n` bytes of `in` (byte 0 first).
  task automatic run(input byte unsigned in [36], input int n, output logic [31:0] h);
    data = '1;  // bytes past n must not count
    for (int i = 0; i < n; i++) data[8*i +: 8] = in[i];
    nbytes = 6'(n);
    valid = 1'b1;
    @(negedge clk);
    valid = 1'b0;
    check(hash_valid, "the hash a cycle later");
    h = hash;
  endtask

  task automatic v4(input byte unsigned s0, s1, s2, s3, input int sp,
                    input byte unsigned d0, d1, d2, d3, input int dp,
                    input logic [31:0] ip, input logic [31:0] tcp);
    byte unsigned in [36];
    logic [31:0] h;
    in = '{default: 0};
    in[0:7] = '{s0, s1, s2, s3, d0, d1, d2, d3};
    in[8] = 8'(sp >> 8); in[9] = 8'(sp); in[10] = 8'(dp >> 8); in[11] = 8'(dp);
    run(in, 8, h);
    check(h == ip, $sformatf("IPv4 %0d.%0d.%0d.%0d: %h, want %h", s0, s1, s2, s3, h, ip));
    run(in, 12, h);
    check(h == tcp, $sformatf("IPv4 with ports %0d.%0d.%0d.%0d: %h, want %h", s0, s1, s2, s3, h, tcp));
  endtask

  task automatic v6(input logic [127:0] s, input int sp, input logic [127:0] d, input int dp,
                    input logic [31:0] ip, input logic [31:0] tcp);
    byte unsigned in [36];
    logic [31:0] h;
    for (int i = 0; i < 16; i++) begin
      in[i] = s[127 - 8*i -: 8];
      in[16 + i] = d[127 - 8*i -: 8];
    end
    in[32] = 8'(sp >> 8); in[33] = 8'(sp); in[34] = 8'(dp >> 8); in[35] = 8'(dp);
    run(in, 32, h);
    check(h == ip, $sformatf("IPv6: %h, want %h", h, ip));
    run(in, 36, h);
    check(h == tcp, $sformatf("IPv6 with ports: %h, want %h", h, tcp));
  endtask

  initial begin
    for (int i = 0; i < 40; i++) key[8*i +: 8] = k[i];
    {valid, data, nbytes} = '0;
    reset_dut();
    v4(66, 9, 149, 187, 2794, 161, 142, 100, 80, 1766, 32'h323e8fc2, 32'h51ccc178);
    v4(199, 92, 111, 2, 14230, 65, 69, 140, 83, 4739, 32'hd718262a, 32'hc626b0ea);
    v4(24, 19, 198, 95, 12898, 12, 22, 207, 184, 38024, 32'hd2d0a5de, 32'h5c2b394a);
    v4(38, 27, 205, 30, 48228, 209, 142, 163, 6, 2217, 32'h82989176, 32'hafc7327f);
    v4(153, 39, 163, 191, 44251, 202, 188, 127, 2, 1303, 32'h5d1809c5, 32'h10e828a2);
    v6(128'h3ffe_2501_0200_1fff_0000_0000_0000_0007, 2794,
       128'h3ffe_2501_0200_0003_0000_0000_0000_0001, 1766, 32'h2cc18cd5, 32'h40207d3d);
    v6(128'h3ffe_0501_0008_0000_0260_97ff_fe40_efab, 14230,
       128'hff02_0000_0000_0000_0000_0000_0000_0001, 4739, 32'h0f0c461c, 32'hdde51bbf);
    v6(128'h3ffe_1900_4545_0003_0200_f8ff_fe21_67cf, 44251,
       128'hfe80_0000_0000_0000_0200_f8ff_fe21_67cf, 38024, 32'h4b61e985, 32'h02d1feef);
    pass();
  end
endmodule
