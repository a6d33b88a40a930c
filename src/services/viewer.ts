import type { Role } from '../generated/prisma/enums.ts';

/** The signed-in user as every resolver and service sees it. */
export interface Viewer {
  id: string;
  organizationId: string;
  role: Role;
  username: string;
  displayName: string;
}

/** Who is on the other end of a request: its address (behind trusted proxies, see TRUST_PROXY) and user agent. */
export interface ClientInfo {
  ip: string;
  userAgent: string | null;
}
