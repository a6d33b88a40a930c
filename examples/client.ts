// A minimal typed client: registers an organization, opens a channel, sends a
// message and prints the inbox. Run against a running server:
//   npm run codegen && npx tsx examples/client.ts [http://localhost:4000/graphql]
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { CreateChannelDocument, InboxDocument, RegisterOrganizationDocument, SendMessageDocument } from './generated/graphql.ts';

const endpoint = process.argv[2] ?? 'http://localhost:4000/graphql';
let token: string | null = null;

async function request<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const result = (await response.json()) as { data?: R; errors?: { message: string; extensions?: { code?: string } }[] };
  if (result.errors?.length) throw new Error(result.errors.map((e) => `${e.extensions?.code}: ${e.message}`).join('; '));
  return result.data as R;
}

const slug = `example-${Date.now().toString(36)}`;
const { registerOrganization } = await request(RegisterOrganizationDocument, {
  input: { name: 'Example Co', slug, username: 'ada', displayName: 'Ada', password: 'correct horse battery' },
});
token = registerOrganization.token;
const { createChannel } = await request(CreateChannelDocument, { input: { kind: 'GROUP', name: 'general' } });
await request(SendMessageDocument, {
  input: { channelId: createChannel.id, body: 'Hello from the typed client', clientMessageId: 'hello-1' },
});
const { channels } = await request(InboxDocument, { first: 10 });
for (const { node } of channels.edges) console.log(`#${node.name}: ${node.lastMessage?.body} (${node.unreadCount} unread)`);
