CREATE TABLE "projects" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"write_key_hash" text NOT NULL,
	"read_key_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "projects_write_key_hash_unique" UNIQUE("write_key_hash"),
	CONSTRAINT "projects_read_key_hash_unique" UNIQUE("read_key_hash")
);
