import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createProject, errorCode, ok, registerOrg, type TestOrg } from './helpers/fixtures.ts';

// The input policy (issue 13 §4): names and titles refuse characters that hide
// themselves or reorder the text around them (Trojan Source); message bodies
// keep what users type but close any bidi control they leave open.

const RLO = '\u202E';
const PDF = '\u202C';
const RLI = '\u2067';
const PDI = '\u2069';

let s: TestServer;
let org: TestOrg;
let channel: string;
let project: string;
let users = 0;
const username = () => `policy-${process.pid}-${++users}`;

beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  channel = await createChannel(s, org.owner.token);
  project = await createProject(s, org.owner.token);
});
afterAll(async () => {
  await s?.stop();
});

const SEND = `mutation($c: ID!, $b: String!) { sendMessage(input: { channelId: $c, body: $b }) { id body } }`;
const EDIT = `mutation($id: ID!, $b: String!) { editMessage(input: { id: $id, body: $b }) { body } }`;

/** Each naming input, as a function of the value to try. */
const names: [string, (value: string) => Promise<unknown>][] = [
  [
    'displayName',
    (v) =>
      s.gql(
        `mutation($d: String!) { createUser(input: { username: "${username()}", displayName: $d, role: MEMBER, password: "password123" }) { id } }`,
        { d: v },
        org.owner.token,
      ),
  ],
  [
    'channel name',
    (v) => s.gql(`mutation($n: String!) { createChannel(input: { kind: GROUP, name: $n }) { id } }`, { n: v }, org.owner.token),
  ],
  [
    'channel rename',
    (v) =>
      s.gql(
        `mutation($c: ID!, $n: String) { updateChannel(input: { channelId: $c, name: $n }) { id } }`,
        { c: channel, n: v },
        org.owner.token,
      ),
  ],
  ['project name', (v) => s.gql(`mutation($n: String!) { createProject(input: { name: $n }) { id } }`, { n: v }, org.owner.token)],
  [
    'request title',
    (v) =>
      s.gql(
        `mutation($p: ID!, $t: String!) { createClientRequest(input: { projectId: $p, type: INFORMATION, title: $t, description: "d" }) { id } }`,
        { p: project, t: v },
        org.owner.token,
      ),
  ],
  [
    'ticket subject',
    (v) =>
      s.gql(
        `mutation($t: String!) { openSupportTicket(input: { subject: $t, message: "d", category: OTHER, priority: LOW }) { id } }`,
        { t: v },
        org.owner.token,
      ),
  ],
  ['API key name', (v) => s.gql(`mutation($n: String!) { createApiKey(name: $n) { secret } }`, { n: v }, org.owner.token)],
];

describe('names and titles', () => {
  it.each(names)('%s refuses bidi controls and invisible characters, naming the code point', async (_field, attempt) => {
    for (const [value, code] of [
      [`invoice${RLO}fdp.exe`, 'U+202E'],
      [`ad\u200Bmin`, 'U+200B'],
      [`${RLI}admin${PDI}`, 'U+2067'],
      [`x\u2060y`, 'U+2060'],
      [`tab\there`, 'U+0009'],
    ] as const) {
      const result = (await attempt(value)) as { errors?: { message: string; extensions?: { code?: string } }[] };
      expect(errorCode(result), value).toBe('BAD_USER_INPUT');
      expect(result.errors?.[0]?.message).toContain(code);
    }
  });

  it.each(names)('%s keeps emoji sequences, flags and the joiners scripts need', async (_field, attempt) => {
    for (const value of [
      `Family 👨\u200D👩\u200D👧 ${Math.random().toString(36).slice(2, 6)}`,
      `Scotland 🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} ${Math.random().toString(36).slice(2, 6)}`,
      `می\u200Cخواهم ${Math.random().toString(36).slice(2, 6)}`,
      `שלום ${Math.random().toString(36).slice(2, 6)}`,
    ]) {
      ok((await attempt(value)) as { errors?: undefined; data?: unknown });
    }
  });
});

describe('message bodies', () => {
  it('close a bidi override or isolate left open, and keep balanced text as typed', async () => {
    const open = ok(await s.gql(SEND, { c: channel, b: `see ${RLO}txt.exe` }, org.owner.token)).sendMessage;
    expect(open.body).toBe(`see ${RLO}txt.exe${PDF}`);
    const nested = ok(await s.gql(SEND, { c: channel, b: `a ${RLI}b ${RLO}c` }, org.owner.token)).sendMessage;
    expect(nested.body).toBe(`a ${RLI}b ${RLO}c${PDF}${PDI}`);
    const balanced = `quote: ${RLI}שלום${PDI} and ${RLO}x${PDF} done`;
    expect(ok(await s.gql(SEND, { c: channel, b: balanced }, org.owner.token)).sendMessage.body).toBe(balanced);
    // An isolate's PDI closes what was opened inside it; a stray PDF closes nothing.
    const stray = `${PDF}a ${RLI}b ${RLO}c${PDI} d`;
    expect(ok(await s.gql(SEND, { c: channel, b: stray }, org.owner.token)).sendMessage.body).toBe(stray);
    // Edits follow the same rule.
    expect(ok(await s.gql(EDIT, { id: open.id, b: `edited ${RLO}x` }, org.owner.token)).editMessage.body).toBe(`edited ${RLO}x${PDF}`);
  });
});
