import type { PrismaClient } from './generated/prisma/client.ts';
import type { Role } from './generated/prisma/enums.ts';
import type { LiveTransport } from './realtime/socket-delivery.ts';
import type { Services } from './services/index.ts';

/** The signed-in user as every resolver and service sees it. */
export interface Viewer {
  id: string;
  organizationId: string;
  role: Role;
  username: string;
  displayName: string;
}

/** Per-operation context, built the same way for HTTP and WebSocket. */
export interface Context {
  viewer: Viewer | null;
  services: Services;
  prisma: PrismaClient;
  requestId: string;
  /** Set for operations over graphql-ws: live events may be written to the socket directly. */
  live?: LiveTransport;
}

/** Context inside fields guarded by `authScopes: { authenticated: true }`. */
export interface AuthenticatedContext extends Context {
  viewer: Viewer;
}

/**
 * Builds the context from a bearer token (HTTP `Authorization` header or
 * graphql-ws `connectionParams`: `authToken`, or an `Authorization` entry). A missing, invalid or expired
 * token, or a deactivated user, yields an anonymous context; fields that need
 * a viewer then fail with UNAUTHENTICATED.
 */
export async function createContext(services: Services, token: string | null, requestId: string): Promise<Context> {
  const viewer = token ? await services.auth.viewerFromToken(token) : null;
  return { viewer, services, prisma: services.prisma, requestId };
}

export function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match?.[1] ?? null;
}
