"""The views: a live feed relayed from upstream, request/reply through one shared connection, status."""

from django.http import HttpRequest, JsonResponse

from examples import relay


def feed(request: HttpRequest) -> JsonResponse:
    return JsonResponse(relay.latest(), safe=False)


def echo(request: HttpRequest) -> JsonResponse:
    body, status_code = relay.echo(request.GET.get("text", ""))
    return JsonResponse(body, status=status_code)


def status(request: HttpRequest) -> JsonResponse:
    return JsonResponse(relay.status())
