-- CreateIndex
CREATE INDEX "Attachment_state_messageId_clientRequestId_idx" ON "Attachment"("state", "messageId", "clientRequestId");
