"""Acquire files for real: mirror lists, resumable HTTP, retries, and checksums before anything is kept.

Stdlib only (`urllib`). The rules, in the order a file meets them:

1. A file placed by hand in `manual_dir` (under its name or an accepted alias) is verified and used;
   a hash mismatch there is an error (the user placed the wrong file), never silently skipped.
2. A file already in `download_dir` that verifies is reused: no network. One that fails to verify is
   deleted and fetched again (only verified files are ever renamed into the cache, so this means
   outside damage).
3. Otherwise each mirror is tried in order. Bytes stream into `<dest>.part`; a later attempt resumes it
   with `Range: bytes=<size>-` (206 → append; 200 → the server ignores ranges, restart from 0).
   Transient failures (timeouts, resets, short bodies, HTTP 408/425/429/5xx) are retried `retries`
   times per mirror with exponential backoff; permanent ones (DNS failure, connection refused,
   HTTP 4xx, TLS certificate errors) move to the next mirror at once, so an offline machine falls
   through the whole chain in well under a second.
4. The finished `.part` is hashed; on a mismatch it is deleted and `ChecksumMismatch` is raised (a
   mirror serving other bytes than the published hash is not worked around); on a match it is renamed
   into place atomically, with the URL it came from in `<dest>.source` (read back as provenance when
   the cached file is reused).

Files without a published hash (AFHQ, QuickDraw) get their sha256 recorded on first acquisition in a
git-tracked JSON (`data/acquired_checksums.json`) and verified against it afterwards.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USER_AGENT = "ganlab-data/0.1 (python-urllib)"
_CHUNK_BYTES = 1 << 20
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


class ChecksumMismatch(ValueError):
    """A file's bytes disagree with the expected hash. Names the file, the algorithm, both digests."""

    def __init__(
        self, file: str | Path, algorithm: str, expected: str, actual: str, *, source: str | None = None
    ):
        self.file, self.algorithm, self.source = str(file), algorithm, source
        self.expected, self.actual = expected, actual
        where = f" (from {source})" if source else ""
        super().__init__(f"{self.file}{where}: {algorithm} mismatch: expected {expected}, actual {actual}")


class DownloadError(RuntimeError):
    """Every mirror of one file failed. `attempts` is a list of (url, error description)."""

    def __init__(self, file: str, attempts: Sequence[tuple[str, str]]):
        self.file = file
        self.attempts = list(attempts)
        lines = "\n".join(f"  - {url}: {err}" for url, err in self.attempts)
        super().__init__(f"could not download {file}:\n{lines}")


class DatasetUnavailable(RuntimeError):
    """No source of a dataset worked. Lists each source tried with its error, and the exact path(s)
    where the files can be placed by hand; `dvc repro` then picks them up."""

    def __init__(
        self, dataset: str, attempts: Sequence[tuple[str, str]], manual_options: Sequence[Sequence[Path]]
    ):
        self.dataset = dataset
        self.attempts = list(attempts)
        self.manual_options = [list(map(Path, option)) for option in manual_options]
        tried = "\n".join(f"  - {src}: {err}" for src, err in self.attempts) or "  (none)"
        options = "\n  or\n".join("\n".join(f"    {p}" for p in option) for option in self.manual_options)
        super().__init__(
            f"dataset {dataset!r} is unavailable: no source worked.\nSources tried:\n{tried}\n"
            f"To provide it by hand, place\n{options}\nthen run `dvc repro` again."
        )


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name on disk, its mirrors (tried in order), its published hashes."""

    name: str
    urls: tuple[str, ...] = ()
    md5: str | None = None
    sha256: str | None = None
    alt_names: tuple[str, ...] = ()  # other names accepted in manual_dir (what a browser saves it as)


# ----------------------------------------------------------------------------------------------------
# Hashing


def hash_file(path: Path) -> dict[str, Any]:
    """md5 and sha256 (hex) and size of a file, in one streaming pass."""
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest(), "size_bytes": size}


def check_hashes(
    file: str | Path, actual: dict[str, Any], *, md5: str | None, sha256: str | None, source: str | None = None
) -> list[str]:
    """Compare `actual` (from `hash_file`) with the expected digests that are given; return the names of
    the algorithms verified (empty if none was expected); raise ChecksumMismatch on the first mismatch."""
    verified = []
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected is None:
            continue
        if actual[algorithm] != expected.lower():
            raise ChecksumMismatch(file, algorithm, expected.lower(), actual[algorithm], source=source)
        verified.append(algorithm)
    return verified


# ----------------------------------------------------------------------------------------------------
# HTTP


class _IncompleteBody(ConnectionError):
    """The server closed the connection before the announced number of bytes arrived."""


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying the same URL? DNS, refusals, 4xx and certificate errors are not."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in _TRANSIENT_HTTP
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (socket.gaierror, ConnectionRefusedError, ssl.SSLCertVerificationError)):
        return False
    return isinstance(exc, (TimeoutError, ConnectionError, http.client.HTTPException))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"URLError: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _content_range(header: str | None) -> tuple[int, int | None]:
    """'bytes 100-999/1000' -> (100, 1000); total None when given as '*'."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (header or "").strip())
    if not match:
        raise _IncompleteBody(f"206 response with unusable Content-Range {header!r}")
    total = None if match[3] == "*" else int(match[3])
    return int(match[1]), total


def _fetch_to_part(url: str, part: Path, timeout_s: float) -> None:
    """One HTTP attempt: continue `part` from its current size (or start it) until the body ends.
    Raises on any failure; a short body raises _IncompleteBody, leaving `part` for the next resume."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # .part is as long as (or longer than) the file: start over
            part.unlink(missing_ok=True)
            raise _IncompleteBody(f"HTTP 416 for a resume at byte {offset}; restarting from 0") from exc
        raise
    with response:
        if offset and response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _IncompleteBody(f"server resumed at byte {start}, asked for {offset}; restarting from 0")
            mode = "ab"
            log.info("resuming %s at byte %d", url, offset)
        else:  # 200: a fresh body (also the answer of a server that ignores Range)
            length = response.headers.get("Content-Length")
            offset, total, mode = 0, int(length) if length is not None else None, "wb"
            log.info("downloading %s (%s bytes)", url, total if total is not None else "unknown")
        with open(part, mode) as fh:
            while chunk := response.read(_CHUNK_BYTES):
                fh.write(chunk)
    size = part.stat().st_size
    if total is not None and size != total:
        raise _IncompleteBody(f"connection ended after {size} of {total} bytes")


def _origin_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".source")


def download(
    urls: Sequence[str],
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 0.5,
) -> dict[str, Any]:
    """Make `dest` a verified copy of the file served at the first working URL of `urls`.

    An existing `dest` that matches the given hashes is reused; one that does not is replaced. Bytes go
    to `<dest>.part` and are resumed there across attempts (and across runs); they reach `dest` only
    after the hashes match (atomic rename). `retries` bounds attempts per URL on transient errors,
    sleeping `backoff_s * 2**k` between them; permanent errors move to the next URL immediately.

    Returns {"path", "url", "md5", "sha256", "size_bytes", "verified" (algorithms checked), "reused"}.
    Raises ChecksumMismatch (the .part is deleted, `dest` untouched) or DownloadError (every URL failed,
    each with its error).
    """
    if retries < 1:
        raise ValueError(f"retries must be >= 1 (attempts per URL), got {retries}")
    dest = Path(dest)
    cached = _reuse_verified(dest, md5=md5, sha256=sha256)
    if cached is not None:
        return cached
    if not urls:
        raise DownloadError(dest.name, [("(no URL)", "no mirror is known for this file")])
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempts: list[tuple[str, str]] = []
    for url in urls:
        if _fetch_with_retries(url, part, attempts, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s):
            return _keep_if_verified(part, dest, url, md5=md5, sha256=sha256)
    raise DownloadError(dest.name, attempts)


def _reuse_verified(dest: Path, *, md5: str | None, sha256: str | None) -> dict[str, Any] | None:
    """`download`'s result for an existing `dest` that verifies; None when there is none. One that fails
    verification is deleted (only verified files are renamed into place, so this is outside damage)."""
    if not dest.exists():
        return None
    hashes = hash_file(dest)
    try:
        verified = check_hashes(dest, hashes, md5=md5, sha256=sha256)
    except ChecksumMismatch as exc:
        log.warning("cached file fails verification, fetching again: %s", exc)
        dest.unlink()
        return None
    origin = _origin_path(dest)
    url = origin.read_text().strip() if origin.exists() else f"cache:{dest}"
    return {"path": dest, "url": url, **hashes, "verified": verified, "reused": True}


def _fetch_with_retries(
    url: str, part: Path, attempts: list[tuple[str, str]], *, timeout_s: float, retries: int, backoff_s: float
) -> bool:
    """Up to `retries` attempts of `_fetch_to_part` from one mirror; True once `part` holds a whole body.

    Each failure is appended to `attempts` as (url, description); a permanent one ends this mirror at
    once, a transient one is retried after `backoff_s * 2**(attempt - 1)` seconds.
    """
    for attempt in range(1, retries + 1):
        try:
            _fetch_to_part(url, part, timeout_s)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            transient = _is_transient(exc)
            attempts.append((url, _describe(exc) + (f" [attempt {attempt}/{retries}]" if transient else "")))
            log.info("%s failed: %s", url, attempts[-1][1])
            if not transient:
                return False  # next mirror
            if attempt < retries:
                time.sleep(backoff_s * 2 ** (attempt - 1))
        else:
            return True
    return False


def _keep_if_verified(part: Path, dest: Path, url: str, *, md5: str | None, sha256: str | None) -> dict[str, Any]:
    """Hash the finished `part`: on a match rename it to `dest` atomically and record `url` in
    `<dest>.source`; on a mismatch delete it and raise ChecksumMismatch (`dest` untouched)."""
    hashes = hash_file(part)
    try:
        verified = check_hashes(dest.name, hashes, md5=md5, sha256=sha256, source=url)
    except ChecksumMismatch:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    _origin_path(dest).write_text(url + "\n")
    return {"path": dest, "url": url, **hashes, "verified": verified, "reused": False}


# ----------------------------------------------------------------------------------------------------
# Local copies first, then the network


def find_local(
    remote: RemoteFile, *, download_dir: Path, manual_dir: Path, md5: str | None = None, sha256: str | None = None
) -> dict[str, Any] | None:
    """A verified local copy of `remote`, or None. `md5`/`sha256` default to the file's published hashes.

    manual_dir wins over the cache (the user put it there on purpose); a manual file that fails
    verification raises ChecksumMismatch naming its path. A cached file that fails is deleted.
    Returns the same dict as `download`, with "url" = "manual:<path>" for a hand-placed file.
    """
    md5, sha256 = md5 or remote.md5, sha256 or remote.sha256
    for name in (remote.name, *remote.alt_names):
        path = Path(manual_dir) / name
        if path.is_file():
            hashes = hash_file(path)
            verified = check_hashes(path, hashes, md5=md5, sha256=sha256)
            return {"path": path, "url": f"manual:{path}", **hashes, "verified": verified, "reused": True}
    cached = Path(download_dir) / remote.name
    if cached.is_file():
        try:
            return download((), cached, md5=md5, sha256=sha256)
        except DownloadError:  # it failed verification and was deleted; there is no URL to refetch here
            return None
    return None


def acquire(
    remote: RemoteFile,
    *,
    download_dir: Path,
    manual_dir: Path,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 0.5,
    md5: str | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """`find_local`, else `download` from the file's mirrors into `download_dir`. Same return value."""
    local = find_local(remote, download_dir=download_dir, manual_dir=manual_dir, md5=md5, sha256=sha256)
    if local is not None:
        return local
    return download(
        remote.urls,
        Path(download_dir) / remote.name,
        md5=md5 or remote.md5,
        sha256=sha256 or remote.sha256,
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
    )


# ----------------------------------------------------------------------------------------------------
# sha256s recorded on first acquisition (for files without a published checksum)


def recorded_sha256(checksums_path: Path, name: str) -> str | None:
    """The sha256 recorded for file `name`, or None if it was never acquired."""
    if not Path(checksums_path).exists():
        return None
    entry = json.loads(Path(checksums_path).read_text()).get(name)
    return entry["sha256"] if entry else None


def record_sha256(checksums_path: Path, name: str, sha256: str, size_bytes: int, source: str) -> None:
    """Add {name: {sha256, size_bytes, first_source}} to the JSON record (atomic rewrite, sorted keys).
    Refuses (ChecksumMismatch) to overwrite a different digest already recorded for `name`."""
    checksums_path = Path(checksums_path)
    record = json.loads(checksums_path.read_text()) if checksums_path.exists() else {}
    if name in record:
        if record[name]["sha256"] != sha256:
            raise ChecksumMismatch(name, "sha256", record[name]["sha256"], sha256, source=source)
        return
    # first_source is a URL or "manual" (never a local path: the record is committed to git)
    record[name] = {"sha256": sha256, "size_bytes": size_bytes, "first_source": source}
    checksums_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=checksums_path.name + ".", dir=checksums_path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, checksums_path)
