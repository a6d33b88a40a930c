-- CreateIndex
CREATE INDEX "ChannelMember_channelId_notificationLevel_idx" ON "ChannelMember"("channelId", "notificationLevel");
