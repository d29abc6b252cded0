// Socket reads and writes for the forwarding path at the lowest cost node allows: every socket
// reads into one shared buffer instead of a fresh 64 KB allocation per read, and writes go to the
// kernel directly, queueing only a private copy of whatever the kernel did not take.
//
// The rule that makes the shared buffer safe: a chunk handed to a read callback is valid only
// until that callback returns, and only its first `len` bytes are the read (the callback gets the
// buffer itself, not a view: a view would be an allocation per read). Nothing may keep a view of
// it — whatever must outlive the read (bytes held for a server, a partial frame, a write the
// kernel did not take) is copied. Reads run one at a time on the main thread, so one buffer
// serves every socket.
//
// TLS sockets never take these paths: a TLSSocket's handle reports the TCP descriptor, so a
// write(2) on it would put plaintext on the wire, and its reads are decrypted records, not what
// the kernel holds. They read through 'data' and write through the stream (isEncrypted()).

// Named, not fs.writeSync: the fs module object is in dictionary mode, so `fs.writeSync` is a
// generic property load on every write.
import { writeSync } from 'node:fs';
import net from 'node:net';

/**
 * Size of the shared read buffer: a read takes at most this much from one socket. PostgreSQL
 * flushes 8 KB at a time; a larger buffer lets one read take several of those.
 */
export const READ_BUFFER_SIZE = 64 * 1024;

/** Called with each read: chunk[0, len) is what was read, valid until the call returns. */
export type ReadCallback = (this: net.Socket, chunk: Buffer, len: number) => void;

// The shared buffer. Module state on purpose: it is scratch memory, never holds data between
// reads, and one per process is the point.
const readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);

/** True for a tls.TLSSocket (node sets `encrypted` on every one): it must use the stream paths. */
export function isEncrypted(socket: net.Socket): boolean {
  return (socket as net.Socket & { encrypted?: boolean }).encrypted === true;
}

/** The parts of node's socket internals used here (present in node 20, 24 and 26; checked at load). */
export interface StreamHandle {
  readonly fd: number;
  useUserBuffer(buf: Uint8Array): void;
}
type InternalSocket = net.Socket & { _handle: StreamHandle | null } & Record<symbol, unknown>;

/**
 * The symbols under which net.Socket keeps the `onread` option (kBuffer, kBufferCb, kBufferGen).
 * Node sets them only from the constructor option, which a socket accepted by net.Server never
 * gets; setting them on an accepted socket (and handing its handle the buffer) is exactly what
 * the constructor does. Found once by description on a probe socket; null when this node
 * version keeps them differently, and accepted sockets then read through 'data' events.
 */
const onreadSymbols = ((): { buffer: symbol; callback: symbol; generator: symbol } | null => {
  // The option is documented for net.connect() and read by the Socket constructor alike.
  const probe = new net.Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } } as net.SocketConstructorOpts);
  const syms = Object.getOwnPropertySymbols(probe);
  const find = (d: string): symbol | undefined => syms.find((s) => s.description === d);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const generator = find('kBufferGen');
  probe.destroy();
  return buffer !== undefined && callback !== undefined && generator !== undefined ? { buffer, callback, generator } : null;
})();

/**
 * The symbol under which node keeps a socket's handle: `_handle` is a getter over it (node 20.20
 * here), and that getter, one function for every socket and stream wrapper in the process, makes a
 * megamorphic load (about 190 instructions a write). Read through the symbol here, the load only
 * ever sees pgrelay's sockets. Null when this node keeps `_handle` some other way, or when a live
 * socket showed the two disagree (checked on every socket readIntoShared takes): then `_handle`.
 */
let handleSymbol: symbol | null = ((): symbol | null => {
  const probe = new net.Socket();
  const found = Object.getOwnPropertySymbols(probe).find((s) => s.description === 'kHandle') ?? null;
  probe.destroy();
  return found;
})();

/** The socket's handle, null once the socket is destroyed (node nulls it as it closes the descriptor). */
export function handleOf(socket: net.Socket): StreamHandle | null {
  const s = socket as InternalSocket;
  return handleSymbol !== null ? (s[handleSymbol] as StreamHandle | null) : s._handle;
}

/** The handle read through the symbol must be the one `_handle` returns; if not, stop using it. */
function checkHandleSymbol(s: InternalSocket): void {
  if (handleSymbol !== null && s[handleSymbol] !== s._handle) handleSymbol = null;
}

/**
 * Node calls the onread callback as a method of the socket. One wrapper per callback keeps the
 * per-socket cost at one property instead of a closure; it returns true to keep reading
 * (backpressure goes through socket.pause() as with 'data').
 */
function wrap(onRead: ReadCallback): (this: net.Socket, nread: number, buf: Buffer) => boolean {
  return function (this: net.Socket, nread: number, buf: Buffer): boolean {
    onRead.call(this, buf, nread);
    return true;
  };
}

/**
 * The `onread` option for net.connect(): the connection reads into the shared buffer. The buffer
 * itself, not a function returning it: with a function node calls it after every read and hands
 * its result back to C++, which re-reads the buffer's address each time for the same buffer.
 */
export function connectOnread(onRead: ReadCallback): net.OnReadOpts {
  return { buffer: readBuffer, callback: wrap(onRead) };
}

/**
 * Makes an accepted socket read into the shared buffer and hand each chunk to `onRead` (shared
 * by all sockets; `this` is the socket). Falls back to 'data' events — whose chunks are fresh
 * buffers, so the copy rule costs nothing extra — when node's internals are not as expected.
 * Returns whether the shared buffer is in use.
 */
export function readIntoShared(socket: net.Socket, onRead: ReadCallback): boolean {
  const s = socket as InternalSocket;
  const handle = s._handle;
  checkHandleSymbol(s);
  if (onreadSymbols === null || handle === null || typeof handle.useUserBuffer !== 'function' || isEncrypted(socket)) {
    socket.on('data', function (this: net.Socket, chunk: Buffer) {
      onRead.call(this, chunk, chunk.length);
    });
    return false;
  }
  s[onreadSymbols.buffer] = readBuffer;
  s[onreadSymbols.callback] = wrapFor(onRead);
  // No generator (see connectOnread): the handle keeps reading into the one buffer.
  s[onreadSymbols.generator] = null;
  handle.useUserBuffer(readBuffer);
  return true;
}

const wrapped = new WeakMap<ReadCallback, ReturnType<typeof wrap>>();
/** One wrapper per distinct callback (callers pass a shared static function). */
function wrapFor(onRead: ReadCallback): ReturnType<typeof wrap> {
  let w = wrapped.get(onRead);
  if (w === undefined) {
    w = wrap(onRead);
    wrapped.set(onRead, w);
  }
  return w;
}

/**
 * Writes buf[start, end) to the socket and returns false when the caller should stop reading its
 * source until the socket's 'drain' (node's usual backpressure signal).
 *
 * When nothing is queued on the socket, the bytes go straight to the kernel with write(2) on the
 * socket's descriptor: no write request, no stream bookkeeping, and — what matters for the shared
 * read buffer — nothing keeps a reference to `buf` afterwards. What the kernel does not take
 * (a full send buffer) is copied and queued through the stream, and so is everything written
 * while that queue is not empty, which keeps the byte order.
 */
export function writeView(socket: net.Socket, buf: Buffer, start: number, end: number): boolean {
  if (end <= start) return true;
  if (isEncrypted(socket)) {
    // Encrypted by the stream. Only a view of the shared read buffer needs a copy: chunks from
    // 'data' events (every TLS read) belong to nobody else.
    if (!socket.writable) return false;
    return socket.write(buf.buffer === readBuffer.buffer ? Buffer.from(buf.subarray(start, end)) : buf.subarray(start, end));
  }
  const handle = handleOf(socket);
  // The handle is null once the socket is destroyed, so the descriptor below is still ours (a
  // closed descriptor's number can be reused by the next connection).
  if (handle === null || !socket.writable) return false;
  let from = start;
  if (socket.writableLength === 0 && !socket.connecting) {
    const fd = handle.fd;
    if (fd >= 0) {
      try {
        from += writeSync(fd, buf, start, end - start);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          // EPIPE, ECONNRESET...: the same end as a failed stream write ('error', then 'close').
          socket.destroy(err as Error);
          return false;
        }
      }
      if (from === end) return true;
    }
  }
  return socket.write(Buffer.from(buf.subarray(from, end)));
}
