"""`ganlab.data.download` against a real HTTP server on 127.0.0.1: clean downloads, resume after a cut
connection, mirror fall-through, checksum rejection, retries, local copies, and the no-source error."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fixtures_data import FileServer, file_hashes, md5, refused_url, sha256, sheep_npy

from ganlab.data import registry
from ganlab.data.download import (
    ChecksumMismatch,
    DatasetUnavailable,
    DownloadError,
    RemoteFile,
    acquire,
    download,
    find_local,
    record_sha256,
    recorded_sha256,
)

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes, no repeats within 256-byte windows
FAST = dict(timeout_s=5.0, retries=3, backoff_s=0.01)


@pytest.fixture
def server():
    with FileServer() as srv:
        srv.files["/data.bin"] = PAYLOAD
        yield srv


def test_clean_download_verifies_and_records_its_source(server, tmp_path):
    dest = tmp_path / "dl" / "data.bin"
    got = download([server.url("/data.bin")], dest, md5=md5(PAYLOAD), sha256=sha256(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert got["url"] == server.url("/data.bin") and got["reused"] is False
    assert got["sha256"] == sha256(PAYLOAD) and got["md5"] == md5(PAYLOAD) and got["size_bytes"] == len(PAYLOAD)
    assert sorted(got["verified"]) == ["md5", "sha256"]
    assert not (tmp_path / "dl" / "data.bin.part").exists()
    assert server.requests == [("/data.bin", None)]


def test_existing_verified_file_is_reused_without_a_request(server, tmp_path):
    dest = tmp_path / "data.bin"
    download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    got = download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    assert got["reused"] is True and got["url"] == server.url("/data.bin")  # provenance survives reuse
    assert len(server.requests) == 1


def test_damaged_cached_file_is_fetched_again(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"garbage")
    got = download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    assert got["reused"] is False and dest.read_bytes() == PAYLOAD


def test_resume_after_cut_connection_sends_range_and_verifies(server, tmp_path):
    server.faults["/data.bin"] = [{"cut_after": 30_000}]
    dest = tmp_path / "data.bin"
    got = download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    assert server.requests == [("/data.bin", None), ("/data.bin", "bytes=30000-")]
    assert dest.read_bytes() == PAYLOAD and got["verified"] == ["sha256"]
    assert not dest.with_name("data.bin.part").exists()


def test_part_file_from_an_earlier_run_is_resumed(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(PAYLOAD[:12_345])
    download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    assert server.requests == [("/data.bin", "bytes=12345-")]
    assert dest.read_bytes() == PAYLOAD


def test_server_answering_200_to_range_restarts_from_zero(server, tmp_path):
    server.faults["/data.bin"] = [{"cut_after": 30_000}, {"ignore_range": True}]
    dest = tmp_path / "data.bin"
    download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    assert server.requests[1] == ("/data.bin", "bytes=30000-")  # asked to resume, got the whole file
    assert dest.read_bytes() == PAYLOAD  # not 30,000 bytes + the whole file appended


def test_stale_part_longer_than_the_file_restarts(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(PAYLOAD + b"extra")
    download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    assert server.requests == [("/data.bin", f"bytes={len(PAYLOAD) + 5}-"), ("/data.bin", None)]
    assert dest.read_bytes() == PAYLOAD


def test_transient_503_is_retried_on_the_same_mirror(server, tmp_path):
    server.faults["/data.bin"] = [{"status": 503}, {"status": 503}]
    download([server.url("/data.bin")], tmp_path / "data.bin", sha256=sha256(PAYLOAD), **FAST)
    assert [p for p, _ in server.requests] == ["/data.bin"] * 3


def test_404_falls_through_to_the_next_mirror(server, tmp_path):
    urls = [server.url("/gone/data.bin"), server.url("/data.bin")]
    got = download(urls, tmp_path / "data.bin", md5=md5(PAYLOAD), **FAST)
    assert got["url"] == urls[1]
    assert server.requests == [("/gone/data.bin", None), ("/data.bin", None)]  # no retry of a 404


def test_checksum_mismatch_names_file_and_hashes_and_keeps_nothing(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD[:-1] + b"\x00"  # the mirror serves other bytes
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumMismatch) as err:
        download([server.url("/data.bin")], dest, sha256=sha256(PAYLOAD), **FAST)
    actual = sha256(server.files["/data.bin"])
    message = str(err.value)
    assert "data.bin" in message and sha256(PAYLOAD) in message and actual in message and "sha256" in message
    assert (err.value.expected, err.value.actual) == (sha256(PAYLOAD), actual)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part


def test_md5_mismatch_is_reported_as_md5(server, tmp_path):
    with pytest.raises(ChecksumMismatch, match="md5 mismatch: expected 0{32}"):
        download([server.url("/data.bin")], tmp_path / "data.bin", md5="0" * 32, **FAST)


def test_unreachable_mirrors_fail_without_retries(tmp_path):
    # DNS failure (.invalid never resolves, RFC 2606) and a refused connection are permanent: one try each
    urls = ["http://ganlab-no-such-host.invalid/data.bin", refused_url("/data.bin")]
    with pytest.raises(DownloadError) as err:
        download(urls, tmp_path / "data.bin", sha256="0" * 64, timeout_s=5.0, retries=3, backoff_s=10.0)
    assert [url for url, _ in err.value.attempts] == urls
    assert not (tmp_path / "data.bin").exists()


def test_manual_file_is_verified_and_preferred(server, tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "data.bin").write_bytes(PAYLOAD)
    remote = RemoteFile("data.bin", (server.url("/data.bin"),), sha256=sha256(PAYLOAD))
    got = acquire(remote, download_dir=tmp_path / "dl", manual_dir=manual, **FAST)
    assert got["url"] == f"manual:{manual / 'data.bin'}" and got["verified"] == ["sha256"]
    assert server.requests == []


def test_wrong_manual_file_is_an_error_naming_its_path(tmp_path):
    (tmp_path / "full_numpy_bitmap_x.npy").write_bytes(b"wrong")
    remote = RemoteFile("x.npy", (), sha256=sha256(PAYLOAD), alt_names=("full_numpy_bitmap_x.npy",))
    with pytest.raises(ChecksumMismatch, match="full_numpy_bitmap_x.npy"):
        find_local(remote, download_dir=tmp_path / "dl", manual_dir=tmp_path)


def test_recorded_checksum_refuses_a_different_digest(tmp_path):
    path = tmp_path / "acquired_checksums.json"
    assert recorded_sha256(path, "a.zip") is None
    record_sha256(path, "a.zip", "ab" * 32, 10, "https://example.org/a.zip")
    record_sha256(path, "a.zip", "ab" * 32, 10, "manual")  # same digest: no-op
    assert recorded_sha256(path, "a.zip") == "ab" * 32
    assert json.loads(path.read_text())["a.zip"]["first_source"] == "https://example.org/a.zip"
    with pytest.raises(ChecksumMismatch, match="a.zip"):
        record_sha256(path, "a.zip", "cd" * 32, 10, "manual")


def test_no_source_reachable_lists_every_url_and_the_manual_paths(server, tmp_path, monkeypatch):
    urls = (
        server.url("/missing/sheep.npy"),
        refused_url("/sheep.npy"),
        "http://ganlab-no-such-host.invalid/sheep.npy",
    )
    spec = registry.DATASETS["sheep"]
    remote = dataclasses.replace(spec.files["bitmap"], urls=urls)
    monkeypatch.setitem(registry.DATASETS, "sheep", dataclasses.replace(spec, files={"bitmap": remote}))
    manual = tmp_path / "manual"
    with pytest.raises(DatasetUnavailable) as err:
        registry.fetch_dataset(
            "sheep", tmp_path / "raw.npz", download_dir=tmp_path / "dl", manual_dir=manual,
            checksums_path=tmp_path / "ck.json", timeout_s=5.0, backoff_s=0.01,
        )  # fmt: skip
    message = str(err.value)
    for url in urls:
        assert url in message
    assert "HTTP 404" in message
    assert str(manual / "sheep.npy") in message and str(manual / "full_numpy_bitmap_sheep.npy") in message
    assert "dvc repro" in message
    assert [src for src, _ in err.value.attempts] == list(urls)
    assert not (tmp_path / "raw.npz").exists() and not (tmp_path / "ck.json").exists()


def test_fetch_through_the_server_then_reuse(server, tmp_path, monkeypatch):
    blob, _ = sheep_npy(n=10)
    server.files["/sheep.npy"] = blob
    spec = registry.DATASETS["sheep"]
    remote = dataclasses.replace(spec.files["bitmap"], urls=(server.url("/sheep.npy"),))
    monkeypatch.setitem(registry.DATASETS, "sheep", dataclasses.replace(spec, files={"bitmap": remote}))
    kwargs = dict(download_dir=tmp_path / "dl", manual_dir=tmp_path / "manual", checksums_path=tmp_path / "c.json")
    first = registry.fetch_dataset("sheep", tmp_path / "raw.npz", **kwargs)
    second = registry.fetch_dataset("sheep", tmp_path / "raw.npz", **kwargs)
    assert first["source"] == second["source"] == server.url("/sheep.npy")
    assert first["files"][0]["sha256"] == file_hashes(tmp_path / "dl" / "sheep.npy")["sha256"] == sha256(blob)
    assert first["files"][0]["reused_local_copy"] is False and second["files"][0]["reused_local_copy"] is True
    assert len(server.requests) == 1
