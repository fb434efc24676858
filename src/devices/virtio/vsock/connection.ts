/**
 * One vsock stream connection between a guest port and a host Unix socket, as the userspace
 * device keeps it: where it is in its life, its two credit accounts (OASIS virtio 1.2
 * §5.10.6.3), and the bytes for the host that its socket could not take yet.
 *
 * Credit: each side tells the other how much it can buffer (`buf_alloc`) and how much it has
 * consumed so far (`fwd_cnt`, free-running, 32 bits); a sender may have at most
 * `buf_alloc - (tx_cnt - fwd_cnt)` bytes in flight. The guest's account bounds what we read from
 * the host socket for it; ours ({@link CONNECTION_BUFFER}) bounds what we hold for the host, so
 * a host program that stops reading stalls its guest sender instead of growing the device.
 *
 * @module
 */

/** What a connection is doing. */
export type ConnectionState =
  /** A host program connected to the device's socket; its `CONNECT <port>` line is awaited. */
  | "awaiting-connect"
  /** We sent the guest a REQUEST for the host program; its RESPONSE is awaited. */
  | "connecting"
  /** Bytes flow both ways (until each side shuts its half down). */
  | "established"
  /** Gone: its socket is closed (packets already queued for it still carry its ports). */
  | "closed";

/** Bytes we buffer for the host per connection: our `buf_alloc` (Linux's default, 256 KiB). */
export const CONNECTION_BUFFER = 256 * 1024;

/** Free-running 32-bit counters: `a - b` modulo 2^32. */
export function counterDistance(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** A vsock connection: host socket `fd`, host port `localPort`, guest port `peerPort`. */
export class VsockConnection {
  state: ConnectionState;
  /** When the handshake under way must have finished (monotonic ms); Infinity when none is. */
  deadline = Infinity;
  /** The host port, once known (a host-initiated connection gets one at its CONNECT line). */
  localPort: number;
  /** The guest's port, once known. */
  peerPort: number;
  /** The guest's `buf_alloc` and `fwd_cnt`, from its latest packet. */
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  /** Payload bytes sent to the guest (free-running). */
  txCnt = 0;
  /** Payload bytes of the guest's handed to the host socket (free-running): our `fwd_cnt`. */
  fwdCnt = 0;
  /** The `fwd_cnt` the guest last heard from us. */
  reportedFwdCnt = 0;
  /** A CREDIT_UPDATE for this connection is queued. */
  creditQueued = false;
  /** The host socket has reached end of stream (it sends no more). */
  hostEof = false;
  /** The host program has closed its socket: what it sent is read to the end, then we reset. */
  hostGone = false;
  /** The guest will send no more / receive no more (SHUTDOWN flags). */
  guestShutSend = false;
  guestShutRcv = false;
  /** The epoll events the socket is watched for now, or null when it is out of the set. */
  watching: number | null = null;
  /** A host program's CONNECT line so far. */
  line = "";
  /** Bytes for the host its socket has not taken, oldest first. */
  readonly #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  /**
   * A connection on host socket `fd`, registered in the device's epoll set with `key`.
   * @param fd the host socket (non-blocking)
   * @param key its epoll key
   * @param state where it starts
   * @param localPort the host port (0 until known)
   * @param peerPort the guest port (0 until known)
   */
  constructor(
    readonly fd: number,
    readonly key: number,
    state: ConnectionState,
    localPort = 0,
    peerPort = 0,
  ) {
    this.state = state;
    this.localPort = localPort;
    this.peerPort = peerPort;
  }

  /** How many payload bytes the guest can take now. */
  get peerCredit(): number {
    return Math.max(0, this.peerBufAlloc - counterDistance(this.txCnt, this.peerFwdCnt));
  }

  /** Bytes held for the host. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Takes in the guest's credit account from one of its packets. */
  updatePeerCredit(bufAlloc: number, fwdCnt: number): void {
    this.peerBufAlloc = bufAlloc;
    this.peerFwdCnt = fwdCnt;
  }

  /** Whether our unreported forwarding is worth a CREDIT_UPDATE (half our buffer or more). */
  get creditUpdateDue(): boolean {
    return counterDistance(this.fwdCnt, this.reportedFwdCnt) >= CONNECTION_BUFFER / 2;
  }

  /** Holds `bytes` (copied) for the host. */
  hold(bytes: Uint8Array): void {
    this.#pending.push(bytes.slice());
    this.#pendingBytes += bytes.length;
  }

  /**
   * Hands held bytes to `send` (which returns how many it took, or a negative number when the
   * host has gone) until it takes less than offered; returns false when the host has gone.
   */
  flush(send: (bytes: Uint8Array) => number): boolean {
    while (this.#pending.length > 0) {
      const head = this.#pending[0];
      const n = send(head);
      if (n < 0) return false;
      this.fwdCnt = (this.fwdCnt + n) >>> 0;
      this.#pendingBytes -= n;
      if (n < head.length) {
        this.#pending[0] = head.subarray(n);
        return true;
      }
      this.#pending.shift();
    }
    return true;
  }
}
