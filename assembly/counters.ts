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
  err_virtio_stale_completion, // a request finished after a reset or a broken queue: dropped, not written

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

  // ---- rdma (assembly/rdma/: RoCEv2 wire layer, receive path, sequence checks) ----
  rdma_rx_frames,
  rdma_rx_accepted,
  rdma_tx_frames,
  rdma_rx_duplicate,
  rdma_rxlog_overrun,
  err_rdma_rx_ring_corrupt,
  err_rdma_runt,
  err_rdma_oversized,
  err_rdma_bad_ethertype,
  err_rdma_bad_ip_version,
  err_rdma_bad_ihl,
  err_rdma_bad_ip_checksum,
  err_rdma_bad_ip_length,
  err_rdma_ip_fragment,
  err_rdma_not_udp,
  err_rdma_bad_udp_port,
  err_rdma_bad_udp_length,
  err_rdma_bad_icrc,
  err_rdma_bad_tver,
  err_rdma_unknown_opcode,
  err_rdma_bad_pad,
  err_rdma_bad_length,
  err_rdma_psn_out_of_seq,
  err_rdma_opcode_seq,
  err_rdma_bad_qp,
  err_rdma_wrong_transport,
  err_rdma_tx_ring_full,
  err_rdma_tx_bad_desc,
  rdma_qp_transitions,
  err_rdma_bad_qkey,

  // ---- rdma CM (assembly/rdma/cm.ts: connection setup over QP1) ----
  cm_transitions,
  cm_mads_sent,
  cm_mads_received,
  cm_retransmits,
  cm_give_ups,
  cm_rejects_sent,
  cm_rejects_received,
  cm_duplicates,
  err_cm_bad_transition,
  err_cm_short_mad,
  err_cm_bad_mad,
  err_cm_unknown_attr,
  err_cm_unknown_conn,
  err_cm_no_resources,
  err_cm_bad_private_data,
  err_cm_tx_failed,
  err_cm_qp_setup,

  // ---- rdma RC transport (rdma/mr.ts, resp.ts, req.ts) ----
  rdma_rc_acks_sent,
  rdma_rc_naks_sent,
  rdma_rc_rnr_naks_sent,
  rdma_rc_read_responses,
  rdma_rc_dup_reads,
  rdma_rc_timeouts,
  rdma_rc_resends,
  rdma_rc_rnr_waits,
  rdma_rc_completions,
  err_rdma_rnr,
  err_rdma_bad_rkey,
  err_rdma_mr_bounds,
  err_rdma_mr_access,
  err_rdma_recv_overflow,
  err_rdma_write_length,
  err_rdma_mr_bad,
  err_rdma_bad_wqe,
  err_rdma_sq_full,
  err_rdma_cq_overflow,
  err_rdma_retry_exceeded,
  err_rdma_rnr_retry_exceeded,
  err_rdma_remote_nak,
  err_rdma_read_resp_seq,

  // ---- NVMe-oF host in the DPU (assembly/nvmeof/) ----
  nvmf_capsules_sent,
  nvmf_responses,
  nvmf_incapsule_writes,
  nvmf_bounced,
  err_nvmf_queue_down,
  err_nvmf_queue_full,
  err_nvmf_bad_response,
  err_nvmf_stale_response,
  err_nvmf_status,
  err_nvmf_send_failed,
  err_nvmf_too_many_segs,
  nvmf_waited, // a request found every capsule slot of its queue busy and waited for one (FIFO)
  err_nvmf_bad_length, // a request the capsules cannot carry: 0 blocks, or more commands (MDTS parts) than its queue's depth
  nvmf_queue_lost, // a holding queue lost its connection (QP in ERR, flushed work, DREQ) and went RECONNECTING
  nvmf_held, // a request in flight on a lost connection, taken back to be resubmitted
  nvmf_resubmitted, // a held request issued again once its queue was LIVE on a new connection

  // ---- storage-side NIC (assembly/nic/) ----
  nic_wqes_fetched,
  nic_packets_sent,
  nic_fast_path_sends,
  nic_commands,
  nic_events,
  nic_dif_checked,
  err_nic_dif_guard,
  err_nic_dif_reftag,
  err_nic_bad_wqe,
  err_nic_wqe_qp,
  err_nic_wqe_bounds,
  err_nic_cmd_ring_full,
  err_nic_evt_ring_full,
  err_nic_unbound_qp,
  err_nic_short_capsule,
  err_nic_bad_index, // a controller moved a ring index past what the NIC produced (ignored)
  err_nic_dif_table_full, // more DIF failures waiting for their RESPONSE than CB_DIF_TABLE holds: evented at once
  nic_conn_takeovers, // a controller was lost and a standby took its QPs over
  nic_conn_failbacks, // a QP went back to its home controller (its link returned)
  nic_conn_redelivered, // in-flight commands handed to the standby
  nic_conn_skipped, // data WQEs of a re-delivered command whose packet the lost controller had already sent
  nic_conn_wqes_discarded, // WQEs left unfetched in a lost controller's send queue
  nic_conn_error_responses, // commands the connector answered itself (no live controller)
  nic_conn_stale_completion, // a lost controller's READ completed after its command moved on
  nic_heartbeat_lost, // a controller's heartbeat word stopped changing
  err_nic_conn_untracked, // a WQE naming no in-flight command its controller owns: refused
  err_nic_conn_stage, // a connector or controller-link transition the state machine does not allow: refused

  COUNT,
}
