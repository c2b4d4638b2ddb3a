"""The store's tables, once, for both engines (SQLAlchemy Core): the shape the newest
migration leaves. Times are ISO-8601 UTC text (sortable, the same on both engines);
JSON details are text so a row reads the same from SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

metadata = MetaData()

# The store's own version: one row per migration applied (see migrations.py).
store_version = Table(
    "store_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("applied_at", Text, nullable=False),
)

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True),
    Column("channel_id", Text, nullable=False),
    Column("plan_id", Text),
    Column("caller_number", Text),
    Column("called_number", Text),
    Column("carrier", Text),
    Column("language", Text),
    Column("arrived_at", Text, nullable=False),
    Column("answered_at", Text),
    Column("queued_at", Text),
    Column("queue", Text),
    Column("operator", Text),
    Column("operator_answered_at", Text),
    Column("ended_at", Text),
    Column("route", Text),
    Column("route_result", Text),
    Column("end_reason", Text),
    Column("fallback", Integer, nullable=False, server_default="0"),
    Column("priority", Text),
    Column("flags", Text),
    Column("category", Text),
    Column("classified_by", Text),
    Column("classified_at", Text),
    Column("notes", Text),
    Column("closed_at", Text),
    Index("idx_incidents_channel_id", "channel_id", unique=True),
    Index("idx_incidents_caller_number_arrived_at", "caller_number", "arrived_at"),
)

incident_events = Table(
    "incident_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("at", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("detail", Text),
    # The key of the write that made the row: a write replayed from the spool lands once.
    Column("write_key", Text),
    Index("idx_incident_events_incident_id", "incident_id"),
    Index("idx_incident_events_write_key", "write_key", unique=True),
)

# The key of each named write applied (ari_app/store/writes.py), written in the same
# transaction as the write: a write replayed from the spool after a fault lands once.
applied_writes = Table(
    "applied_writes", metadata,
    Column("key", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("applied_at", Text, nullable=False),
    Index("idx_applied_writes_applied_at", "applied_at"),
)

locations = Table(
    "locations", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("radius_m", Float),
    Column("shape", Text),
    Column("method", Text),
    Column("confidence", Float),
    Column("measured_at", Text),
    Column("received_at", Text, nullable=False),
    Column("kecamatan", Text),
    Column("description", Text),
    Column("civic", Text),
    Column("uri", Text),
    Column("detail", Text),
    Column("hint", Integer, nullable=False, server_default="0"),
    Index("idx_locations_incident_id", "incident_id"),
)

recordings = Table(
    "recordings", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("name", Text),
    Column("path", Text, nullable=False),
    Column("duration_s", Float),
    Column("created_at", Text, nullable=False),
    Index("idx_recordings_incident_id", "incident_id"),
)

cells = Table(
    "cells", metadata,
    Column("key", Text, primary_key=True),
    Column("radio", Text),
    Column("mcc", Text),
    Column("mnc", Text),
    Column("area", Integer),
    Column("cell", Integer),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("radius_m", Float),
    Column("name", Text),
)

aml_inbox = Table(
    "aml_inbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", Text, nullable=False),
    Column("gateway", Text),
    Column("number", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("location", Text),
    Column("incident_id", Integer),
    Column("raw", Text),
    Index("idx_aml_inbox_number_received_at", "number", "received_at"),
)

operator_log = Table(
    "operator_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("operator", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("detail", Text),
    Index("idx_operator_log_operator_at", "operator", "at"),
)

# One entry per number: the latest unanswered call, how many, and the callback's state.
callbacks = Table(
    "callbacks", metadata,
    Column("number", Text, primary_key=True),
    Column("incident_id", Integer),
    Column("first_at", Text, nullable=False),
    Column("last_call_at", Text, nullable=False),
    Column("calls", Integer, server_default="1"),
    Column("attempts", Integer, server_default="0"),
    Column("status", Text, nullable=False),
    Column("operator", Text),
    Column("started_at", Text),
    Column("closed_at", Text),
    Column("closed_reason", Text),
    Index("idx_callbacks_status_last_call_at", "status", "last_call_at"),
)

number_clears = Table(
    "number_clears", metadata,
    Column("number", Text, primary_key=True),
    Column("cleared_at", Text, nullable=False),
    Column("cleared_by", Text),
)

console_users = Table(
    "console_users", metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("changed_at", Text),
)

# Who logged in to the console, who failed, what was locked and lifted, and every change a
# supervisor made: `at` (UTC), the account, the client address, the action and its detail.
console_audit = Table(
    "console_audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("name", Text),
    Column("address", Text),
    Column("action", Text, nullable=False),
    Column("detail", Text),
    Index("idx_console_audit_at", "at"),
)

# The SHA-256 of each session key, never the key: a copy of the store logs nobody in.
console_sessions = Table(
    "console_sessions", metadata,
    Column("key_hash", Text, primary_key=True),
    Column("name", Text),
    Column("role", Text),
    Column("csrf", Text),
    Column("expires", Float),
)

# Text to 112 (issue 19): every text in and out of a conversation, on its incident.
text_messages = Table(
    "text_messages", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, nullable=False),
    Column("at", Text, nullable=False),
    Column("door", Text, nullable=False),  # sip / sms
    Column("direction", Text, nullable=False),  # in / out
    Column("number", Text, nullable=False),
    Column("address", Text),  # where a reply goes: the sender's SIP URI, or the number for SMS
    Column("body", Text, nullable=False),
    Column("author", Text),  # the operator who wrote a reply; "auto" for the first answer
    Column("notes", Text),  # what cleaning did to a received text
    # Where a received text was read (its line in the texts' journal): a text read twice is kept once.
    Column("source_key", Text),
    Index("idx_text_messages_incident", "incident_id"),
    Index("idx_text_messages_source_key", "source_key", unique=True),
)

# Replies waiting to be delivered: a row is written with its message, and removed from the
# due list only once the door (ARI or the SMS gateway) took it.
text_outbox = Table(
    "text_outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, nullable=False),
    Column("door", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", Text, nullable=False),
    Column("sent_at", Text),
    Column("last_error", Text),
    Index("idx_text_outbox_due", "sent_at", "next_at"),
)

# The EIDO updates waiting for each agency's webhook (issue 17): one row per version of an
# incident's EIDO for one agency, delivered in id order per agency, marked sent only once
# the agency's system answered 2xx (ari_app/agency_push.py).
agency_outbox = Table(
    "agency_outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("agency", Text, nullable=False),
    Column("plan_id", Text),
    Column("incident_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("eido_id", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # When it may be tried next; a sender that takes it moves it past its own timeout first.
    Column("next_at", Text, nullable=False),
    Column("sent_at", Text),
    Column("dropped_at", Text),  # the agency has no webhook any more: kept, never sent
    Column("last_error", Text),
    Index("idx_agency_outbox_version", "agency", "incident_id", "version", unique=True),
    Index("idx_agency_outbox_due", "agency", "sent_at", "dropped_at", "id"),
)
