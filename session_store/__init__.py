"""Durable per-session FIX state: sequence numbers and sent messages for resend."""

from session_store.background_sync import BackgroundSyncer
from session_store.base import FsyncPolicy, SessionStore
from session_store.file_store import FileStore, StoreCorrupt
from session_store.memory_store import MemoryStore

__all__ = [
    "BackgroundSyncer",
    "FileStore",
    "FsyncPolicy",
    "MemoryStore",
    "SessionStore",
    "StoreCorrupt",
]
