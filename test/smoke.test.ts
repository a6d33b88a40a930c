import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, ok, registerOrg, send } from './helpers/fixtures.ts';
import { graphql } from './generated/index.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

describe('smoke', () => {
  it('registers, creates a channel, sends and reads back', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const m = await send(s, org.owner.token, channelId, '  hello  ');
    expect(m.body).toBe('hello');
    expect(m.seq).toBe(2);
    const data = ok(
      await s.gql(
        graphql(`
          query SmokeChannel($id: ID!) {
            channel(id: $id) {
              name
              unreadCount
              lastMessage {
                body
              }
              messages(first: 10) {
                edges {
                  node {
                    seq
                    body
                    sender {
                      username
                    }
                  }
                }
              }
            }
          }
        `),
        { id: channelId },
        org.owner.token,
      ),
    );
    expect(data.channel.messages.edges.map((e) => e.node.body)).toEqual(['hello']);
    expect(data.channel.lastMessage?.body).toBe('hello');
  });
});
