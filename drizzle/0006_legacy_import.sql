-- Bookkeeping of `tally import-legacy` (apps/cli), written by hand: these tables
-- are typed by packages/db/src/schema/legacy-import.ts, which drizzle-kit does not
-- read (drizzle.config.ts), so a later `generate` neither drops nor repeats them.
--
-- Where an import of one legacy table into one target stopped. Rows are read in
-- order of their id, so "every row with id <= last_id is imported" is the whole
-- checkpoint; a crashed import continues after it, and the idempotent insert makes
-- the batch that was in flight harmless to read again. The timestamp unit is kept
-- because a resumed run must store the same events at the same times: the time is
-- part of an event's idempotency key.
CREATE TABLE "legacy_import_checkpoints" (
	-- The legacy database: its server's system identifier (or host:port) and name.
	"source" text NOT NULL,
	-- Schema-qualified table name.
	"source_table" text NOT NULL,
	-- The Tally project everything goes into, or '*' for one project per legacy project.
	"target" text NOT NULL,
	"timestamp_unit" text NOT NULL CHECK ("timestamp_unit" IN ('s', 'ms')),
	-- NULL until the first batch is stored.
	"last_id" text,
	-- Totals over every run of this import.
	"rows_read" bigint NOT NULL DEFAULT 0,
	"imported" bigint NOT NULL DEFAULT 0,
	"already_present" bigint NOT NULL DEFAULT 0,
	-- Rows skipped, per reason.
	"skipped" jsonb NOT NULL DEFAULT '{}'::jsonb,
	"started_at" timestamp with time zone NOT NULL DEFAULT now(),
	"updated_at" timestamp with time zone NOT NULL DEFAULT now(),
	-- Set when a run read to the end of the table; a later run still picks up rows added after last_id.
	"completed_at" timestamp with time zone,
	CONSTRAINT "legacy_import_checkpoints_pkey" PRIMARY KEY ("source", "source_table", "target")
);
--> statement-breakpoint
-- Which Tally project holds each legacy project's events, so that a resumed or
-- repeated import puts them in the same project instead of creating another.
-- Keyed by source too: two legacy databases may reuse a project id.
CREATE TABLE "legacy_projects" (
	"source" text NOT NULL,
	"legacy_project_id" text NOT NULL,
	-- Deleting the project forgets the mapping: a later import would make a new one.
	"project_id" uuid NOT NULL REFERENCES "projects" ("id") ON DELETE CASCADE,
	"created_at" timestamp with time zone NOT NULL DEFAULT now(),
	CONSTRAINT "legacy_projects_pkey" PRIMARY KEY ("source", "legacy_project_id")
);
