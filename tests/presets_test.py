import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import presets
from tests.test_case import ring_backends


def tiny_vae():
    return kv.VAE(input_shape=(8, 8, 1), latent_dim=3, hidden_dims=(4, 8), seed=0)


def inputs():
    rng = np.random.default_rng(0)
    return (rng.random((5, 8, 8, 1)) > 0.5).astype("float32")


@pytest.fixture
def saved(tmp_path):
    """A tiny VAE and the preset folder it was saved to."""
    model = tiny_vae()
    folder = tmp_path / "tiny_vae"
    model.save_to_preset(folder, {"description": "a tiny test VAE"})
    return model, folder


@pytest.fixture
def preset_dir(saved):
    return saved[1]


def without_name(config):
    return {k: v for k, v in config.items() if k != "name"}


def test_round_trip(saved):
    model, preset_dir = saved
    loaded = kv.VAE.from_preset(preset_dir)
    assert isinstance(loaded, kv.VAE)
    assert without_name(loaded.get_config()) == without_name(model.get_config())
    np.testing.assert_allclose(loaded.encode(inputs())[0], model.encode(inputs())[0], atol=1e-6)
    metadata = loaded.preset_metadata
    assert metadata["description"] == "a tiny test VAE"
    assert metadata["parameter_count"] == model.count_params()
    assert metadata["backend"] == keras.backend.backend()
    assert metadata["keras_version"] == keras.__version__
    assert set(metadata["sha256"]) == {"config.json", "model.weights.h5"}
    assert sorted(os.listdir(preset_dir)) == [
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]


def test_kv_from_preset_and_trained_model_keeps_no_optimizer(tmp_path):
    model = tiny_vae()
    model.compile(optimizer="adam")
    model.fit(inputs(), epochs=1, batch_size=5, verbose=0)
    model.save_to_preset(tmp_path / "trained")
    loaded = kv.from_preset(str(tmp_path / "trained"))
    np.testing.assert_allclose(loaded.encode(inputs())[0], model.encode(inputs())[0], atol=1e-6)
    # The optimizer state is not part of a preset.
    fresh = tmp_path / "fresh"
    tiny_vae().save_to_preset(fresh)
    assert os.path.getsize(tmp_path / "trained" / "model.weights.h5") == (
        os.path.getsize(fresh / "model.weights.h5")
    )


def test_save_replaces_existing_folder_atomically(preset_dir):
    (preset_dir / "stale.txt").write_text("old")
    tiny_vae().save_to_preset(preset_dir)
    assert not (preset_dir / "stale.txt").exists()
    leftovers = [p for p in os.listdir(preset_dir.parent) if p.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize("name", ["model.weights.h5", "config.json"])
def test_tampered_file_is_refused(preset_dir, name):
    path = preset_dir / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(presets.PresetIntegrityError, match=name):
        kv.from_preset(str(preset_dir))


def test_missing_file_is_named(preset_dir):
    os.remove(preset_dir / "model.weights.h5")
    with pytest.raises(ValueError, match="model.weights.h5"):
        kv.from_preset(str(preset_dir))


def test_unknown_name_lists_known_presets():
    known = kv.list_presets()
    assert "vae_binarized_mnist" in known
    with pytest.raises(ValueError, match="Unknown preset 'no_such_preset'") as e:
        kv.from_preset("no_such_preset")
    for name in known:
        assert name in str(e.value)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        kv.from_preset(str(tmp_path / "nowhere"))


def test_class_must_match(preset_dir):
    class Other(kv.GenerativeModel):
        pass

    with pytest.raises(ValueError, match="not a"):
        Other.from_preset(preset_dir)
    # The base class accepts any model of the zoo.
    assert isinstance(kv.GenerativeModel.from_preset(preset_dir), kv.VAE)


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        tiny_vae().save_to_preset(tmp_path / "x", {"bad": object()})


class _Server:
    """A loopback http.server over a folder, counting GET requests."""

    def __init__(self, folder):
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever)
        self.thread.daemon = True

    def __enter__(self):
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _archive(preset_dir, dest, kind):
    if kind == "tar.gz":
        path = dest / "tiny_vae.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            tf.add(preset_dir, arcname="tiny_vae")
    else:
        path = dest / "tiny_vae.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name in os.listdir(preset_dir):
                zf.write(preset_dir / name, f"tiny_vae/{name}")
    return path.name


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_url_is_downloaded_once_into_the_cache(saved, tmp_path, kind):
    model, preset_dir = saved
    served = tmp_path / "served"
    served.mkdir()
    name = _archive(preset_dir, served, kind)
    expected = model.encode(inputs())[0]
    cache = tmp_path / "cache"
    with _Server(served) as server, _patched_env({"KERAS_HOME": str(cache)}):
        url = f"{server.url}/{name}"
        first = kv.VAE.from_preset(url)
        second = kv.from_preset(url)
        metadata = presets.load_metadata(url)
    assert server.requests == [f"/{name}"]  # Downloaded once.
    assert metadata["description"] == "a tiny test VAE"
    np.testing.assert_allclose(first.encode(inputs())[0], expected, atol=1e-6)
    np.testing.assert_allclose(second.encode(inputs())[0], expected, atol=1e-6)
    assert len(os.listdir(cache / "keras_vae" / "presets")) == 1


def test_tampered_archive_is_refused(preset_dir, tmp_path):
    bad = tmp_path / "bad" / "tiny_vae"
    shutil.copytree(preset_dir, bad)
    weights = bad / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    served = tmp_path / "served"
    served.mkdir()
    name = _archive(bad, served, "tar.gz")
    cache = tmp_path / "cache"
    with _Server(served) as server, _patched_env({"KERAS_HOME": str(cache)}):
        with pytest.raises(presets.PresetIntegrityError, match="model.weights.h5"):
            kv.from_preset(f"{server.url}/{name}")
    # Nothing is left in the cache after the refusal.
    assert os.listdir(cache / "keras_vae" / "presets") == []


def test_url_must_name_an_archive():
    with pytest.raises(ValueError, match="archive"):
        kv.from_preset("http://127.0.0.1:9/model.h5")


class _patched_env:
    def __init__(self, values):
        self.values = values

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


WORKER = """
import sys, json
import numpy as np
import keras_vae as kv
model = kv.VAE.from_preset(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], model.encode(x)[0])
print(json.dumps({"backend": __import__("keras").backend.backend()}))
"""


def test_preset_loads_identically_on_other_backends(preset_dir, tmp_path):
    x = inputs()
    np.save(tmp_path / "x.npy", x)
    expected = kv.VAE.from_preset(preset_dir).encode(x)[0]
    # One other backend per run, backwards around the ring (tests/test_case.py).
    for backend in ring_backends(-1):
        out = tmp_path / f"{backend}.npy"
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                WORKER,
                str(preset_dir),
                str(tmp_path / "x.npy"),
                str(out),
            ],
            env={**os.environ, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["backend"] == backend
        np.testing.assert_allclose(np.load(out), expected, atol=1e-5)


# ----------------------------------------------------------------------
# The registry of built-in presets.


def test_registry_pins_every_file_of_every_builtin_preset():
    entries = presets.registry()
    assert sorted(entries) == kv.list_presets()
    folders = sorted(
        p.name for p in presets.zoo_dir().iterdir() if (p / presets.METADATA_FILE).is_file()
    )
    assert folders == sorted(entries)
    for name, entry in entries.items():
        folder = presets.zoo_dir() / name
        assert entry["files"] == {
            file: presets.sha256(folder / file) for file in presets.REGISTERED_FILES
        }, name
        metadata = json.loads((folder / presets.METADATA_FILE).read_text())
        assert entry["class_name"] == metadata["class_name"]


@pytest.fixture
def fake_zoo(tmp_path, monkeypatch, saved):
    """A package folder of built-in presets holding one tiny preset."""
    model, folder = saved
    zoo = tmp_path / "preset_files"
    zoo.mkdir()
    (zoo / presets.REGISTRY_FILE).write_text("{}")
    shutil.copytree(folder, zoo / "tiny_builtin")
    monkeypatch.setattr(presets, "zoo_dir", lambda: zoo)
    presets.register_builtin("tiny_builtin")
    return model, zoo


def _resign(folder):
    """Rewrites a folder's own metadata hashes: a self-consistent tamper."""
    metadata = json.loads((folder / presets.METADATA_FILE).read_text())
    metadata["sha256"] = {f: presets.sha256(folder / f) for f in presets.HASHED_FILES}
    (folder / presets.METADATA_FILE).write_text(json.dumps(metadata))


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_builtin_files_are_checked_against_the_registry(fake_zoo):
    model, zoo = fake_zoo
    loaded = kv.from_preset("tiny_builtin")
    np.testing.assert_allclose(loaded.encode(inputs())[0], model.encode(inputs())[0], atol=1e-6)
    # Weights and metadata swapped together still differ from the registry.
    _flip_byte(zoo / "tiny_builtin" / presets.WEIGHTS_FILE)
    _resign(zoo / "tiny_builtin")
    with pytest.raises(presets.PresetIntegrityError, match="registry"):
        kv.from_preset("tiny_builtin")
    with pytest.raises(presets.PresetIntegrityError, match="registry"):
        presets.load_metadata("tiny_builtin")


def test_a_folder_in_the_working_directory_does_not_hijack_a_builtin_name(
    fake_zoo, tmp_path, monkeypatch
):
    model, zoo = fake_zoo
    work = tmp_path / "work"
    impostor = tiny_vae()
    impostor.save_to_preset(work / "tiny_builtin", {"description": "an impostor"})
    (work / "zoo").mkdir()
    (work / "zoo.py").write_text("raise RuntimeError('the library imported zoo')\n")
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    loaded = kv.from_preset("tiny_builtin")
    assert loaded.preset_metadata["description"] == "a tiny test VAE"
    # Named as a path, the local folder is used.
    assert kv.from_preset("./tiny_builtin").preset_metadata["description"] == "an impostor"
    assert kv.list_presets() == ["tiny_builtin"]


def test_builtin_preset_with_a_url_is_downloaded_and_checked(fake_zoo, tmp_path):
    model, zoo = fake_zoo
    served = tmp_path / "served"
    served.mkdir()
    name = _archive(zoo / "tiny_builtin", served, "tar.gz")
    shutil.rmtree(zoo / "tiny_builtin")  # an installed wheel without the files
    cache = tmp_path / "cache"
    with _Server(served) as server, _patched_env({"KERAS_HOME": str(cache)}):
        entries = presets.registry()
        entries["tiny_builtin"]["url"] = f"{server.url}/{name}"
        entries["tiny_builtin"]["archive_sha256"] = presets.sha256(served / name)
        (zoo / presets.REGISTRY_FILE).write_text(json.dumps(entries))
        loaded = kv.from_preset("tiny_builtin")
        kv.from_preset("tiny_builtin")
        assert server.requests == [f"/{name}"]  # Downloaded once.
        np.testing.assert_allclose(
            loaded.encode(inputs())[0], model.encode(inputs())[0], atol=1e-6
        )
        # A server that answers with other (self-consistent) files is refused.
        (served / name).unlink()
        shutil.rmtree(cache)
        fake = tmp_path / "fake" / "tiny_builtin"
        tiny_vae().save_to_preset(fake, {"description": "a tiny test VAE"})
        _archive(fake, served, "tar.gz")
        with pytest.raises(presets.PresetIntegrityError, match="tiny_vae.tar.gz"):
            kv.from_preset("tiny_builtin")


def test_url_preset_with_a_pinned_hash(preset_dir, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    name = _archive(preset_dir, served, "zip")
    cache = tmp_path / "cache"
    with _Server(served) as server, _patched_env({"KERAS_HOME": str(cache)}):
        url = f"{server.url}/{name}"
        with pytest.raises(presets.PresetIntegrityError, match="expected 00"):
            kv.from_preset(url, archive_sha256="00" * 32)
        assert os.listdir(cache / "keras_vae" / "presets") == []
        model = kv.from_preset(url, archive_sha256=presets.sha256(served / name))
    assert model.preset_metadata["description"] == "a tiny test VAE"
    with pytest.raises(ValueError, match="URL"):
        kv.from_preset(str(preset_dir), archive_sha256="00" * 32)


# ----------------------------------------------------------------------
# Limits of a download: deadline, size, unpacked size, permission bits.


class _SlowServer(_Server):
    """Answers every GET with an endless trickle of bytes."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(600):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.requests = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True  # closing does not wait for the trickle
        self.thread = threading.Thread(target=self.httpd.serve_forever)
        self.thread.daemon = True


def test_a_slow_server_meets_the_overall_deadline(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "DOWNLOAD_DEADLINE_SECONDS", 1)
    start = time.monotonic()
    with _SlowServer() as server, _patched_env({"KERAS_HOME": str(tmp_path)}):
        with pytest.raises(OSError, match="longer than 1 s"):
            kv.from_preset(f"{server.url}/slow.tar.gz")
        assert time.monotonic() - start < 10
    assert os.listdir(tmp_path / "keras_vae" / "presets") == []


def test_download_and_unpacked_sizes_are_limited(preset_dir, tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    big = tmp_path / "big" / "tiny_vae"
    shutil.copytree(preset_dir, big)
    (big / "zeros.bin").write_bytes(bytes(2**20))  # compresses to ~1 KB
    name = _archive(big, served, "zip")
    with _Server(served) as server, _patched_env({"KERAS_HOME": str(tmp_path / "c")}):
        url = f"{server.url}/{name}"
        monkeypatch.setattr(presets, "MAX_UNPACKED_BYTES", 2**20)
        with pytest.raises(ValueError, match="unpacks to"):
            kv.from_preset(url)
        monkeypatch.setattr(presets, "MAX_DOWNLOAD_BYTES", 1000)
        with pytest.raises(ValueError, match="larger than the 1,000-byte limit"):
            kv.from_preset(url)


def test_archive_permission_bits_are_not_kept(preset_dir, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    path = served / "tiny_vae.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name in os.listdir(preset_dir):
            info = tf.gettarinfo(preset_dir / name, f"tiny_vae/{name}")
            info.mode = 0o6755  # setuid + setgid
            with open(preset_dir / name, "rb") as f:
                tf.addfile(info, f)
    with _Server(served) as server, _patched_env({"KERAS_HOME": str(tmp_path / "c")}):
        folder = presets.resolve_preset(f"{server.url}/tiny_vae.tar.gz")
    for name in os.listdir(folder):
        assert not os.stat(folder / name).st_mode & 0o7000, name
