// Firmware counters: one u64 each at COUNTERS_BASE + 8 * Counter.x (memmap.ts).
// Compiled by asc and by tsc: the host reads names through the enum's reverse map,
// so a counter has one name in firmware, host, CLI JSON and docs.
// Names starting with `err_` are errors and drops, counted by reason (DESIGN rule 4).
// Append inside your section; the numbering is derived, nothing stores it.

export enum Counter {
  // ---- core ----
  polls,
  doorbells_serviced,
  requests_completed,
  bytes_read,
  bytes_written,
  irq_raised,
  irq_coalesced,
  irq_suppressed,
  hostio_posted,
  hostio_completed,
  err_no_request_slot,
  err_hostio_ring_full,
  err_lba_out_of_range,
  err_backend_io,
  err_bad_config,

  // ---- virtio ----
  virtio_requests,
  virtio_desc_synced,
  err_virtio_ring_out_of_window,
  err_virtio_bad_avail_idx,
  err_virtio_bad_desc_index,
  err_virtio_desc_loop,
  err_virtio_chain_too_long,
  err_virtio_desc_out_of_window,
  err_virtio_desc_zero_len,
  err_virtio_desc_oversized,
  err_virtio_indirect_bad,
  err_virtio_bad_header,
  err_virtio_bad_status_desc,
  err_virtio_bad_data_dir,
  err_virtio_unsupported_type,
  err_virtio_packed_bad_id,
  err_virtio_misaligned,
  err_virtio_bad_discard,
  virtio_used,

  // ---- nvme ----
  nvme_admin_commands,
  nvme_io_commands,
  err_nvme_queue_out_of_window,
  err_nvme_bad_sq_tail,
  err_nvme_bad_cq_head,
  err_nvme_invalid_opcode,
  err_nvme_invalid_field,
  err_nvme_invalid_namespace,
  err_nvme_invalid_qid,
  err_nvme_prp_offset,
  err_nvme_prp_out_of_window,
  err_nvme_prp_list_bad,
  err_nvme_transfer_too_large,
  err_nvme_cq_full,
  err_nvme_sgl_unsupported,
  err_nvme_fused_unsupported,
  err_nvme_controller_fatal,
  nvme_sqes_fetched,
  nvme_cqes_posted,
  err_nvme_cq_head_ahead,
  err_nvme_cq_invalid,
  err_nvme_invalid_queue_size,
  err_nvme_invalid_vector,
  err_nvme_queue_busy,
  err_nvme_stale_completion,
  err_nvme_lba_out_of_range,

  // ---- trace (assembly/trace.ts) ----
  trace_lost,

  COUNT,
}
