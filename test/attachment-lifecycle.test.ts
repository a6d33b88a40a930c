import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { allVariants, storageKey } from '../src/services/attachments.ts';
import { eventually, startServer, type TestServer } from './helpers/app.ts';
import {
  createChannel,
  createProject,
  createUser,
  errorCode,
  grantAccess,
  ok,
  registerOrg,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import * as files from './helpers/files.ts';
import { rawId } from './helpers/messages.ts';
import { startS3Server, type LocalS3 } from './helpers/s3-server.ts';
import { collect } from './helpers/subscription.ts';
import { download, uploadFile, type UploadPart } from './helpers/upload.ts';
import { wsClient } from './helpers/ws.ts';

// Deleting files (issue 12 §3) and the cleanup job (§1): removeAttachment,
// hard deletes, unattached uploads past their TTL and the quota they free,
// over HTTP and WebSocket as clients do it. Storage and the organization's
// byte count are read from the server itself (the blob store, the database).

const SEND = `mutation($i: SendMessageInput!) { sendMessage(input: $i) { id seq attachments { id url thumbnails { url } } } }`;
const REMOVE = `mutation($id: ID!) { removeAttachment(id: $id) { attachmentId removed clientRequestId message { id attachments { id } } } }`;
const MESSAGE = `query($id: ID!) { message(id: $id) { id deleted attachments { id } } }`;
const DELETE = `mutation($id: ID!, $hard: Boolean) { deleteMessage(input: { id: $id, hard: $hard }) { hard } }`;
const ADD_MEMBERS = `mutation($c: ID!, $u: [ID!]!) { addChannelMembers(channelId: $c, userIds: $u, role: ADMIN) { id } }`;
const ARCHIVE = `mutation($c: ID!) { archiveChannel(channelId: $c) { archived } }`;
const CREATE_REQUEST = `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { id channelId } }`;
const LAST_SEQ = `query($c: ID!) { channel(id: $c) { lastSeq } }`;
const EVENTS = `subscription($c: ID!, $after: Int) {
  channelEvents(channelId: $c, after: $after) {
    __typename
    seq
    ... on AttachmentRemovedEvent { attachmentId attachedToId attachedToSeq removedById }
    ... on MessageAddedEvent { message { id attachments { id } } }
    ... on MessageDeletedEvent { messageId hard }
  }
}`;

interface Event {
  __typename: string;
  seq: number;
  attachmentId?: string;
  attachedToId?: string;
  attachedToSeq?: number | null;
  messageId?: string;
  removedById?: string;
  hard?: boolean;
  message?: { id: string; attachments: { id: string }[] };
}

const defaults = loadConfig({}, { jwtSecret: 'x'.repeat(16) }).uploads;
/** The first server's per-organization quota: far above what its photos take. */
const QUOTA = 1_000_000;
const text = (bytes: number): UploadPart => ({ name: 'notes.txt', bytes: new TextEncoder().encode('n'.repeat(bytes)) });

/** What a test needs of one server: uploads, sends, storage and quota as the server has them. */
function helpers(get: () => TestServer) {
  const up = async (user: TestUser, part?: UploadPart) => {
    const result = await uploadFile(get().url, user.token, part ?? { name: 'photo.png', bytes: await files.png(40, 30) });
    return ok(result).uploadFile;
  };
  const sendWith = async (user: TestUser, channelId: string, attachmentIds: string[], body = '') =>
    ok(await get().gql(SEND, { i: { channelId, body, attachmentIds } }, user.token)).sendMessage as {
      id: string;
      seq: number;
      attachments: { id: string; url: string; thumbnails: { url: string }[] }[];
    };
  const row = (attachmentGlobalId: string) => get().app.services.prisma.attachment.findUnique({ where: { id: rawId(attachmentGlobalId) } });
  /** Whether any variant of the attachment is still in the blob store. */
  const stored = async (attachment: { organizationId: string; id: string; thumbnails: number[] }) => {
    const store = get().app.services.attachments.store;
    const found = await Promise.all(allVariants(attachment).map((v) => store.get(storageKey(attachment, v))));
    for (const f of found) f?.body.destroy();
    return found.filter(Boolean).length;
  };
  const orgOf = async (org: TestOrg) => get().app.services.prisma.organization.findUniqueOrThrow({ where: { slug: org.slug } });
  const storageBytes = async (org: TestOrg) => Number((await orgOf(org)).storageBytes);
  return { up, sendWith, row, stored, orgOf, storageBytes };
}

// Both storage drivers: the filesystem, and S3 on a local s3rver.
describe.each(['fs', 's3'] as const)('removing files and hard deletes (%s storage)', (driver) => {
  let s: TestServer;
  let s3: LocalS3 | null = null;
  let org: TestOrg;
  let uploader: TestUser;
  let other: TestUser;
  let outsider: TestUser;
  let staff: TestUser;
  let channel: string;
  const h = helpers(() => s);

  beforeAll(async () => {
    s3 = driver === 's3' ? await startS3Server() : null;
    s = await startServer({ uploads: { ...defaults, organizationQuotaBytes: QUOTA }, ...(s3 ? { storage: s3.config } : {}) });
    org = await registerOrg(s);
    [uploader, other, outsider, staff] = await Promise.all([
      createUser(s, org),
      createUser(s, org),
      createUser(s, org),
      createUser(s, org, 'STAFF'),
    ]);
    channel = await createChannel(s, org.owner.token, { memberIds: [uploader.id, other.id, staff.id] });
  });
  afterAll(async () => {
    await s?.stop();
    await s3?.stop();
  });

  async function replay(user: TestUser, after: number, count: number, channelId = channel): Promise<Event[]> {
    const client = wsClient(s.url, user.token, { keepOpen: true });
    try {
      const stream = collect<Event>(client, EVENTS, { c: channelId, after }, (d: { channelEvents: Event }) => d.channelEvents);
      const events = await stream.waitFor(count);
      stream.unsubscribe();
      return events.slice(0, count);
    } finally {
      await client.dispose();
    }
  }

  it('the uploader removes a file from their message: an event live and in the replay, gone from the message, its URL and storage, the quota freed', async () => {
    const [first, second] = [await h.up(uploader), await h.up(uploader)];
    const message = await h.sendWith(uploader, channel, [first.id, second.id], 'two photos');
    const firstRow = (await h.row(first.id))!;
    expect(await h.stored(firstRow)).toBe(3); // the original and two thumbnails
    const bytesBefore = await h.storageBytes(org);

    const client = wsClient(s.url, other.token, { keepOpen: true });
    const live = collect<Event>(client, EVENTS, { c: channel, after: message.seq }, (d: { channelEvents: Event }) => d.channelEvents);
    try {
      const removed = ok(await s.gql(REMOVE, { id: first.id }, uploader.token)).removeAttachment;
      expect(removed).toEqual({
        attachmentId: first.id,
        removed: true,
        clientRequestId: null,
        message: { id: message.id, attachments: [{ id: second.id }] },
      });
      // Again: nothing changes and nothing is logged.
      expect(ok(await s.gql(REMOVE, { id: first.id }, uploader.token)).removeAttachment.removed).toBe(false);

      const [event] = await live.waitFor(1);
      expect(event).toEqual({
        __typename: 'AttachmentRemovedEvent',
        seq: message.seq + 1,
        attachmentId: first.id,
        attachedToId: message.id,
        attachedToSeq: message.seq,
        removedById: uploader.id,
      });
      // The next thing in the log is whatever comes next, not a second removal.
      expect(ok(await s.gql(LAST_SEQ, { c: channel }, other.token)).channel.lastSeq).toBe(message.seq + 1);
    } finally {
      live.unsubscribe();
      await client.dispose();
    }

    const replayed = await replay(other, message.seq - 1, 2);
    expect(replayed.map((e) => e.__typename)).toEqual(['MessageAddedEvent', 'AttachmentRemovedEvent']);
    expect(replayed[0]!.message!.attachments).toEqual([{ id: second.id }]);
    expect(replayed[1]!.attachmentId).toBe(first.id);

    expect(ok(await s.gql(MESSAGE, { id: message.id }, other.token)).message.attachments).toEqual([{ id: second.id }]);
    const old = message.attachments.find((a) => a.id === first.id)!;
    expect((await download(s.url, old.url)).status).toBe(404);
    expect((await download(s.url, old.thumbnails[0]!.url)).status).toBe(404);
    expect((await download(s.url, message.attachments.find((a) => a.id === second.id)!.url)).status).toBe(200);

    // Freed at once by this pass (or the one the removal scheduled, which it then joins).
    await s.app.services.fileCleanup.runOnce({ organizationId: firstRow.organizationId });
    expect(await h.row(first.id)).toBeNull();
    expect(await h.stored(firstRow)).toBe(0);
    expect(await h.storageBytes(org)).toBe(bytesBefore - firstRow.storedBytes);
    // Once the row is gone the id is like any unknown one.
    expect(errorCode(await s.gql(REMOVE, { id: first.id }, uploader.token))).toBe('NOT_FOUND');
  });

  it('removals racing each other or a hard delete log the file\u2019s end once', async () => {
    const [a, b] = [await h.up(uploader), await h.up(uploader)];
    const message = await h.sendWith(uploader, channel, [a.id, b.id]);
    const twice = await Promise.all([uploader, staff, org.owner].map((u) => s.gql(REMOVE, { id: a.id }, u.token)));
    expect(twice.map((r) => ok(r).removeAttachment.removed).sort()).toEqual([false, false, true]);
    expect(ok(await s.gql(LAST_SEQ, { c: channel }, uploader.token)).channel.lastSeq).toBe(message.seq + 1);

    const [removal, purge] = await Promise.all([
      s.gql(REMOVE, { id: b.id }, uploader.token),
      s.gql(DELETE, { id: message.id, hard: true }, org.owner.token),
    ]);
    ok(purge);
    // Before the delete: removed with its event; after it: gone with the message (no event of its own).
    const lastSeq = ok(await s.gql(LAST_SEQ, { c: channel }, uploader.token)).channel.lastSeq as number;
    if (removal.errors) expect(errorCode(removal)).toBe('NOT_FOUND');
    const removedFirst = removal.data?.removeAttachment?.removed === true;
    expect(lastSeq).toBe(message.seq + (removedFirst ? 3 : 2));
    await s.app.services.fileCleanup.runOnce({ organizationId: (await h.orgOf(org)).id });
    expect(await h.row(a.id)).toBeNull();
    expect(await h.row(b.id)).toBeNull();
  });

  it('someone else: a member FORBIDDEN, a non-member NOT_FOUND; staff and organization admins may', async () => {
    const [a, b] = [await h.up(uploader), await h.up(uploader)];
    const message = await h.sendWith(uploader, channel, [a.id, b.id]);
    const forbidden = await s.gql(REMOVE, { id: a.id }, other.token);
    expect(errorCode(forbidden), JSON.stringify(forbidden)).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(REMOVE, { id: a.id }, outsider.token))).toBe('NOT_FOUND');
    expect(ok(await s.gql(MESSAGE, { id: message.id }, other.token)).message.attachments).toHaveLength(2);

    expect(ok(await s.gql(REMOVE, { id: a.id }, staff.token)).removeAttachment.removed).toBe(true);
    expect(ok(await s.gql(REMOVE, { id: b.id }, org.owner.token)).removeAttachment.removed).toBe(true);
    expect(ok(await s.gql(MESSAGE, { id: message.id }, other.token)).message.attachments).toEqual([]);
  });

  it('a client request\u2019s file: its uploader removes it, the event names the request', async () => {
    const client = await createUser(s, org, 'CLIENT');
    const project = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, project, client.id, 'CLIENT');
    const [file, kept] = [await h.up(client, text(100)), await h.up(client, text(200))];
    const input = { projectId: project, title: 'Bricks', description: '500 bricks', type: 'MATERIAL', attachmentIds: [file.id, kept.id] };
    const request = ok(await s.gql(CREATE_REQUEST, { input }, client.token)).createClientRequest as { id: string; channelId: string };
    // Members read every request (FORBIDDEN to remove); a client of another project does not (NOT_FOUND).
    expect(errorCode(await s.gql(REMOVE, { id: file.id }, other.token))).toBe('FORBIDDEN');
    const stranger = await createUser(s, org, 'CLIENT');
    expect(errorCode(await s.gql(REMOVE, { id: file.id }, stranger.token))).toBe('NOT_FOUND');

    expect(ok(await s.gql(REMOVE, { id: file.id }, client.token)).removeAttachment).toEqual({
      attachmentId: file.id,
      removed: true,
      clientRequestId: request.id,
      message: null,
    });
    const lastSeq = ok(await s.gql(LAST_SEQ, { c: request.channelId }, client.token)).channel.lastSeq as number;
    const [event] = await replay(client, lastSeq - 1, 1, request.channelId);
    expect(event).toEqual({
      __typename: 'AttachmentRemovedEvent',
      seq: lastSeq,
      attachmentId: file.id,
      attachedToId: request.id,
      attachedToSeq: null,
      removedById: client.id,
    });
    const after = ok(await s.gql(`query($id: ID!) { clientRequest(id: $id) { attachments { id } } }`, { id: request.id }, client.token));
    expect(after.clientRequest.attachments).toEqual([{ id: kept.id }]);
  });

  it('a channel admin may remove a member’s file; in an archived channel only organization admins may', async () => {
    const channelAdmin = await createUser(s, org);
    const room = await createChannel(s, org.owner.token, { memberIds: [uploader.id] });
    ok(await s.gql(ADD_MEMBERS, { c: room, u: [channelAdmin.id] }, org.owner.token));
    const [a, b, c] = [await h.up(uploader), await h.up(uploader), await h.up(uploader)];
    await h.sendWith(uploader, room, [a.id, b.id, c.id]);
    expect(ok(await s.gql(REMOVE, { id: a.id }, channelAdmin.token)).removeAttachment.removed).toBe(true);

    ok(await s.gql(ARCHIVE, { c: room }, org.owner.token));
    expect(errorCode(await s.gql(REMOVE, { id: b.id }, uploader.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(REMOVE, { id: b.id }, channelAdmin.token))).toBe('FORBIDDEN');
    expect(ok(await s.gql(REMOVE, { id: b.id }, org.owner.token)).removeAttachment.removed).toBe(true);
  });

  it('an unattached upload: its uploader drops it with no event; to anyone else it does not exist', async () => {
    const upload = await h.up(uploader);
    const seqBefore = ok(await s.gql(LAST_SEQ, { c: channel }, uploader.token)).channel.lastSeq;
    expect(errorCode(await s.gql(REMOVE, { id: upload.id }, other.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(REMOVE, { id: upload.id }, org.owner.token))).toBe('NOT_FOUND');
    expect(ok(await s.gql(REMOVE, { id: upload.id }, uploader.token)).removeAttachment).toEqual({
      attachmentId: upload.id,
      removed: true,
      clientRequestId: null,
      message: null,
    });
    expect((await download(s.url, upload.url)).status).toBe(404);
    // It can no longer be sent.
    expect(errorCode(await s.gql(SEND, { i: { channelId: channel, body: '', attachmentIds: [upload.id] } }, uploader.token))).toBe(
      'NOT_FOUND',
    );
    expect(ok(await s.gql(LAST_SEQ, { c: channel }, uploader.token)).channel.lastSeq).toBe(seqBefore);
    // Freed by the pass the removal scheduled (on PostgreSQL another test server's pass may take it first, as
    // another process of one deployment would; test servers do not share a store, so blobs are checked elsewhere).
    expect(await eventually(async () => (await h.row(upload.id)) === null, 10_000)).toBe(true);
  });

  it('a hard delete frees the message\u2019s files, with MESSAGE_DELETED as their tombstone; a soft delete keeps them', async () => {
    const kept = await h.up(uploader);
    const softMessage = await h.sendWith(uploader, channel, [kept.id], 'soft');
    ok(await s.gql(DELETE, { id: softMessage.id }, uploader.token));
    const gone = await h.up(uploader);
    const hardMessage = await h.sendWith(uploader, channel, [gone.id], 'hard');
    const goneRow = (await h.row(gone.id))!;
    const bytesBefore = await h.storageBytes(org);

    expect(ok(await s.gql(DELETE, { id: hardMessage.id, hard: true }, org.owner.token)).deleteMessage.hard).toBe(true);
    expect((await download(s.url, hardMessage.attachments[0]!.url)).status).toBe(404);
    await s.app.services.fileCleanup.runOnce({ organizationId: goneRow.organizationId });
    expect(await h.row(gone.id)).toBeNull();
    expect(await h.stored(goneRow)).toBe(0);
    expect(await h.storageBytes(org)).toBe(bytesBefore - goneRow.storedBytes);

    // The soft-deleted message keeps its file, for admins only.
    expect((await h.row(kept.id))?.state).toBe('ATTACHED');
    expect(await h.stored((await h.row(kept.id))!)).toBe(3);
    expect(ok(await s.gql(MESSAGE, { id: softMessage.id }, org.owner.token)).message.attachments).toEqual([{ id: kept.id }]);
    expect(ok(await s.gql(MESSAGE, { id: softMessage.id }, other.token)).message.attachments).toEqual([]);
    expect((await download(s.url, softMessage.attachments[0]!.url)).status).toBe(404);
    // Hidden from the member, so not theirs to remove either.
    expect(errorCode(await s.gql(REMOVE, { id: kept.id }, uploader.token))).toBe('NOT_FOUND');

    const replayed = await replay(other, hardMessage.seq - 1, 2);
    expect(replayed.map((e) => e.__typename)).toEqual(['MessageAddedEvent', 'MessageDeletedEvent']);
    expect(replayed[0]!.message!.attachments).toEqual([]);
    expect(replayed[1]).toMatchObject({ messageId: hardMessage.id, hard: true });
  });

  it('an upload over the quota is CONFLICT naming ORG_STORAGE_QUOTA_BYTES; removing a file and its cleanup make room again', async () => {
    // An organization of its own, so its bytes are only these.
    const org = await registerOrg(s);
    const user = await createUser(s, org);
    const first = await h.up(user, text(600_000));
    const refused = await uploadFile(s.url, user.token, text(600_000));
    expect(errorCode(refused), JSON.stringify(refused)).toBe('CONFLICT');
    expect(refused.errors![0]!.extensions).toMatchObject({ limit: 'ORG_STORAGE_QUOTA_BYTES', quotaBytes: QUOTA, usedBytes: 600_000 });

    expect(ok(await s.gql(REMOVE, { id: first.id }, user.token)).removeAttachment.removed).toBe(true);
    // The bytes count until the cleanup has deleted the file (the pass the removal scheduled, or this one).
    await s.app.services.fileCleanup.runOnce({ organizationId: (await h.orgOf(org)).id });
    expect(await h.storageBytes(org)).toBe(0);
    ok(await uploadFile(s.url, user.token, text(600_000)));
    expect(await h.storageBytes(org)).toBe(600_000);
  });
});

describe('the cleanup job and unattached uploads', () => {
  let s: TestServer;
  let org: TestOrg;
  let user: TestUser;
  let channel: string;
  const h = helpers(() => s);
  /** Passes limited to this file's organization: other files share the database and the moved clock would expire their uploads. */
  const cleanup = async () => s.app.services.fileCleanup.runOnce({ organizationId: (await h.orgOf(org)).id });

  beforeAll(async () => {
    s = await startServer();
    org = await registerOrg(s);
    user = await createUser(s, org);
    channel = await createChannel(s, org.owner.token, { memberIds: [user.id] });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('an unattached upload stays until UPLOAD_UNATTACHED_TTL_HOURS have passed, then its files, row and bytes go', async () => {
    const upload = await h.up(user);
    const uploadRow = (await h.row(upload.id))!;
    expect(await h.storageBytes(org)).toBe(uploadRow.storedBytes);
    await cleanup();
    expect(await h.row(upload.id)).not.toBeNull();

    s.app.services.clock.advance((defaults.unattachedTtlHours + 1) * 3600_000);
    const counts = await cleanup();
    expect(counts).toMatchObject({ expired: 1, deleted: 1, freedBytes: uploadRow.storedBytes, storageFailed: false });
    expect(await h.row(upload.id)).toBeNull();
    expect(await h.stored(uploadRow)).toBe(0);
    expect(await h.storageBytes(org)).toBe(0);
  });

  it('an upload attached just before the pass is kept; one racing the pass is either attached and kept or refused and freed', async () => {
    // The clock is past every upload's TTL now (the test above moved it).
    const early = await h.up(user);
    const message = await h.sendWith(user, channel, [early.id]);
    await cleanup();
    expect((await h.row(early.id))?.state).toBe('ATTACHED');
    expect((await download(s.url, message.attachments[0]!.url)).status).toBe(200);

    const racing = await Promise.all(Array.from({ length: 4 }, () => h.up(user)));
    const outcomes = await Promise.all([
      ...racing.map((u) => s.gql(SEND, { i: { channelId: channel, body: '', attachmentIds: [u.id] } }, user.token)),
      cleanup(),
    ]);
    await cleanup();
    for (const [i, u] of racing.entries()) {
      const sent = outcomes[i] as { data?: { sendMessage: { attachments: { url: string }[] } }; errors?: unknown[] };
      const after = await h.row(u.id);
      if (sent.data?.sendMessage) {
        expect(after?.state).toBe('ATTACHED');
        expect((await download(s.url, sent.data.sendMessage.attachments[0]!.url)).status).toBe(200);
      } else {
        expect(errorCode(sent as never)).toBe('NOT_FOUND');
        expect(after).toBeNull();
      }
    }
  });

  it('when the storage fails, the files stay removed and the next pass frees them', async () => {
    const upload = await h.up(user); // past its TTL already
    const uploadRow = (await h.row(upload.id))!;
    const store = s.app.services.attachments.store;
    const original = store.delete.bind(store);
    store.delete = () => Promise.reject(new Error('storage is down'));
    try {
      expect(await cleanup()).toMatchObject({ expired: 1, deleted: 0, storageFailed: true });
    } finally {
      store.delete = original;
    }
    expect((await h.row(upload.id))?.state).toBe('DELETED');
    expect(await h.storageBytes(org)).toBeGreaterThanOrEqual(uploadRow.storedBytes);
    expect(await cleanup()).toMatchObject({ expired: 0, deleted: 1, storageFailed: false });
    expect(await h.row(upload.id)).toBeNull();
    expect(await h.stored(uploadRow)).toBe(0);
  });
});
