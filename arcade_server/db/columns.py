"""What every table module shares: the one :class:`~sqlalchemy.MetaData` (with a naming
convention, so constraint names are the same on SQLite and PostgreSQL and in the
migrations), the row type the services read, and the column helpers.

Columns are ``NOT NULL`` unless created with :func:`optional`; ``default=`` values are
applied by SQLAlchemy on insert (they are not in the schema).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import BigInteger, Column, Integer, MetaData, Row

__all__ = ["AnyRow", "BigId", "metadata", "optional", "required"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

#: A result row of any columns (the service functions read columns by name).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

# BIGINT autoincrement primary keys are not auto-increment in SQLite; INTEGER is.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def required(name: str, *args: Any, **kwargs: Any) -> Column[Any]:
    """A ``NOT NULL`` column."""
    return Column(name, *args, nullable=False, **kwargs)


def optional(name: str, *args: Any, **kwargs: Any) -> Column[Any]:
    """A nullable column."""
    return Column(name, *args, nullable=True, **kwargs)
