import { defineConfig } from "drizzle-kit";

/** drizzle-kit settings for `deno task db:generate`: SQL migrations from db/schema.ts into migrations/. */
export default defineConfig({
  dialect: "postgresql",
  schema: "./db/schema.ts",
  out: "./migrations",
});
