// Shared by the benches of modules that take a walked chain (included inside the bench module,
// after tb_common.svh and after its `start` and `done` signals): the segment table, seg() to
// append a segment, start_chain() to hand the table over and wait_done() for the answer.
logic [MAX_SEGS-1:0][63:0] seg_addr;
logic [MAX_SEGS-1:0][31:0] seg_len;
logic [MAX_SEGS-1:0]       seg_write;
logic [$clog2(MAX_SEGS+1)-1:0] seg_count;
int nseg = 0;

task automatic seg(input longint addr, input int len, input bit w);
  seg_addr[nseg] = 64'(addr); seg_len[nseg] = 32'(len); seg_write[nseg] = w;
  nseg++;
endtask

// Start the chain built with seg() (a one-cycle `start`); the next chain starts empty.
task automatic start_chain();
  seg_count = $bits(seg_count)'(nseg);
  start = 1'b1;
  @(negedge clk);
  start = 1'b0;
  nseg = 0;
endtask

// Wait for `done`; `n` is the cycles waited. Fails the bench past `limit` cycles.
task automatic wait_done(input int limit, output int n);
  n = 0;
  while (!done) begin
    @(negedge clk);
    n++;
    check(n < limit, $sformatf("the request ends within %0d cycles", limit));
  end
endtask
