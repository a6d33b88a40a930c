import type { PrismaClient } from '../generated/prisma/client.ts';
import type { Services } from '../services/index.ts';
import type { Viewer } from '../services/viewer.ts';

export type { Viewer };

/** Per-operation context, built the same way for HTTP and WebSocket. */
export interface Context {
  viewer: Viewer | null;
  services: Services;
  prisma: PrismaClient;
  requestId: string;
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
