"""Asterisk's own record of each call in the shared store (CEL to PostgreSQL, cel_pgsql).

In a cluster a node's Asterisk may die after it answered a call but before its app saw
the call (the dialplan answers before Stasis): the app then never opened an incident. With
cel_pgsql, Asterisk writes the channel's start and answer to the shared store as they
happen; the sweeper of a lost node (ari_app/cluster/sweep.py) opens and closes an incident
for each answered call of that node that has none. Only for a node (`node_name` set) with a
PostgreSQL store; a single machine has no other node to do that.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ivr.settings import Settings

TABLE = "ivr112_cel"
EVENTS = ("CHAN_START", "ANSWER", "HANGUP")
# The columns cel_pgsql fills by name (it reads the table's columns when it loads).
CREATE_TABLE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, eventtype text NOT NULL, "
                "eventtime timestamp NOT NULL, cid_num text, exten text, context text, channame text, appname text, "
                "uniqueid text NOT NULL, linkedid text)")
CREATE_INDEX = f"CREATE INDEX IF NOT EXISTS {TABLE}_uniqueid ON {TABLE} (uniqueid)"


def enabled(settings: Settings) -> bool:
    return bool(settings.node_name) and settings.store_url.startswith(("postgresql://", "postgres://"))


def render(settings: Settings) -> dict[str, str]:
    """The placeholders of cel.conf, cel_pgsql.conf and modules.conf."""
    if not enabled(settings):
        return {"cel_general": "enable = no", "cel_pgsql": "", "cel_modules": ""}
    url = urlsplit(settings.store_url)
    pgsql = "\n".join([
        f"hostname = {url.hostname or ''}", f"port = {url.port or 5432}", f"dbname = {url.path.lstrip('/')}",
        f"user = {unquote(url.username or '')}", f"password = {unquote(url.password or '')}", f"table = {TABLE}",
        "usegmtime = yes", f"appname = asterisk-{settings.node_name}",
    ])
    return {"cel_general": f"enable = yes\nevents = {','.join(EVENTS)}", "cel_pgsql": pgsql,
            "cel_modules": "load => cel_pgsql.so"}
