import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool } from '../src/db/client.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded.ts';
import { onEmbedded } from './helpers/app.ts';

// The pool under Prisma, on the database of this lane: what a failed
// statement does to the connection, and what a new connection inherits.

let embedded: EmbeddedPostgres | null = null;
let dataDir: string | null = null;
let url: string;
beforeAll(async () => {
  if (!onEmbedded) {
    url = inject('databaseUrl');
    return;
  }
  dataDir = mkdtempSync(join(tmpdir(), 'parley-pool-'));
  cpSync(join(inject('embeddedTemplate'), 'pgdata'), join(dataDir, 'pgdata'), { recursive: true });
  embedded = await startEmbeddedPostgres(dataDir);
  url = embedded.url;
});
afterAll(async () => {
  await embedded?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const backend = async (pool: pg.Pool) => (await pool.query({ text: 'SELECT pg_backend_pid() AS pid, random() AS token' })).rows[0];

describe('the database pool', () => {
  it('keeps its connection after a statement the server refuses, with its prepared statements', async () => {
    const pool = createPool(url, { poolSize: 1, freshSessions: onEmbedded });
    try {
      const named = { name: 'pool_test_cast', text: 'SELECT $1::int AS n' };
      expect((await pool.query({ ...named, values: [1] })).rows).toEqual([{ n: 1 }]);
      const before = await backend(pool);
      await pool.query({ ...named, values: ['not a number'] }).then(
        () => expect.unreachable(),
        (error: { code?: string }) => expect(error.code).toBe('22P02'),
      );
      await expect(pool.query({ text: 'SELECT * FROM no_such_table' })).rejects.toMatchObject({ code: '42P01' });
      // Same connection (on PGlite every connection has pid 0: counted by the pool instead).
      expect(pool.totalCount).toBe(1);
      if (!onEmbedded) expect((await backend(pool)).pid).toBe(before.pid);
      expect((await pool.query({ ...named, values: [2] })).rows).toEqual([{ n: 2 }]);
    } finally {
      await pool.end();
    }
  });

  it('closes a connection that failed, and its replacement prepares the same statements again', async () => {
    const pool = createPool(url, { poolSize: 1, freshSessions: onEmbedded });
    try {
      const named = { name: 'pool_test_replaced', text: 'SELECT $1::int AS n' };
      expect((await pool.query({ ...named, values: [1] })).rows).toEqual([{ n: 1 }]);
      // A connection the app gives up on (a network error, a timeout) is closed, not reused.
      const client = await pool.connect();
      client.release(new Error('connection lost'));
      expect(pool.totalCount).toBe(0);
      // On the embedded database the next connection is the same PGlite session:
      // without DISCARD ALL its PREPARE of the same name failed with 42P05.
      for (let i = 2; i < 5; i++) expect((await pool.query({ ...named, values: [i] })).rows).toEqual([{ n: i }]);
    } finally {
      await pool.end();
    }
  });
});
