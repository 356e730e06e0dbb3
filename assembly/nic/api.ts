// Exported entry points of the storage-side NIC (WQE fetch, command distribution, DIF).
