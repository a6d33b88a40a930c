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
import { uploadFile, type UploadPart } from './helpers/upload.ts';

// "Files in this channel" (issue 12 §4): Channel.attachments(first, after,
// kind), newest first, without the files of deleted messages (except for
// admins), and Message.attachments batched over a page of messages.

const FILES = `query($c: ID!, $first: Int, $after: String, $kind: AttachmentKind) {
  channel(id: $c) {
    attachments(first: $first, after: $after, kind: $kind) {
      edges { cursor node { id name kind attached } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;
const SEND = `mutation($i: SendMessageInput!) { sendMessage(input: $i) { id attachments { id } } }`;

interface Page {
  ids: string[];
  hasNextPage: boolean;
  endCursor: string | null;
}

let s: TestServer;
let org: TestOrg;
let member: TestUser;
let staff: TestUser;
let channel: string;
/** The first channel's files, in the order Channel.attachments lists them: png2, pdf, png1, txt. */
let txt: string;
let png1: string;
let pdf: string;
let png2: string;

const part = {
  text: (): UploadPart => ({ name: `notes-${uid()}.txt`, bytes: files.text() }),
  png: async (): Promise<UploadPart> => ({ name: `photo-${uid()}.png`, bytes: await files.png(20, 10) }),
  pdf: (): UploadPart => ({ name: `invoice-${uid()}.pdf`, bytes: files.pdf() }),
};

async function upload(user: TestUser, p: UploadPart | Promise<UploadPart>): Promise<string> {
  return ok(await uploadFile(s.url, user.token, await p)).uploadFile.id;
}

async function sendFiles(user: TestUser, channelId: string, attachmentIds: string[], body = ''): Promise<string> {
  return ok(await s.gql(SEND, { i: { channelId, body, attachmentIds } }, user.token)).sendMessage.id;
}

async function page(user: TestUser, vars: { first?: number; after?: string | null; kind?: string } = {}, c = channel): Promise<Page> {
  const connection = ok(await s.gql(FILES, { c, ...vars }, user.token)).channel.attachments;
  return {
    ids: connection.edges.map((e: { node: { id: string } }) => e.node.id),
    hasNextPage: connection.pageInfo.hasNextPage,
    endCursor: connection.pageInfo.endCursor,
  };
}

/** Every file, following the cursors `first` at a time. */
async function walk(user: TestUser, first: number, kind?: string): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (let i = 0; i < 20; i++) {
    const p = await page(user, { first, after, ...(kind ? { kind } : {}) });
    expect(p.ids.length).toBeLessThanOrEqual(first);
    ids.push(...p.ids);
    if (!p.hasNextPage) return ids;
    after = p.endCursor;
  }
  throw new Error('no last page');
}

beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  [member, staff] = await Promise.all([createUser(s, org, 'MEMBER'), createUser(s, org, 'STAFF')]);
  channel = await createChannel(s, org.owner.token, { memberIds: [member.id, staff.id] });
  // Uploaded one after another: ids grow with upload time, and two files of one message list by id.
  txt = await upload(member, part.text());
  await sendFiles(member, channel, [txt], 'the notes');
  png1 = await upload(member, part.png());
  pdf = await upload(member, part.pdf());
  await sendFiles(member, channel, [png1, pdf]);
  png2 = await upload(staff, part.png());
  await sendFiles(staff, channel, [png2], 'another photo');
});
afterAll(async () => {
  await s?.stop();
});

describe('Channel.attachments', () => {
  it('lists the channel\u2019s files newest first, the files of one message by id', async () => {
    expect(await page(member)).toEqual({ ids: [png2, pdf, png1, txt], hasNextPage: false, endCursor: expect.any(String) });
  });

  it('pages with cursors, whatever the page size', async () => {
    for (const first of [1, 2, 3]) expect(await walk(member, first), `first: ${first}`).toEqual([png2, pdf, png1, txt]);
    const second = await page(member, { first: 2, after: (await page(member, { first: 2 })).endCursor });
    expect(second).toMatchObject({ ids: [png1, txt], hasNextPage: false });
    expect((await page(member, { first: 0 })).ids).toEqual([]);
  });

  it('filters by kind, and pages within the kind', async () => {
    expect((await page(member, { kind: 'IMAGE' })).ids).toEqual([png2, png1]);
    expect((await page(member, { kind: 'PDF' })).ids).toEqual([pdf]);
    expect((await page(member, { kind: 'SPREADSHEET' })).ids).toEqual([]);
    expect(await walk(member, 1, 'IMAGE')).toEqual([png2, png1]);
  });

  it('refuses a page over the cap and a cursor it did not hand out', async () => {
    expect(errorCode(await s.gql(FILES, { c: channel, first: 101 }, member.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(FILES, { c: channel, after: 'bm90LWEtY3Vyc29y' }, member.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(FILES, { c: channel, first: -1 }, member.token))).toBe('BAD_USER_INPUT');
  });

  it('leaves out unattached uploads and the channels the viewer does not read', async () => {
    await upload(member, part.text());
    expect((await page(member)).ids).toEqual([png2, pdf, png1, txt]);
    const outsider = await createUser(s, org, 'MEMBER');
    expect(errorCode(await s.gql(FILES, { c: channel }, outsider.token))).toBe('NOT_FOUND');
  });

  it('hides the files of a soft-deleted message except from admins, who see deleted content', async () => {
    const own = await createChannel(s, org.owner.token, { memberIds: [member.id, staff.id] });
    const keep = await upload(member, part.png());
    await sendFiles(member, own, [keep]);
    const [gone1, gone2] = [await upload(member, part.pdf()), await upload(member, part.png())];
    const doomed = await sendFiles(member, own, [gone1, gone2]);
    expect((await page(member, {}, own)).ids).toEqual([gone2, gone1, keep]);
    ok(await s.gql(`mutation($id: ID!) { deleteMessage(input: { id: $id }) { hard } }`, { id: doomed }, member.token));
    expect((await page(member, {}, own)).ids).toEqual([keep]);
    expect((await page(staff, {}, own)).ids).toEqual([keep]);
    expect((await page(member, { kind: 'IMAGE' }, own)).ids).toEqual([keep]);
    expect((await page(org.owner, {}, own)).ids).toEqual([gone2, gone1, keep]);
    // The first channel is untouched.
    expect((await page(member)).ids).toEqual([png2, pdf, png1, txt]);
  });

  it('lists a client request\u2019s files in the request\u2019s conversation', async () => {
    const client = await createUser(s, org, 'CLIENT');
    const project = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, project, client.id, 'CLIENT');
    const file = await upload(client, part.pdf());
    const request = ok(
      await s.gql(
        `mutation($input: CreateClientRequestInput!) { createClientRequest(input: $input) { channelId } }`,
        { input: { projectId: project, title: 'Tiles', description: '40 m\u00b2', type: 'MATERIAL', attachmentIds: [file] } },
        client.token,
      ),
    ).createClientRequest;
    const more = await upload(client, part.png());
    const sent = await sendFiles(client, request.channelId, [more]);
    expect(sent).toBeTruthy();
    expect((await page(client, {}, request.channelId)).ids).toEqual([more, file]);
  });
});

describe('batched per page', () => {
  it('Message.attachments: the same number of queries for 2 messages as for 8', async () => {
    const own = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    for (let i = 0; i < 8; i++) await sendFiles(member, own, [await upload(member, part.text()), await upload(member, part.text())]);
    const MESSAGES = `query($c: ID!, $n: Int!) {
      channel(id: $c) { messages(last: $n) { edges { node { id attachments { id name url thumbnails { url } } } } } }
    }`;
    const cost = async (n: number) => {
      const before = s.app.queryCount();
      const edges = ok(await s.gql(MESSAGES, { c: own, n }, member.token)).channel.messages.edges;
      expect(edges).toHaveLength(n);
      for (const e of edges) expect(e.node.attachments).toHaveLength(2);
      return s.app.queryCount() - before;
    };
    await cost(2);
    expect(await cost(8)).toBe(await cost(2));
  });

  it('Channel.attachments over a page of channels: the same number of queries for 2 channels as for 6', async () => {
    const viewer = await createUser(s, org, 'MEMBER');
    for (let i = 0; i < 6; i++) {
      const c = await createChannel(s, org.owner.token, { memberIds: [viewer.id] });
      await sendFiles(viewer, c, [await upload(viewer, part.text())]);
    }
    const CHANNELS = `query($n: Int!) { channels(first: $n) { edges { node { id attachments(first: 3) { edges { node { id url } } } } } } }`;
    const cost = async (n: number) => {
      const before = s.app.queryCount();
      const edges = ok(await s.gql(CHANNELS, { n }, viewer.token)).channels.edges;
      expect(edges).toHaveLength(n);
      for (const e of edges) expect(e.node.attachments.edges).toHaveLength(1);
      return s.app.queryCount() - before;
    };
    await cost(2);
    expect(await cost(6)).toBe(await cost(2));
  });
});
