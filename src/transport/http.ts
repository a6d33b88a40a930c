import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StartupError } from '../startup-error.ts';

export interface HttpOptions {
  /** How long an idle keep-alive connection stays open (HTTP_KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs: number;
  /** Answers one request: the app's routes in their order (ops, body limits, GraphQL). */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * The node:http server every transport shares (graphql-ws attaches to its
 * upgrades): its timeouts, listening with the failures an operator can fix
 * named as such, and a stop that lets requests in flight finish without
 * waiting out keep-alive.
 */
export class HttpTransport {
  readonly server: Server;
  /** Responses still being written: a stop asks them to close their connection when done. */
  private readonly inFlight = new Set<ServerResponse>();
  private closing = false;

  constructor(options: HttpOptions) {
    // Idle connections stay open longer than a load balancer in front keeps
    // them (60 s is common): the balancer closes them, so it never sends a
    // request down one this server closed at that moment (a "socket hang up").
    // Headers may take as long (nodejs/node#27363), and a request longer still.
    this.server = createServer({
      headersTimeout: options.keepAliveTimeoutMs + 1000,
      requestTimeout: Math.max(300_000, options.keepAliveTimeoutMs + 1000),
    });
    this.server.keepAliveTimeout = options.keepAliveTimeoutMs;
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.closing) res.setHeader('connection', 'close');
      this.inFlight.add(res);
      res.once('close', () => this.inFlight.delete(res));
      options.handle(req, res);
    });
  }

  /** True once `close` was called (readiness reports it). */
  get stopping(): boolean {
    return this.closing;
  }

  /** Listens on `host:port`; resolves with the bound port (useful with port 0). */
  listen(port: number, host: string): Promise<number> {
    const { server } = this;
    return new Promise<number>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) => {
        // The operator has nothing to debug here, only a setting to change.
        if (error.code === 'EADDRINUSE') {
          reject(
            new StartupError(`port ${port} is in use on ${host}: stop what listens there or set PORT to a free port`, { cause: error }),
          );
        } else if (error.code === 'EACCES') {
          reject(
            new StartupError(`port ${port} on ${host} needs privileges this process lacks: set PORT to 1024 or above`, { cause: error }),
          );
        } else reject(error);
      };
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  /**
   * Stops accepting connections. Responses being written close their
   * connection when done, idle keep-alive connections close now. Resolves
   * once every connection has ended (see `closeAllConnections`).
   */
  close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    this.server.closeIdleConnections();
    return closed;
  }

  /** Cuts every connection still open (the grace period is over). */
  closeAllConnections(): void {
    this.server.closeAllConnections();
  }
}
