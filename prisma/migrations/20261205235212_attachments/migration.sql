-- CreateEnum
CREATE TYPE "AttachmentState" AS ENUM ('UPLOADED', 'ATTACHED', 'DELETED');

-- CreateEnum
CREATE TYPE "AttachmentKind" AS ENUM ('IMAGE', 'PDF', 'DOCUMENT', 'SPREADSHEET', 'TEXT');

-- AlterEnum
-- This migration adds more than one value to an enum.
-- With PostgreSQL versions 11 and earlier, this is not possible
-- in a single migration. This can be worked around by creating
-- multiple migrations, each migration adding only one value to
-- the enum.


ALTER TYPE "ChannelEventType" ADD VALUE 'ATTACHMENT_ADDED';
ALTER TYPE "ChannelEventType" ADD VALUE 'ATTACHMENT_REMOVED';

-- AlterTable
ALTER TABLE "Organization" ADD COLUMN     "storageBytes" BIGINT NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "Attachment" (
    "id" UUID NOT NULL,
    "organizationId" UUID NOT NULL,
    "uploaderId" UUID NOT NULL,
    "state" "AttachmentState" NOT NULL DEFAULT 'UPLOADED',
    "kind" "AttachmentKind" NOT NULL,
    "contentType" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "storedBytes" INTEGER NOT NULL,
    "width" INTEGER,
    "height" INTEGER,
    "thumbnails" INTEGER[],
    "sha256" TEXT NOT NULL,
    "messageId" UUID,
    "clientRequestId" UUID,
    "channelId" UUID,
    "position" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "attachedAt" TIMESTAMP(3),

    CONSTRAINT "Attachment_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Attachment_messageId_position_idx" ON "Attachment"("messageId", "position");

-- CreateIndex
CREATE INDEX "Attachment_clientRequestId_position_idx" ON "Attachment"("clientRequestId", "position");

-- CreateIndex
CREATE INDEX "Attachment_channelId_attachedAt_id_idx" ON "Attachment"("channelId", "attachedAt", "id");

-- CreateIndex
CREATE INDEX "Attachment_state_createdAt_idx" ON "Attachment"("state", "createdAt");

-- AddForeignKey
ALTER TABLE "Attachment" ADD CONSTRAINT "Attachment_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Attachment" ADD CONSTRAINT "Attachment_uploaderId_fkey" FOREIGN KEY ("uploaderId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Attachment" ADD CONSTRAINT "Attachment_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Attachment" ADD CONSTRAINT "Attachment_clientRequestId_fkey" FOREIGN KEY ("clientRequestId") REFERENCES "ClientRequest"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Attachment" ADD CONSTRAINT "Attachment_channelId_fkey" FOREIGN KEY ("channelId") REFERENCES "Channel"("id") ON DELETE SET NULL ON UPDATE CASCADE;
