"""The console's accounts (scrypt hashes) and its sessions (by key hash), kept so that a
restart of the app logs nobody out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from ari_app.store.base import Tables, upsert
from ari_app.store.schema import console_sessions, console_users
from ivr.store import now


class ConsoleTables(Tables):
    def set_console_password(self, name: str, role: str, password_hash: str) -> None:
        """Create the account or change its role and password."""
        with self.engine.begin() as conn:
            upsert(conn, console_users, {"name": name, "role": role, "password_hash": password_hash, "changed_at": now()}, keys=["name"])

    def console_user(self, name: str) -> dict[str, Any] | None:
        """The account's row (name, role, password_hash, changed_at), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
        return dict(row._mapping) if row else None

    def save_session(self, key_hash: str, name: str, role: str, csrf: str, expires: float) -> None:
        """Keep a console session (by the hash of its key)."""
        with self.engine.begin() as conn:
            row = {"key_hash": key_hash, "name": name, "role": role, "csrf": csrf, "expires": expires}
            upsert(conn, console_sessions, row, keys=["key_hash"])

    def drop_session(self, key_hash: str) -> None:
        """Forget a session (logged out)."""
        with self.engine.begin() as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.key_hash == key_hash))

    def sessions(self, *, now_epoch: float) -> list[dict[str, Any]]:
        """Console sessions still valid; expired ones are deleted."""
        with self.engine.begin() as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.expires < now_epoch))
            return [dict(r._mapping) for r in conn.execute(select(console_sessions))]
