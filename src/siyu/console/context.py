from django.http import HttpRequest


def console(request: HttpRequest) -> dict[str, object]:
    return {}
