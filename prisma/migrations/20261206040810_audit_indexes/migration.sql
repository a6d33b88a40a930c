-- CreateIndex
CREATE INDEX "AuditLog_organizationId_id_idx" ON "AuditLog"("organizationId", "id");

-- CreateIndex
CREATE INDEX "AuditLog_organizationId_actorId_id_idx" ON "AuditLog"("organizationId", "actorId", "id");

-- CreateIndex
CREATE INDEX "AuditLog_organizationId_action_id_idx" ON "AuditLog"("organizationId", "action", "id");
