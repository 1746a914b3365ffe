-- Custom SQL migration file, put your code below! --
-- start_exchange (migrations/0016_start_exchange.sql) also returns the conversation before the question it stores,
-- so that the engine's prompt and a follow-up's search need no read of their own on the path of every question
-- (on PGlite, whose one connection runs statements one after another, that read was ~1–1.5 ms of each question).
-- Read under the chat's lock and after the check that no reply in the chat is being written, the turns are
-- complete: none of them can change before the answer is prepared. `turns` holds the chat's messages that are not
-- superseded, oldest first, as db/messages.ts:turnsOf reads them ({id, seq, role, content, replyTo}); null unless
-- the outcome is 'created'.
DROP FUNCTION start_exchange(uuid, text, int, int, text, text, int, int, text, text, uuid, uuid, text, text, jsonb, jsonb);
--> statement-breakpoint
CREATE FUNCTION start_exchange(
  p_session uuid,
  p_client_id text,
  p_max_active int,
  p_daily_tokens int,
  p_day text, -- YYYY-MM-DD in UTC, as token_usage.day
  p_rate_key text,
  p_window_s int,
  p_per_window int,
  p_title text,
  p_default_title text,
  p_user_id uuid,
  p_assistant_id uuid,
  p_content text,
  p_model text,
  p_red_flags jsonb,
  p_redactions jsonb
) RETURNS TABLE (
  outcome text,
  active int,
  tokens_today bigint,
  rate_count int,
  reset_in int,
  user_seq bigint,
  assistant_seq bigint,
  stored_at timestamptz,
  turns jsonb
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_owner uuid;
  v_active int := NULL;
  v_tokens bigint := NULL;
  v_count int := NULL;
  v_reset int := NULL;
  v_turns jsonb;
BEGIN
  SELECT s.owner_id INTO v_owner FROM chat_sessions s WHERE s.id = p_session FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'no_session'::text, NULL::int, NULL::bigint, NULL::int, NULL::int, NULL::bigint,
      NULL::bigint, NULL::timestamptz, NULL::jsonb;
    RETURN;
  END IF;
  IF p_client_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM messages m WHERE m.session_id = p_session AND m.role = 'user' AND m.client_id = p_client_id
  ) THEN
    RETURN QUERY SELECT 'repeat'::text, NULL::int, NULL::bigint, NULL::int, NULL::int, NULL::bigint,
      NULL::bigint, NULL::timestamptz, NULL::jsonb;
    RETURN;
  END IF;
  IF p_max_active IS NOT NULL AND v_owner IS NOT NULL THEN
    PERFORM 1 FROM users u WHERE u.id = v_owner FOR NO KEY UPDATE;
    WITH streaming AS MATERIALIZED (
      SELECT m.session_id FROM messages m WHERE m.status IN ('pending', 'streaming')
    )
    SELECT count(*)::int INTO v_active
    FROM streaming m JOIN chat_sessions s ON s.id = m.session_id WHERE s.owner_id = v_owner;
    IF v_active >= p_max_active THEN
      RETURN QUERY SELECT 'limited'::text, v_active, NULL::bigint, NULL::int, NULL::int, NULL::bigint,
        NULL::bigint, NULL::timestamptz, NULL::jsonb;
      RETURN;
    END IF;
  END IF;
  IF p_daily_tokens > 0 AND v_owner IS NOT NULL THEN
    SELECT coalesce((SELECT t.tokens FROM token_usage t WHERE t.user_id = v_owner AND t.day = p_day), 0)
      INTO v_tokens;
    IF v_tokens >= p_daily_tokens THEN
      RETURN QUERY SELECT 'budget'::text, v_active, v_tokens, NULL::int, NULL::int, NULL::bigint, NULL::bigint,
        NULL::timestamptz, NULL::jsonb;
      RETURN;
    END IF;
  END IF;
  IF EXISTS (
    SELECT 1 FROM messages m WHERE m.session_id = p_session AND m.status IN ('pending', 'streaming')
  ) THEN
    RETURN QUERY SELECT 'busy'::text, v_active, v_tokens, NULL::int, NULL::int, NULL::bigint, NULL::bigint,
      NULL::timestamptz, NULL::jsonb;
    RETURN;
  END IF;
  IF p_rate_key IS NOT NULL THEN
    INSERT INTO rate_limits AS r (key, window_start, count)
    VALUES (p_rate_key, to_timestamp(floor(extract(epoch FROM now()) / p_window_s) * p_window_s), 1)
    ON CONFLICT (key, window_start) DO UPDATE SET count = r.count + 1
    RETURNING r.count, ceil(extract(epoch FROM (r.window_start + make_interval(secs => p_window_s) - now())))::int
      INTO v_count, v_reset;
    IF v_count > p_per_window THEN
      RETURN QUERY SELECT 'rate'::text, v_active, v_tokens, v_count, v_reset, NULL::bigint, NULL::bigint,
        NULL::timestamptz, NULL::jsonb;
      RETURN;
    END IF;
  END IF;
  SELECT coalesce(jsonb_agg(jsonb_build_object(
      'id', m.id, 'seq', m.seq, 'role', m.role, 'content', m.content, 'replyTo', m.reply_to
    ) ORDER BY m.seq), '[]'::jsonb)
    INTO v_turns
  FROM messages m WHERE m.session_id = p_session AND NOT m.superseded;
  UPDATE chat_sessions s SET updated_at = now(),
    title = CASE WHEN s.title = p_default_title THEN p_title ELSE s.title END
  WHERE s.id = p_session;
  RETURN QUERY
  WITH stored AS (
    INSERT INTO messages (id, session_id, role, content, status, client_id, red_flags, redactions, reply_to, model)
    VALUES
      (p_user_id, p_session, 'user', p_content, 'completed', p_client_id, p_red_flags, p_redactions, NULL, NULL),
      (p_assistant_id, p_session, 'assistant', '', 'pending', NULL, NULL, NULL, p_user_id, p_model)
    RETURNING messages.id, messages.seq, messages.created_at
  )
  SELECT 'created'::text, v_active, v_tokens, v_count, v_reset,
    (SELECT st.seq FROM stored st WHERE st.id = p_user_id),
    (SELECT st.seq FROM stored st WHERE st.id = p_assistant_id),
    (SELECT min(st.created_at) FROM stored st),
    v_turns;
END
$$;
