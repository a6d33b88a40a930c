// `npm run seed`: a demo organization to explore in GraphiQL, built through the
// services so it obeys the same rules (and channel log) as real traffic.
// Re-running is safe: an existing demo organization is left as it is and its
// users get fresh tokens.
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { buildApp, type App } from '../app.ts';
import { loadConfig, type Config } from '../config.ts';
import type { Viewer } from '../services/viewer.ts';
import type { Role, User } from '../generated/prisma/client.ts';
import { DomainError } from '../services/errors.ts';
import { StartupError } from '../startup-error.ts';

export const DEMO_SLUG = 'demo';
export const DEMO_PASSWORD = 'parley-demo';

const PEOPLE: { role: Role; username: string; displayName: string }[] = [
  { role: 'OWNER', username: 'olivia', displayName: 'Olivia Owner' },
  { role: 'ADMIN', username: 'adam', displayName: 'Adam Admin' },
  { role: 'STAFF', username: 'sam', displayName: 'Sam Staff' },
  { role: 'MEMBER', username: 'maya', displayName: 'Maya Member' },
  { role: 'CLIENT', username: 'chris', displayName: 'Chris Client' },
];

export interface SeededUser {
  id: string;
  username: string;
  role: Role;
  token: string;
}

export interface SeedResult {
  /** False when the organization already existed and was left untouched. */
  created: boolean;
  slug: string;
  users: SeededUser[];
}

const asViewer = (user: User): Viewer => ({
  id: user.id,
  organizationId: user.organizationId,
  role: user.role,
  username: user.username,
  displayName: user.displayName,
});

const email = (username: string) => `${username}@demo.parley.test`;

/** Creates the demo organization, or returns fresh tokens for the one that exists. */
export async function seed(app: App, options: { slug?: string } = {}): Promise<SeedResult> {
  const slug = options.slug ?? DEMO_SLUG;
  const existing = await existingUsers(app, slug);
  if (existing) return { created: false, slug, users: existing };
  try {
    return { created: true, slug, users: await createDemo(app, slug) };
  } catch (error) {
    // Another seed run registered the slug first: report its users instead.
    if (error instanceof DomainError && error.code === 'CONFLICT' && error.details.field === 'slug') {
      return { created: false, slug, users: (await existingUsers(app, slug)) ?? [] };
    }
    throw error;
  }
}

async function existingUsers(app: App, slug: string): Promise<SeededUser[] | null> {
  const org = await app.services.prisma.organization.findUnique({
    where: { slug },
    include: { users: { where: { deactivatedAt: null }, orderBy: { createdAt: 'asc' } } },
  });
  if (!org) return null;
  return Promise.all(org.users.map((user) => tokenFor(app, user)));
}

async function tokenFor(app: App, user: User): Promise<SeededUser> {
  return { id: user.id, username: user.username, role: user.role, token: await app.services.auth.issueToken(user) };
}

async function createDemo(app: App, slug: string): Promise<SeededUser[]> {
  const { auth, users, projects, channels, messages } = app.services;
  const [ownerSpec, ...others] = PEOPLE;
  const registered = await auth.registerOrganization(
    {
      name: 'Demo Builders Ltd',
      slug,
      username: ownerSpec!.username,
      displayName: ownerSpec!.displayName,
      email: email(ownerSpec!.username),
      password: DEMO_PASSWORD,
    },
    null,
  );
  const owner = asViewer(registered.user);
  const created = [registered.user];
  for (const spec of others) {
    created.push(await users.create(owner, { ...spec, email: email(spec.username), password: DEMO_PASSWORD }));
  }
  const [, admin, staff, member, client] = created.map(asViewer) as [Viewer, Viewer, Viewer, Viewer, Viewer];

  const hotel = await projects.create(staff, { name: 'Hotel Renovation', description: 'Lobby, 40 rooms and the rooftop bar.' });
  await projects.grant(staff, { projectId: hotel.id, userId: client.id, role: 'CLIENT' });
  const projectChannel = await channels.create(staff, {
    kind: 'PROJECT',
    name: 'hotel-renovation',
    topic: 'Day-to-day with the client',
    projectId: hotel.id,
    memberIds: [client.id, member.id],
  });
  const general = await channels.create(owner, {
    kind: 'GROUP',
    name: 'general',
    topic: 'Company-wide',
    memberIds: [admin.id, staff.id, member.id],
  });
  const direct = await channels.openDirect(staff, [member.id]);

  const say = (viewer: Viewer, channelId: string, body: string, parentId?: string) => messages.send(viewer, { channelId, body, parentId });
  await say(owner, general.id, 'Welcome to Parley, everyone!');
  await say(admin, general.id, 'Accounts are set up; ping me if you cannot sign in.');
  const kickoff = await say(staff, projectChannel.id, 'Hi Chris, this is where we will keep you posted on the renovation.');
  await say(client, projectChannel.id, 'Great. When do the lobby works start?', kickoff.id);
  await say(staff, projectChannel.id, 'Monday at 8, scaffolding goes up first.', kickoff.id);
  const draft = await say(member, projectChannel.id, 'Tile samples arrive on Wednesday.');
  await messages.edit(member, draft.id, 'Tile samples arrive on Thursday (delayed by a day).');
  await say(staff, direct.id, 'Maya, can you check the tile order?');
  await say(member, direct.id, 'On it.');

  return Promise.all(created.map((user) => tokenFor(app, user)));
}

function report(result: SeedResult, config: Config): string {
  const url = `http://localhost:${config.port}/graphql`;
  const width = Math.max(...result.users.map((u) => u.username.length));
  const lines = [
    result.created
      ? `Created the demo organization "${result.slug}". Every user's password is "${DEMO_PASSWORD}".`
      : `The organization "${result.slug}" exists already; nothing was changed. Fresh tokens for its users (demo password "${DEMO_PASSWORD}"):`,
    '',
    ...result.users.map((u) => `  ${u.role.padEnd(6)}  ${u.username.padEnd(width)}  ${u.token}`),
    '',
    `GraphiQL: start the server (npm start) and open ${url}`,
    `These access tokens work for ${Math.round(config.accessTokenTtlSeconds / 60)} minutes (ACCESS_TOKEN_TTL_SECONDS); run the seed again for fresh ones.`,
    'In the Headers tab paste, with one of the tokens above:',
    `  ${JSON.stringify({ Authorization: `Bearer ${result.users[0]?.token ?? '<token>'}` })}`,
    'then try: { viewer { username role } channels(first: 10) { edges { node { name unreadCount lastMessage { body } } } } }',
    `Or sign in yourself: mutation { login(organization: "${result.slug}", username: "${result.users[0]?.username ?? 'olivia'}", password: "${DEMO_PASSWORD}") { token } }`,
  ];
  return lines.join('\n');
}

async function main() {
  const config = loadConfig();
  // On the embedded database this fails with one line while a server holds the data directory.
  const app = await buildApp(config, { log: pino({ level: process.env.LOG_LEVEL ?? 'warn' }) });
  try {
    console.log(report(await seed(app), config));
  } finally {
    await app.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof StartupError ? error.message : error);
    process.exit(1);
  });
}
