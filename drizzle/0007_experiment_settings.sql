CREATE TABLE "experiment_settings" (
	"project_id" uuid NOT NULL,
	"experiment_id" text NOT NULL,
	"name" text,
	"control_variant" text,
	"weights" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "experiment_settings_project_id_experiment_id_pk" PRIMARY KEY("project_id","experiment_id"),
	CONSTRAINT "experiment_settings_weights_object" CHECK ("experiment_settings"."weights" IS NULL OR jsonb_typeof("experiment_settings"."weights") = 'object')
);
--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "admin_key_hash" text;--> statement-breakpoint
ALTER TABLE "experiment_settings" ADD CONSTRAINT "experiment_settings_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "projects" ADD CONSTRAINT "projects_admin_key_hash_unique" UNIQUE("admin_key_hash");