import { expect } from 'vitest';
import { graphql } from '../generated/index.ts';
import type { ChannelKind, ProjectRole, Role, SendMessageInput } from '../generated/graphql.ts';
import { uid, type GqlResult, type GqlEndpoint } from './app.ts';

export interface TestUser {
  id: string;
  username: string;
  token: string;
  role: Role;
}

export interface TestOrg {
  slug: string;
  owner: TestUser;
}

/** Asserts a result has no errors and returns its data. */
export function ok<R extends GqlResult<unknown>>(result: R): NonNullable<R['data']> {
  expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
  return result.data as NonNullable<R['data']>;
}

/** Asserts the first error carries `code` (and returns it for more checks). */
export function errorCode(result: GqlResult<unknown>): string | undefined {
  return result.errors?.[0]?.extensions?.code as string | undefined;
}

const RegisterOrganization = graphql(`
  mutation RegisterOrganization($input: RegisterOrganizationInput!) {
    registerOrganization(input: $input) {
      token
      user {
        id
        username
        role
      }
    }
  }
`);
const CreateUser = graphql(`
  mutation CreateUser($input: CreateUserInput!) {
    createUser(input: $input) {
      id
    }
  }
`);
const Login = graphql(`
  mutation Login($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
    }
  }
`);
const CreateProject = graphql(`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) {
      id
    }
  }
`);
const GrantProjectAccess = graphql(`
  mutation GrantProjectAccess($input: GrantProjectAccessInput!) {
    grantProjectAccess(input: $input) {
      id
    }
  }
`);
const CreateChannel = graphql(`
  mutation CreateChannel($input: CreateChannelInput!) {
    createChannel(input: $input) {
      id
    }
  }
`);

export async function registerOrg(s: GqlEndpoint): Promise<TestOrg> {
  const slug = `org-${uid()}`;
  const data = ok(
    await s.gql(RegisterOrganization, {
      input: { name: `Org ${slug}`, slug, username: 'owner', displayName: 'Owner', password: 'password123' },
    }),
  );
  const { token, user } = data.registerOrganization;
  return { slug, owner: { ...user, token } };
}

/** Creates a user through the admin API and signs them in. */
export async function createUser(s: GqlEndpoint, org: TestOrg, role: Role = 'MEMBER', username = `u-${uid()}`): Promise<TestUser> {
  const created = ok(
    await s.gql(CreateUser, { input: { username, displayName: username, role, password: 'password123' } }, org.owner.token),
  );
  const login = ok(await s.gql(Login, { o: org.slug, u: username, p: 'password123' }));
  return { id: created.createUser.id, username, token: login.login.token, role };
}

export async function createProject(s: GqlEndpoint, token: string, name = `p-${uid()}`): Promise<string> {
  const data = ok(await s.gql(CreateProject, { input: { name } }, token));
  return data.createProject.id;
}

export async function grantAccess(
  s: GqlEndpoint,
  token: string,
  projectId: string,
  userId: string,
  role: ProjectRole = 'CLIENT',
  canComment?: boolean,
) {
  return ok(
    await s.gql(GrantProjectAccess, { input: { projectId, userId, role, ...(canComment === undefined ? {} : { canComment }) } }, token),
  );
}

export async function createChannel(
  s: GqlEndpoint,
  token: string,
  input: { kind?: ChannelKind; name?: string; projectId?: string; memberIds?: string[] } = {},
): Promise<string> {
  const data = ok(await s.gql(CreateChannel, { input: { kind: 'GROUP', name: `c-${uid()}`, ...input } }, token));
  return data.createChannel.id;
}

export const SEND = graphql(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) {
      id
      seq
      body
      clientMessageId
    }
  }
`);

export async function send(s: GqlEndpoint, token: string, channelId: string, body: string, extra: Partial<SendMessageInput> = {}) {
  const data = ok(await s.gql(SEND, { input: { channelId, body, ...extra } }, token));
  return data.sendMessage;
}
