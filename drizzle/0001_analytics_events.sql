-- Raw events, natively partitioned by day on client_time (drizzle-kit cannot
-- declare partitioning, hence this custom migration; the Drizzle definition in
-- packages/db/src/schema/events.ts only types queries).
CREATE TYPE "event_type" AS ENUM ('PAGEVIEW', 'EXPOSURE', 'CONVERSION');
--> statement-breakpoint
CREATE TABLE "analytics_events" (
	"project_id" uuid NOT NULL,
	"event_id" text NOT NULL,
	"event_type" "event_type" NOT NULL,
	"session_id" text NOT NULL,
	"view_id" text,
	"experiment_id" text,
	"variant_key" text,
	"goal" text,
	"properties" jsonb,
	"event_time" timestamp with time zone NOT NULL,
	"client_time" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	-- The idempotency key: a retried event (same id, same client time) is a conflict, not a row.
	CONSTRAINT "analytics_events_pkey" PRIMARY KEY ("project_id", "event_id", "client_time")
) PARTITION BY RANGE ("client_time");
--> statement-breakpoint
-- Rows whose day has no partition yet land here and are moved out when it is made:
-- an event is never refused for its date.
CREATE TABLE "analytics_events_default" PARTITION OF "analytics_events" DEFAULT;
--> statement-breakpoint
-- A session's exposures to one experiment: first exposure and variant(s).
CREATE INDEX "analytics_events_exposures_idx" ON "analytics_events" ("project_id", "experiment_id", "session_id", "event_time")
	INCLUDE ("variant_key") WHERE "event_type" = 'EXPOSURE';
--> statement-breakpoint
-- A session's events from its first exposure on: pageviews and conversions.
CREATE INDEX "analytics_events_session_idx" ON "analytics_events" ("project_id", "session_id", "event_time");
--> statement-breakpoint
CREATE FUNCTION tally_partition_name(p_day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'analytics_events_p' || to_char(p_day, 'YYYYMMDD') $$;
--> statement-breakpoint
-- Makes the partition of one UTC day. If the default partition already holds rows
-- of that day, they are moved into the new partition in the same transaction
-- (Postgres refuses to create a partition that rows in the default would belong to).
CREATE FUNCTION tally_ensure_partition(p_day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	part text := tally_partition_name(p_day);
	lo timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (p_day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
	IF to_regclass(part) IS NOT NULL THEN
		RETURN false;
	END IF;
	IF EXISTS (SELECT 1 FROM analytics_events_default WHERE client_time >= lo AND client_time < hi) THEN
		-- No insert may slip into the default between the move and the attach.
		LOCK TABLE analytics_events_default IN ACCESS EXCLUSIVE MODE;
		EXECUTE format('CREATE TABLE %I (LIKE analytics_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
		EXECUTE format(
			'WITH moved AS (DELETE FROM analytics_events_default WHERE client_time >= $1 AND client_time < $2 RETURNING *)
			 INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
		EXECUTE format('ALTER TABLE analytics_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
	ELSE
		EXECUTE format('CREATE TABLE %I PARTITION OF analytics_events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
	END IF;
	RETURN true;
END $$;
--> statement-breakpoint
CREATE FUNCTION tally_ensure_partitions(p_from date, p_to date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	made integer := 0;
	d date := p_from;
BEGIN
	WHILE d <= p_to LOOP
		IF tally_ensure_partition(d) THEN
			made := made + 1;
		END IF;
		d := d + 1;
	END LOOP;
	RETURN made;
END $$;
--> statement-breakpoint
SELECT tally_ensure_partitions(current_date - 1, current_date + 7);
