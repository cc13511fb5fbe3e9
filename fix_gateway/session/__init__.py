"""FIX session layer: a sans-I/O state machine per session, and the connection
logic that binds a TCP connection to a session at Logon."""

from fix_gateway.session.config import SessionConfig
from fix_gateway.session.connection import Connection, SessionRegistry
from fix_gateway.session.session import Application, RejectingApplication, Session, State

__all__ = [
    "Application",
    "Connection",
    "RejectingApplication",
    "Session",
    "SessionConfig",
    "SessionRegistry",
    "State",
]
