import { defineConfig } from 'prisma/config';

// The url is only read by Prisma CLI commands that need a database
// (`prisma migrate deploy` where the engine is available); the app itself
// connects through @prisma/adapter-pg with the URL from src/config.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/parley' },
});
