// `npm run db:migrate`: applies pending migrations to an external PostgreSQL.
import { migrate } from '../db/migrate.ts';

const url = process.env.DATABASE_URL;
if (!url) {
  // Without a URL the server uses its embedded database and migrates it at
  // startup; guessing a default URL here could migrate the wrong database.
  console.error(
    'DATABASE_URL is not set. In embedded mode (no DATABASE_URL) migrations run automatically when the server starts;\n' +
      'set DATABASE_URL to migrate an external PostgreSQL database.',
  );
  process.exit(1);
}

try {
  const { applied } = await migrate(url, { log: (msg) => console.log(msg) });
  console.log(
    applied.length === 0
      ? 'Database is up to date; no migration applied.'
      : `Applied ${applied.length} migration(s): ${applied.join(', ')}`,
  );
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
