import type { PrismaClient } from '../generated/prisma/client.ts';
import type { Services } from '../services/index.ts';
import type { Viewer } from '../services/viewer.ts';
import { isApiKey, type Integration } from '../services/api-keys.ts';
import type { ClientInfo } from '../services/viewer.ts';
import type { Authenticated } from '../services/auth.ts';
import type { TokenClaims } from '../auth/tokens.ts';

export type { Viewer, Integration };

/** Per-operation context, built the same way for HTTP and WebSocket. */
export interface Context {
  viewer: Viewer | null;
  /** The session the viewer's access token names; null without a viewer. */
  sessionId: string | null;
  /** Set instead of `viewer` when the bearer is an organization API key (integration operations only). */
  integration: Integration | null;
  services: Services;
  prisma: PrismaClient;
  requestId: string;
  /** The client's address (behind trusted proxies, see TRUST_PROXY) and user agent. */
  client: ClientInfo;
}

/** Context inside fields guarded by `authScopes: { authenticated: true }`. */
export interface AuthenticatedContext extends Context {
  viewer: Viewer;
  sessionId: string;
}

/** Context inside fields guarded by `authScopes: { integration: true }`. */
export interface IntegrationContext extends Context {
  integration: Integration;
}

/**
 * Builds the context from a bearer token (HTTP `Authorization` header or
 * graphql-ws `connectionParams`: `authToken`, or an `Authorization` entry). A missing, invalid or expired
 * token, one whose session ended, or a deactivated user, yields an anonymous context; fields that need
 * a viewer then fail with UNAUTHENTICATED. A valid organization API key yields
 * an integration context, which only integration operations accept.
 */
export async function createContext(
  services: Services,
  credentials: { token: string | null } | { session: TokenClaims },
  requestId: string,
  client: ClientInfo,
): Promise<Context> {
  // A socket's operation: the socket was admitted with a token; its session stands or not.
  if ('session' in credentials)
    return signedInContext(services, await services.auth.authenticateSession(credentials.session), requestId, client);
  const { token } = credentials;
  // An organization API key (`parley_…`) is no user: it authorizes the integration operations alone.
  if (token && isApiKey(token)) {
    const integration = await services.apiKeys.authenticate(token);
    return { viewer: null, sessionId: null, integration, services, prisma: services.prisma, requestId, client };
  }
  return signedInContext(services, token ? await services.auth.authenticate(token) : null, requestId, client);
}

function signedInContext(services: Services, signedIn: Authenticated | null, requestId: string, client: ClientInfo): Context {
  return {
    viewer: signedIn?.viewer ?? null,
    sessionId: signedIn?.sessionId ?? null,
    integration: null,
    services,
    prisma: services.prisma,
    requestId,
    client,
  };
}

export function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match?.[1] ?? null;
}
