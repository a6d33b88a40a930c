import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, OperationTypeNode, type OperationDefinitionNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type GqlResult, type TestServer } from './helpers/app.ts';
import { collect } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';

// The README's GraphQL snippets, run in order as a newcomer pastes them into
// GraphiQL: the token from registerOrganization goes into the Headers tab, and
// each id a snippet names as a variable ($channelId, $projectId) is the one an
// earlier snippet created (createChannel → channelId, sendMessage → messageId). A snippet that stops
// working, or names a variable nothing before it provides, fails here.

const root = new URL('..', import.meta.url).pathname;
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const blocks = (lang: string) => [...readme.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
/** The GraphQL snippets and the shell snippets that call the server (curl), in the README's order. */
const walk = () =>
  [...readme.matchAll(/```(graphql|sh)\n([\s\S]*?)```/g)]
    .map((m) => ({ lang: m[1]!, text: m[2]! }))
    .filter((b) => b.lang === 'graphql' || b.text.includes('curl '));

/** Runs a shell snippet as a reader would, against the test server instead of localhost:4000, in a scratch directory. */
async function runShell(snippet: string, origin: string, token: string | null): Promise<string> {
  const cwd = mkdtempSync(join(tmpdir(), 'parley-readme-'));
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-euo', 'pipefail', '-c', snippet.replaceAll('http://localhost:4000', origin)], {
        cwd,
        env: { ...process.env, TOKEN: token ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
    });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

let s: TestServer;
beforeAll(async () => {
  s = await startServer({ graphiql: true });
});
afterAll(async () => {
  await s?.stop();
});

describe('README', () => {
  it('starts with the command that runs the server and the one that runs the tests', () => {
    const first = blocks('sh')[0]!.split('\n').filter(Boolean);
    expect(first[0]).toMatch(/^npm install && npm start\s/);
    expect(first[1]).toMatch(/^npm test\s/);
  });

  it('runs every GraphQL snippet as written, in order', async () => {
    const snippets = walk();
    expect(snippets.length).toBeGreaterThanOrEqual(5);
    const known: Record<string, unknown> = {};
    let token: string | null = null;
    const learn = (data: Record<string, { token?: string; id?: string } | null> | undefined) => {
      for (const [field, value] of Object.entries(data ?? {})) {
        if (value?.token) token = value.token;
        const created = /^(?:create|send|upload)([A-Z]\w*)$/.exec(field);
        if (created && value?.id) known[`${created[1]![0]!.toLowerCase()}${created[1]!.slice(1)}Id`] = value.id;
      }
    };
    for (const { lang, text: snippet } of snippets) {
      if (lang === 'sh') {
        const out = await runShell(snippet, new URL(s.url).origin, token);
        const result = JSON.parse(out) as GqlResult<Record<string, { id?: string } | null>>;
        expect(result.errors, snippet).toBeUndefined();
        learn(result.data);
        continue;
      }
      const operation = parse(snippet).definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition')!;
      const variables: Record<string, unknown> = {};
      for (const definition of operation.variableDefinitions ?? []) {
        const name = definition.variable.name.value;
        if (name in known) variables[name] = known[name];
        else expect(definition.type.kind, `$${name} in:\n${snippet}\nhas no value from an earlier snippet`).not.toBe('NonNullType');
      }
      if (operation.operation === OperationTypeNode.SUBSCRIPTION) {
        // Replays the channel from the start, as `after` left empty does not: give it 0.
        const client = wsClient(s.url, token);
        try {
          const stream = collect(client, snippet, { ...variables, after: 0 }, (data) => data);
          const [event] = await stream.waitFor(1, 5000);
          expect(stream.errors, snippet).toEqual([]);
          expect(event).toBeTruthy();
        } finally {
          await client.dispose();
        }
        continue;
      }
      // The snippets' root fields answer objects (or null); a scalar answer reads as no token and no id.
      const result: GqlResult<Record<string, { token?: string; id?: string } | null>> = await s.gql(snippet, variables, token);
      expect(result.errors, snippet).toBeUndefined();
      learn(result.data);
    }
    expect(token).toBeTruthy();
  });

  it('runs the example client with `npm run example`', async () => {
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('npm', ['run', '--silent', 'example', '--', s.url], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.once('exit', (code) => resolve({ code, out }));
    });
    expect(run.out).toContain('#general: Hello from the typed client (0 unread)');
    expect(run.code).toBe(0);
  }, 60_000);
});
