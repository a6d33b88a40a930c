import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { unaccent } from '@electric-sql/pglite/contrib/unaccent';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { lockDataDir } from './data-dir-lock.ts';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * Serves a PGlite database stored in `dataDir/pgdata` on a loopback port, so the
 * rest of the app talks plain PostgreSQL through `pg` exactly as in production.
 *
 * PGlite is one backend session shared by every connection to the server, so
 * the app's pool has one connection (a second would interleave with an open
 * transaction) and starts each new connection with `DISCARD ALL`
 * (`createPool`'s `freshSessions`). The server admits one more connection than
 * that: a replacement may connect while the connection it replaces is still
 * closing, and refusing it ("Too many connections") would fail a request.
 * The directory is locked to this process for as long as the database runs.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const dir = join(dataDir, 'pgdata');
  mkdirSync(dir, { recursive: true });
  const lock = lockDataDir(dataDir);
  let db: PGlite | undefined;
  try {
    // unaccent: full-text search folds accents (the search migration creates the extension).
    db = await PGlite.create(dir, { extensions: { unaccent } });
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 2 });
    await server.start();
    const url = `postgresql://postgres:postgres@${server.getServerConn()}/postgres?sslmode=disable`;
    const opened = db;
    return {
      url,
      async stop() {
        try {
          await server.stop();
          await opened.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (error) {
    await db?.close().catch(() => {});
    lock.release();
    throw error;
  }
}
