import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PASSWORD, seed } from '../src/scripts/seed.ts';
import { startServer, uid, type TestServer } from './helpers/app.ts';
import { ok } from './helpers/fixtures.ts';
import { graphql } from './generated/index.ts';
import type { SeedChannelQuery, SeedChannelsQuery } from './generated/graphql.ts';

const CHANNELS = graphql(`
  query SeedChannels {
    channels(first: 10) {
      edges {
        node {
          id
          kind
          name
          project {
            name
          }
        }
      }
    }
  }
`);
const MESSAGES = graphql(`
  query SeedChannel($id: ID!) {
    channel(id: $id) {
      messages(first: 20) {
        edges {
          node {
            id
            body
            edited
            replyCount
            sender {
              username
            }
            parent {
              id
            }
          }
        }
      }
    }
  }
`);

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

type SeenChannel = Pick<SeedChannelsQuery['channels']['edges'][number]['node'], 'kind' | 'project'> & {
  messages: SeedChannelQuery['channel']['messages']['edges'][number]['node'][];
};

/** The viewer's channels by name (DMs by kind) with their messages, read over HTTP as a client would. */
async function channelsOf(token: string): Promise<Map<string, SeenChannel>> {
  const { channels } = ok(await s.gql(CHANNELS, {}, token));
  const seen = new Map<string, SeenChannel>();
  for (const { node } of channels.edges) {
    const { channel } = ok(await s.gql(MESSAGES, { id: node.id }, token));
    seen.set(node.name ?? node.kind, { kind: node.kind, project: node.project, messages: channel.messages.edges.map((e) => e.node) });
  }
  return seen;
}

// Unique slugs keep these tests independent of each other and of other runs; `npm run seed` uses "demo".
describe('seed', () => {
  it('creates one user of each role, a project, channels and messages the users can read', async () => {
    const slug = `demo-${uid()}`;
    const result = await seed(s.app, { slug });
    expect(result.created).toBe(true);
    expect(result.users.map((u) => u.role)).toEqual(['OWNER', 'ADMIN', 'STAFF', 'MEMBER', 'CLIENT']);
    const token = Object.fromEntries(result.users.map((u) => [u.role, u.token]));

    const staff = await channelsOf(token.STAFF!);
    expect([...staff.keys()].sort()).toEqual(['DIRECT', 'general', 'hotel-renovation']);
    const project = staff.get('hotel-renovation')!;
    expect(project.project?.name).toBe('Hotel Renovation');
    const kickoff = project.messages.find((m) => m.replyCount > 0);
    expect(kickoff?.replyCount).toBe(2);
    expect(project.messages.filter((m) => m.parent?.id === kickoff?.id)).toHaveLength(2);
    expect(project.messages.find((m) => m.edited)?.body).toContain('Thursday');

    const client = await channelsOf(token.CLIENT!);
    expect([...client.keys()]).toEqual(['hotel-renovation']);
    expect(client.get('hotel-renovation')!.messages.length).toBe(project.messages.length);

    const member = await channelsOf(token.MEMBER!);
    expect([...member.keys()].sort()).toEqual(['DIRECT', 'general', 'hotel-renovation']);
    expect(member.get('DIRECT')!.messages.map((m) => m.sender.username)).toEqual(['sam', 'maya']);

    for (const role of ['OWNER', 'ADMIN']) {
      const channels = await channelsOf(token[role]!);
      expect([...channels.keys()], role).toEqual(['general']);
      expect(channels.get('general')!.messages).toHaveLength(2);
    }

    // The printed password signs the users in.
    const login = await s.gql(
      graphql(`
        mutation SeedLogin($o: String!, $u: String!, $p: String!) {
          login(organization: $o, username: $u, password: $p) {
            user {
              role
            }
          }
        }
      `),
      {
        o: slug,
        u: 'chris',
        p: DEMO_PASSWORD,
      },
    );
    expect(ok(login).login.user.role).toBe('CLIENT');
  });

  it('is safe to run again: nothing is duplicated and the tokens work', async () => {
    const slug = `demo-${uid()}`;
    const first = await seed(s.app, { slug });
    expect(first.created).toBe(true);
    const before = await channelsOf(first.users.find((u) => u.role === 'STAFF')!.token);
    const again = await seed(s.app, { slug });
    expect(again.created).toBe(false);
    expect(again.users.map((u) => u.username)).toEqual(['olivia', 'adam', 'sam', 'maya', 'chris']);
    const staff = await channelsOf(again.users.find((u) => u.role === 'STAFF')!.token);
    expect([...staff.keys()].sort()).toEqual([...before.keys()].sort());
    expect(staff.get('hotel-renovation')!.messages).toHaveLength(before.get('hotel-renovation')!.messages.length);
    const projects = ok(
      await s.gql(
        graphql(`
          query SeedProjects {
            projects(first: 10) {
              edges {
                node {
                  name
                }
              }
            }
          }
        `),
        {},
        again.users[0]!.token,
      ),
    );
    expect(projects.projects.edges).toEqual([{ node: { name: 'Hotel Renovation' } }]);
  });
});
