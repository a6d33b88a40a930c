import type { Logger } from 'pino';
import type { TokenService } from '../auth/tokens.ts';
import type { Config } from '../config.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { ChannelHub } from '../realtime/channel-hub.ts';
import { Presence } from '../realtime/presence.ts';
import { TypingService } from '../realtime/typing.ts';
import type { ParleyPubSub } from '../realtime/pubsub.ts';
import { AuthService } from './auth.ts';
import { ChannelLog } from './channel-log.ts';
import { ChannelService } from './channels.ts';
import { LogRetention } from './log-retention.ts';
import { MessageService } from './messages.ts';
import { ProjectService } from './projects.ts';
import { UserService } from './users.ts';

export interface ServiceDeps {
  prisma: PrismaClient;
  pubsub: ParleyPubSub;
  tokens: TokenService;
  config: Config;
  log: Logger;
}

/** Every domain service, wired once per app and shared by all requests. */
export function createServices(deps: ServiceDeps) {
  const hub = new ChannelHub(deps.prisma, deps.pubsub, deps.log);
  const channelLog = new ChannelLog(deps.prisma, deps.pubsub, deps.log, hub);
  const auth = new AuthService(deps.prisma, deps.tokens, deps.pubsub, deps.config.passwordHashCost, deps.config.viewerCacheMs);
  return {
    prisma: deps.prisma,
    pubsub: deps.pubsub,
    config: deps.config,
    auth,
    users: new UserService(deps.prisma, auth),
    projects: new ProjectService(deps.prisma, channelLog),
    channels: new ChannelService(deps.prisma, channelLog),
    messages: new MessageService(deps.prisma, channelLog, deps.config.limits.messageBodyMax),
    logRetention: new LogRetention(deps.prisma, deps.log, deps.config.channelLogRetentionDays, deps.config.channelLogPruneIntervalMs),
    hub,
    presence: new Presence(deps.prisma, deps.pubsub, deps.log, deps.config.presenceTtlMs),
    typing: new TypingService(deps.prisma, deps.pubsub, { log: deps.log }),
  };
}

export type Services = ReturnType<typeof createServices>;
