// Statements are prepared once per connection (DATABASE_PREPARED_STATEMENTS),
// and a migration that adds columns does not break a running process that
// prepared its statements before it. Each server here has a database of its
// own and one connection, so pg_prepared_statements shows what it prepared.
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createThrowawayDatabase, type ThrowawayDatabase } from './helpers/database.ts';
import { createChannel, ok, registerOrg, send } from './helpers/fixtures.ts';
import { graphql } from './generated/index.ts';

const databases: ThrowawayDatabase[] = [];
const servers: TestServer[] = [];

afterAll(async () => {
  for (const server of servers) await server.stop();
  for (const database of databases) await database.drop();
});

async function serverWithOwnDatabase(preparedStatements: boolean) {
  const database = await createThrowawayDatabase(inject('adminDatabaseUrl'), 'parley_prepared');
  databases.push(database);
  const server = await startServer({ databaseUrl: database.url, databasePoolSize: 1, databasePreparedStatements: preparedStatements });
  servers.push(server);
  return { database, server };
}

interface Prepared {
  statement: string;
  executions: number;
}

/** What the server's one connection has prepared, with how often each ran. */
async function prepared(server: TestServer): Promise<Prepared[]> {
  const rows = await server.app.services.prisma.$queryRaw<{ statement: string; executions: bigint }[]>`
    SELECT statement, generic_plans + custom_plans AS executions FROM pg_prepared_statements`;
  return rows.map((row) => ({ statement: row.statement, executions: Number(row.executions) }));
}

const isSend = (p: Prepared) => p.statement.includes('INSERT INTO "Message"');

describe('prepared statements', () => {
  it('prepares sendMessage\u2019s statement once and runs it for every send', async () => {
    const { server } = await serverWithOwnDatabase(true);
    const org = await registerOrg(server);
    const channelId = await createChannel(server, org.owner.token);
    for (let i = 0; i < 7; i++) await send(server, org.owner.token, channelId, `hello ${i}`);
    const sends = (await prepared(server)).filter(isSend);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.executions).toBeGreaterThanOrEqual(7);
  });

  it('keeps working when a migration adds columns under statements already prepared', async () => {
    const { database, server } = await serverWithOwnDatabase(true);
    const org = await registerOrg(server);
    const channelId = await createChannel(server, org.owner.token);
    const read = graphql(`
      query PreparedStatementsChannel($c: ID!) {
        channel(id: $c) {
          name
          lastMessage {
            body
          }
          messages(first: 5) {
            edges {
              node {
                body
                readCount
              }
            }
          }
        }
      }
    `);
    await send(server, org.owner.token, channelId, 'before');
    ok(await server.gql(read, { c: channelId }, org.owner.token));

    // What a newer release's migration might do while this process still runs.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(`ALTER TABLE "Message" ADD COLUMN "addedLater" text`);
      await admin.query(`ALTER TABLE "Channel" ADD COLUMN "addedLater" text`);
      await admin.query(`ALTER TABLE "ChannelMember" ADD COLUMN "addedLater" text`);
    } finally {
      await admin.end();
    }

    const after = await send(server, org.owner.token, channelId, 'after');
    expect(after.seq).toBe(3);
    const data = ok(await server.gql(read, { c: channelId }, org.owner.token));
    expect(data.channel.lastMessage?.body).toBe('after');
  });

  it('prepares nothing with DATABASE_PREPARED_STATEMENTS=false', async () => {
    const { server } = await serverWithOwnDatabase(false);
    const org = await registerOrg(server);
    const channelId = await createChannel(server, org.owner.token);
    for (let i = 0; i < 3; i++) await send(server, org.owner.token, channelId, `hello ${i}`);
    expect(await prepared(server)).toEqual([]);
  });
});
