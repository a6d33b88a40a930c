import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';

/**
 * The floor: the least any server can do for one sendMessage. A bare
 * node:http handler runs the same transaction as Parley's ChannelLog with `pg`
 * directly (bump the channel's seq, insert the message, insert the event
 * carrying the message as payload) and answers with the same JSON shape. No
 * GraphQL, no auth, no access check, no ORM, no publish: the sender and the
 * organization are fixed when the floor starts.
 */
export interface Floor {
  port: number;
  /** One transaction without HTTP, to split the floor's time into database and HTTP. */
  sendDirect(input: FloorInput): Promise<FloorMessage>;
  stop(): Promise<void>;
}

export interface FloorInput {
  channelId: string;
  body: string;
  clientMessageId?: string | null;
}

export interface FloorMessage {
  id: string;
  channelId: string;
  seq: number;
  senderId: string;
  body: string;
  parentId: null;
  clientMessageId: string | null;
  customFields: null;
  editedAt: null;
  deletedAt: null;
  createdAt: string;
}

const BUMP_SEQ = `UPDATE "Channel" SET "lastSeq" = "lastSeq" + 1, "lastActivityAt" = now()
  WHERE id = $1 RETURNING "lastSeq"`;
const INSERT_MESSAGE = `INSERT INTO "Message" (id, "organizationId", "channelId", seq, "senderId", body, "clientMessageId")
  VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING "createdAt"`;
const INSERT_EVENT = `INSERT INTO "ChannelEvent" ("channelId", seq, "organizationId", type, payload, "actorId")
  VALUES ($1, $2, $3, 'MESSAGE_ADDED', $4, $5)`;

/**
 * The floor's transaction on its own: BEGIN, bump the channel's seq, insert the
 * message and its event, COMMIT.
 */
function floorWriter(pool: pg.Pool, options: { organizationId: string; senderId: string }): (input: FloorInput) => Promise<FloorMessage> {
  return async function send(input: FloorInput): Promise<FloorMessage> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const bumped = await client.query<{ lastSeq: number }>(BUMP_SEQ, [input.channelId]);
      const seq = bumped.rows[0]?.lastSeq;
      if (seq === undefined) throw new Error(`channel ${input.channelId} not found`);
      const id = randomUUID();
      const body = input.body.trim();
      const clientMessageId = input.clientMessageId ?? null;
      const inserted = await client.query<{ createdAt: Date }>(INSERT_MESSAGE, [
        id,
        options.organizationId,
        input.channelId,
        seq,
        options.senderId,
        body,
        clientMessageId,
      ]);
      const message: FloorMessage = {
        id,
        channelId: input.channelId,
        seq,
        senderId: options.senderId,
        body,
        parentId: null,
        clientMessageId,
        customFields: null,
        editedAt: null,
        deletedAt: null,
        createdAt: inserted.rows[0]!.createdAt.toISOString(),
      };
      await client.query(INSERT_EVENT, [input.channelId, seq, options.organizationId, JSON.stringify(message), options.senderId]);
      await client.query('COMMIT');
      return message;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  };
}

/**
 * The same work in one statement, one round trip, as Parley's sendMessage
 * does it (the seq bump's row lock is then held for one statement, not across
 * five round trips): the fastest way to commit a message with its seq and
 * event. B3/B4's durable floor commits each message with it before
 * broadcasting, so no server that persists every message first can do better
 * on this machine.
 */
const SEND_ONE_STATEMENT = `WITH bump AS (
    UPDATE "Channel" SET "lastSeq" = "lastSeq" + 1, "lastActivityAt" = now() WHERE id = $1::uuid RETURNING "lastSeq"
  ), msg AS (
    INSERT INTO "Message" (id, "organizationId", "channelId", seq, "senderId", body, "clientMessageId")
    SELECT $2::uuid, $3::uuid, $1::uuid, bump."lastSeq", $4::uuid, $5, $6 FROM bump
    RETURNING seq, "createdAt"
  ), ev AS (
    INSERT INTO "ChannelEvent" ("channelId", seq, "organizationId", type, payload, "actorId")
    SELECT $1::uuid, seq, $3::uuid, 'MESSAGE_ADDED', jsonb_build_object('id', $2::text, 'seq', seq, 'body', $5::text, 'createdAt', "createdAt"), $4::uuid
    FROM msg
  )
  SELECT seq, "createdAt" FROM msg`;

export function floorStatement(
  pool: pg.Pool,
  options: { organizationId: string; senderId: string },
): (input: FloorInput) => Promise<{ id: string; seq: number; createdAt: string }> {
  return async (input) => {
    const id = randomUUID();
    const { rows } = await pool.query<{ seq: number; createdAt: Date }>(SEND_ONE_STATEMENT, [
      input.channelId,
      id,
      options.organizationId,
      options.senderId,
      input.body.trim(),
      input.clientMessageId ?? null,
    ]);
    const row = rows[0];
    if (!row) throw new Error(`channel ${input.channelId} not found`);
    return { id, seq: row.seq, createdAt: row.createdAt.toISOString() };
  };
}

export async function startFloor(options: {
  databaseUrl: string;
  poolSize: number;
  organizationId: string;
  senderId: string;
}): Promise<Floor> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  pool.on('error', () => {});
  const send = floorWriter(pool, options);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const input = JSON.parse(await readBody(req)) as FloorInput;
      const message = await send(input);
      const { id, seq, body, clientMessageId, createdAt } = message;
      reply(res, 200, { data: { sendMessage: { id, seq, body, clientMessageId, createdAt } } });
    } catch (error) {
      reply(res, 500, { errors: [{ message: (error as Error).message }] });
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sendDirect: send,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
