import { AttachmentService, THUMBNAIL_WIDTHS } from './attachments.ts';
import { AttachmentRemovalService } from './attachment-removal.ts';
import { FileCleanup } from './file-cleanup.ts';
import { createBlobStore } from './files/blob-stores.ts';
import { ImageProcessor } from './files/images.ts';
import { InspectPool } from './files/inspect-pool.ts';
import { FileUrls } from './files/urls.ts';
import type { Logger } from 'pino';
import type { TokenService } from '../auth/tokens.ts';
import type { Config } from '../config.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { ChannelHub } from '../bus/channel-hub.ts';
import { Presence } from './live/presence.ts';
import { TypingService } from './live/typing.ts';
import { ChannelStreams } from './live/channel-stream.ts';
import { ViewerStreams } from './live/viewer-stream.ts';
import type { ParleyPubSub } from '../bus/pubsub.ts';
import { ApiKeyService } from './api-keys.ts';
import { AuditService } from './audit.ts';
import { AuthService } from './auth.ts';
import { SessionService } from './sessions.ts';
import { SearchService } from './search.ts';
import { ChannelLog } from './channel-log.ts';
import { ChannelService } from './channels.ts';
import { OpenChannelService } from './open-channels.ts';
import { ReadStateService } from './read-state.ts';
import { ClientRequestService } from './client-requests.ts';
import { CustomFieldService } from './custom-fields.ts';
import { EntityLinkService } from './entity-links.ts';
import { ExportService } from './exports.ts';
import { Clock } from './clock.ts';
import { LogRetention } from './log-retention.ts';
import { MessageRetention } from './message-retention.ts';
import { MessageService } from './messages.ts';
import { MentionService } from './mentions.ts';
import { NotificationService } from './notifications.ts';
import { PinService } from './pins.ts';
import { ProjectService } from './projects.ts';
import { RateLimits } from './rate-limits.ts';
import { ReactionService } from './reactions.ts';
import { RequestAttachmentService } from './request-attachments.ts';
import { firstResponseRule } from './sla.ts';
import { SupportTicketService } from './support-tickets.ts';
import { UserService } from './users.ts';
import { ErasureService } from './erasure.ts';

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
  const clock = new Clock();
  const notifications = new NotificationService(deps.prisma);
  const presence = new Presence(deps.prisma, deps.pubsub, deps.log, deps.config.presenceTtlMs);
  const mentions = new MentionService(deps.prisma, presence);
  const messages = new MessageService(deps.prisma, channelLog, deps.config.limits.messageBodyMax, mentions);
  messages.addSendRule(firstResponseRule(() => clock.now()));
  const rateLimits = new RateLimits(
    deps.config.rateLimits,
    deps.config.redisUrl ? { url: deps.config.redisUrl, prefix: deps.config.redisPrefix } : null,
    deps.log,
  );
  messages.useRateLimits(rateLimits);
  const sessions = new SessionService(deps.prisma, deps.tokens, deps.pubsub, deps.log, {
    refreshTokenTtlDays: deps.config.refreshTokenTtlDays,
    sessionMaxDays: deps.config.sessionMaxDays,
    cacheMs: deps.config.viewerCacheMs,
  });
  const auth = new AuthService(deps.prisma, deps.tokens, deps.pubsub, sessions, deps.config.passwordHashCost, deps.config.viewerCacheMs);
  auth.useRateLimits(rateLimits);
  const users = new UserService(deps.prisma, auth);
  const channels = new ChannelService(deps.prisma, channelLog);
  const readState = new ReadStateService(deps.prisma, channelLog);
  const blobStore = createBlobStore(deps.config.storage);
  const attachments = new AttachmentService(
    deps.prisma,
    blobStore,
    new ImageProcessor({ maxPixels: deps.config.uploads.maxImagePixels, thumbnailWidths: [...THUMBNAIL_WIDTHS] }),
    new InspectPool(),
    deps.config.uploads,
    deps.log,
  );
  messages.useAttachments(attachments);
  const clientRequests = new ClientRequestService(deps.prisma, channelLog, notifications, messages, users, clock);
  const requestAttachments = new RequestAttachmentService(deps.prisma, channelLog, attachments, clientRequests, clock);
  clientRequests.useFiles(requestAttachments);
  // Custom field definitions check every write of customFields (services/custom-fields.ts).
  const customFields = new CustomFieldService(deps.prisma, deps.pubsub);
  messages.useCustomFields(customFields);
  channels.useCustomFields(customFields);
  clientRequests.useCustomFields(customFields);
  const supportTickets = new SupportTicketService(deps.prisma, channelLog, notifications, messages, clock, users);
  supportTickets.useCustomFields(customFields);
  const fileCleanup = new FileCleanup(deps.prisma, blobStore, deps.log, () => clock.now(), deps.config.uploads);
  attachments.scheduleCleanup = () => fileCleanup.schedule();
  const messageRetention = new MessageRetention(
    deps.prisma,
    deps.log,
    clock,
    deps.config.deletedMessageRetentionDays,
    deps.config.messageRetentionIntervalMs,
    deps.config.databaseUrl,
  );
  messageRetention.scheduleFileCleanup = () => fileCleanup.schedule();
  const exports = new ExportService(deps.prisma, deps.pubsub, blobStore, deps.log, clock, {
    ttlHours: deps.config.exportTtlHours,
    maxActivePerUser: deps.config.exportMaxActivePerUser,
    urlTtlSeconds: deps.config.uploads.urlTtlSeconds,
    publicUrl: deps.config.publicUrl,
    jwtSecret: deps.config.jwtSecret,
  });
  const erasure = new ErasureService(deps.prisma, channelLog, auth, users);
  erasure.scheduleFileCleanup = () => fileCleanup.schedule();
  return {
    prisma: deps.prisma,
    pubsub: deps.pubsub,
    config: deps.config,
    auth,
    sessions,
    users,
    erasure,
    audit: new AuditService(deps.prisma, users),
    apiKeys: new ApiKeyService(deps.prisma),
    entityLinks: new EntityLinkService(deps.prisma),
    projects: new ProjectService(deps.prisma, channelLog),
    channels,
    openChannels: new OpenChannelService(deps.prisma, channelLog),
    readState,
    messages,
    reactions: new ReactionService(deps.prisma, channelLog),
    pins: new PinService(deps.prisma, channelLog),
    attachments,
    attachmentRemoval: new AttachmentRemovalService(deps.prisma, channelLog, attachments),
    fileCleanup,
    fileUrls: new FileUrls(deps.config.jwtSecret, deps.config.uploads.urlTtlSeconds, deps.config.publicUrl, () => clock.now().getTime()),
    clock,
    rateLimits,
    notifications,
    clientRequests,
    requestAttachments,
    supportTickets,
    customFields,
    logRetention: new LogRetention(
      deps.prisma,
      deps.log,
      deps.config.channelLogRetentionDays,
      deps.config.channelLogPruneIntervalMs,
      sessions,
    ),
    messageRetention,
    exports,
    search: new SearchService(deps.prisma, deps.log),
    hub,
    presence,
    mentions,
    channelEvents: new ChannelStreams(deps.prisma, hub),
    viewerEvents: new ViewerStreams(deps.prisma, deps.pubsub, hub, readState),
    typing: new TypingService(deps.prisma, deps.pubsub, { log: deps.log }),
  };
}

export type Services = ReturnType<typeof createServices>;
