import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import type { AuthenticatedContext, Context, IntegrationContext } from './context.ts';
import type PrismaTypes from '../generated/pothos-types.ts';
import { getDatamodel } from '../generated/pothos-types.ts';
import { isAdmin, isStaff } from '../services/access.ts';
import { DomainError } from '../services/errors.ts';
import type { UploadedFile } from '../services/attachments.ts';
import './global-ids.ts';

// Builder configuration only; types live in one file per domain (DESIGN §3.1).
export const builder = new SchemaBuilder<{
  PrismaTypes: PrismaTypes;
  Context: Context;
  AuthScopes: { authenticated: boolean; staff: boolean; admin: boolean; integration: boolean };
  AuthContexts: {
    authenticated: AuthenticatedContext;
    staff: AuthenticatedContext;
    admin: AuthenticatedContext;
    integration: IntegrationContext;
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: true;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
    EmailAddress: { Input: string; Output: string };
    NonEmptyString: { Input: string; Output: string };
    Upload: { Input: UploadedFile; Output: never };
  };
}>({
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, ValidationPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      authenticated: ctx.viewer !== null,
      staff: ctx.viewer !== null && isStaff(ctx.viewer),
      admin: ctx.viewer !== null && isAdmin(ctx.viewer),
      // An organization API key (schema/api-key.ts): integration operations take nothing else.
      integration: ctx.integration !== null,
    }),
    unauthorizedError: (_parent, ctx, _info, result) =>
      ctx.integration
        ? new DomainError('FORBIDDEN', 'An API key is for integration operations only; sign in as a user for this one')
        : ctx.viewer
          ? JSON.stringify(result.failure).includes('"integration"')
            ? new DomainError('FORBIDDEN', 'Integration operations take an organization API key: "Authorization: Bearer parley_…"')
            : new DomainError('FORBIDDEN', 'Your role does not allow this operation')
          : new DomainError('UNAUTHENTICATED', 'Sign in first: send a valid token as "Authorization: Bearer <token>"'),
  },
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'warn',
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // The plugin's own `node(id)` and `nodes(ids)` would load a row by its id
    // alone, past the read rules; node.ts defines both through access.ts.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
  },
  validation: {
    validationError: (result) => {
      const issue = result.issues[0];
      const field = issue?.path?.map((p) => (typeof p === 'object' ? p.key : p)).join('.') ?? '';
      return new DomainError('BAD_USER_INPUT', field ? `${field}: ${issue?.message}` : (issue?.message ?? 'Invalid input'), {
        field,
      });
    },
  },
});
