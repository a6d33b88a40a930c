-- CreateEnum
CREATE TYPE "SearchLanguage" AS ENUM ('ENGLISH', 'SPANISH', 'SIMPLE');

-- CreateEnum
CREATE TYPE "ErasureMessagePolicy" AS ENUM ('DELETE', 'KEEP');

-- CreateEnum
CREATE TYPE "CustomFieldEntity" AS ENUM ('CHANNEL', 'MESSAGE', 'CLIENT_REQUEST', 'SUPPORT_TICKET');

-- CreateEnum
CREATE TYPE "CustomFieldType" AS ENUM ('TEXT', 'NUMBER', 'BOOLEAN', 'DATE', 'SINGLE_CHOICE', 'MULTIPLE_CHOICE', 'USER');

-- CreateEnum
CREATE TYPE "ExportKind" AS ENUM ('CHANNEL', 'ORGANIZATION');

-- CreateEnum
CREATE TYPE "ExportFormat" AS ENUM ('JSON', 'HTML', 'JSONL');

-- CreateEnum
CREATE TYPE "ExportStatus" AS ENUM ('PENDING', 'RUNNING', 'READY', 'FAILED', 'EXPIRED');

-- AlterTable
ALTER TABLE "Organization" ADD COLUMN     "erasureMessagePolicy" "ErasureMessagePolicy" NOT NULL DEFAULT 'DELETE',
ADD COLUMN     "searchLanguage" "SearchLanguage" NOT NULL DEFAULT 'ENGLISH',
ADD COLUMN     "searchReindexAfter" UUID;

-- AlterTable
ALTER TABLE "User" ADD COLUMN     "erasedAt" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "Message" ADD COLUMN     "searchVector" tsvector;

-- AlterTable
ALTER TABLE "ClientRequest" ADD COLUMN     "customFields" JSONB,
ADD COLUMN     "searchVector" tsvector;

-- AlterTable
ALTER TABLE "SupportTicket" ADD COLUMN     "customFields" JSONB,
ADD COLUMN     "searchVector" tsvector;

-- CreateTable
CREATE TABLE "CustomFieldDefinition" (
    "id" UUID NOT NULL,
    "organizationId" UUID NOT NULL,
    "entity" "CustomFieldEntity" NOT NULL,
    "key" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "type" "CustomFieldType" NOT NULL,
    "required" BOOLEAN NOT NULL DEFAULT false,
    "options" TEXT[],
    "min" DOUBLE PRECISION,
    "max" DOUBLE PRECISION,
    "minDate" DATE,
    "maxDate" DATE,
    "position" INTEGER NOT NULL DEFAULT 0,
    "archivedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "CustomFieldDefinition_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Export" (
    "id" UUID NOT NULL,
    "organizationId" UUID NOT NULL,
    "requesterId" UUID NOT NULL,
    "kind" "ExportKind" NOT NULL,
    "format" "ExportFormat" NOT NULL,
    "channelId" UUID,
    "status" "ExportStatus" NOT NULL DEFAULT 'PENDING',
    "progress" INTEGER NOT NULL DEFAULT 0,
    "total" INTEGER,
    "storageKey" TEXT,
    "byteSize" INTEGER,
    "contentType" TEXT,
    "fileName" TEXT,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "expiresAt" TIMESTAMP(3),

    CONSTRAINT "Export_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "CustomFieldDefinition_organizationId_entity_key_key" ON "CustomFieldDefinition"("organizationId", "entity", "key");

-- CreateIndex
CREATE INDEX "Export_requesterId_createdAt_idx" ON "Export"("requesterId", "createdAt");

-- CreateIndex
CREATE INDEX "Export_status_createdAt_idx" ON "Export"("status", "createdAt");

-- CreateIndex
CREATE INDEX "Channel_customFields_idx" ON "Channel" USING GIN ("customFields" jsonb_path_ops);

-- CreateIndex
CREATE INDEX "Message_customFields_idx" ON "Message" USING GIN ("customFields" jsonb_path_ops);

-- CreateIndex
CREATE INDEX "ClientRequest_customFields_idx" ON "ClientRequest" USING GIN ("customFields" jsonb_path_ops);

-- CreateIndex
CREATE INDEX "SupportTicket_customFields_idx" ON "SupportTicket" USING GIN ("customFields" jsonb_path_ops);

-- AddForeignKey
ALTER TABLE "CustomFieldDefinition" ADD CONSTRAINT "CustomFieldDefinition_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Export" ADD CONSTRAINT "Export_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Full-text search (written by hand: Prisma has no words for these).
-- unaccent before the stemmer, so "decisión" and "decision" are one word; one
-- configuration per SearchLanguage. They live in the schema the migration runs in.
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TEXT SEARCH CONFIGURATION parley_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION parley_english
  ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
CREATE TEXT SEARCH CONFIGURATION parley_spanish (COPY = spanish);
ALTER TEXT SEARCH CONFIGURATION parley_spanish
  ALTER MAPPING FOR hword, hword_part, word WITH unaccent, spanish_stem;
CREATE TEXT SEARCH CONFIGURATION parley_simple (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION parley_simple
  ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;

CREATE FUNCTION parley_search_config(lang "SearchLanguage") RETURNS regconfig
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT CASE lang WHEN 'SPANISH' THEN 'parley_spanish'::regconfig
                         WHEN 'SIMPLE' THEN 'parley_simple'::regconfig
                         ELSE 'parley_english'::regconfig END $$;

-- What is indexed: the words stemmed in the organization's language, then the
-- same words unstemmed (parley_simple), which the prefix match of the last word
-- typed runs against ("decisi" is a prefix of "decision", not of its stem "decis").
CREATE FUNCTION parley_search_vector(lang "SearchLanguage", doc text, weight "char") RETURNS tsvector
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT setweight(to_tsvector(parley_search_config(lang), coalesce(doc, '')) ||
                         to_tsvector('parley_simple'::regconfig, coalesce(doc, '')), weight) $$;

CREATE FUNCTION parley_message_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW."deletedAt" IS NOT NULL THEN
    NEW."searchVector" := NULL;
  ELSE
    NEW."searchVector" := parley_search_vector(
      (SELECT "searchLanguage" FROM "Organization" WHERE id = NEW."organizationId"), NEW.body, 'A');
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER "Message_searchVector" BEFORE INSERT OR UPDATE OF body, "deletedAt" ON "Message"
  FOR EACH ROW EXECUTE FUNCTION parley_message_search_vector();

CREATE FUNCTION parley_request_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE lang "SearchLanguage" := (SELECT "searchLanguage" FROM "Organization" WHERE id = NEW."organizationId");
BEGIN
  NEW."searchVector" := parley_search_vector(lang, NEW.title, 'A') || parley_search_vector(lang, NEW.description, 'B');
  RETURN NEW;
END $$;
CREATE TRIGGER "ClientRequest_searchVector" BEFORE INSERT OR UPDATE OF title, description ON "ClientRequest"
  FOR EACH ROW EXECUTE FUNCTION parley_request_search_vector();

CREATE FUNCTION parley_ticket_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW."searchVector" := parley_search_vector(
    (SELECT "searchLanguage" FROM "Organization" WHERE id = NEW."organizationId"), NEW.subject, 'A');
  RETURN NEW;
END $$;
CREATE TRIGGER "SupportTicket_searchVector" BEFORE INSERT OR UPDATE OF subject ON "SupportTicket"
  FOR EACH ROW EXECUTE FUNCTION parley_ticket_search_vector();

-- What exists already is indexed once, here.
UPDATE "Message" SET body = body WHERE "deletedAt" IS NULL;
UPDATE "ClientRequest" SET title = title;
UPDATE "SupportTicket" SET subject = subject;

-- A search ANDs this index's matches with the viewer's channels' rows from "Message_channelId_seq_key"
-- (a BitmapAnd), so it reads only the rows that are in both.
CREATE INDEX "Message_searchVector_idx" ON "Message" USING GIN ("searchVector");
CREATE INDEX "ClientRequest_searchVector_idx" ON "ClientRequest" USING GIN ("searchVector");
CREATE INDEX "SupportTicket_searchVector_idx" ON "SupportTicket" USING GIN ("searchVector");
