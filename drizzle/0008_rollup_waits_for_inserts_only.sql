-- The rollup waits for inserts still in flight by taking an EXCLUSIVE lock on
-- analytics_events for an instant. Without ONLY, that lock also goes to every
-- partition, so a VACUUM or ANALYZE of any partition (which holds SHARE UPDATE
-- EXCLUSIVE on it) made the rollup wait, and every new insert queued behind the
-- rollup: autovacuum of event partitions stalled ingest, or was cancelled over and
-- over. New events are always inserted through the parent table (both insert
-- paths, and the legacy import), and an insert holds ROW EXCLUSIVE on the parent,
-- so a lock on the parent ONLY still waits for every one of them. Partition upkeep
-- moves rows (keeping their sequence numbers) under SHARE ROW EXCLUSIVE on the
-- parent, which this lock waits for too.
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
BEGIN
	-- One run at a time, whoever calls: the row lock serializes them.
	SELECT s.last_seq, s.as_of INTO lo, window_as_of FROM rollup_state s WHERE s.name = 'experiments' FOR UPDATE;

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

	DROP TABLE IF EXISTS pg_temp.w, pg_temp.wx, pg_temp.pairs, pg_temp.adds, pg_temp.old_goals,
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
		FROM (
			SELECT es.* FROM experiment_sessions es
			JOIN (SELECT DISTINCT project_id, session_id FROM w) t USING (project_id, session_id)
		) o
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
		WHERE p.new_variant IS NOT NULL AND e.event_type <> 'EXPOSURE' AND e.event_time >= p.new_first
		UNION ALL
		SELECT p.project_id, p.experiment_id, p.session_id, e.event_type, e.goal
		FROM pairs p
		JOIN analytics_events e ON e.project_id = p.project_id AND e.session_id = p.session_id
			AND e.event_time >= p.new_first AND e.event_time < coalesce(p.old_first, 'infinity')
		WHERE p.new_variant IS NOT NULL AND p.new_first < coalesce(p.old_first, 'infinity')
			AND e.seq <= lo AND e.event_type <> 'EXPOSURE';

	ALTER TABLE pairs ADD COLUMN new_pageviews integer NOT NULL DEFAULT 0;
	UPDATE pairs SET new_pageviews = old_pageviews WHERE new_variant IS NOT NULL AND existed AND old_variant IS NOT NULL;
	UPDATE pairs p SET new_pageviews = p.new_pageviews + a.n
	FROM (
		SELECT project_id, experiment_id, session_id, count(*)::int AS n FROM adds
		WHERE event_type = 'PAGEVIEW' GROUP BY project_id, experiment_id, session_id
	) a
	WHERE a.project_id = p.project_id AND a.experiment_id = p.experiment_id AND a.session_id = p.session_id;

	CREATE TEMP TABLE old_goals ON COMMIT DROP AS
		SELECT g.project_id, g.experiment_id, g.session_id, g.goal, g.conversions
		FROM experiment_session_goals g
		JOIN pairs p USING (project_id, experiment_id, session_id)
		WHERE p.existed AND p.old_variant IS NOT NULL;

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

	DELETE FROM experiment_session_goals g USING pairs p
	WHERE g.project_id = p.project_id AND g.experiment_id = p.experiment_id AND g.session_id = p.session_id;
	INSERT INTO experiment_session_goals (project_id, experiment_id, session_id, goal, conversions)
	SELECT project_id, experiment_id, session_id, goal, conversions FROM new_goals WHERE conversions > 0;

	-- asOf advances only when the window reached the sequence's end.
	IF hi = seq_now THEN
		window_as_of := started;
	END IF;
	UPDATE rollup_state s SET last_seq = hi, as_of = window_as_of, updated_at = now() WHERE s.name = 'experiments';
	RETURN QUERY SELECT n, hi, window_as_of;
END $$;
