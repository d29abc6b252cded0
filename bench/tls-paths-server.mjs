// The server half of bench/tls-paths.ts: a TLS echo that answers each read with a 300-byte reply,
// through one of node's TLS read/write paths, and prints its own CPU time when stopped. Plain
// JavaScript, so that it runs on any node binary (PGRELAY_BENCH_NODE) without a loader.
//
// Paths: stream ('data' events and socket.write, what pgrelay uses), shared (reads into one
// user buffer through the TLS handle, as pgrelay's plaintext sockets do), direct (writes handed
// to the TLS handle without the Writable stream), both (shared + direct).

import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [path, keyFile, certFile] = process.argv.slice(2);
const reply = Buffer.alloc(300, 1);
const shared = Buffer.allocUnsafe(64 * 1024);

// The symbols under which net.Socket keeps its onread option (as src/proxy/socket-io.ts finds them).
const probe = new net.Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } });
const syms = Object.getOwnPropertySymbols(probe);
const kBuffer = syms.find((s) => s.description === 'kBuffer');
const kBufferCb = syms.find((s) => s.description === 'kBufferCb');
const kBufferGen = syms.find((s) => s.description === 'kBufferGen');
probe.destroy();

// A write request node's TLS handle accepts. TLSWrap takes one write at a time (it CHECKs that
// none is in flight), so later ones wait for the completion, which TLSWrap always delivers on
// the next turn of the event loop.
const { WriteWrap } = process.binding('stream_wrap');
function directWrite(sock, buf) {
  if (sock.inFlight) {
    (sock.waiting ??= []).push(Buffer.from(buf));
    return;
  }
  const req = new WriteWrap();
  req.handle = sock._handle;
  req.async = false;
  req.oncomplete = () => {
    sock.inFlight = false;
    const w = sock.waiting;
    if (w) {
      sock.waiting = null;
      directWrite(sock, w.length === 1 ? w[0] : Buffer.concat(w));
    }
  };
  sock.inFlight = true;
  const err = sock._handle.writeBuffer(req, buf);
  if (err !== 0) throw new Error(`writeBuffer: ${err}`);
}

const server = tls.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }, (sock) => {
  sock.on('error', () => {});
  const answer = path === 'direct' || path === 'both' ? () => directWrite(sock, reply) : () => sock.write(reply);
  if (path === 'shared' || path === 'both') {
    sock[kBuffer] = shared;
    sock[kBufferCb] = () => {
      answer();
      return true;
    };
    sock[kBufferGen] = () => shared;
    sock._handle.useUserBuffer(shared);
  } else {
    sock.on('data', answer);
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify(process.cpuUsage())}\n`);
  process.exit(0);
});
