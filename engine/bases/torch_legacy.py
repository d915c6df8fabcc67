"""Read a legacy (pre-1.6, non-zip) PyTorch ``.pth`` state dict without PyTorch, safely.

A ``.pth`` file is a pickle, and a pickle can name any Python callable to run while it loads. A model
file is untrusted input, so this reader uses a :class:`pickle.Unpickler` that resolves only the few
globals the legacy format needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and
the ``torch.*Storage`` type names, none of which is imported or called: they map to local stand-ins)
and refuses every other global with :class:`~engine.errors.ModelFileError` before anything runs.

Layout of the legacy format (what ``torch.save(..., _use_new_zipfile_serialization=False)`` writes):

1. pickle: the magic number ``0x1950A86A20F9469CFC6C``
2. pickle: the protocol version ``1001``
3. pickle: a sys-info dict (endianness, type sizes)
4. pickle: the state dict; tensors are ``_rebuild_tensor_v2(storage, offset, size, stride, ...)`` on
   persistent ids ``('storage', torch.FloatStorage, key, location, numel, view_metadata)``
5. pickle: the list of storage keys, in the order their data follows
6. for each storage: an int64 element count, then the raw little-endian elements.

No TensorFlow and no PyTorch are imported here; the result is a dict of numpy arrays.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ModelFileError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch storage type name -> numpy little-endian dtype
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError(f"storage {self.storage.key} has no data")
        if not self.size:
            return np.array(data[self.offset], dtype=data.dtype)
        extent = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if self.offset < 0 or extent > data.size or any(s < 0 for s in self.stride):
            raise ValueError(f"tensor view outside its storage {self.storage.key}")
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, copy=True)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor rebuilt on something that is not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(int(n) for n in size),
                      tuple(int(s) for s in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of the legacy format; every other global is refused."""

    def __init__(self, file, path: Path, storages: dict[str, _Storage]):
        super().__init__(file)
        self._path = path
        self._storages = storages

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise ModelFileError(
            f"{self._path}: refused to load: the file asks to run '{module}.{name}', which a plain "
            "PyTorch weights file never needs",
            "the file may have been tampered with; reinstall the package that provides it",
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int):
            raise pickle.UnpicklingError("malformed storage reference")
        if view_metadata is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        key = str(key)
        storage = self._storages.get(key)
        if storage is None:
            storage = _Storage(key, storage_type.dtype, numel)
            self._storages[key] = storage
        return storage


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> None:
    """Raise :class:`ModelFileError` unless ``path``'s sha256 equals ``expected``."""
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ModelFileError(
            f"{path}: checksum mismatch (sha256 {actual[:16]}…, expected {expected[:16]}…): the file "
            "is damaged or not the expected weights",
            "reinstall the package that provides it",
        )


def load_state_dict(path: str | os.PathLike, expected_sha256: str | None = None) -> dict[str, np.ndarray]:
    """Read a legacy torch state dict into ``{key: numpy array}`` (keys in file order).

    ``expected_sha256``, when given, is checked before a single byte is unpickled.
    Raises :class:`ModelFileError` for a missing, damaged, unsafe or unsupported file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: weights file not found", "reinstall the package that provides it")
    if expected_sha256:
        verify_sha256(path, expected_sha256)
    raw = path.read_bytes()
    if raw[:2] == b"PK":
        raise ModelFileError(
            f"{path}: this is a zip-format PyTorch file (torch >= 1.6); only the legacy format is read",
            "re-save it with torch.save(..., _use_new_zipfile_serialization=False)",
        )
    stream = io.BytesIO(raw)
    storages: dict[str, _Storage] = {}

    def unpickle():
        return _RestrictedUnpickler(stream, path, storages).load()

    try:
        if unpickle() != MAGIC_NUMBER:
            raise ValueError("not a legacy PyTorch file (wrong magic number)")
        if unpickle() != PROTOCOL_VERSION:
            raise ValueError("unsupported PyTorch protocol version")
        sys_info = unpickle()
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise ValueError("big-endian files are not supported")
        state = unpickle()
        keys = unpickle()
        if not isinstance(keys, list):
            raise ValueError("storage key list missing")
        for key in keys:
            storage = storages.get(str(key))
            if storage is None:
                raise ValueError(f"data for unknown storage {key}")
            header = stream.read(8)
            if len(header) != 8:
                raise ValueError("file ends inside the tensor data")
            (count,) = struct.unpack("<q", header)
            if count != storage.numel:
                raise ValueError(f"storage {key} holds {count} elements, expected {storage.numel}")
            nbytes = count * storage.dtype.itemsize
            chunk = stream.read(nbytes)
            if len(chunk) != nbytes:
                raise ValueError("file ends inside the tensor data")
            storage.data = np.frombuffer(chunk, dtype=storage.dtype)
        if not isinstance(state, dict):
            raise ValueError("the file holds no state dict")
        result: dict[str, np.ndarray] = {}
        for name, value in state.items():
            if not isinstance(value, _TensorRef):
                raise ValueError(f"entry {name!r} is not a tensor")
            result[str(name)] = value.materialize()
        return result
    except ModelFileError:
        raise
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError, KeyError,
            IndexError, struct.error) as error:
        raise ModelFileError(
            f"{path}: not a readable legacy PyTorch weights file ({error})",
            "reinstall the package that provides it",
        ) from None
