/**
 * virtio-vsock's numbers (OASIS virtio 1.2 §5.10), checked against `<linux/virtio_vsock.h>` and
 * `<linux/vm_sockets.h>` by a test: the queues, the configuration, the packet header and its
 * types, operations and shutdown flags, and the host's well-known CID.
 *
 * @module
 */

/** §5.10.2: the receive, transmit and event queues. */
export const VSOCK_RX_QUEUE = 0;
export const VSOCK_TX_QUEUE = 1;
export const VSOCK_EVENT_QUEUE = 2;

/** §5.10.4 `struct virtio_vsock_config`: the guest's CID (le64). */
export const VsockConfig = { GUEST_CID: 0, SIZE: 8 } as const;

/** §5.10.6 `struct virtio_vsock_hdr` (packed, little-endian). */
export const VsockHeader = {
  SRC_CID: 0,
  DST_CID: 8,
  SRC_PORT: 16,
  DST_PORT: 20,
  LEN: 24,
  TYPE: 28,
  OP: 30,
  FLAGS: 32,
  BUF_ALLOC: 36,
  FWD_CNT: 40,
  SIZE: 44,
} as const;

/** §5.10.6: `type`, a stream socket (SEQPACKET is not offered). */
export const VIRTIO_VSOCK_TYPE_STREAM = 1;

/** §5.10.6: `op`. */
export const VIRTIO_VSOCK_OP_INVALID = 0;
export const VIRTIO_VSOCK_OP_REQUEST = 1;
export const VIRTIO_VSOCK_OP_RESPONSE = 2;
export const VIRTIO_VSOCK_OP_RST = 3;
export const VIRTIO_VSOCK_OP_SHUTDOWN = 4;
export const VIRTIO_VSOCK_OP_RW = 5;
export const VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6;
export const VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7;

/** §5.10.6.4: SHUTDOWN's `flags`: the sender will receive no more, send no more. */
export const VIRTIO_VSOCK_SHUTDOWN_RCV = 1;
export const VIRTIO_VSOCK_SHUTDOWN_SEND = 2;

/** `<linux/vm_sockets.h>`: the host's CID; guests have 3 and above. */
export const VMADDR_CID_HOST = 2;
/** The lowest CID a guest may have (0 to 2 are reserved: hypervisor, local, host). */
export const MIN_GUEST_CID = 3;
