import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { graphql } from './generated/index.ts';
import { startServer, uid, type GqlResult, type TestServer } from './helpers/app.ts';
import { errorCode, ok } from './helpers/fixtures.ts';
import { wsClient } from './helpers/ws.ts';

// Trusted documents (issue 13 §3): TRUSTED_DOCUMENTS loads the manifest codegen
// writes (test/generated/persisted-documents.json for the tests' documents);
// clients may then send a document's id instead of its text, over HTTP and
// graphql-ws; TRUSTED_DOCUMENTS_ONLY refuses every other document.

const root = new URL('..', import.meta.url).pathname;
const testManifest = join(root, 'test/generated/persisted-documents.json');
const exampleManifest = join(root, 'examples/generated/persisted-documents.json');

const Register = graphql(`
  mutation TrustedRegister($input: RegisterOrganizationInput!) {
    registerOrganization(input: $input) {
      token
    }
  }
`);
const Viewer = graphql(`
  query TrustedViewer {
    viewer {
      username
    }
  }
`);
const CreateChannel = graphql(`
  mutation TrustedCreateChannel($input: CreateChannelInput!) {
    createChannel(input: $input) {
      id
    }
  }
`);
const Send = graphql(`
  mutation TrustedSend($input: SendMessageInput!) {
    sendMessage(input: $input) {
      id
    }
  }
`);
const Events = graphql(`
  subscription TrustedEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      seq
      ... on MessageAddedEvent {
        message {
          body
        }
      }
    }
  }
`);

/** The id codegen gave a document: "sha256:" and the SHA-256 of its text in the manifest. */
function idOf(document: object): string {
  const id = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!id) throw new Error('a document without an id: run `npm run codegen`');
  return id;
}

interface Answer<T> extends GqlResult<T> {
  status: number;
  /** The whole response body, to look for what must never be in it. */
  text: string;
}

/** POSTs a request body as a client would and keeps the status. */
async function post<T>(s: TestServer, body: Record<string, unknown>, token?: string): Promise<Answer<T>> {
  const response = await fetch(s.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { ...(JSON.parse(text) as GqlResult<T>), status: response.status, text };
}

/** Sends a document by id over HTTP POST, typed as the document is. */
function byId<R, V>(s: TestServer, document: TypedDocumentNode<R, V>, variables: V, token?: string): Promise<Answer<R>> {
  return post<R>(s, { documentId: idOf(document), variables }, token);
}

/** Signs up a new organization through the id of a trusted mutation; returns the owner's token. */
async function signUp(s: TestServer): Promise<string> {
  const slug = `trusted-${uid()}`;
  const input = { name: `Org ${slug}`, slug, username: 'owner', displayName: 'Owner', password: 'password123' };
  return ok(await byId(s, Register, { input })).registerOrganization.token;
}

/** Every result of one operation over graphql-ws, with the subscribe payload as given (an id, an empty query). */
function wsRun(client: Client, payload: Record<string, unknown>, until: (results: GqlResult<unknown>[]) => boolean) {
  return new Promise<GqlResult<unknown>[]>((resolve, reject) => {
    const results: GqlResult<unknown>[] = [];
    const stop = client.subscribe(payload as { query: string }, {
      next: (result) => {
        results.push(result as GqlResult<unknown>);
        if (until(results)) {
          stop();
          resolve(results);
        }
      },
      error: reject,
      complete: () => resolve(results),
    });
  });
}

/** The one result a query or mutation answers over graphql-ws. */
const wsOnce = async (client: Client, payload: Record<string, unknown>) => (await wsRun(client, payload, () => false))[0]!;

describe('trusted documents: configuration', () => {
  const base = { JWT_SECRET: 'x'.repeat(16) };

  it('is off unless TRUSTED_DOCUMENTS is set, in production too', () => {
    expect(loadConfig(base).trustedDocuments).toBeNull();
    expect(loadConfig({ ...base, NODE_ENV: 'production' }).trustedDocuments).toBeNull();
    expect(loadConfig({ ...base, TRUSTED_DOCUMENTS: testManifest }).trustedDocuments).toEqual({ manifest: testManifest, only: false });
    expect(loadConfig({ ...base, TRUSTED_DOCUMENTS: testManifest, TRUSTED_DOCUMENTS_ONLY: 'true' }).trustedDocuments).toEqual({
      manifest: testManifest,
      only: true,
    });
  });

  it('refuses TRUSTED_DOCUMENTS_ONLY without a manifest', () => {
    expect(() => loadConfig({ ...base, TRUSTED_DOCUMENTS_ONLY: 'true' })).toThrow(/TRUSTED_DOCUMENTS_ONLY=true needs TRUSTED_DOCUMENTS/);
  });

  describe('a manifest the server cannot use stops its start, naming the file and the problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-trusted-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    };
    const cases: [string, () => string, RegExp][] = [
      ['a missing file', () => join(dir, 'missing.json'), /cannot be read \(ENOENT\); run `npm run codegen`/],
      ['a file that is not JSON', () => file('broken.json', '{"sha256:'), /is not JSON/],
      [
        'a list instead of an object',
        () => file('list.json', '["query { viewer { id } }"]'),
        /must be a JSON object of document id → document text/,
      ],
      [
        'ids of another hash',
        () => file('sha1.json', JSON.stringify({ '0f6ec1ea2c2d0a8f2dbb80c2ff3ae8e3f9ea1a0b': 'query A { viewer { id } }' })),
        /whose id is not "sha256:" and the SHA-256 of its text/,
      ],
      ['no documents', () => file('empty.json', '{}'), /has no documents/],
    ];
    it.each(cases)('%s', async (_name, manifestPath, problem) => {
      const manifest = manifestPath();
      const dataDir = mkdtempSync(join(tmpdir(), 'parley-trusted-data-'));
      try {
        const started = startServer({ dataDir, trustedDocuments: { manifest, only: true } });
        await expect(started).rejects.toMatchObject({ name: 'StartupError' });
        await expect(started).rejects.toThrow(`TRUSTED_DOCUMENTS: ${manifest} `);
        await expect(started).rejects.toThrow(problem);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
});

describe('a server accepting only trusted documents', () => {
  let s: TestServer;
  let token: string;
  let ws: Client;
  beforeAll(async () => {
    s = await startServer({ trustedDocuments: { manifest: testManifest, only: true } });
    token = await signUp(s);
    ws = wsClient(s.url, token);
  });
  afterAll(async () => {
    await ws?.dispose();
    await s?.stop();
  });

  it('runs a document sent by id over HTTP POST: documentId, or Apollo’s persistedQuery hash', async () => {
    const answer = await byId(s, Viewer, {}, token);
    expect(answer.status).toBe(200);
    expect(ok(answer).viewer?.username).toBe('owner');
    const apollo = await post<{ viewer: { username: string } }>(
      s,
      { extensions: { persistedQuery: { version: 1, sha256Hash: idOf(Viewer).replace(/^sha256:/, '') } } },
      token,
    );
    expect(ok(apollo).viewer.username).toBe('owner');
  });

  it('runs a document sent by id over HTTP GET (a query; GET needs the CSRF header as always)', async () => {
    const url = `${s.url}?documentId=${encodeURIComponent(idOf(Viewer))}`;
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}`, 'x-graphql-yoga-csrf': '1' } });
    expect(response.status).toBe(200);
    expect(ok((await response.json()) as GqlResult<{ viewer: { username: string } }>).viewer.username).toBe('owner');
  });

  it('refuses an arbitrary document over HTTP with FORBIDDEN and 403, without a stack', async () => {
    const answer = await post(s, { query: '{ viewer { username } }' }, token);
    expect(answer.status).toBe(403);
    expect(errorCode(answer)).toBe('FORBIDDEN');
    expect(answer.errors?.[0]?.message).toMatch(/^Only trusted documents are accepted/);
    expect(answer.data).toBeUndefined();
    expect(answer.text).not.toMatch(/\bat .*\.(ts|js):\d+|"http"|stack/);
  });

  it('accepts the full text of a trusted document, character for character, and nothing else', async () => {
    const manifest = JSON.parse(readFileSync(testManifest, 'utf8')) as Record<string, string>;
    expect(ok(await post<{ viewer: { username: string } }>(s, { query: manifest[idOf(Viewer)] }, token)).viewer.username).toBe('owner');
    // The same operation laid out otherwise (as graphql's print writes it) is another text.
    expect(errorCode(await post(s, { query: print(Viewer) }, token))).toBe('FORBIDDEN');
  });

  it('answers an unknown id with NOT_FOUND and 404, and a request with neither text nor id with BAD_USER_INPUT', async () => {
    const unknown = await post(s, { documentId: `sha256:${'0'.repeat(64)}` }, token);
    expect(unknown.status).toBe(404);
    expect(errorCode(unknown)).toBe('NOT_FOUND');
    expect(unknown.errors?.[0]?.message).toBe('Unknown document id');
    const apollo = await post(s, { extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } }, token);
    expect(errorCode(apollo)).toBe('NOT_FOUND');
    const empty = await post(s, { variables: {} }, token);
    expect(empty.status).toBe(400);
    expect(errorCode(empty)).toBe('BAD_USER_INPUT');
  });

  it('runs a query by id over graphql-ws, and refuses an arbitrary document and an unknown id there with the same codes', async () => {
    const result = await wsOnce(ws, { query: '', documentId: idOf(Viewer) });
    expect(ok(result as GqlResult<{ viewer: { username: string } }>).viewer.username).toBe('owner');

    const arbitrary = wsOnce(ws, { query: '{ viewer { username } }' });
    await expect(arbitrary).rejects.toMatchObject([
      { message: expect.stringMatching(/^Only trusted documents are accepted/), extensions: { code: 'FORBIDDEN' } },
    ]);
    // The HTTP status hint stays on HTTP.
    await expect(arbitrary).rejects.toSatisfy((errors: { extensions: object }[]) => !('http' in errors[0]!.extensions));
    await expect(wsOnce(ws, { query: '', documentId: `sha256:${'0'.repeat(64)}` })).rejects.toMatchObject([
      { message: 'Unknown document id', extensions: { code: 'NOT_FOUND' } },
    ]);
  });

  it('runs a subscription by id over graphql-ws (Apollo’s hash too)', async () => {
    const channelId = ok(await byId(s, CreateChannel, { input: { kind: 'GROUP', name: `c-${uid()}` } }, token)).createChannel.id;
    ok(await byId(s, Send, { input: { channelId, body: 'sent by id' } }, token));
    const hasMessage = (results: GqlResult<unknown>[]) =>
      results.some((r) => (r.data as { channelEvents: { message?: { body: string } } }).channelEvents.message?.body === 'sent by id');
    const replay = await wsRun(ws, { query: '', documentId: idOf(Events), variables: { c: channelId, after: 0 } }, hasMessage);
    expect(replay.flatMap((r) => r.errors ?? [])).toEqual([]);
    expect(hasMessage(replay)).toBe(true);
    const hash = idOf(Events).replace(/^sha256:/, '');
    const apollo = await wsRun(
      ws,
      { query: '', extensions: { persistedQuery: { version: 1, sha256Hash: hash } }, variables: { c: channelId, after: 0 } },
      hasMessage,
    );
    expect(hasMessage(apollo)).toBe(true);
  });
});

describe('a server with a manifest but not trusted-only', () => {
  let s: TestServer;
  let token: string;
  let ws: Client;
  beforeAll(async () => {
    s = await startServer({ trustedDocuments: { manifest: testManifest, only: false } });
    token = await signUp(s);
    ws = wsClient(s.url, token);
  });
  afterAll(async () => {
    await ws?.dispose();
    await s?.stop();
  });

  it('accepts documents by id and arbitrary documents, over HTTP and graphql-ws', async () => {
    expect(ok(await byId(s, Viewer, {}, token)).viewer?.username).toBe('owner');
    expect(ok(await post<{ viewer: { username: string } }>(s, { query: '{ viewer { username } }' }, token)).viewer.username).toBe('owner');
    // A text wins over an id sent beside it, as in Yoga's plugin.
    const both = await post<{ __typename: string }>(s, { query: '{ __typename }', documentId: idOf(Viewer) }, token);
    expect(ok(both)).toEqual({ __typename: 'Query' });
    const byIdWs = await wsOnce(ws, { query: '', documentId: idOf(Viewer) });
    expect(ok(byIdWs as GqlResult<{ viewer: { username: string } }>).viewer.username).toBe('owner');
    expect(ok(await wsOnce(ws, { query: '{ __typename }' }))).toEqual({ __typename: 'Query' });
    expect(errorCode(await post(s, { documentId: `sha256:${'0'.repeat(64)}` }, token))).toBe('NOT_FOUND');
  });
});

describe('the example client against a server trusting only its manifest', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ trustedDocuments: { manifest: exampleManifest, only: true } });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('works with --document-ids, and its documents sent as text are refused', async () => {
    const run = (...args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'examples/client.ts', s.url, ...args], {
          cwd: root,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        child.once('exit', (code) => resolve({ code, out }));
      });
    const trusted = await run('--document-ids');
    expect(trusted.out).toContain('#general: Hello from the typed client (0 unread)');
    expect(trusted.code).toBe(0);
    const untrusted = await run();
    expect(untrusted.out).toContain('FORBIDDEN: Only trusted documents are accepted');
    expect(untrusted.code).not.toBe(0);
  }, 60_000);

  it('answers the README’s snippet as written', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('\n## Trusted documents\n'),
      readme.indexOf('\n## ', readme.indexOf('\n## Trusted documents\n') + 1),
    );
    const snippets = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(snippets).toHaveLength(1);
    // The token the snippet expects, from the example client's sign-up sent by id.
    const manifest = JSON.parse(readFileSync(exampleManifest, 'utf8')) as Record<string, string>;
    const register = Object.keys(manifest).find((id) => manifest[id]!.startsWith('mutation RegisterOrganization('))!;
    const slug = `readme-${uid()}`;
    const input = { name: 'Trusted Co', slug, username: 'ada', displayName: 'Ada', password: 'correct horse battery' };
    const token = ok(await post<{ registerOrganization: { token: string } }>(s, { documentId: register, variables: { input } }))
      .registerOrganization.token;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-euo', 'pipefail', '-c', snippets[0]!.replaceAll('http://localhost:4000', new URL(s.url).origin)], {
        env: { ...process.env, TOKEN: token },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`exit ${code}: ${stderr}`))));
    });
    expect(ok(JSON.parse(out) as GqlResult<{ channels: { edges: unknown[] } }>).channels.edges).toEqual([]);
  });
});
