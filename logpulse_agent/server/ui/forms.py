"""Form posts of the fleet pages: bounded reading and the same-origin check.

Forms are sent the browser's default way, ``application/x-www-form-urlencoded``, and parsed with
the standard library (Starlette's own form parser needs the ``python-multipart`` package, which
the server does not depend on; nothing here uploads files). Any other body type is refused with
415 before anything is read.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request

from logpulse_agent.server.errors import BadRequest, UnsupportedMediaType
from logpulse_agent.server.http import read_body

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 20_000  # a hand-picked bulk selection of a full page, with room to spare

Form = ImmutableMultiDict[str, str]


async def read_form(request: Request, limit: int) -> Form:
    """The posted fields, read up to ``limit`` bytes; 400 for bytes that are not a form."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM_TYPE:
        sent = media or "no content type"
        raise UnsupportedMediaType(f"forms are sent as {FORM_TYPE}, not {sent}")
    raw = await read_body(request, limit)
    try:
        pairs = parse_qsl(
            raw.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise BadRequest("the form is not URL-encoded UTF-8") from None
    except ValueError:
        raise BadRequest(f"the form has more than {MAX_FIELDS} fields") from None
    return ImmutableMultiDict(pairs)


def same_origin(request: Request) -> bool:
    """False when the browser says the post comes from another site.

    Browsers send ``Origin`` on every form post; a missing one (older clients, tools) passes
    and is left to the CSRF token. Only the host and port are compared, so a server behind a
    TLS-terminating proxy (``https`` outside, ``http`` here) is not refused.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()
