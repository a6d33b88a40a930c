import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startServer, uid, type TestServer } from './helpers/app.ts';
import {
  createChannel,
  createProject,
  createUser,
  errorCode,
  grantAccess,
  ok,
  registerOrg,
  send,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import * as files from './helpers/files.ts';
import { fileRequest, openTicket } from './helpers/items.ts';
import { openDb } from './helpers/messages.ts';
import { uploadFile } from './helpers/upload.ts';
import { graphql } from './generated/index.ts';
import type { MessageSearchFilter } from './generated/graphql.ts';

let s: TestServer;
let org: TestOrg;
let ana: TestUser;
let ben: TestUser;
let client: TestUser;
let project: string;
/** ana and ben. */
let shared: string;
/** ben alone. */
let bens: string;
/** The project's channel: ana and the client. */
let projectChannel: string;

beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  [ana, ben, client] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org, 'CLIENT')]);
  project = await createProject(s, org.owner.token);
  await grantAccess(s, org.owner.token, project, client.id);
  shared = await createChannel(s, org.owner.token, { memberIds: [ana.id, ben.id] });
  bens = await createChannel(s, org.owner.token, { memberIds: [ben.id] });
  projectChannel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [ana.id, client.id] });
});
afterAll(async () => {
  await s?.stop();
});

const SEARCH = graphql(`
  query SearchMessages($query: String!, $filter: MessageSearchFilter, $first: Int, $after: String) {
    search(query: $query, filter: $filter, first: $first, after: $after) {
      edges {
        cursor
        node {
          score
          highlights {
            field
            start
            end
          }
          message {
            id
            body
            channel {
              id
            }
            sender {
              id
            }
            parent {
              id
            }
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);
const SEARCH_REQUESTS = graphql(`
  query SearchClientRequests($query: String!) {
    searchClientRequests(query: $query) {
      edges {
        node {
          highlights {
            field
            start
            end
          }
          clientRequest {
            id
            title
          }
        }
      }
    }
  }
`);
const SEARCH_TICKETS = graphql(`
  query SearchSupportTickets($query: String!) {
    searchSupportTickets(query: $query) {
      edges {
        node {
          supportTicket {
            id
            subject
          }
        }
      }
    }
  }
`);
const DELETE = graphql(`
  mutation SearchDeleteMessage($input: DeleteMessageInput!) {
    deleteMessage(input: $input) {
      messageId
    }
  }
`);
const EDIT = graphql(`
  mutation SearchEditMessage($input: EditMessageInput!) {
    editMessage(input: $input) {
      id
    }
  }
`);
const REMOVE_MEMBER = graphql(`
  mutation SearchRemoveMember($c: ID!, $u: ID!) {
    removeChannelMember(channelId: $c, userId: $u) {
      id
    }
  }
`);
const ADD_MEMBERS = graphql(`
  mutation SearchAddMembers($c: ID!, $u: [ID!]!) {
    addChannelMembers(channelId: $c, userIds: $u) {
      id
    }
  }
`);
const REVOKE = graphql(`
  mutation SearchRevokeAccess($p: ID!, $u: ID!) {
    revokeProjectAccess(projectId: $p, userId: $u)
  }
`);
const SET_LANGUAGE = graphql(`
  mutation SearchSetLanguage($input: UpdateOrganizationSettingsInput!) {
    updateOrganizationSettings(input: $input) {
      searchLanguage
    }
  }
`);

async function search(user: TestUser, query: string, filter?: MessageSearchFilter, first?: number, after?: string) {
  return ok(await s.gql(SEARCH, { query, filter, first, after }, user.token)).search;
}
/** The bodies a search finds, best first. */
const bodies = async (user: TestUser, query: string, filter?: MessageSearchFilter) =>
  (await search(user, query, filter)).edges.map((e) => e.node.message.body);

/** A word no other test writes, so each test counts only its own messages. */
const word = () => `w${uid()}`;

describe('matching', () => {
  it('stems English words and ignores accents: "decisions" finds the Décision, highlighted by offsets', async () => {
    const tag = word();
    const body = `${tag}: we made the Décision about <b>concrete</b> pours`;
    await send(s, ana.token, shared, body);
    for (const query of [`${tag} decisions`, `${tag} decision`, `${tag} DECISION`]) {
      const [hit] = (await search(ana, query)).edges;
      expect(hit?.node.message.body, query).toBe(body);
    }
    const [hit] = (await search(ana, `decisions ${tag}`)).edges;
    const marked = hit!.node.highlights.map((h) => body.slice(h.start, h.end));
    expect(marked).toEqual([tag, 'Décision']);
    expect(hit!.node.highlights.every((h) => h.field === 'body')).toBe(true);
  });

  it('takes web-search syntax: "exact phrase", -excluded, or', async () => {
    const tag = word();
    await send(s, ana.token, shared, `${tag} granite slab for the lobby`);
    await send(s, ana.token, shared, `${tag} marble slab for the lobby`);
    await send(s, ana.token, shared, `${tag} lobby slab of granite`);
    expect((await bodies(ana, `${tag} "granite slab"`)).sort()).toEqual([`${tag} granite slab for the lobby`]);
    expect((await bodies(ana, `${tag} slab -marble`)).sort()).toEqual([
      `${tag} granite slab for the lobby`,
      `${tag} lobby slab of granite`,
    ]);
    expect(await bodies(ana, `${tag} "slab granite"`)).toEqual([]);
    expect((await bodies(ana, `${tag} "marble slab" or "granite slab"`)).sort()).toEqual([
      `${tag} granite slab for the lobby`,
      `${tag} marble slab for the lobby`,
    ]);
  });

  it('matches the last word as a prefix while it is typed, beyond its stem', async () => {
    const tag = word();
    const body = `${tag} the scaffolding decision is final`;
    await send(s, ana.token, shared, body);
    // "decisi" is not a prefix of the English stem "decis"... but of the word.
    for (const typed of ['d', 'de', 'decisi', 'decisio', 'decision', 'scaff']) {
      expect(await bodies(ana, `${tag} ${typed}`), typed).toEqual([body]);
    }
    const [hit] = (await search(ana, `${tag} scaff`)).edges;
    expect(hit!.node.highlights.map((h) => body.slice(h.start, h.end))).toEqual([tag, 'scaffolding']);
    // Only the last word: an earlier one must match whole.
    expect(await bodies(ana, `scaff ${tag}`)).toEqual([]);
    // Quoted or negated, the last word is no prefix.
    expect(await bodies(ana, `${tag} "scaff"`)).toEqual([]);
  });

  it('finds an edited message by its new words only', async () => {
    const tag = word();
    const sent = await send(s, ana.token, shared, `${tag} pour on monday`);
    ok(await s.gql(EDIT, { input: { id: sent.id, body: `${tag} pour on friday` } }, ana.token));
    expect(await bodies(ana, `${tag} friday`)).toEqual([`${tag} pour on friday`]);
    expect(await bodies(ana, `"${tag} pour on monday"`)).toEqual([]);
    expect(await bodies(ana, `${tag} monday`)).toEqual([]);
  });

  it('ranks by relevance with recency, and pages through every hit once', async () => {
    const tag = word();
    await send(s, ana.token, shared, `${tag} an old note about budget`);
    const dense = `${tag} budget budget: the budget review`;
    await send(s, ana.token, shared, dense);
    const newest = `${tag} another note about budget`;
    await send(s, ana.token, shared, newest);
    const all = (await search(ana, `${tag} budget`)).edges.map((e) => e.node);
    expect(all[0]!.message.body).toBe(dense);
    // Equal relevance: the newer first.
    expect(all.slice(1).map((n) => n.message.body)).toEqual([newest, `${tag} an old note about budget`]);
    expect(all.map((n) => n.score)).toEqual([...all.map((n) => n.score)].sort((a, b) => b - a));

    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await search(ana, `${tag} budget`, undefined, 1, after);
      seen.push(...page.edges.map((e) => e.node.message.body!));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor!;
    }
    expect(seen).toEqual(all.map((n) => n.message.body));
  });
});

describe('access is exact', () => {
  it('finds only what the viewer may read now: their channels, never deleted messages, never another organization', async () => {
    const tag = word();
    await send(s, ana.token, shared, `${tag} shared`);
    await send(s, ben.token, bens, `${tag} private to ben`);
    const softDeleted = await send(s, ana.token, shared, `${tag} soft deleted`);
    const hardDeleted = await send(s, ana.token, shared, `${tag} hard deleted`);
    ok(await s.gql(DELETE, { input: { id: softDeleted.id } }, ana.token));
    ok(await s.gql(DELETE, { input: { id: hardDeleted.id, hard: true } }, org.owner.token));
    const other = await registerOrg(s);
    const otherChannel = await createChannel(s, other.owner.token, {});
    await send(s, other.owner.token, otherChannel, `${tag} other organization`);

    expect(await bodies(ana, tag)).toEqual([`${tag} shared`]);
    expect((await bodies(ben, tag)).sort()).toEqual([`${tag} private to ben`, `${tag} shared`]);
    // The owner made (and so is in) both channels, and sees deleted bodies in history; search never finds deleted content.
    expect((await bodies(org.owner, tag)).sort()).toEqual([`${tag} private to ben`, `${tag} shared`]);
    expect(await bodies(other.owner, tag)).toEqual([`${tag} other organization`]);

    // Removed from the channel: its messages are gone from ana's results at once; back again when re-added.
    ok(await s.gql(REMOVE_MEMBER, { c: shared, u: ana.id }, org.owner.token));
    expect(await bodies(ana, tag)).toEqual([]);
    ok(await s.gql(ADD_MEMBERS, { c: shared, u: [ana.id] }, org.owner.token));
    expect(await bodies(ana, tag)).toEqual([`${tag} shared`]);
  });

  it('a client finds their projects’ messages only while their access lasts', async () => {
    const tag = word();
    const p2 = await createProject(s, org.owner.token);
    const c2 = await createUser(s, org, 'CLIENT');
    await grantAccess(s, org.owner.token, p2, c2.id);
    const channel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: p2, memberIds: [c2.id, ana.id] });
    await send(s, ana.token, channel, `${tag} for the client`);
    expect(await bodies(c2, tag)).toEqual([`${tag} for the client`]);
    ok(await s.gql(REVOKE, { p: p2, u: c2.id }, org.owner.token));
    expect(await bodies(c2, tag)).toEqual([]);
  });

  it('a filter naming a channel, sender or thread the viewer may not read is NOT_FOUND, as reading it is', async () => {
    const tag = word();
    const hidden = await send(s, ben.token, bens, `${tag} private to ben`);
    expect(errorCode(await s.gql(SEARCH, { query: tag, filter: { channelIds: [shared, bens] } }, ana.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(SEARCH, { query: tag, filter: { threadId: hidden.id } }, ana.token))).toBe('NOT_FOUND');
    const other = await registerOrg(s);
    const stranger = await createUser(s, other);
    expect(errorCode(await s.gql(SEARCH, { query: tag, filter: { senderId: stranger.id } }, ana.token))).toBe('NOT_FOUND');
    expect(await bodies(ben, tag, { channelIds: [bens], threadId: hidden.id, senderId: ben.id })).toEqual([`${tag} private to ben`]);
  });
});

describe('filters', () => {
  it('channels, sender, date range, thread, replies, mentions, entity links and attachments', async () => {
    const tag = word();
    const root = await send(s, ana.token, shared, `${tag} root of the thread`);
    const reply = await send(s, ben.token, shared, `${tag} a reply`, { parentId: root.id });
    const mention = await send(s, ben.token, shared, `${tag} asking @${ana.username}`);
    const link = await send(s, ben.token, shared, `${tag} see @message#1`);
    const file = ok(await uploadFile(s.url, ana.token, { name: 'plan.txt', bytes: files.text(), type: 'text/plain' })).uploadFile.id;
    const withFile = await send(s, ana.token, shared, `${tag} with the plan`, { attachmentIds: [file] });
    const inProject = await send(s, ana.token, projectChannel, `${tag} in the project`);
    const ids = async (filter: MessageSearchFilter) => (await search(ana, tag, filter)).edges.map((e) => e.node.message.id).sort();
    const sorted = (...xs: { id: string }[]) => xs.map((x) => x.id).sort();

    expect(await ids({ channelIds: [projectChannel] })).toEqual(sorted(inProject));
    expect(await ids({ senderId: ben.id })).toEqual(sorted(reply, mention, link));
    expect(await ids({ threadId: root.id })).toEqual(sorted(root, reply));
    expect(await ids({ inThread: true })).toEqual(sorted(reply));
    expect(await ids({ mentionsMe: true })).toEqual(sorted(mention));
    expect(await ids({ linksEntity: { type: 'message', externalId: '1' } })).toEqual(sorted(link));
    expect(await ids({ hasAttachments: true })).toEqual(sorted(withFile));
    expect(await ids({ from: new Date(Date.now() + 60_000).toISOString() })).toEqual([]);
    expect((await ids({ to: new Date(Date.now() + 60_000).toISOString() })).length).toBe(6);
    expect(await ids({ senderId: ben.id, inThread: false })).toEqual(sorted(mention, link));
  });
});

describe('requests and tickets', () => {
  it('finds client requests by title and description, for those who may read them', async () => {
    const tag = word();
    const filed = ok(
      await fileRequest(s, client.token, { projectId: project, title: `${tag} Rebar delivery`, description: 'Twelve tonnes of rebar' }),
    ).createClientRequest;
    const hits = ok(await s.gql(SEARCH_REQUESTS, { query: `${tag} tonne` }, ana.token)).searchClientRequests.edges;
    expect(hits.map((h) => h.node.clientRequest.id)).toEqual([filed.id]);
    expect(hits[0]!.node.highlights).toContainEqual({ field: 'description', start: 7, end: 13 });
    const otherClient = await createUser(s, org, 'CLIENT');
    expect(ok(await s.gql(SEARCH_REQUESTS, { query: tag }, otherClient.token)).searchClientRequests.edges).toEqual([]);
    expect(ok(await s.gql(SEARCH_REQUESTS, { query: tag }, client.token)).searchClientRequests.edges).toHaveLength(1);
  });

  it('finds support tickets by subject: agents all, others their own', async () => {
    const tag = word();
    const ticket = await openTicket(s, ben.token, { subject: `${tag} Printer jammed again` });
    const search = (user: TestUser) =>
      s.gql(SEARCH_TICKETS, { query: `${tag} printers` }, user.token).then((r) => ok(r).searchSupportTickets.edges);
    expect((await search(ben)).map((e) => e.node.supportTicket.id)).toEqual([ticket.id]);
    expect((await search(org.owner)).map((e) => e.node.supportTicket.id)).toEqual([ticket.id]);
    expect(await search(ana)).toEqual([]);
  });
});

describe('language', () => {
  it('stems in the organization’s language; a change re-indexes what exists', async () => {
    const es = await registerOrg(s);
    const channel = await createChannel(s, es.owner.token, {});
    const tag = word();
    await send(s, es.owner.token, channel, `${tag} siguen corriendo`);
    // Quoted: no prefix match, the stems alone decide. English keeps "corriendo" and "correr" apart; Spanish stems both to "corr".
    expect(await bodies(es.owner, `${tag} "correr"`)).toEqual([]);
    expect(ok(await s.gql(SET_LANGUAGE, { input: { searchLanguage: 'SPANISH' } }, es.owner.token)).updateOrganizationSettings).toEqual({
      searchLanguage: 'SPANISH',
    });
    // Found once the message is re-indexed in Spanish (its English vector has no "corr").
    expect(await eventually(async () => (await bodies(es.owner, `${tag} "correr"`)).length === 1, 10_000)).toBe(true);
    // New content is indexed in Spanish at once.
    await send(s, es.owner.token, channel, `${tag} corremos mañana`);
    expect(await bodies(es.owner, `${tag} "corre"`)).toHaveLength(2);
    // Members may not change it.
    const member = await createUser(s, es);
    expect(errorCode(await s.gql(SET_LANGUAGE, { input: { searchLanguage: 'ENGLISH' } }, member.token))).toBe('FORBIDDEN');
  });
});

describe('re-indexing after a restart', () => {
  it('a language change left half done by a stopped server is finished by the next start', async () => {
    // Kept past the stop: on the embedded database, the data the second start reads.
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-search-'));
    try {
      const first = await startServer({ dataDir });
      const es = await registerOrg(first);
      const channel = await createChannel(first, es.owner.token, {});
      const tag = word();
      await send(first, es.owner.token, channel, `${tag} siguen corriendo`);
      // What a process that died right after the setting changed leaves: the new language, the mark, no batch done
      // (so the English vector, without the Spanish stem "corr", does not match yet).
      const db = openDb(first);
      await db.query(
        `UPDATE "Organization" SET "searchLanguage" = 'SPANISH', "searchReindexAfter" = '00000000-0000-0000-0000-000000000000'
         WHERE slug = $1`,
        [es.slug],
      );
      await db.end();
      const hits = async (server: TestServer) =>
        ok(await server.gql(SEARCH, { query: `${tag} "correr"` }, es.owner.token)).search.edges.length;
      expect(await hits(first)).toBe(0);
      await first.stop();

      const second = await startServer({ dataDir });
      try {
        expect(await eventually(async () => (await hits(second)) === 1, 10_000)).toBe(true);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('bad input', () => {
  it('refuses empty, overlong and unauthenticated searches and foreign cursors with clear codes', async () => {
    for (const query of ['', '   ']) expect(errorCode(await s.gql(SEARCH, { query }, ana.token)), query).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(SEARCH, { query: 'x'.repeat(257) }, ana.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(SEARCH, { query: 'x', after: 'bm90IGEgY3Vyc29y' }, ana.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(SEARCH, { query: 'x', first: 10_000 }, ana.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(SEARCH, { query: 'x' }))).toBe('UNAUTHENTICATED');
    // Syntax that means nothing is no error: it finds nothing.
    for (const query of ['"', '-', 'or', '!!! & | :*', "'"]) {
      const result = await s.gql(SEARCH, { query }, ana.token);
      expect(result.errors, query).toBeUndefined();
    }
  });
});
