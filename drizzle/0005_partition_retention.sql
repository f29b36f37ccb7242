-- Partition size (day, week or month), retention by whole partitions, and upkeep
-- that holds inserts up for milliseconds, or at most a short lock timeout.
--
-- Locks, measured on Postgres 15: CREATE TABLE … PARTITION OF and DROP TABLE of a
-- partition take ACCESS EXCLUSIVE on analytics_events, so they wait for every
-- reader (a rollup, a long export) while every insert queues behind them. ATTACH
-- PARTITION needs only SHARE UPDATE EXCLUSIVE on the parent, but that is not enough
-- on its own: an insert holding the parent already routes by the old partition
-- list, and when it reaches the default partition after the attach it fails
-- ("violates partition constraint"), losing its whole batch. So partitions are made
-- with CREATE TABLE + ATTACH under SHARE ROW EXCLUSIVE on the parent: it waits for
-- inserts in flight and holds new ones while it works (10-25 ms measured), but waits
-- for no reader, except readers of the default partition, which ATTACH locks.
-- Dropping needs DETACH; DETACH … CONCURRENTLY is refused while a
-- default partition exists (and inside any transaction block), so retention uses a
-- plain DETACH under a short lock_timeout and gives up until the next run rather
-- than stall writers. Callers set lock_timeout for the making too.

-- What the worker's partition maintenance last applied (PARTITION_INTERVAL,
-- RETENTION_DAYS): one row, so that `tally partitions ensure` makes partitions of
-- the same size as the worker and `tally partitions status` shows what is enforced.
CREATE TABLE "partition_settings" (
	"id" boolean PRIMARY KEY DEFAULT true CHECK ("id"),
	"partition_interval" text NOT NULL DEFAULT 'day' CHECK ("partition_interval" IN ('day', 'week', 'month')),
	"retention_days" integer CHECK ("retention_days" > 0),
	"maintained_at" timestamp with time zone
);
--> statement-breakpoint
INSERT INTO "partition_settings" DEFAULT VALUES;
--> statement-breakpoint
-- Every time partition of analytics_events with its bounds, read from the catalog:
-- names cannot tell a day from a month, and partitions of different sizes sit side
-- by side after PARTITION_INTERVAL changes. pg_get_expr prints the bounds in the
-- session's TimeZone and DateStyle, hence the fixed settings they are parsed back in.
CREATE FUNCTION tally_partitions() RETURNS TABLE (part regclass, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD'
AS $$
	SELECT b.part,
		CASE WHEN b.lo_text = 'MINVALUE' THEN '-infinity' ELSE btrim(b.lo_text, '''')::timestamptz END,
		CASE WHEN b.hi_text = 'MAXVALUE' THEN 'infinity' ELSE btrim(b.hi_text, '''')::timestamptz END
	FROM (
		SELECT c.oid::regclass AS part,
			substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \((.+)\) TO') AS lo_text,
			substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \((.+)\)$') AS hi_text
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'analytics_events'::regclass AND NOT i.inhdetachpending
			AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
	) b
	ORDER BY 2
$$;
--> statement-breakpoint
-- Makes the partition holding one UTC day: the day, ISO week (from Monday) or month
-- around it, per partition_settings, clipped to the free space between the
-- partitions already there (a change of interval leaves those as they are). Rows of
-- its range waiting in the default partition are moved into it, in this transaction.
CREATE OR REPLACE FUNCTION tally_ensure_partition(p_day date) RETURNS boolean
LANGUAGE plpgsql
-- The bounds are spelled out as text for ATTACH; in UTC and ISO, whatever the session.
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
	unit text := coalesce((SELECT partition_interval FROM partition_settings), 'day');
	day_lo timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
	part_lo timestamptz := date_trunc(unit, p_day::timestamp) AT TIME ZONE 'UTC';
	part_hi timestamptz := (date_trunc(unit, p_day::timestamp) + ('1 ' || unit)::interval) AT TIME ZONE 'UTC';
	part text;
BEGIN
	-- Most calls find the day made already: answer without taking a lock.
	IF EXISTS (SELECT 1 FROM tally_partitions() p WHERE p.lo <= day_lo AND day_lo < p.hi) THEN
		RETURN false;
	END IF;
	-- SHARE ROW EXCLUSIVE on the parent: no insert routes by the partition list this
	-- changes (see the top of this file), and concurrent makers (worker, CLI) take
	-- turns; readers go on. Parent first, as inserts and the rollup lock them, so no
	-- lock order can deadlock. ACCESS EXCLUSIVE on the default partition is what
	-- ATTACH takes anyway, to check that no row there belongs to the new range.
	LOCK TABLE ONLY analytics_events IN SHARE ROW EXCLUSIVE MODE;
	LOCK TABLE analytics_events_default IN ACCESS EXCLUSIVE MODE;
	IF EXISTS (SELECT 1 FROM tally_partitions() p WHERE p.lo <= day_lo AND day_lo < p.hi) THEN
		RETURN false;
	END IF;
	SELECT greatest(part_lo, max(p.hi)) INTO part_lo FROM tally_partitions() p WHERE p.hi <= day_lo;
	SELECT least(part_hi, min(p.lo)) INTO part_hi FROM tally_partitions() p WHERE p.lo > day_lo;
	part := tally_partition_name((part_lo AT TIME ZONE 'UTC')::date);

	EXECUTE format('CREATE TABLE %I (LIKE analytics_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
	EXECUTE format(
		'WITH moved AS (DELETE FROM analytics_events_default WHERE client_time >= $1 AND client_time < $2 RETURNING *)
		 INSERT INTO %I SELECT * FROM moved', part) USING part_lo, part_hi;
	EXECUTE format('ALTER TABLE analytics_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, part_lo, part_hi);
	RETURN true;
END $$;
--> statement-breakpoint
-- Gives every row waiting in the default partition a partition of its own range
-- (far past, far future, or a day whose partition was missing or dropped).
CREATE FUNCTION tally_move_out_default() RETURNS TABLE (partitions integer, moved bigint)
LANGUAGE plpgsql AS $$
DECLARE
	d record;
BEGIN
	-- The scan below holds the default partition, which tally_ensure_partition then
	-- locks harder: two runs at once (two worker processes) would deadlock.
	PERFORM pg_advisory_xact_lock(7041735);
	partitions := 0;
	moved := 0;
	FOR d IN
		SELECT (client_time AT TIME ZONE 'UTC')::date AS day, count(*) AS n
		FROM analytics_events_default GROUP BY 1 ORDER BY 1
	LOOP
		-- A partition made for an earlier day may already hold this one (a week, a month).
		IF tally_ensure_partition(d.day) THEN
			partitions := partitions + 1;
		END IF;
		moved := moved + d.n;
	END LOOP;
	RETURN NEXT;
END $$;
--> statement-breakpoint
-- Drops one partition whose whole range is before p_horizon, if every row in it
-- has been folded into the summaries (which never read dropped days again: the
-- ingest API refuses events older than the retention, so no late first exposure
-- can reach back into them). Returns 'dropped', or why not: 'not expired',
-- 'waiting for the rollup', 'locked' (a reader or writer held analytics_events
-- past the lock timeout; the next run tries again) or 'gone'.
CREATE FUNCTION tally_drop_partition(p_partition text, p_horizon timestamptz, p_lock_timeout text DEFAULT '1s')
RETURNS text
LANGUAGE plpgsql
-- The rollup check below must use the BRIN index on seq, not read the whole day.
SET enable_seqscan = off
SET lock_timeout = '1s'
AS $$
DECLARE
	rel regclass := to_regclass(p_partition);
	range_hi timestamptz;
	unfolded boolean;
BEGIN
	SELECT p.hi INTO range_hi FROM tally_partitions() p WHERE p.part = rel;
	IF rel IS NULL OR range_hi IS NULL THEN
		RETURN 'gone';
	END IF;
	IF range_hi > p_horizon THEN
		RETURN 'not expired';
	END IF;
	-- Local to this function, thanks to its own SET lock_timeout.
	PERFORM set_config('lock_timeout', p_lock_timeout, true);
	BEGIN
		-- As in tally_move_out_default: the check below holds the partition that
		-- DETACH then locks harder, so two runs at once would deadlock.
		PERFORM pg_advisory_xact_lock(7041735);
		-- Checked before DETACH too, so as not to stall writers for a partition that stays.
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE seq > (SELECT last_seq FROM rollup_state WHERE name = %L))',
			rel, 'experiments') INTO unfolded;
		IF unfolded THEN
			RAISE EXCEPTION USING ERRCODE = 'TL002';
		END IF;
		EXECUTE format('ALTER TABLE analytics_events DETACH PARTITION %s', rel);
		-- Again under the lock: an insert that was in flight above has committed by now.
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE seq > (SELECT last_seq FROM rollup_state WHERE name = %L))',
			rel, 'experiments') INTO unfolded;
		IF unfolded THEN
			RAISE EXCEPTION USING ERRCODE = 'TL002';
		END IF;
		EXECUTE format('DROP TABLE %s', rel);
	EXCEPTION
		-- Rolling back the subtransaction reattaches the partition and releases its locks.
		WHEN SQLSTATE 'TL002' THEN
			RETURN 'waiting for the rollup';
		WHEN lock_not_available THEN
			RETURN 'locked';
	END;
	RETURN 'dropped';
END $$;
