"""STAC API search over pystac-client (retries, timeouts, errors that say what to change), and ``open``."""

from __future__ import annotations

import difflib
import functools
import inspect
import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

import odc.stac
import pystac
import xarray as xr
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from urllib3 import Retry

from anyband_xr.stac.errors import NoItemsError, StacError
from anyband_xr.stac.loading import load

_TRANSIENT_STATUS = (429, 502, 503, 504)
# Client.open keywords ``search`` passes on (it sets stac_io and timeout itself).
_CLIENT_ONLY = frozenset(inspect.signature(Client.open).parameters) - {"url", "stac_io", "timeout"}
#: Keywords ``odc.stac.load`` takes through its ``**kw`` (older spellings it still honours), not by name.
_ODC_EXTRA = frozenset({"nodata", "use_overviews", "align", "output_crs", "debug"})
_NOT_STAC = (json.JSONDecodeError, pystac.STACTypeError)


def _retry(retries: int | Retry) -> Retry:
    """``retries`` as a urllib3 ``Retry``: a count covers connection errors and the transient HTTP 429/502/503/504
    of every request (GET and POST), backing off exponentially (0, 1, 2, 4 ... s)."""
    if isinstance(retries, Retry):
        return retries
    return Retry(
        total=retries, backoff_factor=0.5, status_forcelist=_TRANSIENT_STATUS, allowed_methods=None,
        raise_on_status=False,
    )


def _not_stac(url: str, during: str, err: Exception) -> str:
    return (
        f"{url} answered {during} with something that is not a STAC API response (an HTML page or other non-STAC "
        f"JSON: {str(err)[:120]}). Check that the URL is the API root, e.g. https://earth-search.aws.element84.com/v1 "
        "or https://planetarycomputer.microsoft.com/api/stac/v1, not a web page or a single item."
    )


def _client(url: str, timeout: float, retries: int | Retry, client_kwargs: dict[str, Any]) -> Client:
    try:
        # Client.open passes its own ``timeout`` to the StacApiIO (None would erase ours), so give it there.
        return Client.open(url, stac_io=StacApiIO(max_retries=_retry(retries)), timeout=timeout, **client_kwargs)
    except APIError as err:
        raise StacError(_explain(err, url, "opening the landing page", timeout, retries)) from err
    except _NOT_STAC as err:
        raise StacError(_not_stac(url, "its landing page", err)) from err


def _explain(err: APIError, url: str, during: str, timeout: float, retries: int | Retry) -> str:
    status = getattr(err, "status_code", None)
    text = str(err).strip()[:300]
    if status is not None:
        return f"STAC API {url} answered HTTP {status} while {during}: {text}. Retry later or narrow the search."
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"STAC API {url} did not answer within timeout={timeout} s while {during}; raise timeout= or retries=."
    return (
        f"cannot reach STAC API {url} while {during} ({text}). Check the URL and your network; "
        f"retries={retries}, timeout={timeout} s can be raised."
    )


def search(
    url: str,
    *,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    ids: Sequence[str] | None = None,
    max_items: int | None = 100,
    page_size: int | None = None,
    timeout: float = 30.0,
    retries: int | Retry = 3,
    headers: dict[str, str] | None = None,
    modifier: Callable[[Any], None] | None = None,
    **search_kwargs: Any,
) -> pystac.ItemCollection:
    """Items of a STAC API item search; raises ``StacError`` naming the failing request, ``NoItemsError`` when nothing
    matched.

    Args:
        url: the STAC API root.
        collections: collection id(s).
        bbox: degrees west, south, east, north.
        datetime: RFC 3339 instant or range (``"2024-06-01/2024-06-30"``).
        ids: item ids.
        max_items: at most this many items (None: all).
        page_size: items per page (the API's ``limit``).
        timeout: seconds for each request's connect and read.
        retries: a count (connection errors and HTTP 429/502/503/504 of each request) or a ``urllib3.Retry``.
        headers: HTTP headers of every request (e.g. an API key).
        modifier: pystac-client's item modifier, e.g. ``planetary_computer.sign_inplace`` to sign asset URLs.
        **search_kwargs: passed to ``pystac_client.Client.search`` (``query``, ``filter``, ``filter_lang``,
            ``sortby``, ``fields``, ``intersects``, ``method``) or ``Client.open`` (``request_modifier``,
            ``parameters``, ``ignore_conformance``).

    Example:
        >>> items = anyband_xr.stac.search(url, collections="sentinel-2-l2a", query={"eo:cloud_cover": {"lt": 20}})
    """
    client_kwargs = {k: search_kwargs.pop(k) for k in _CLIENT_ONLY & set(search_kwargs)}
    client_kwargs.update({k: v for k, v in (("headers", headers), ("modifier", modifier)) if v is not None})
    client = _client(url, timeout, retries, client_kwargs)
    collections = [collections] if isinstance(collections, str) else collections
    query = dict(collections=collections, bbox=bbox, datetime=datetime, ids=ids, max_items=max_items, limit=page_size)
    found: list[pystac.Item] = []
    page = 0
    try:
        for page, batch in enumerate(client.search(**query, **search_kwargs).pages(), start=1):
            found.extend(batch)
    except APIError as err:
        during = f"fetching page {page + 1} of the search results (after {len(found)} items)"
        raise StacError(_explain(err, url, during, timeout, retries)) from err
    except _NOT_STAC as err:
        raise StacError(_not_stac(url, f"page {page + 1} of the item search", err)) from err
    if not found:
        searched = {**query, **search_kwargs}
        said = ", ".join(f"{k}={v!r}" for k, v in searched.items() if v is not None and k != "limit")
        raise NoItemsError(f"no items found at {url} for {said or 'an unrestricted search'}.")
    return pystac.ItemCollection(found)


def _named(func: Callable, without: Collection[str] = ()) -> frozenset[str]:
    """The keywords ``func`` takes by name, less ``without``."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(n for n, p in inspect.signature(func).parameters.items() if p.kind in kinds) - set(without)


@functools.cache
def _keywords() -> tuple[frozenset[str], frozenset[str]]:
    """The keywords of ``search`` and of ``load``: their own and those their ``**kwargs`` pass on by name
    (pystac-client's ``Client.search`` and ``Client.open``, ``odc.stac.load`` with its ``**kw`` extras), less what
    they set themselves."""
    searching = _named(search, ["url"]) | _named(Client.search, ["self", "limit"]) | _CLIENT_ONLY
    loading = _named(load, ["items", "bands"]) | _named(odc.stac.load, ["items", "bands"]) | _ODC_EXTRA
    return searching, loading


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``open``'s keywords as those for ``search`` and those for ``load`` (both take ``bbox`` and ``intersects``);
    raises ``TypeError`` naming a keyword that neither takes and listing the valid ones."""
    searching, loading = _keywords()
    if unknown := sorted(kwargs.keys() - searching - loading):
        close = {k: difflib.get_close_matches(k, searching | loading, n=1) for k in unknown}
        hints = "".join(f" ({k!r}: did you mean {m[0]!r}?)" for k, m in close.items() if m)
        raise TypeError(
            f"open() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}{hints}. It takes url, bands "
            f"and every keyword of search ({', '.join(sorted(searching))}) and of load ({', '.join(sorted(loading))})."
        )
    return {k: v for k, v in kwargs.items() if k in searching}, {k: v for k, v in kwargs.items() if k in loading}


def open(  # noqa: A001  (anyband_xr.stac.open reads like xarray.open_dataset)
    url: str, *, bands: Sequence[str] | None = None, **kwargs: Any
) -> xr.DataArray:
    """``search`` then ``load``: a lazy wavelength-labelled DataArray ``(time, band, y, x)`` from a STAC API.

    Takes every keyword of ``search`` and of ``load`` and sends each where it belongs: ``collections``,
    ``datetime``, ``ids``, ``max_items`` (default 100), ``query``, ``filter``, ``sortby``, ``headers``, ``modifier``,
    ``timeout``, ``retries`` ... to ``search``; ``crs``, ``resolution``, ``groupby``, ``chunks``, ``resampling``,
    ``patch_url``, ``wavelengths`` ... to ``load``. ``bbox`` (degrees west, south, east, north) and ``intersects``
    (a GeoJSON geometry) go to both: they select the items and crop the load. A keyword that neither takes raises
    ``TypeError`` naming it and listing the valid ones.

    Args:
        url: the STAC API root.
        bands: asset keys, band names or common names, as in ``load``.
        **kwargs: every keyword of ``search`` and of ``load``, with their defaults.

    Example:
        >>> da = anyband_xr.stac.open(
        ...     "https://earth-search.aws.element84.com/v1", collections="sentinel-2-l2a", bbox=bbox,
        ...     datetime="2024-06", query={"eo:cloud_cover": {"lt": 20}}, max_items=5,   # search
        ...     bands=["red", "nir"], resolution=20, groupby="solar_day",               # load
        ... )
    """
    searching, loading = _split(kwargs)
    return load(search(url, **searching), bands, **loading)
