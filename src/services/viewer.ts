import type { Role } from '../generated/prisma/enums.ts';

/** The signed-in user as every resolver and service sees it. */
export interface Viewer {
  id: string;
  organizationId: string;
  role: Role;
  username: string;
  displayName: string;
}
