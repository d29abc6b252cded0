// The ParameterStatus messages a client gets at login: what the pool's servers reported, with the
// client's own tracked values on top. Built once per distinct (server values, client values) pair
// and reused, since a workload that connects per transaction would otherwise build some fifteen
// small Buffers per connection for the same bytes.

import { parameterStatus } from '../protocol/backend-messages.js';

/** Distinct client value sets kept per server value set (application_name_add_host makes each unique). */
const MAX_BLOCKS = 64;

/** Keyed by the pool entry's loginParams map: a new map (after a reload or RECONNECT) starts afresh. */
const blocks = new WeakMap<ReadonlyMap<string, string>, Map<string, Buffer>>();

/**
 * The concatenated ParameterStatus messages. `clientParams` holds only tracked parameters, so
 * `signature` (paramsSignature of it) identifies it completely.
 */
export function loginStatusBlock(loginParams: ReadonlyMap<string, string>, clientParams: ReadonlyMap<string, string>, signature: string): Buffer {
  let perServer = blocks.get(loginParams);
  if (perServer === undefined) {
    perServer = new Map();
    blocks.set(loginParams, perServer);
  }
  let block = perServer.get(signature);
  if (block === undefined) {
    const out: Buffer[] = [];
    for (const [name, value] of loginParams) out.push(parameterStatus(name, clientParams.get(name) ?? value));
    for (const [name, value] of clientParams) if (!loginParams.has(name)) out.push(parameterStatus(name, value));
    block = Buffer.concat(out);
    if (perServer.size >= MAX_BLOCKS) perServer.clear();
    perServer.set(signature, block);
  }
  return block;
}
