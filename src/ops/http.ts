import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { MetricsConfig } from '../config.ts';
import type { Metrics } from './metrics.ts';
import type { createReadiness } from './readiness.ts';

export interface OpsRoutesDeps {
  config: { host: string; metrics: MetricsConfig };
  metrics: Metrics | null;
  readiness: ReturnType<typeof createReadiness>;
  log: Logger;
  /** True once the app has begun to shut down: /ready answers 503 from then on. */
  stopping: () => boolean;
}

/**
 * `/ready` and `/metrics` on the main port (`/health` is Yoga's), and the
 * separate metrics port when METRICS_PORT is set.
 */
export function createOpsRoutes({ config, metrics, readiness, log, stopping }: OpsRoutesDeps) {
  const metricsHere = metrics !== null && config.metrics.port === null;
  let metricsServer: Server | null = null;

  const ready = async (res: ServerResponse) => {
    const report = await readiness.check(stopping());
    if (!report.ready) log.debug({ checks: report.body.checks }, 'not ready');
    res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(report.body));
  };

  const failed = (res: ServerResponse) => (error: unknown) => {
    log.error({ err: error }, 'operations endpoint failed');
    if (!res.headersSent) res.writeHead(500);
    res.end();
  };

  return {
    /** Answers the request if it is one of ours; false leaves it to GraphQL. */
    handle(req: IncomingMessage, res: ServerResponse): boolean {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      const path = pathOf(req.url);
      if (path === '/ready') void ready(res).catch(failed(res));
      else if (path === '/metrics' && metricsHere) void metrics.respond(res).catch(failed(res));
      else return false;
      return true;
    },

    /** Starts the separate metrics server, if configured. */
    listen(): Promise<void> {
      if (metrics === null || config.metrics.port === null || metricsServer) return Promise.resolve();
      const server = createServer((req, res) => {
        if ((req.method === 'GET' || req.method === 'HEAD') && pathOf(req.url) === '/metrics') {
          void metrics.respond(res).catch(failed(res));
        } else {
          res.writeHead(404).end();
        }
      });
      metricsServer = server;
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.metrics.port!, config.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    },

    close(): void {
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      metricsServer = null;
    },
  };
}

function pathOf(url: string | undefined): string {
  if (!url) return '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
