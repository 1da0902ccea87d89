-- Users can be disabled, and their tokens revoked without deleting them: every token
-- carries the generation it was issued under (`gen`), and a user's tokens are accepted
-- only while that generation is the user's current one. A password change or reset, a
-- disable and a delete advance it. `kept_token` is the one token (its `jti`) that
-- survives a change of one's own password: the session that changed it stays signed in,
-- every other is refused (api.md, Identity: "the user's other tokens are refused").
ALTER TABLE users
    ADD COLUMN disabled_at         timestamptz,
    ADD COLUMN token_generation    integer     NOT NULL DEFAULT 0,
    ADD COLUMN kept_token          text        CHECK (length(kept_token) <= 64),
    ADD COLUMN password_changed_at timestamptz;
