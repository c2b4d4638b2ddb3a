"""Kept for imports made before the store became a package: use ari_app.store.writer."""

from ari_app.store.engine import is_store_fault
from ari_app.store.writer import AsyncStore, StoreUnavailable

__all__ = ["AsyncStore", "StoreUnavailable", "is_store_fault"]
