// A minimal typed client: registers an organization, opens a channel, sends a
// message and prints the inbox. Run against a running server:
//   npm run codegen && npx tsx examples/client.ts [http://localhost:4000/graphql] [--document-ids]
// With --document-ids it sends each document's id instead of its text, as a
// first-party client of a server with TRUSTED_DOCUMENTS does (README,
// "Trusted documents"); codegen writes the manifest such a server loads to
// examples/generated/persisted-documents.json.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { CreateChannelDocument, InboxDocument, RegisterOrganizationDocument, SendMessageDocument } from './generated/graphql.ts';

const args = process.argv.slice(2);
const endpoint = args.find((arg) => !arg.startsWith('--')) ?? 'http://localhost:4000/graphql';
const byId = args.includes('--document-ids');
let token: string | null = null;

/** The document's id in the manifest: codegen puts it on each document it generates. */
function documentId(document: object): string {
  const id = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!id) throw new Error('a document without an id: run `npm run codegen`');
  return id;
}

async function request<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(byId ? { documentId: documentId(document), variables } : { query: print(document), variables }),
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
