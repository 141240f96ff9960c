-- One-click unsubscribe looks a message up by its secret token. Not unique:
-- tokens are 128 random bits, but the store does not make them and must not
-- reject a run over them.
CREATE INDEX outbox_messages_token_idx ON outbox_messages (token);
