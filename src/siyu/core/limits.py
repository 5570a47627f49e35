"""Bounds every input must respect before it reaches the database."""

# Ids are 64-bit signed integers on both SQLite and PostgreSQL.
MAX_ID = 2**63 - 1
# Amounts in fen: ten trillion yuan is not an order, it is a typo.
MAX_FEN = 10**15


def valid_id(value: int | None) -> bool:
    return value is not None and 1 <= value <= MAX_ID


MAX_WORD = 50


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL (\\u0000) character")
    return value


def clean_words(value: list[str], what: str = "words") -> list[str]:
    """Keyword / sensitive-word lists: trimmed, non-empty, at most 50 characters, no NUL, no repeats."""
    out: list[str] = []
    for word in value:
        word = word.strip()
        if not word:
            raise ValueError(f"{what} cannot be empty strings")
        if len(word) > MAX_WORD:
            raise ValueError(f"'{word[:20]}…' is longer than {MAX_WORD} characters")
        no_nul(word)
        if word not in out:
            out.append(word)
    return out
