"""Compute API microversions: parse the request headers, negotiate, echo.

Like Nova: ``OpenStack-API-Version: compute X.Y`` wins over the legacy
``X-OpenStack-Nova-API-Version: X.Y``; no header means the minimum (2.1);
``latest`` means this release's maximum; a version outside the range is 406
and a malformed one 400. Every response carries the negotiated version back.
"""
from __future__ import annotations

import re
from functools import total_ordering

from minicloud.web import HTTPError

MIN_VERSION = "2.1"
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
SERVICE_TYPE = "compute"
_VARY = f"{HEADER}, {LEGACY_HEADER}"
_VERSION_RE = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@total_ordering
class APIVersion:
    """A microversion ``major.minor``, ordered numerically (2.10 > 2.9)."""

    def __init__(self, text: str) -> None:
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise ValueError(f"invalid microversion {text!r}")
        self.major, self.minor = int(match.group(1)), int(match.group(2))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def __repr__(self) -> str:
        return f"APIVersion({str(self)!r})"

    def _key(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = APIVersion(other)
        return isinstance(other, APIVersion) and self._key() == other._key()

    def __lt__(self, other: APIVersion | str) -> bool:
        if isinstance(other, str):
            other = APIVersion(other)
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def matches(self, minimum: str, maximum: str | None = None) -> bool:
        """True if ``minimum <= self`` (and ``self <= maximum`` when given)."""
        return self >= APIVersion(minimum) and (maximum is None or self <= APIVersion(maximum))


def requested(headers: object) -> str | None:
    """The version text the client asked for, or None when it asked for none."""
    get = headers.get  # type: ignore[attr-defined]  # http.client.HTTPMessage or a dict
    value = get(HEADER)
    if value:
        for part in str(value).split(","):
            service, _, version = part.strip().partition(" ")
            if service.lower() == SERVICE_TYPE and version.strip():
                return version.strip()
    legacy = get(LEGACY_HEADER)
    return str(legacy).strip() if legacy else None


def negotiate(headers: object, max_version: str) -> APIVersion:
    """The version to serve this request at; HTTPError 400/406 when impossible."""
    text = requested(headers)
    if text is None:
        return APIVersion(MIN_VERSION)
    if text.lower() == "latest":
        return APIVersion(max_version)
    try:
        version = APIVersion(text)
    except ValueError:
        raise HTTPError(400, f"Invalid API version request string {text!r}", "badRequest",
                        headers={"Vary": _VARY}) from None
    if not version.matches(MIN_VERSION, max_version):
        raise HTTPError(406, f"Version {version} is not supported by the API. Minimum is "
                             f"{MIN_VERSION} and maximum is {max_version}.", "notAcceptable",
                        headers={"Vary": _VARY})
    return version


def response_headers(version: APIVersion | str) -> dict[str, str]:
    """What Nova sends back on every versioned response."""
    return {HEADER: f"{SERVICE_TYPE} {version}", LEGACY_HEADER: str(version),
            "Vary": _VARY}
