"""Bounds every input must respect before it reaches the database."""

# Ids are 64-bit signed integers on both SQLite and PostgreSQL.
MAX_ID = 2**63 - 1
# Amounts in fen: ten trillion yuan is not an order, it is a typo.
MAX_FEN = 10**15


def valid_id(value: int | None) -> bool:
    return value is not None and 1 <= value <= MAX_ID
