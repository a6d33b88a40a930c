-- CreateIndex
CREATE INDEX "ChannelEvent_createdAt_idx" ON "ChannelEvent"("createdAt");
