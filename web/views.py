"""Small helpers shared by the blueprints: the current user's row and error rendering."""

from __future__ import annotations

from flask_login import current_user
from sqlalchemy.orm import Session

from broadcast.errors import PermissionDenied
from broadcast.models import User


def user_row(session: Session) -> User:
    user = session.get(User, int(current_user.get_id()))
    if user is None or not user.active:
        raise PermissionDenied("unknown or disabled user")
    return user
