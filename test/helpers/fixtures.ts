import { expect } from 'vitest';
import { uid, type GqlResult, type GqlEndpoint } from './app.ts';

export interface TestUser {
  id: string;
  username: string;
  token: string;
  role: string;
}

export interface TestOrg {
  slug: string;
  owner: TestUser;
}

/** Asserts a result has no errors and returns its data. */
export function ok<T>(result: GqlResult<T>): T {
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data as T;
}

/** Asserts the first error carries `code` (and returns it for more checks). */
export function errorCode(result: GqlResult<unknown>): string | undefined {
  return result.errors?.[0]?.extensions?.code;
}

const AUTH = `token user { id username role }`;

export async function registerOrg(s: GqlEndpoint): Promise<TestOrg> {
  const slug = `org-${uid()}`;
  const data = ok(
    await s.gql<{ registerOrganization: { token: string; user: { id: string; username: string; role: string } } }>(
      `mutation($input: RegisterOrganizationInput!) { registerOrganization(input: $input) { ${AUTH} } }`,
      { input: { name: `Org ${slug}`, slug, username: 'owner', displayName: 'Owner', password: 'password123' } },
    ),
  );
  const { token, user } = data.registerOrganization;
  return { slug, owner: { ...user, token } };
}

/** Creates a user through the admin API and signs them in. */
export async function createUser(s: GqlEndpoint, org: TestOrg, role = 'MEMBER', username = `u-${uid()}`): Promise<TestUser> {
  const created = ok(
    await s.gql<{ createUser: { id: string } }>(
      `mutation($input: CreateUserInput!) { createUser(input: $input) { id } }`,
      { input: { username, displayName: username, role, password: 'password123' } },
      org.owner.token,
    ),
  );
  const login = ok(
    await s.gql<{ login: { token: string } }>(
      `mutation($o: String!, $u: String!, $p: String!) { login(organization: $o, username: $u, password: $p) { token } }`,
      { o: org.slug, u: username, p: 'password123' },
    ),
  );
  return { id: created.createUser.id, username, token: login.login.token, role };
}

export async function createProject(s: GqlEndpoint, token: string, name = `p-${uid()}`): Promise<string> {
  const data = ok(
    await s.gql<{ createProject: { id: string } }>(
      `mutation($input: CreateProjectInput!) { createProject(input: $input) { id } }`,
      { input: { name } },
      token,
    ),
  );
  return data.createProject.id;
}

export async function grantAccess(s: GqlEndpoint, token: string, projectId: string, userId: string, role = 'CLIENT', canComment?: boolean) {
  return ok(
    await s.gql(
      `mutation($input: GrantProjectAccessInput!) { grantProjectAccess(input: $input) { id } }`,
      { input: { projectId, userId, role, ...(canComment === undefined ? {} : { canComment }) } },
      token,
    ),
  );
}

export async function createChannel(
  s: GqlEndpoint,
  token: string,
  input: { kind?: string; name?: string; projectId?: string; memberIds?: string[] } = {},
): Promise<string> {
  const data = ok(
    await s.gql<{ createChannel: { id: string } }>(
      `mutation($input: CreateChannelInput!) { createChannel(input: $input) { id } }`,
      { input: { kind: 'GROUP', name: `c-${uid()}`, ...input } },
      token,
    ),
  );
  return data.createChannel.id;
}

export const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq body clientMessageId } }`;

export async function send(s: GqlEndpoint, token: string, channelId: string, body: string, extra: Record<string, unknown> = {}) {
  const data = ok(
    await s.gql<{ sendMessage: { id: string; seq: number; body: string; clientMessageId: string | null } }>(
      SEND,
      { input: { channelId, body, ...extra } },
      token,
    ),
  );
  return data.sendMessage;
}
