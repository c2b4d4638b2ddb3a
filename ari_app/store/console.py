"""The console's accounts (scrypt hashes), its sessions (by key hash), kept so that a
restart of the app logs nobody out, and its audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from ari_app.store.base import Tables, upsert
from ari_app.store.schema import console_audit, console_sessions, console_users
from ivr.store import now


class ConsoleTables(Tables):
    def set_console_password(self, name: str, role: str, password_hash: str) -> None:
        """Create the account or change its role and password."""
        with self.begin() as conn:
            upsert(conn, console_users, {"name": name, "role": role, "password_hash": password_hash, "changed_at": now()}, keys=["name"])

    def console_user(self, name: str) -> dict[str, Any] | None:
        """The account's row (name, role, password_hash, changed_at), or None."""
        with self.connect() as conn:
            row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
        return dict(row._mapping) if row else None

    def save_session(self, key_hash: str, name: str, role: str, csrf: str, expires: float) -> None:
        """Keep a console session (by the hash of its key)."""
        with self.begin() as conn:
            row = {"key_hash": key_hash, "name": name, "role": role, "csrf": csrf, "expires": expires}
            upsert(conn, console_sessions, row, keys=["key_hash"])

    def drop_session(self, key_hash: str) -> None:
        """Forget a session (logged out)."""
        with self.begin() as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.key_hash == key_hash))

    def sessions(self, *, now_epoch: float) -> list[dict[str, Any]]:
        """Console sessions still valid; expired ones are deleted."""
        with self.begin() as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.expires < now_epoch))
            return [dict(r._mapping) for r in conn.execute(select(console_sessions))]

    def audit(self, action: str, *, name: str = "", address: str = "", detail: str = "") -> None:
        """Add a line to the console's audit log."""
        with self.begin() as conn:
            conn.execute(insert(console_audit).values(at=now(), name=name, address=address, action=action, detail=detail))

    def audit_log(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit lines first: id, at, name, address, action, detail."""
        with self.connect() as conn:
            rows = conn.execute(select(console_audit).order_by(console_audit.c.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]
