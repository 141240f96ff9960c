-- The web overview and the outbox page list one organization's messages in
-- one status (in doubt, failed), newest first: without this index that was a
-- scan of every message the organization ever sent.
CREATE INDEX outbox_messages_org_status_idx ON outbox_messages (org_id, status, id);
