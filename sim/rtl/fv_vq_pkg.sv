// Shared by the virtqueue engine's stages (sim/rtl/fv_vq_*.sv).
package fv_vq_pkg;
  // The dispatcher's state (fv_vq_dispatch): what fv_virtq_engine is doing.
  typedef enum logic [3:0] {
    S_IDLE,
    S_AVAIL,      // the avail stage looks for a request of the picked queue
    S_WALK,       // the walk
    S_TAKE,       // the request consumes its avail entry
    S_DEV,        // ... and goes to a device-engine slot
    S_LOAD,       // a result to publish: the queue's context
    S_PUB,        // the used-ring writer publishes
    S_DECIDE,     // an interrupt decision
    S_IRQ,        // ... requests the interrupt
    S_PUNT,       // a request goes to the CPU
    S_CPL,        // a CPU completion is read
    S_FAIL        // a queue enters its error state
  } disp_state_e;

  // What the walk does with a descriptor (fv_vq_desc_check).
  typedef enum logic [1:0] {
    V_SEG,        // a segment of the request
    V_FAIL,       // the queue fails (cause, info)
    V_INDIRECT,   // enter the indirect table
    V_PUNT        // the segment table is full: the CPU serves the chain
  } desc_verdict_e;

  // How the avail stage ends (fv_vq_avail_fetch).
  typedef enum logic [1:0] {
    AVAIL_HEAD,   // the head at last_avail: walk its chain
    AVAIL_NONE,   // nothing available (avail_event published if EVENT_IDX)
    AVAIL_FAIL    // the queue fails (cause, info, fault)
  } avail_result_e;

  // What a completion read from the completion ring does (fv_vq_punt_cpl).
  typedef enum logic [1:0] {
    CPL_DROP,     // nothing (a refused read, or a queue beyond NQ)
    CPL_LOAD,     // publish it (qid, head, pos, len, no_irq; status != 0: the CPU failed it)
    CPL_FAIL      // its queue fails (cause, info)
  } cpl_result_e;

  // How a chain walk ends (fv_vq_desc_walk).
  typedef enum logic [1:0] {
    WALK_LAST,    // walked to its last descriptor
    WALK_PUNT,    // the segment table is full: the CPU serves the chain
    WALK_FAIL     // the queue fails (cause, info, fault)
  } walk_result_e;
endpackage
