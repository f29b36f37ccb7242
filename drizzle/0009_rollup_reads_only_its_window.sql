-- Reading a window stays in proportion to the window, however many events are
-- stored, and does not depend on table statistics or on VACUUM having summarized
-- BRIN ranges: without them (autovacuum off, a partition not yet analyzed) every
-- window read the whole events table twice, once by the BRIN index on seq (whose
-- unsummarized ranges all match) and once to look up earlier events of newly
-- exposed sessions. A btree on seq finds the window from the index alone, and
-- rolled_up_sessions says which sessions have earlier events worth looking up.
--
-- Building the index holds inserts back for as long as it takes (0.9 s per million
-- stored events, measured); run this migration when ingest is light. The ingest
-- API goes on accepting meanwhile. rolled_up_sessions starts empty with
-- sessions_seq at 0: the first rollup window after it fills in the sessions of
-- every event folded before (tally_rollup below), without holding inserts back.
--> statement-breakpoint
CREATE TABLE "rolled_up_sessions" (
	"project_id" uuid NOT NULL,
	"session_id" text NOT NULL,
	"last_event_at" timestamp with time zone NOT NULL,
	CONSTRAINT "rolled_up_sessions_project_id_session_id_pk" PRIMARY KEY("project_id","session_id")
);
--> statement-breakpoint
ALTER TABLE "rollup_state" ADD COLUMN "sessions_seq" bigint DEFAULT 0 NOT NULL;
--> statement-breakpoint
-- Dropped first, so that the partitions' new indexes take the names it freed.
DROP INDEX "analytics_events_seq_brin";
--> statement-breakpoint
CREATE INDEX "analytics_events_seq_idx" ON "analytics_events" ("seq");
--> statement-breakpoint
-- Turns hash and merge joins off (true) or back on (false) until the end of the
-- transaction: tally_rollup's lookups into history tables are index probes only.
CREATE FUNCTION tally_join_by_index(p_by_index boolean) RETURNS void
LANGUAGE sql AS $$
	SELECT set_config('enable_hashjoin', (NOT p_by_index)::text, true),
		set_config('enable_mergejoin', (NOT p_by_index)::text, true);
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION tally_rollup(p_max_events bigint DEFAULT 500000)
RETURNS TABLE (events bigint, last_seq bigint, as_of timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
	lo bigint;
	hi bigint;
	seq_now bigint;
	started timestamptz;
	window_as_of timestamptz;
	n bigint;
	sessions_lo bigint;
BEGIN
	-- One run at a time, whoever calls: the row lock serializes them.
	SELECT s.last_seq, s.as_of, s.sessions_seq INTO lo, window_as_of, sessions_lo
	FROM rollup_state s WHERE s.name = 'experiments' FOR UPDATE;

	-- Any insert that committed before `started` drew its number before it, so <= seq_now.
	started := clock_timestamp();
	SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO seq_now FROM analytics_events_seq;
	hi := least(seq_now, lo + p_max_events);
	IF hi <= lo THEN
		UPDATE rollup_state s SET as_of = started, updated_at = now() WHERE s.name = 'experiments';
		RETURN QUERY SELECT 0::bigint, lo, started;
		RETURN;
	END IF;

	-- Wait for in-flight writers, then release at once (locks taken in a
	-- subtransaction go when it is rolled back).
	BEGIN
		LOCK TABLE ONLY analytics_events IN EXCLUSIVE MODE;
		RAISE EXCEPTION USING ERRCODE = 'TL001';
	EXCEPTION WHEN SQLSTATE 'TL001' THEN
		NULL;
	END;

	DROP TABLE IF EXISTS pg_temp.w, pg_temp.wx, pg_temp.prior, pg_temp.pairs, pg_temp.adds, pg_temp.late, pg_temp.old_goals,
		pg_temp.new_goals, pg_temp.contrib;

	-- The window: new events, the only raw rows read besides the few below.
	CREATE TEMP TABLE w ON COMMIT DROP AS
		SELECT e.project_id, e.session_id, e.experiment_id, e.event_type, e.variant_key, e.goal, e.event_time
		FROM analytics_events e WHERE e.seq > lo AND e.seq <= hi;
	GET DIAGNOSTICS n = ROW_COUNT;

	-- New exposures per (experiment, session).
	CREATE TEMP TABLE wx ON COMMIT DROP AS
		SELECT project_id, experiment_id, session_id, min(event_time) AS first_at, max(event_time) AS last_at,
			min(variant_key) AS v_min, max(variant_key) AS v_max
		FROM w WHERE event_type = 'EXPOSURE'
		GROUP BY project_id, experiment_id, session_id;

	-- Lookups into what is kept for all history (the summaries' per-session state,
	-- rolled_up_sessions) go by index, one probe per row of the window: each runs
	-- between tally_join_by_index(true) and (false). A hash or merge join would read
	-- the whole history table in every window, so that a window cost more the more is
	-- stored, and the planner picks one on missing statistics (autovacuum off, a
	-- table not yet analyzed) or on a misjudged row count of a temp table.
	PERFORM tally_join_by_index(true);
	CREATE TEMP TABLE prior ON COMMIT DROP AS
		SELECT es.* FROM experiment_sessions es
		JOIN (SELECT DISTINCT project_id, session_id FROM w) t USING (project_id, session_id);
	PERFORM tally_join_by_index(false);

	-- Every (experiment, session) state the window can change: those of sessions with
	-- new events, and those with new exposures. `new_variant` NULL means excluded.
	CREATE TEMP TABLE pairs ON COMMIT DROP AS
		SELECT coalesce(o.project_id, x.project_id) AS project_id,
			coalesce(o.experiment_id, x.experiment_id) AS experiment_id,
			coalesce(o.session_id, x.session_id) AS session_id,
			o.session_id IS NOT NULL AS existed,
			o.variant_key AS old_variant,
			o.first_exposure_at AS old_first,
			coalesce(o.pageviews, 0) AS old_pageviews,
			CASE WHEN x.session_id IS NULL THEN o.first_exposure_at
				ELSE least(o.first_exposure_at, x.first_at) END AS new_first,
			CASE
				WHEN o.session_id IS NOT NULL AND o.variant_key IS NULL THEN NULL
				WHEN x.session_id IS NULL THEN o.variant_key
				WHEN x.v_min <> x.v_max THEN NULL
				WHEN o.session_id IS NOT NULL AND o.variant_key <> x.v_min THEN NULL
				ELSE x.v_min
			END AS new_variant,
			x.first_at AS window_first, x.last_at AS window_last
		FROM prior o
		FULL JOIN wx x ON x.project_id = o.project_id AND x.experiment_id = o.experiment_id AND x.session_id = o.session_id;
	-- Excluded and staying excluded: nothing to do.
	DELETE FROM pairs WHERE existed AND old_variant IS NULL AND window_first IS NULL;

	-- Events to add to an assigned session's counts: the window's events at or after
	-- its (new) first exposure, plus, when the first exposure moved earlier (or is
	-- new), already-rolled-up events between the new and the old first exposure,
	-- which were not counted before. Nothing is counted twice: the window's events
	-- are new, and earlier events counted before were all >= the old first exposure.
	CREATE TEMP TABLE adds ON COMMIT DROP AS
		SELECT p.project_id, p.experiment_id, p.session_id, e.event_type, e.goal
		FROM pairs p
		JOIN w e ON e.project_id = p.project_id AND e.session_id = p.session_id
		WHERE p.new_variant IS NOT NULL AND e.event_type <> 'EXPOSURE' AND e.event_time >= p.new_first;

	-- Events folded before rolled_up_sessions existed: all of them, in the first
	-- window after the upgrade, and any window folded by a run of the function as it
	-- was before that was already under way while the migration ran.
	IF sessions_lo < lo THEN
		INSERT INTO rolled_up_sessions AS s (project_id, session_id, last_event_at)
		SELECT project_id, session_id, max(event_time) FROM analytics_events
		WHERE seq > sessions_lo AND seq <= lo AND event_type <> 'EXPOSURE'
		GROUP BY project_id, session_id
		ON CONFLICT (project_id, session_id) DO UPDATE SET last_event_at = excluded.last_event_at
		WHERE excluded.last_event_at > s.last_event_at;
	END IF;

	-- Already-rolled-up events can count only where the session has one at or after
	-- the new first exposure, which rolled_up_sessions tells without reading events:
	-- usually no pair, as exposures mostly arrive before what follows them. Looking
	-- them up for every new exposure reads (or sorts) the whole events table in every
	-- window, whatever the plan, so that a window costs more the more is stored.
	PERFORM tally_join_by_index(true);
	CREATE TEMP TABLE late ON COMMIT DROP AS
		SELECT p.project_id, p.experiment_id, p.session_id, p.new_first, p.old_first
		FROM pairs p
		JOIN rolled_up_sessions s ON s.project_id = p.project_id AND s.session_id = p.session_id
		WHERE p.new_variant IS NOT NULL AND p.new_first < coalesce(p.old_first, 'infinity')
			AND s.last_event_at >= p.new_first;
	PERFORM tally_join_by_index(false);
	IF EXISTS (SELECT FROM late) THEN
		-- Real row counts, so that a few pairs are index probes and a backfill's many a join.
		ANALYZE late;
		INSERT INTO adds
		SELECT l.project_id, l.experiment_id, l.session_id, e.event_type, e.goal
		FROM late l
		JOIN analytics_events e ON e.project_id = l.project_id AND e.session_id = l.session_id
			AND e.event_time >= l.new_first AND e.event_time < coalesce(l.old_first, 'infinity')
		WHERE e.seq <= lo AND e.event_type <> 'EXPOSURE';
	END IF;

	ALTER TABLE pairs ADD COLUMN new_pageviews integer NOT NULL DEFAULT 0;
	UPDATE pairs SET new_pageviews = old_pageviews WHERE new_variant IS NOT NULL AND existed AND old_variant IS NOT NULL;
	UPDATE pairs p SET new_pageviews = p.new_pageviews + a.n
	FROM (
		SELECT project_id, experiment_id, session_id, count(*)::int AS n FROM adds
		WHERE event_type = 'PAGEVIEW' GROUP BY project_id, experiment_id, session_id
	) a
	WHERE a.project_id = p.project_id AND a.experiment_id = p.experiment_id AND a.session_id = p.session_id;

	PERFORM tally_join_by_index(true);
	CREATE TEMP TABLE old_goals ON COMMIT DROP AS
		SELECT g.project_id, g.experiment_id, g.session_id, g.goal, g.conversions
		FROM experiment_session_goals g
		JOIN pairs p USING (project_id, experiment_id, session_id)
		WHERE p.existed AND p.old_variant IS NOT NULL;
	PERFORM tally_join_by_index(false);

	-- Conversions per goal after the window; '' is any goal.
	CREATE TEMP TABLE new_goals ON COMMIT DROP AS
		SELECT project_id, experiment_id, session_id, goal, sum(conversions)::int AS conversions
		FROM (
			SELECT og.project_id, og.experiment_id, og.session_id, og.goal, og.conversions
			FROM old_goals og JOIN pairs p USING (project_id, experiment_id, session_id)
			WHERE p.new_variant IS NOT NULL
			UNION ALL
			SELECT a.project_id, a.experiment_id, a.session_id, k.goal, 1
			FROM adds a CROSS JOIN LATERAL (VALUES (''), (a.goal)) AS k(goal)
			WHERE a.event_type = 'CONVERSION' AND k.goal IS NOT NULL
		) c
		GROUP BY project_id, experiment_id, session_id, goal;

	-- What each changed session contributed before (sign -1) and contributes now (+1).
	CREATE TEMP TABLE contrib ON COMMIT DROP AS
		-- sessions and pageviews, on the '' goal row
		SELECT p.project_id, p.experiment_id, p.old_variant AS variant_key, ''::text AS goal,
			date_trunc('hour', p.old_first, 'UTC') AS bucket,
			-1 AS sessions, -(p.old_pageviews > 0)::int AS pageview_sessions, -p.old_pageviews AS pageviews,
			0 AS converted_sessions, 0 AS conversions
		FROM pairs p WHERE p.existed AND p.old_variant IS NOT NULL
		UNION ALL
		SELECT p.project_id, p.experiment_id, p.new_variant, '', date_trunc('hour', p.new_first, 'UTC'),
			1, (p.new_pageviews > 0)::int, p.new_pageviews, 0, 0
		FROM pairs p
		WHERE p.new_variant IS NOT NULL
		UNION ALL
		-- conversions, per goal
		SELECT p.project_id, p.experiment_id, p.old_variant, og.goal, date_trunc('hour', p.old_first, 'UTC'),
			0, 0, 0, -(og.conversions > 0)::int, -og.conversions
		FROM old_goals og JOIN pairs p USING (project_id, experiment_id, session_id)
		UNION ALL
		SELECT p.project_id, p.experiment_id, p.new_variant, ng.goal, date_trunc('hour', p.new_first, 'UTC'),
			0, 0, 0, (ng.conversions > 0)::int, ng.conversions
		FROM new_goals ng JOIN pairs p USING (project_id, experiment_id, session_id);

	INSERT INTO experiment_variant_totals AS t (project_id, experiment_id, variant_key, goal, sessions,
		pageview_sessions, pageviews, converted_sessions, conversions)
	SELECT project_id, experiment_id, variant_key, goal, sum(sessions), sum(pageview_sessions), sum(pageviews),
		sum(converted_sessions), sum(conversions)
	FROM contrib GROUP BY project_id, experiment_id, variant_key, goal
	ON CONFLICT (project_id, experiment_id, variant_key, goal) DO UPDATE SET
		sessions = t.sessions + excluded.sessions,
		pageview_sessions = t.pageview_sessions + excluded.pageview_sessions,
		pageviews = t.pageviews + excluded.pageviews,
		converted_sessions = t.converted_sessions + excluded.converted_sessions,
		conversions = t.conversions + excluded.conversions;

	INSERT INTO experiment_cohorts AS t (project_id, experiment_id, variant_key, goal, bucket, sessions, converted_sessions)
	SELECT project_id, experiment_id, variant_key, goal, bucket, sum(sessions), sum(converted_sessions)
	FROM contrib GROUP BY project_id, experiment_id, variant_key, goal, bucket
	ON CONFLICT (project_id, experiment_id, variant_key, goal, bucket) DO UPDATE SET
		sessions = t.sessions + excluded.sessions,
		converted_sessions = t.converted_sessions + excluded.converted_sessions;

	INSERT INTO experiment_totals AS t (project_id, experiment_id, exposed_sessions, excluded_sessions,
		first_exposure_at, last_exposure_at)
	SELECT project_id, experiment_id,
		count(*) FILTER (WHERE NOT existed),
		count(*) FILTER (WHERE new_variant IS NULL) - count(*) FILTER (WHERE existed AND old_variant IS NULL),
		min(window_first), max(window_last)
	FROM pairs WHERE window_first IS NOT NULL
	GROUP BY project_id, experiment_id
	ON CONFLICT (project_id, experiment_id) DO UPDATE SET
		exposed_sessions = t.exposed_sessions + excluded.exposed_sessions,
		excluded_sessions = t.excluded_sessions + excluded.excluded_sessions,
		first_exposure_at = least(t.first_exposure_at, excluded.first_exposure_at),
		last_exposure_at = greatest(t.last_exposure_at, excluded.last_exposure_at);

	-- The new per-session state.
	INSERT INTO experiment_sessions AS s (project_id, experiment_id, session_id, variant_key, first_exposure_at, pageviews)
	SELECT project_id, experiment_id, session_id, new_variant, new_first, new_pageviews FROM pairs
	ON CONFLICT (project_id, experiment_id, session_id) DO UPDATE SET
		variant_key = excluded.variant_key,
		first_exposure_at = excluded.first_exposure_at,
		pageviews = excluded.pageviews;

	PERFORM tally_join_by_index(true);
	DELETE FROM experiment_session_goals g USING pairs p
	WHERE g.project_id = p.project_id AND g.experiment_id = p.experiment_id AND g.session_id = p.session_id;
	PERFORM tally_join_by_index(false);
	INSERT INTO experiment_session_goals (project_id, experiment_id, session_id, goal, conversions)
	SELECT project_id, experiment_id, session_id, goal, conversions FROM new_goals WHERE conversions > 0;

	-- After the lookup above, which must see only the events of earlier windows.
	INSERT INTO rolled_up_sessions AS s (project_id, session_id, last_event_at)
	SELECT project_id, session_id, max(event_time) FROM w WHERE event_type <> 'EXPOSURE'
	GROUP BY project_id, session_id
	ON CONFLICT (project_id, session_id) DO UPDATE SET last_event_at = excluded.last_event_at
	WHERE excluded.last_event_at > s.last_event_at;

	-- asOf advances only when the window reached the sequence's end.
	IF hi = seq_now THEN
		window_as_of := started;
	END IF;
	UPDATE rollup_state s SET last_seq = hi, sessions_seq = hi, as_of = window_as_of, updated_at = now()
	WHERE s.name = 'experiments';
	RETURN QUERY SELECT n, hi, window_as_of;
END $$;
