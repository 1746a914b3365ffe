/**
 * The container's health check: GET /healthz on this container's port (PORT, default 8000); exit 0 when it
 * answers 200 within 3 s. Deno only, so the image needs no curl.
 */
const port = Deno.env.get("PORT") || "8000";
try {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3000) });
  await response.body?.cancel();
  Deno.exit(response.ok ? 0 : 1);
} catch {
  Deno.exit(1);
}
