import pg from 'pg';
import type { GqlEndpoint, TestServer } from './app.ts';
import { ok } from './fixtures.ts';
import { graphql } from '../generated/index.ts';

/** The database id inside a Relay global id (base64 of "Type:uuid"). */
export function rawId(globalId: string): string {
  const decoded = Buffer.from(globalId, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1);
}

/** A small pool on the run's database, for checks the API cannot make (the event log itself). */
export function openDb(s: TestServer): pg.Pool {
  return new pg.Pool({ connectionString: s.app.databaseUrl, max: 2 });
}

export interface EventRow {
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}

export async function eventRows(db: pg.Pool, channelGlobalId: string): Promise<EventRow[]> {
  const { rows } = await db.query<EventRow>(`SELECT seq, type, payload FROM "ChannelEvent" WHERE "channelId" = $1 ORDER BY seq`, [
    rawId(channelGlobalId),
  ]);
  return rows;
}

export interface ChannelSnapshot {
  lastSeq: number;
  messages: { id: string; seq: number; body: string | null }[];
}

/** The channel's lastSeq and its whole history (up to 100 messages), oldest first. */
export async function channelSnapshot(s: GqlEndpoint, token: string, channelId: string): Promise<ChannelSnapshot> {
  const data = ok(
    await s.gql(
      graphql(`
        query ChannelSnapshot($id: ID!) {
          channel(id: $id) {
            lastSeq
            messages(first: 100) {
              edges {
                node {
                  id
                  seq
                  body
                }
              }
            }
          }
        }
      `),
      { id: channelId },
      token,
    ),
  );
  return { lastSeq: data.channel.lastSeq, messages: data.channel.messages.edges.map((e) => e.node) };
}
