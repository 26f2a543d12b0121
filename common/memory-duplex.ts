/**
 * Two connected in-memory duplex streams: what is written to one is read from the other, like
 * the two ends of a loopback socket without the kernel in between. The coordinator uses a pair to
 * talk MQTT to its own embedded broker (coordinator/broker.ts): the same MQTT packets, parsers
 * and auth hooks as over TCP, minus two system calls and a loopback trip per message.
 *
 * Socket-like semantics the MQTT libraries rely on: ending one side ends the other (no half-open
 * connections), destroying one side closes the other, and a writer waits while the reader's
 * buffer is full (backpressure), so a stalled reader cannot grow memory without bound.
 */
import { Duplex } from "node:stream";

export function memoryDuplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (peerIndex: number): Duplex => {
    // The write callback held back while the peer's read buffer is full.
    let blocked: (() => void) | undefined;
    const side: Duplex & { release?: () => void } = new Duplex({
      allowHalfOpen: false,
      read() {
        // Our reader drained: the peer's held write may go on.
        const peer = ends[peerIndex] as Duplex & { release?: () => void };
        peer.release?.();
      },
      write(chunk: Buffer, _enc, cb) {
        const peer = ends[peerIndex]!;
        if (peer.destroyed) return cb(new Error("the other end of the in-memory stream is closed"));
        if (peer.push(chunk)) cb();
        else blocked = () => cb();
      },
      final(cb) {
        const peer = ends[peerIndex]!;
        if (!peer.destroyed) peer.push(null);
        cb();
      },
      destroy(err, cb) {
        const peer = ends[peerIndex]!;
        blocked = undefined; // a write held back on a closed stream is dropped, as on a socket
        if (!peer.destroyed) peer.destroy();
        cb(err);
      },
    });
    side.release = () => {
      const held = blocked;
      blocked = undefined;
      held?.();
    };
    return side;
  };
  ends.push(make(1), make(0));
  return [ends[0]!, ends[1]!];
}
