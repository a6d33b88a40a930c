import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, uid, type TestServer } from './helpers/app.ts';
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
import { collect } from './helpers/subscription.ts';
import { download, uploadFile, type UploadPart } from './helpers/upload.ts';
import { wsClient } from './helpers/ws.ts';

// Files on client requests (issue 12 §1, §4; seed 000's ClientRequestAttachment):
// filed with createClientRequest(attachmentIds) or added later with
// addClientRequestAttachments, each add an AttachmentAddedEvent in the
// request's conversation, downloads re-checked against the project access.

const FILE_FIELDS = 'id name kind attached url uploader { id }';
const CREATE = `mutation($input: CreateClientRequestInput!) {
  createClientRequest(input: $input) { id status channelId attachments { ${FILE_FIELDS} } }
}`;
const ADD = `mutation($input: AddClientRequestAttachmentsInput!) {
  addClientRequestAttachments(input: $input) { id attachments { ${FILE_FIELDS} } }
}`;
const REQUEST = `query($id: ID!) { clientRequest(id: $id) { id attachments { ${FILE_FIELDS} } } }`;
const EVENTS = `subscription($c: ID!, $after: Int) {
  channelEvents(channelId: $c, after: $after) {
    __typename seq actorId
    ... on AttachmentAddedEvent { clientRequestId attachmentIds }
  }
}`;

interface FileView {
  id: string;
  name: string;
  kind: string;
  attached: boolean;
  url: string;
  uploader: { id: string };
}
interface RequestView {
  id: string;
  status: string;
  channelId: string;
  attachments: FileView[];
}
interface EventView {
  __typename: string;
  seq: number;
  actorId: string | null;
  clientRequestId?: string;
  attachmentIds?: string[];
}

let s: TestServer;
let org: TestOrg;
let staff: TestUser;
let client: TestUser;
/** A client of the organization without access to the project. */
let stranger: TestUser;
/** A client with VIEWER access to the project: reads requests, files none. */
let viewer: TestUser;
let member: TestUser;
let project: string;

const textPart = (name = `notes-${uid()}.txt`): UploadPart => ({ name, bytes: files.text(), type: 'text/plain' });

async function upload(user: TestUser, part: UploadPart = textPart()): Promise<string> {
  const result = await uploadFile(s.url, user.token, part);
  return ok(result).uploadFile.id;
}

async function fileRequest(user: TestUser, attachmentIds: string[] = [], extra: Record<string, unknown> = {}) {
  return s.gql<{ createClientRequest: RequestView }>(
    CREATE,
    { input: { projectId: project, title: 'Bricks', description: '500 bricks', type: 'MATERIAL', attachmentIds, ...extra } },
    user.token,
  );
}

const addFiles = (user: TestUser, clientRequestId: string, attachmentIds: string[]) =>
  s.gql<{ addClientRequestAttachments: RequestView }>(ADD, { input: { clientRequestId, attachmentIds } }, user.token);

async function replay(user: TestUser, channelId: string, count: number): Promise<EventView[]> {
  const ws = wsClient(s.url, user.token, { keepOpen: true });
  try {
    const stream = collect(ws, EVENTS, { c: channelId, after: 0 }, (d: { channelEvents: EventView }) => d.channelEvents);
    const events = await stream.waitFor(count);
    stream.unsubscribe();
    return events;
  } finally {
    await ws.dispose();
  }
}

beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  [staff, client, stranger, viewer, member] = await Promise.all([
    createUser(s, org, 'STAFF'),
    createUser(s, org, 'CLIENT'),
    createUser(s, org, 'CLIENT'),
    createUser(s, org, 'CLIENT'),
    createUser(s, org, 'MEMBER'),
  ]);
  project = await createProject(s, org.owner.token);
  await grantAccess(s, org.owner.token, project, client.id, 'CLIENT');
  await grantAccess(s, org.owner.token, project, viewer.id, 'VIEWER');
});
afterAll(async () => {
  await s?.stop();
});

describe('filing a request with files', () => {
  it('attaches the uploads in order, with an AttachmentAddedEvent after the conversation opens', async () => {
    const png = await upload(client, { name: 'thermostat.png', bytes: await files.png(40, 30), type: 'image/png' });
    const pdf = await upload(client, { name: 'invoice.pdf', bytes: files.pdf(), type: 'application/pdf' });
    const request = ok(await fileRequest(client, [png, pdf])).createClientRequest;
    expect(request.attachments.map((f) => [f.id, f.name, f.kind, f.attached, f.uploader.id])).toEqual([
      [png, 'thermostat.png', 'IMAGE', true, client.id],
      [pdf, 'invoice.pdf', 'PDF', true, client.id],
    ]);
    const read = ok(await s.gql(REQUEST, { id: request.id }, staff.token)).clientRequest as RequestView;
    expect(read.attachments.map((f) => f.id)).toEqual([png, pdf]);

    const events = await replay(client, request.channelId, 3);
    expect(events.map((e) => e.__typename)).toEqual(['MemberAddedEvent', 'AttachmentAddedEvent', 'SystemEvent']);
    expect(events[1]).toMatchObject({ clientRequestId: request.id, attachmentIds: [png, pdf], actorId: client.id });
  });

  it('refuses another user\u2019s upload (NOT_FOUND), an attached one (CONFLICT), a repeated id, and files nothing', async () => {
    const theirs = await upload(staff);
    const before = ok(await s.gql(`{ clientRequests(first: 50) { edges { node { id } } } }`, {}, staff.token)).clientRequests.edges.length;
    expect(errorCode(await fileRequest(client, [theirs]))).toBe('NOT_FOUND');
    const mine = await upload(client);
    ok(await fileRequest(client, [mine]));
    const again = await fileRequest(client, [mine]);
    expect(errorCode(again)).toBe('CONFLICT');
    expect(again.errors?.[0]?.message).toMatch(/attached already/);
    const fresh = await upload(client);
    expect(errorCode(await fileRequest(client, [fresh, fresh]))).toBe('BAD_USER_INPUT');
    // An idempotent create checks in its transaction: the same answers.
    expect(errorCode(await fileRequest(client, [theirs], { idempotencyKey: `k-${uid()}` }))).toBe('NOT_FOUND');
    expect(errorCode(await fileRequest(client, [mine], { idempotencyKey: `k-${uid()}` }))).toBe('CONFLICT');
    const after = ok(await s.gql(`{ clientRequests(first: 50) { edges { node { id } } } }`, {}, staff.token)).clientRequests.edges.length;
    expect(after).toBe(before + 1);
  });

  it('a retry with the idempotency key returns the first request, files and all', async () => {
    const file = await upload(client);
    const key = `files-${uid()}`;
    const first = ok(await fileRequest(client, [file], { idempotencyKey: key })).createClientRequest;
    const retry = ok(await fileRequest(client, [file], { idempotencyKey: key })).createClientRequest;
    expect(retry.id).toBe(first.id);
    expect(retry.attachments.map((f) => f.id)).toEqual([file]);
  });
});

describe('adding files later', () => {
  it('appends after the existing files, live and in the replayed log', async () => {
    const first = await upload(client);
    const request = ok(await fileRequest(client, [first])).createClientRequest;
    const ws = wsClient(s.url, client.token, { keepOpen: true });
    let added!: RequestView;
    try {
      const live = collect(ws, EVENTS, { c: request.channelId, after: 3 }, (d: { channelEvents: EventView }) => d.channelEvents);
      const [second, third] = await Promise.all([upload(client), upload(client)]);
      added = ok(await addFiles(client, request.id, [second, third])).addClientRequestAttachments;
      expect(added.attachments.map((f) => f.id)).toEqual([first, second, third]);
      const [event] = await live.waitFor(1);
      expect(event).toMatchObject({ __typename: 'AttachmentAddedEvent', clientRequestId: request.id, attachmentIds: [second, third] });
      live.unsubscribe();
    } finally {
      await ws.dispose();
    }
    const replayed = (await replay(client, request.channelId, 4)).filter((e) => e.__typename === 'AttachmentAddedEvent');
    expect(replayed.map((e) => e.attachmentIds)).toEqual([[first], added.attachments.slice(1).map((f) => f.id)]);
  });

  it('the requester adds while PENDING; staff while PENDING or APPROVED, joining the conversation; nobody once closed', async () => {
    const request = ok(await fileRequest(client)).createClientRequest;
    expect(errorCode(await addFiles(member, request.id, [await upload(member)]))).toBe('FORBIDDEN');
    expect(errorCode(await addFiles(viewer, request.id, [await upload(viewer)]))).toBe('FORBIDDEN');
    // A client without access to the project does not see the request at all.
    expect(errorCode(await addFiles(stranger, request.id, [await upload(stranger)]))).toBe('NOT_FOUND');

    ok(await s.gql(`mutation($id: ID!) { approveClientRequest(input: { id: $id }) { status } }`, { id: request.id }, org.owner.token));
    const late = await upload(client);
    const refused = await addFiles(client, request.id, [late]);
    expect(errorCode(refused)).toBe('CONFLICT');
    expect(refused.errors?.[0]?.extensions?.status).toBe('APPROVED');

    const quote = await upload(staff);
    const added = ok(await addFiles(staff, request.id, [quote])).addClientRequestAttachments;
    expect(added.attachments.map((f) => f.id)).toEqual([quote]);
    const members = ok(
      await s.gql(
        `query($c: ID!) { channel(id: $c) { members(first: 20) { edges { node { user { id } } } } } }`,
        { c: request.channelId },
        staff.token,
      ),
    ).channel.members.edges.map((e: { node: { user: { id: string } } }) => e.node.user.id);
    expect(members).toContain(staff.id);

    ok(await s.gql(`mutation($id: ID!) { convertClientRequest(input: { id: $id }) { status } }`, { id: request.id }, org.owner.token));
    const closed = await addFiles(staff, request.id, [await upload(staff)]);
    expect(errorCode(closed)).toBe('CONFLICT');
    expect(closed.errors?.[0]?.extensions?.status).toBe('CONVERTED');
    // The client's refused upload is still theirs to use.
    ok(await fileRequest(client, [late]));
  });

  it('a request carries at most 10 files in all', async () => {
    const ids = await Promise.all(Array.from({ length: 9 }, () => upload(client)));
    const request = ok(await fileRequest(client, ids)).createClientRequest;
    const [tenth, eleventh] = await Promise.all([upload(client), upload(client)]);
    const over = await addFiles(client, request.id, [tenth, eleventh]);
    expect(errorCode(over)).toBe('CONFLICT');
    expect(over.errors?.[0]?.extensions).toMatchObject({ limit: 10, attached: 9 });
    expect(ok(await addFiles(client, request.id, [tenth])).addClientRequestAttachments.attachments).toHaveLength(10);
    expect(errorCode(await addFiles(client, request.id, [eleventh]))).toBe('CONFLICT');
  });

  it('refuses an empty list, another user\u2019s upload and ids that are not attachments', async () => {
    const request = ok(await fileRequest(client)).createClientRequest;
    expect(errorCode(await addFiles(client, request.id, []))).toBe('BAD_USER_INPUT');
    expect(errorCode(await addFiles(client, request.id, [await upload(staff)]))).toBe('NOT_FOUND');
    expect(errorCode(await addFiles(client, request.id, [request.id]))).toBe('BAD_USER_INPUT');
  });
});

describe('concurrent use of one upload', () => {
  it('of five attaches racing for one upload (two requests, one request twice, a message), exactly one wins', async () => {
    const channel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [client.id] });
    for (let round = 0; round < 3; round++) {
      const [r1, r2] = await Promise.all([fileRequest(client), fileRequest(client)]).then((rs) => rs.map((r) => ok(r).createClientRequest));
      const file = await upload(client);
      const results = await Promise.all([
        addFiles(client, r1!.id, [file]),
        addFiles(client, r2!.id, [file]),
        addFiles(client, r1!.id, [file]),
        fileRequest(client, [file]),
        s.gql(
          `mutation($i: SendMessageInput!) { sendMessage(input: $i) { id } }`,
          { i: { channelId: channel, body: '', attachmentIds: [file] } },
          client.token,
        ),
      ]);
      const codes = results.map((r) => errorCode(r) ?? 'OK');
      expect(
        codes.filter((c) => c === 'OK'),
        JSON.stringify(codes),
      ).toHaveLength(1);
      expect(
        codes.filter((c) => c !== 'OK').every((c) => c === 'CONFLICT'),
        JSON.stringify(results.map((r) => r.errors)),
      ).toBe(true);
      // The file is on exactly one thing.
      const holders = await Promise.all(
        [r1!.id, r2!.id].map(async (id) => ok(await s.gql(REQUEST, { id }, client.token)).clientRequest as RequestView),
      );
      const onRequests = holders.flatMap((h) => h.attachments.map((f) => f.id)).filter((id) => id === file);
      expect(onRequests.length).toBeLessThanOrEqual(1);
    }
  });
});

describe('downloads of a request\u2019s files', () => {
  it('the client loses the file with the project access; staff in the conversation keep it', async () => {
    const lost = await createUser(s, org, 'CLIENT');
    await grantAccess(s, org.owner.token, project, lost.id, 'CLIENT');
    const file = await upload(lost, { name: 'floor-plan.pdf', bytes: files.pdf(), type: 'application/pdf' });
    const request = ok(await fileRequest(lost, [file])).createClientRequest;
    const clientUrl = request.attachments[0]!.url;
    expect((await download(s.url, clientUrl)).status).toBe(200);
    // Staff take part by adding a file of their own (or by deciding): they join the conversation.
    ok(await addFiles(staff, request.id, [await upload(staff)]));
    const staffView = ok(await s.gql(REQUEST, { id: request.id }, staff.token)).clientRequest as RequestView;
    expect((await download(s.url, staffView.attachments[0]!.url)).status).toBe(200);
    // A client of another project never sees the request, so never gets a URL; its own URL is bound to its user.
    expect(errorCode(await s.gql(REQUEST, { id: request.id }, stranger.token))).toBe('NOT_FOUND');

    ok(
      await s.gql(
        `mutation($p: ID!, $u: ID!) { revokeProjectAccess(projectId: $p, userId: $u) }`,
        { p: project, u: lost.id },
        org.owner.token,
      ),
    );
    expect((await download(s.url, clientUrl)).status).toBe(404);
    expect((await download(s.url, staffView.attachments[0]!.url)).status).toBe(200);
  });
});

describe('ClientRequest.attachments is batched', () => {
  it('a page of requests with files costs the same number of queries for 2 requests as for 8', async () => {
    const solo = await createUser(s, org, 'CLIENT');
    const own = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, own, solo.id, 'CLIENT');
    for (let i = 0; i < 8; i++) {
      const ids = await Promise.all([upload(solo), upload(solo)]);
      ok(
        await s.gql(
          CREATE,
          { input: { projectId: own, title: `R${i}`, description: 'd', type: 'MATERIAL', attachmentIds: ids } },
          solo.token,
        ),
      );
    }
    const LIST = `query($p: ID!, $n: Int!) {
      clientRequests(first: $n, filter: { projectId: $p }) { edges { node { id attachments { ${FILE_FIELDS} thumbnails { url } } } } }
    }`;
    const cost = async (n: number) => {
      const before = s.app.queryCount();
      const data = ok(await s.gql(LIST, { p: own, n }, solo.token));
      expect(data.clientRequests.edges).toHaveLength(n);
      for (const edge of data.clientRequests.edges) expect(edge.node.attachments).toHaveLength(2);
      return s.app.queryCount() - before;
    };
    await cost(2);
    expect(await cost(8)).toBe(await cost(2));
  });
});
