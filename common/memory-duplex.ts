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
  // held[i]: the write callback of end i, held back while the other end's read buffer is full.
  const held: ((() => void) | undefined)[] = [undefined, undefined];
  const release = (i: number) => {
    const cb = held[i];
    held[i] = undefined;
    cb?.();
  };
  const make = (self: number): Duplex => {
    const peer = 1 - self;
    return new Duplex({
      allowHalfOpen: false,
      // Our reader wants more: the peer's held write may go on.
      read: () => release(peer),
      write(chunk: Buffer, _enc, cb) {
        if (ends[peer]!.push(chunk)) cb();
        else held[self] = () => cb();
      },
      final(cb) {
        if (!ends[peer]!.destroyed) ends[peer]!.push(null);
        cb();
      },
      destroy(err, cb) {
        held[self] = undefined; // a write held back on a closed stream is dropped, as on a socket
        if (!ends[peer]!.destroyed) ends[peer]!.destroy();
        cb(err);
      },
    });
  };
  ends.push(make(0), make(1));
  return [ends[0]!, ends[1]!];
}
