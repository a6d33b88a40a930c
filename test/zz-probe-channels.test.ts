import { afterAll, beforeAll, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, registerOrg, send } from './helpers/fixtures.ts';

let s: TestServer;
beforeAll(async () => { s = await startServer(); });
afterAll(async () => { await s?.stop(); });

it('probe', async () => {
  const org = await registerOrg(s);
  const u = await createUser(s, org);
  const c1 = await createChannel(s, org.owner.token, { memberIds: [u.id] });
  await send(s, u.token, c1, 'hi');
  const Q = `query($f:Int){ channels(first:$f){ edges { node { name unreadCount lastMessage { body sender { username } } membership { lastReadSeq } } } } }`;
  let before = s.app.queryCount();
  console.log(JSON.stringify(await s.gql(Q, { f: 101 }, org.owner.token)));
  console.log('queries', s.app.queryCount() - before);
  for (let i = 0; i < 10; i++) { const c = await createChannel(s, org.owner.token, { memberIds: [u.id] }); await send(s, u.token, c, 'm' + i); }
  before = s.app.queryCount();
  const r = await s.gql(Q, { f: 20 }, org.owner.token);
  console.log('queries', s.app.queryCount() - before, r.data.channels.edges.length);
  const b64 = (x: string) => Buffer.from(x).toString('base64');
  for (const id of ['garbage', '', b64('Channel:xyz'), b64('User:' + '00000000-0000-0000-0000-000000000000'), b64('Channel:00000000-0000-0000-0000-000000000000')])
    console.log(id, JSON.stringify((await s.gql(`query($id:ID!){ channel(id:$id){ id } }`, { id }, org.owner.token)).errors));
  console.log(JSON.stringify(await s.gql(`query($f:ChannelFilter){ channels(filter:$f){ edges { node { id } } } }`, { f: { projectId: 'garbage' } }, org.owner.token)));
  console.log(JSON.stringify(await s.gql(`mutation($u:[ID!]!){ openDirectChannel(userIds:$u){ id } }`, { u: ['garbage'] }, org.owner.token)));
  console.log(JSON.stringify(await s.gql(`mutation($u:[ID!]!){ openDirectChannel(userIds:$u){ id } }`, { u: [c1] }, org.owner.token)));
});
