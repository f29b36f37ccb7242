-- An exposure that names no experiment or no variant says nothing an experiment
-- can use, and would make every reader guess. The ingest API refuses them; this
-- makes sure nothing else (imports, manual fixes) can store one either, so the
-- rollup and every query can rely on it.
ALTER TABLE "analytics_events" ADD CONSTRAINT "analytics_events_exposure_names_variant"
	CHECK ("event_type" <> 'EXPOSURE' OR ("experiment_id" IS NOT NULL AND "variant_key" IS NOT NULL));
