import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, uid, type TestServer } from './helpers/app.ts';
import { createChannel, createProject, createUser, errorCode, grantAccess, ok, registerOrg, type TestOrg } from './helpers/fixtures.ts';
import { graphql } from './generated/index.ts';
import type { CreateUserInput, Role } from './generated/graphql.ts';

const CREATE_USER = graphql(`
  mutation AdminCreateUser($input: CreateUserInput!) {
    createUser(input: $input) {
      id
      username
      displayName
      email
      role
      deactivated
    }
  }
`);
const CHANGE_ROLE = graphql(`
  mutation AdminChangeUserRole($userId: ID!, $role: Role!) {
    changeUserRole(userId: $userId, role: $role) {
      id
      role
    }
  }
`);
const DEACTIVATE = graphql(`
  mutation AdminDeactivateUser($userId: ID!) {
    deactivateUser(userId: $userId) {
      id
      deactivated
    }
  }
`);
const REACTIVATE = graphql(`
  mutation AdminReactivateUser($userId: ID!) {
    reactivateUser(userId: $userId) {
      id
      deactivated
    }
  }
`);
const LOGIN = graphql(`
  mutation AdminLogin($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
    }
  }
`);
const VIEWER = graphql(`
  query AdminViewer {
    viewer {
      id
      role
      organization {
        id
      }
    }
  }
`);
const CREATE_PROJECT = graphql(`
  mutation AdminCreateProject($input: CreateProjectInput!) {
    createProject(input: $input) {
      id
      name
      description
    }
  }
`);
const GRANT = graphql(`
  mutation AdminGrantProjectAccess($input: GrantProjectAccessInput!) {
    grantProjectAccess(input: $input) {
      id
      role
      canComment
      user {
        id
      }
      project {
        id
      }
    }
  }
`);
const REVOKE = graphql(`
  mutation AdminRevokeProjectAccess($projectId: ID!, $userId: ID!) {
    revokeProjectAccess(projectId: $projectId, userId: $userId)
  }
`);
const PROJECTS = graphql(`
  query AdminProjects {
    projects(first: 50) {
      edges {
        node {
          id
          name
        }
      }
    }
  }
`);
const PROJECT = graphql(`
  query AdminProject($id: ID!) {
    project(id: $id) {
      id
      name
    }
  }
`);
const USERS = graphql(`
  query AdminUsers {
    users(first: 100) {
      edges {
        node {
          id
          username
          email
          role
        }
      }
    }
  }
`);

const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

let s: TestServer;
let db: pg.Client;
beforeAll(async () => {
  s = await startServer();
  db = new pg.Client({ connectionString: s.app.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await s?.stop();
});

function newUserInput(role: Role, overrides: Partial<CreateUserInput> = {}): CreateUserInput {
  const username = `u-${uid()}`;
  return { username, displayName: `User ${username}`, email: `${username}@example.com`, role, password: 'password123', ...overrides };
}

async function orgWithStaff(): Promise<{
  org: TestOrg;
  admin: Awaited<ReturnType<typeof createUser>>;
  staff: Awaited<ReturnType<typeof createUser>>;
  member: Awaited<ReturnType<typeof createUser>>;
  client: Awaited<ReturnType<typeof createUser>>;
}> {
  const org = await registerOrg(s);
  const [admin, staff, member, client] = await Promise.all([
    createUser(s, org, 'ADMIN'),
    createUser(s, org, 'STAFF'),
    createUser(s, org, 'MEMBER'),
    createUser(s, org, 'CLIENT'),
  ]);
  return { org, admin, staff, member, client };
}

const projectNames = (data: { projects: { edges: { node: { name: string } }[] } }) => data.projects.edges.map((e) => e.node.name).sort();

describe('createUser', () => {
  it('lets owners and admins create users who can then sign in', async () => {
    const { org, admin } = await orgWithStaff();
    const input = newUserInput('STAFF');
    const { createUser: created } = ok(await s.gql(CREATE_USER, { input }, admin.token));
    expect(created).toMatchObject({ username: input.username, email: input.email, role: 'STAFF', deactivated: false });
    const { login } = ok(await s.gql(LOGIN, { o: org.slug, u: input.username, p: input.password }));
    const { viewer } = ok(await s.gql(VIEWER, {}, login.token));
    expect(viewer).toMatchObject({ id: created.id, role: 'STAFF' });
  });

  it('is FORBIDDEN to staff, members and clients, and UNAUTHENTICATED without a token', async () => {
    const { staff, member, client } = await orgWithStaff();
    for (const user of [staff, member, client]) {
      const result = await s.gql(CREATE_USER, { input: newUserInput('MEMBER') }, user.token);
      expect(errorCode(result), user.role).toBe('FORBIDDEN');
    }
    expect(errorCode(await s.gql(CREATE_USER, { input: newUserInput('MEMBER') }))).toBe('UNAUTHENTICATED');
  });

  it('lets only owners create owners', async () => {
    const { org, admin } = await orgWithStaff();
    expect(errorCode(await s.gql(CREATE_USER, { input: newUserInput('OWNER') }, admin.token))).toBe('FORBIDDEN');
    const { createUser: created } = ok(await s.gql(CREATE_USER, { input: newUserInput('OWNER') }, org.owner.token));
    expect(created.role).toBe('OWNER');
  });

  it('rejects a username taken in the same organization but not in another one', async () => {
    const a = await registerOrg(s);
    const b = await registerOrg(s);
    const input = newUserInput('MEMBER');
    ok(await s.gql(CREATE_USER, { input }, a.owner.token));
    const again = await s.gql(CREATE_USER, { input: { ...input, displayName: 'Someone else' } }, a.owner.token);
    expect(errorCode(again)).toBe('CONFLICT');
    expect(again.errors?.[0]?.extensions?.field).toBe('username');
    ok(await s.gql(CREATE_USER, { input }, b.owner.token));
  });

  it.each([
    ['username', { username: 'no spaces allowed' }],
    ['password', { password: 'short' }],
    ['email', { email: 'nope' }],
    ['displayName', { displayName: '' }],
  ])('rejects an invalid %s with BAD_USER_INPUT', async (field, overrides) => {
    const org = await registerOrg(s);
    const result = await s.gql(CREATE_USER, { input: newUserInput('MEMBER', overrides) }, org.owner.token);
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.extensions?.field).toBe(`input.${field}`);
  });
});

describe('changeUserRole', () => {
  it('changes the role, and the user’s existing token carries the new role at once', async () => {
    const { admin, member } = await orgWithStaff();
    const { changeUserRole } = ok(await s.gql(CHANGE_ROLE, { userId: member.id, role: 'STAFF' }, admin.token));
    expect(changeUserRole).toEqual({ id: member.id, role: 'STAFF' });
    expect(ok(await s.gql(VIEWER, {}, member.token)).viewer.role).toBe('STAFF');
    // The new role takes effect: staff may create projects.
    await createProject(s, member.token);
  });

  it('does not let an admin grant OWNER or touch an owner', async () => {
    const { org, admin, member } = await orgWithStaff();
    expect(errorCode(await s.gql(CHANGE_ROLE, { userId: member.id, role: 'OWNER' }, admin.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(CHANGE_ROLE, { userId: org.owner.id, role: 'MEMBER' }, admin.token))).toBe('FORBIDDEN');
    expect(ok(await s.gql(VIEWER, {}, org.owner.token)).viewer.role).toBe('OWNER');
    // An owner may promote to OWNER.
    expect(ok(await s.gql(CHANGE_ROLE, { userId: member.id, role: 'OWNER' }, org.owner.token)).changeUserRole.role).toBe('OWNER');
  });

  it('does not let anyone change their own role', async () => {
    const { org, admin } = await orgWithStaff();
    expect(errorCode(await s.gql(CHANGE_ROLE, { userId: admin.id, role: 'STAFF' }, admin.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(CHANGE_ROLE, { userId: org.owner.id, role: 'ADMIN' }, org.owner.token))).toBe('FORBIDDEN');
    expect(ok(await s.gql(VIEWER, {}, admin.token)).viewer.role).toBe('ADMIN');
  });

  it('is FORBIDDEN to non-admins and NOT_FOUND for another organization’s user', async () => {
    const { staff, member } = await orgWithStaff();
    expect(errorCode(await s.gql(CHANGE_ROLE, { userId: member.id, role: 'STAFF' }, staff.token))).toBe('FORBIDDEN');
    const other = await registerOrg(s);
    expect(errorCode(await s.gql(CHANGE_ROLE, { userId: member.id, role: 'STAFF' }, other.owner.token))).toBe('NOT_FOUND');
    expect(ok(await s.gql(VIEWER, {}, member.token)).viewer.role).toBe('MEMBER');
  });
});

describe('deactivateUser and reactivateUser', () => {
  it('stops the user’s token at once and blocks login until reactivated', async () => {
    const { org, admin, member } = await orgWithStaff();
    ok(await s.gql(VIEWER, {}, member.token));
    const { deactivateUser } = ok(await s.gql(DEACTIVATE, { userId: member.id }, admin.token));
    expect(deactivateUser).toEqual({ id: member.id, deactivated: true });

    expect(errorCode(await s.gql(VIEWER, {}, member.token))).toBe('UNAUTHENTICATED');
    const login = await s.gql(LOGIN, { o: org.slug, u: member.username, p: 'password123' });
    expect(errorCode(login)).toBe('UNAUTHENTICATED');
    // Same answer as a wrong password: a deactivated account is not disclosed.
    const wrong = await s.gql(LOGIN, { o: org.slug, u: member.username, p: 'not-the-password' });
    expect(login.errors?.[0]?.message).toBe(wrong.errors?.[0]?.message);

    expect(ok(await s.gql(REACTIVATE, { userId: member.id }, admin.token)).reactivateUser.deactivated).toBe(false);
    const { login: again } = ok(await s.gql(LOGIN, { o: org.slug, u: member.username, p: 'password123' }));
    expect(ok(await s.gql(VIEWER, {}, again.token)).viewer.id).toBe(member.id);
  });

  it('does not let an admin deactivate an owner, nor anyone themselves, nor non-admins anyone', async () => {
    const { org, admin, staff, member } = await orgWithStaff();
    expect(errorCode(await s.gql(DEACTIVATE, { userId: org.owner.id }, admin.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(DEACTIVATE, { userId: admin.id }, admin.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(DEACTIVATE, { userId: member.id }, staff.token))).toBe('FORBIDDEN');
    for (const user of [org.owner, admin, member]) ok(await s.gql(VIEWER, {}, user.token));
  });

  it('treats reactivating an active user, oneself included, as done, with nothing audited', async () => {
    const { admin, member } = await orgWithStaff();
    const audited = async () =>
      (await db.query('SELECT count(*)::int AS n FROM "AuditLog" WHERE "targetId" = ANY($1)', [[rawId(admin.id), rawId(member.id)]]))
        .rows[0].n as number;
    const before = await audited();
    expect(ok(await s.gql(REACTIVATE, { userId: admin.id }, admin.token)).reactivateUser).toEqual({ id: admin.id, deactivated: false });
    expect(ok(await s.gql(REACTIVATE, { userId: member.id }, admin.token)).reactivateUser).toEqual({ id: member.id, deactivated: false });
    expect(await audited()).toBe(before);
    const self = await s.gql(DEACTIVATE, { userId: admin.id }, admin.token);
    expect(self.errors?.[0]).toMatchObject({ message: 'You cannot deactivate yourself', extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('gives NOT_FOUND for another organization’s user and for a malformed id', async () => {
    const { member } = await orgWithStaff();
    const other = await registerOrg(s);
    expect(errorCode(await s.gql(DEACTIVATE, { userId: member.id }, other.owner.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(DEACTIVATE, { userId: Buffer.from('User:not-a-uuid').toString('base64') }, other.owner.token))).toBe(
      'NOT_FOUND',
    );
    ok(await s.gql(VIEWER, {}, member.token));
  });
});

describe('projects', () => {
  it('lets staff create projects; a duplicate name in the organization is a CONFLICT', async () => {
    const { staff, member, client } = await orgWithStaff();
    const name = `Project ${uid()}`;
    const { createProject: project } = ok(await s.gql(CREATE_PROJECT, { input: { name, description: 'Windows' } }, staff.token));
    expect(project).toMatchObject({ name, description: 'Windows' });
    const dup = await s.gql(CREATE_PROJECT, { input: { name } }, staff.token);
    expect(errorCode(dup)).toBe('CONFLICT');
    expect(dup.errors?.[0]?.extensions?.field).toBe('name');
    for (const user of [member, client]) {
      expect(errorCode(await s.gql(CREATE_PROJECT, { input: { name: `Other ${uid()}` } }, user.token)), user.role).toBe('FORBIDDEN');
    }
    // Names are unique per organization only.
    const other = await registerOrg(s);
    ok(await s.gql(CREATE_PROJECT, { input: { name } }, other.owner.token));
  });

  it('rejects an empty project name with BAD_USER_INPUT', async () => {
    const org = await registerOrg(s);
    const result = await s.gql(CREATE_PROJECT, { input: { name: '   ' } }, org.owner.token);
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.extensions?.field).toBe('input.name');
  });

  it('shows clients only the projects granted to them, and members all of them', async () => {
    const { staff, member, client } = await orgWithStaff();
    const granted = `Granted ${uid()}`;
    const hidden = `Hidden ${uid()}`;
    const grantedId = await createProject(s, staff.token, granted);
    const hiddenId = await createProject(s, staff.token, hidden);

    expect(projectNames(ok(await s.gql(PROJECTS, {}, client.token)))).toEqual([]);
    const { grantProjectAccess } = ok(
      await s.gql(GRANT, { input: { projectId: grantedId, userId: client.id, role: 'CLIENT' } }, staff.token),
    );
    expect(grantProjectAccess).toMatchObject({ role: 'CLIENT', canComment: true, user: { id: client.id }, project: { id: grantedId } });

    expect(projectNames(ok(await s.gql(PROJECTS, {}, client.token)))).toEqual([granted]);
    expect(ok(await s.gql(PROJECT, { id: grantedId }, client.token)).project.name).toBe(granted);
    expect(errorCode(await s.gql(PROJECT, { id: hiddenId }, client.token))).toBe('NOT_FOUND');
    expect(projectNames(ok(await s.gql(PROJECTS, {}, member.token)))).toEqual([granted, hidden].sort());
  });

  it('revoking access hides the project and removes the client from its channels', async () => {
    const { staff, client } = await orgWithStaff();
    const projectId = await createProject(s, staff.token);
    await grantAccess(s, staff.token, projectId, client.id);
    const channelId = await createChannel(s, staff.token, { kind: 'PROJECT', projectId, memberIds: [client.id] });
    const CHANNEL = graphql(`
      query AdminChannel($id: ID!) {
        channel(id: $id) {
          id
        }
      }
    `);
    ok(await s.gql(CHANNEL, { id: channelId }, client.token));

    expect(ok(await s.gql(REVOKE, { projectId, userId: client.id }, staff.token)).revokeProjectAccess).toBe(true);
    expect(projectNames(ok(await s.gql(PROJECTS, {}, client.token)))).toEqual([]);
    expect(errorCode(await s.gql(PROJECT, { id: projectId }, client.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(CHANNEL, { id: channelId }, client.token))).toBe('NOT_FOUND');
    // Revoking again: there is no grant left.
    expect(errorCode(await s.gql(REVOKE, { projectId, userId: client.id }, staff.token))).toBe('NOT_FOUND');
  });

  it('lets only staff grant and revoke, and only inside their organization', async () => {
    const { staff, member, client } = await orgWithStaff();
    const projectId = await createProject(s, staff.token);
    const input = { projectId, userId: client.id, role: 'CLIENT' as const };
    expect(errorCode(await s.gql(GRANT, { input }, member.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(GRANT, { input }, client.token))).toBe('FORBIDDEN');
    expect(projectNames(ok(await s.gql(PROJECTS, {}, client.token)))).toEqual([]);

    const other = await registerOrg(s);
    expect(errorCode(await s.gql(GRANT, { input }, other.owner.token))).toBe('NOT_FOUND');
    const otherProject = await createProject(s, other.owner.token);
    expect(errorCode(await s.gql(GRANT, { input: { ...input, projectId: otherProject } }, other.owner.token))).toBe('NOT_FOUND');

    await grantAccess(s, staff.token, projectId, client.id);
    expect(errorCode(await s.gql(REVOKE, { projectId, userId: client.id }, member.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(REVOKE, { projectId, userId: client.id }, other.owner.token))).toBe('NOT_FOUND');
    expect(projectNames(ok(await s.gql(PROJECTS, {}, client.token)))).toHaveLength(1);
  });

  it('does not grant access to a deactivated user', async () => {
    const { admin, staff, client } = await orgWithStaff();
    const projectId = await createProject(s, staff.token);
    ok(await s.gql(DEACTIVATE, { userId: client.id }, admin.token));
    const result = await s.gql(GRANT, { input: { projectId, userId: client.id, role: 'CLIENT' } }, staff.token);
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
  });
});

describe('users', () => {
  async function orgWithEmails() {
    const org = await registerOrg(s);
    const create = async (role: Role) => {
      const input = newUserInput(role);
      const { createUser: user } = ok(await s.gql(CREATE_USER, { input }, org.owner.token));
      const { login } = ok(await s.gql(LOGIN, { o: org.slug, u: input.username, p: input.password }));
      return { id: user.id, email: input.email, token: login.token };
    };
    const [staff, member, other, client] = await Promise.all([create('STAFF'), create('MEMBER'), create('MEMBER'), create('CLIENT')]);
    return { org, staff, member, other, client };
  }

  it('lists every user of the organization to members, with emails only for themselves', async () => {
    const { org, staff, member, other, client } = await orgWithEmails();
    const { users } = ok(await s.gql(USERS, {}, member.token));
    const byId = new Map(users.edges.map((e) => [e.node.id, e.node]));
    expect([...byId.keys()].sort()).toEqual([org.owner.id, staff.id, member.id, other.id, client.id].sort());
    expect(byId.get(member.id)?.email).toBe(member.email);
    for (const id of [staff.id, other.id, client.id]) expect(byId.get(id)?.email).toBeNull();
  });

  it('shows staff every email', async () => {
    const { staff, member, other, client } = await orgWithEmails();
    const { users } = ok(await s.gql(USERS, {}, staff.token));
    const emails = new Map(users.edges.map((e) => [e.node.id, e.node.email]));
    for (const user of [staff, member, other, client]) expect(emails.get(user.id)).toBe(user.email);
  });

  it('shows clients only themselves, and other users only when they share a channel', async () => {
    const { staff, member, other, client } = await orgWithEmails();
    const { users } = ok(await s.gql(USERS, {}, client.token));
    expect(users.edges.map((e) => e.node)).toEqual([expect.objectContaining({ id: client.id, email: client.email })]);

    const USER = graphql(`
      query AdminUser($id: ID!) {
        user(id: $id) {
          id
          username
          email
        }
      }
    `);
    expect(errorCode(await s.gql(USER, { id: other.id }, client.token))).toBe('NOT_FOUND');
    const projectId = await createProject(s, staff.token);
    await grantAccess(s, staff.token, projectId, client.id);
    await createChannel(s, staff.token, { kind: 'PROJECT', projectId, memberIds: [client.id, member.id] });
    const { user } = ok(await s.gql(USER, { id: member.id }, client.token));
    expect(user).toMatchObject({ id: member.id, email: null });
    expect(errorCode(await s.gql(USER, { id: other.id }, client.token))).toBe('NOT_FOUND');
  });

  it('hides other organizations’ users', async () => {
    const a = await registerOrg(s);
    const b = await registerOrg(s);
    const { users } = ok(await s.gql(USERS, {}, a.owner.token));
    expect(users.edges.map((e) => e.node.id)).toEqual([a.owner.id]);
    expect(
      errorCode(
        await s.gql(
          graphql(`
            query AdminUserId($id: ID!) {
              user(id: $id) {
                id
              }
            }
          `),
          { id: b.owner.id },
          a.owner.token,
        ),
      ),
    ).toBe('NOT_FOUND');
  });

  it('costs the same number of queries for 2 users as for 8', async () => {
    const org = await registerOrg(s);
    const QUERY = graphql(`
      query AdminUsersWithOrganization {
        users(first: 100) {
          edges {
            node {
              id
              username
              email
              role
              deactivated
              organization {
                slug
              }
            }
          }
        }
      }
    `);
    const count = async () => {
      const before = s.app.queryCount();
      ok(await s.gql(QUERY, {}, org.owner.token));
      return s.app.queryCount() - before;
    };
    await createUser(s, org);
    const small = await count();
    for (let i = 0; i < 6; i++) await createUser(s, org);
    expect(await count()).toBe(small);
  });
});

describe('audit log', () => {
  it('records user and project administration with actor and target', async () => {
    const org = await registerOrg(s);
    const orgId = ok(await s.gql(VIEWER, {}, org.owner.token)).viewer.organization.id;
    const user = await createUser(s, org, 'CLIENT');
    ok(await s.gql(CHANGE_ROLE, { userId: user.id, role: 'MEMBER' }, org.owner.token));
    ok(await s.gql(CHANGE_ROLE, { userId: user.id, role: 'CLIENT' }, org.owner.token));
    ok(await s.gql(DEACTIVATE, { userId: user.id }, org.owner.token));
    ok(await s.gql(REACTIVATE, { userId: user.id }, org.owner.token));
    const projectId = await createProject(s, org.owner.token);
    const { grantProjectAccess } = ok(await s.gql(GRANT, { input: { projectId, userId: user.id, role: 'VIEWER' } }, org.owner.token));
    ok(await s.gql(REVOKE, { projectId, userId: user.id }, org.owner.token));
    // A refused action leaves no trace.
    const member = await createUser(s, org, 'MEMBER');
    expect(errorCode(await s.gql(DEACTIVATE, { userId: user.id }, member.token))).toBe('FORBIDDEN');

    // Sign-ins (the fixtures sign users in) are audited too; test/audit-trail.test.ts covers them.
    const { rows } = await db.query<{ action: string; actorId: string; targetType: string; targetId: string; data: unknown }>(
      `SELECT action, "actorId", "targetType", "targetId", data FROM "AuditLog"
       WHERE "organizationId" = $1 AND action NOT LIKE 'session.signIn%' ORDER BY id`,
      [orgId],
    );
    const owner = rawId(org.owner.id);
    const target = rawId(user.id);
    const access = rawId(grantProjectAccess.id);
    expect(rows.map(({ action, actorId, targetType, targetId }) => ({ action, actorId, targetType, targetId }))).toEqual([
      { action: 'organization.register', actorId: owner, targetType: 'Organization', targetId: orgId },
      { action: 'user.create', actorId: owner, targetType: 'User', targetId: target },
      { action: 'user.changeRole', actorId: owner, targetType: 'User', targetId: target },
      { action: 'user.changeRole', actorId: owner, targetType: 'User', targetId: target },
      { action: 'user.deactivate', actorId: owner, targetType: 'User', targetId: target },
      { action: 'user.reactivate', actorId: owner, targetType: 'User', targetId: target },
      { action: 'project.create', actorId: owner, targetType: 'Project', targetId: rawId(projectId) },
      { action: 'project.grant', actorId: owner, targetType: 'ProjectAccess', targetId: access },
      { action: 'project.revoke', actorId: owner, targetType: 'ProjectAccess', targetId: access },
      { action: 'user.create', actorId: owner, targetType: 'User', targetId: rawId(member.id) },
    ]);
    expect(rows[2]!.data).toEqual({ from: 'CLIENT', to: 'MEMBER' });
    expect(rows[7]!.data).toMatchObject({ userId: target, role: 'VIEWER', canComment: false });
  });
});
