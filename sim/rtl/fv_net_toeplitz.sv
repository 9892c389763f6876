// Toeplitz hash (Microsoft RSS; virtio 1.2 5.1.6.4.3.1) of up to NB input bytes under an
// (NB + 4)-byte key, the function of driver/src/net/rss.rs `toeplitz` and flow/src/table.rs
// `toeplitz`: for every input bit that is set (most significant bit of byte 0 first), the hash
// takes the XOR of the 32 key bits that start at that bit's position. NB is 36 for RSS (IPv6
// addresses and ports), 44 for the flow table's key.
//
// Byte order: byte i of `key` and `data` is bits [8*i +: 8] (byte 0 first on the wire, as the
// frame's bytes). The input is the first `nbytes` bytes of `data` (IPv4: 8 or 12, IPv6: 32 or
// 36); the bytes past it count as zero.
//
// One pipeline stage: the window XOR of each input byte is registered, the XOR of the 36
// partial hashes is the output a cycle later (`hash_valid`).
module fv_net_toeplitz #(
  parameter int NB = 36
) (
  input  logic              clk,
  input  logic              rst,
  input  logic [8*NB+31:0]  key,
  input  logic              valid,
  input  logic [8*NB-1:0]   data,
  input  logic [5:0]        nbytes,
  output logic              hash_valid,
  output logic [31:0]       hash
);
  localparam int KB = NB + 4;
  localparam int KW = 8 * KB;

  // Parameter checks.
  if (NB < 1 || NB > 63) $error("fv_net_toeplitz: NB must be 1..63 (nbytes is 6 bits)");

  // The key as one big-endian bit string: kbits[KW-1] is bit 7 of key byte 0.
  logic [KW-1:0] kbits;
  always_comb begin
    for (int i = 0; i < KB; i++) kbits[KW - 1 - 8*i -: 8] = key[8*i +: 8];
  end

  // Per input byte: the XOR of the windows of its set bits.
  logic [NB-1:0][31:0] part, part_q;
  always_comb begin
    for (int b = 0; b < NB; b++) begin
      part[b] = '0;
      if (6'(b) < nbytes) begin
        for (int k = 0; k < 8; k++) begin
          // Input bit 8b + k (k = 0: the byte's most significant bit).
          if (data[8*b + 7 - k]) part[b] = part[b] ^ kbits[KW - 1 - (8*b + k) -: 32];
        end
      end
    end
  end

  logic v_q;
  always_ff @(posedge clk) begin
    if (rst) begin
      v_q <= 1'b0;
      part_q <= '0;
    end else begin
      v_q <= valid;
      if (valid) part_q <= part;
    end
  end

  always_comb begin
    hash = '0;
    for (int b = 0; b < NB; b++) hash = hash ^ part_q[b];
  end
  assign hash_valid = v_q;
endmodule
