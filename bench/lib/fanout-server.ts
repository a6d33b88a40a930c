// Child process: one server of B3/B4 (a Parley app, a Socket.IO node, or a bare
// ws + ioredis node, durable or not), started on a free port when the parent asks.
import { serve } from './fanout-ipc.ts';
import { startBare, startSocketIo, type PeerOptions } from './fanout-peers.ts';

export type ServerKind = 'parley' | 'socketio' | 'bare' | 'durable';

export interface ParleyOptions {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  jwtSecret: string;
  dataDir: string;
}

export type StartServer = { kind: 'parley'; options: ParleyOptions } | { kind: 'socketio' | 'bare' | 'durable'; options: PeerOptions };

let stop: (() => Promise<void>) | null = null;
let queryCount = () => 0;

async function startParley(options: ParleyOptions): Promise<{ port: number; stop: () => Promise<void>; queries: () => number }> {
  // Production mode as docker-compose.yml runs it; set before the schema
  // module loads, because the Pothos builder reads it at import time.
  process.env.NODE_ENV ??= 'production';
  const { buildApp } = await import('../../src/app.ts');
  const { loadConfig } = await import('../../src/config.ts');
  const config = loadConfig(
    { LOG_LEVEL: 'silent', PASSWORD_HASH_COST: '10', DATABASE_POOL_SIZE: process.env.DATABASE_POOL_SIZE },
    { ...options, host: '127.0.0.1', graphiql: false },
  );
  // Counting statements shows whether delivery queries the database per
  // subscriber (DESIGN §3.8); it costs nothing where no statement runs.
  const app = await buildApp(config, { countQueries: true });
  const port = await app.start(0);
  return { port, stop: () => app.stop(), queries: () => app.queryCount() };
}

serve(
  {
    async start(spec: StartServer): Promise<number> {
      if (spec.kind === 'parley') {
        const running = await startParley(spec.options);
        stop = running.stop;
        queryCount = running.queries;
        return running.port;
      }
      const running = await (spec.kind === 'socketio' ? startSocketIo : startBare)(spec.options);
      stop = running.stop;
      return running.port;
    },
    /** SQL statements the Parley app has sent so far (0 for the peers, which have no database). */
    queries: () => queryCount(),
  },
  async () => {
    await stop?.();
  },
);
