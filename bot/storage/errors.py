"""Database errors, for code outside bot/storage that must catch them without importing SQLAlchemy."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError as DatabaseError

from bot.storage.pending import DATABASE_ERRORS, DatabaseUnavailable

__all__ = ["DATABASE_ERRORS", "DatabaseError", "DatabaseUnavailable"]
