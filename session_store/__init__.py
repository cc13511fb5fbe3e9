"""Durable per-session FIX state: sequence numbers and sent messages for resend."""

from session_store.background_sync import BackgroundSyncer
from session_store.base import FsyncPolicy, SessionStore
from session_store.file_store import FileStore, StoreCorrupt, decode_seqnums, read_outbound
from session_store.inbound_log import InboundRecord, read_inbound
from session_store.memory_store import MemoryStore

__all__ = [
    "BackgroundSyncer",
    "FileStore",
    "FsyncPolicy",
    "InboundRecord",
    "MemoryStore",
    "SessionStore",
    "StoreCorrupt",
    "decode_seqnums",
    "read_inbound",
    "read_outbound",
]
