CREATE TABLE "experiment_cohorts" (
	"project_id" uuid NOT NULL,
	"experiment_id" text NOT NULL,
	"variant_key" text NOT NULL,
	"goal" text NOT NULL,
	"bucket" timestamp with time zone NOT NULL,
	"sessions" bigint DEFAULT 0 NOT NULL,
	"converted_sessions" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_cohorts_project_id_experiment_id_variant_key_goal_bucket_pk" PRIMARY KEY("project_id","experiment_id","variant_key","goal","bucket")
);
--> statement-breakpoint
CREATE TABLE "experiment_session_goals" (
	"project_id" uuid NOT NULL,
	"experiment_id" text NOT NULL,
	"session_id" text NOT NULL,
	"goal" text NOT NULL,
	"conversions" integer NOT NULL,
	CONSTRAINT "experiment_session_goals_project_id_experiment_id_session_id_goal_pk" PRIMARY KEY("project_id","experiment_id","session_id","goal")
);
--> statement-breakpoint
CREATE TABLE "experiment_sessions" (
	"project_id" uuid NOT NULL,
	"experiment_id" text NOT NULL,
	"session_id" text NOT NULL,
	"variant_key" text,
	"first_exposure_at" timestamp with time zone NOT NULL,
	"pageviews" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_sessions_project_id_experiment_id_session_id_pk" PRIMARY KEY("project_id","experiment_id","session_id")
);
--> statement-breakpoint
CREATE TABLE "experiment_totals" (
	"project_id" uuid NOT NULL,
	"experiment_id" text NOT NULL,
	"exposed_sessions" bigint DEFAULT 0 NOT NULL,
	"excluded_sessions" bigint DEFAULT 0 NOT NULL,
	"first_exposure_at" timestamp with time zone NOT NULL,
	"last_exposure_at" timestamp with time zone NOT NULL,
	CONSTRAINT "experiment_totals_project_id_experiment_id_pk" PRIMARY KEY("project_id","experiment_id")
);
--> statement-breakpoint
CREATE TABLE "experiment_variant_totals" (
	"project_id" uuid NOT NULL,
	"experiment_id" text NOT NULL,
	"variant_key" text NOT NULL,
	"goal" text NOT NULL,
	"sessions" bigint DEFAULT 0 NOT NULL,
	"pageview_sessions" bigint DEFAULT 0 NOT NULL,
	"pageviews" bigint DEFAULT 0 NOT NULL,
	"converted_sessions" bigint DEFAULT 0 NOT NULL,
	"conversions" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "experiment_variant_totals_project_id_experiment_id_variant_key_goal_pk" PRIMARY KEY("project_id","experiment_id","variant_key","goal")
);
--> statement-breakpoint
CREATE TABLE "rollup_state" (
	"name" text PRIMARY KEY NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"as_of" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "experiment_sessions_session_idx" ON "experiment_sessions" USING btree ("project_id","session_id");