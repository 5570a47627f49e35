from django.http import HttpRequest


def console(request: HttpRequest) -> dict[str, object]:
    """The signed-in viewer's workspace and role for the navigation bar."""
    return {"access": getattr(request, "access", None)}
