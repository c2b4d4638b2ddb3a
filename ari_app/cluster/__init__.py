"""Several call nodes behind a Kamailio edge, with one PostgreSQL store (docs/cluster.md)."""
