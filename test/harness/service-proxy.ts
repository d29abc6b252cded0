// A stand-in for a primary Service (a Kubernetes Service, a HAProxy) in single-process tests: a
// loopback TCP listener that relays each new connection to the node it currently routes to. It
// can also hold new connections without ever answering (a router retrying a stopped node, a SYN
// to a pod address that is gone) or refuse them. Connections keep the route they were made with.

import net from 'node:net';

export type ServiceRoute = { readonly host: string; readonly port: number } | 'hold' | 'refuse';

export class ServiceProxy {
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted so far, by what was done with them. */
  readonly counts = { relayed: 0, held: 0, refused: 0 };
  /** When each connection was accepted (performance.now() ms), in order. */
  readonly arrivals: number[] = [];

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private current: ServiceRoute,
  ) {}

  static async start(route: ServiceRoute): Promise<ServiceProxy> {
    let proxy: ServiceProxy | null = null;
    const server = net.createServer((down) => proxy!.accept(down));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new ServiceProxy(server, (server.address() as net.AddressInfo).port, route);
    return proxy;
  }

  get route(): ServiceRoute {
    return this.current;
  }

  /** Where new connections go from now on; open ones keep theirs. */
  routeTo(route: ServiceRoute): void {
    this.current = route;
  }

  private accept(down: net.Socket): void {
    this.arrivals.push(performance.now());
    const route = this.current;
    this.sockets.add(down);
    down.on('close', () => this.sockets.delete(down));
    down.on('error', () => down.destroy());
    if (route === 'refuse') {
      this.counts.refused++;
      down.destroy();
      return;
    }
    if (route === 'hold') {
      // Read and drop whatever the client sends; never answer.
      this.counts.held++;
      down.resume();
      return;
    }
    this.counts.relayed++;
    const up = net.connect(route.port, route.host);
    this.sockets.add(up);
    const drop = (): void => {
      down.destroy();
      up.destroy();
    };
    up.on('close', () => {
      this.sockets.delete(up);
      drop();
    });
    up.on('error', drop);
    down.on('close', drop);
    down.pipe(up);
    up.pipe(down);
  }

  async stop(): Promise<void> {
    for (const s of [...this.sockets]) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
