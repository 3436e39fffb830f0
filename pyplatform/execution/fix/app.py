"""The quickfix Application callbacks both ends of a session share."""

from __future__ import annotations

import quickfix as fix

from pyplatform.execution.fix.session import copy_session_id

__all__ = ["SessionApp"]


class SessionApp(fix.Application):
    """Tracks the session id and logon state on ``owner`` (which has ``session_id`` and an
    Event ``logged_on``) and forwards application messages to ``owner._on_app``; subclasses
    override the admin/app hooks they need."""

    def __init__(self, owner) -> None:
        super().__init__()
        self.owner = owner

    def onCreate(self, sessionID):  # noqa: N802 (quickfix's names)
        # copy: the argument is a reference into a session quickfix frees when it stops
        self.owner.session_id = copy_session_id(sessionID)

    def onLogon(self, sessionID):  # noqa: N802
        self.owner.logged_on.set()

    def onLogout(self, sessionID):  # noqa: N802
        self.owner.logged_on.clear()

    def toAdmin(self, message, sessionID):  # noqa: N802
        pass

    def fromAdmin(self, message, sessionID):  # noqa: N802
        pass

    def toApp(self, message, sessionID):  # noqa: N802
        pass

    def fromApp(self, message, sessionID):  # noqa: N802
        self.owner._on_app(message)
