// A TCP relay between pgrelay and PostgreSQL that can cut every connection at once: the server
// side of a fault, as a backend death or a network partition looks to pgrelay (the socket closes
// with no message), without making PostgreSQL restart. Loopback only.

import net from 'node:net';

export class CutProxy {
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  /** Connections cut so far. */
  cuts = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** Listens on a free loopback port and relays each connection to `target`. */
  static async start(target: { host: string; port: number }): Promise<CutProxy> {
    let proxy: CutProxy | null = null;
    const server = net.createServer((down) => {
      const up = net.connect(target.port, target.host);
      const pair: [net.Socket, net.Socket] = [down, up];
      proxy!.pairs.add(pair);
      const drop = (): void => {
        proxy!.pairs.delete(pair);
        down.destroy();
        up.destroy();
      };
      down.on('error', drop);
      up.on('error', drop);
      down.on('close', drop);
      up.on('close', drop);
      down.pipe(up);
      up.pipe(down);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new CutProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** Connections open right now. */
  get open(): number {
    return this.pairs.size;
  }

  /** Drops every open connection at once, both directions, with no message. */
  cutAll(): number {
    const n = this.pairs.size;
    for (const [down, up] of [...this.pairs]) {
      down.destroy();
      up.destroy();
    }
    this.pairs.clear();
    this.cuts += n;
    return n;
  }

  async stop(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
