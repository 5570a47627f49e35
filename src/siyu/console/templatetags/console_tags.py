from django import template

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    """Integer fen as ¥ with two decimals and thousands separators: 1234500 -> ¥12,345.00."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"
