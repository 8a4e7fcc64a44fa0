"""The readiness, restart-data-loss and performance defects at the one place each lives.

Each test runs the clean release and the variant through the same code (a
SQLite file, no service started), so it shows the defect and that the clean
code is free of it. Whether the gate catches them is ``rollgate catalog``'s
job (images/minicloud/catalog.yaml).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from minicloud import db
from minicloud.api.app import ComputeApp, versioned
from minicloud.auth import TokenValidator
from minicloud.db import api
from minicloud.releases import get_release
from minicloud.services import compute_api
from minicloud.services.identity import TokenStore
from minicloud.web import HTTPError


@pytest.mark.parametrize(("recreate", "kept"), [(False, True), (True, False)])
def test_an_identity_restart_keeps_issued_tokens_unless_its_ddl_recreates_the_table(
        tmp_path: Path, recreate: bool, kept: bool) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    token = TokenStore(url).issue("u1", "p1", ["password"])["id"]
    restarted = TokenStore(url, recreate=recreate)  # 1.1+tokens-table-recreated passes True
    assert (restarted.get(token) is not None) is kept


def test_the_kdf_cache_key_is_a_stable_hash_and_the_clean_key_is_the_token() -> None:
    clean = TokenValidator("http://127.0.0.1:1")
    assert clean._key("abc") == "abc"
    kdf = TokenValidator("http://127.0.0.1:1", key_rounds=1000)
    key = kdf._key("abc")
    assert key != "abc"
    assert key == kdf._key("abc")
    assert len(key) == 64
    assert compute_api.PASSWORD_HASH_ROUNDS >= 100_000  # the variant's cost: a password hasher's


@pytest.mark.parametrize(("label", "sleeps"), [("1.1", 0), ("1.1+db-retry-backoff-first", 1)])
def test_only_the_backoff_variant_sleeps_before_a_first_try(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            label: str, sleeps: int) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    engine = db.connect(url)
    db.expand(engine, get_release("1.1"))
    code = db.connect(url, get_release(label))
    slept: list[float] = []
    monkeypatch.setattr(api.time, "sleep", slept.append)
    assert api.instance_list(code) == []
    assert slept == [api.SCHEMA_RETRY_BACKOFF] * sleeps


class _Validator:
    def authenticate(self, _request: Any) -> Any:
        raise AssertionError("a cold API must refuse before it authenticates")


def test_a_cold_compute_api_refuses_every_call_with_503_until_warm() -> None:
    app = ComputeApp(config=None, engine=None, validator=_Validator(), conductor=None)
    app.warm = threading.Event()
    pipeline = versioned(app, lambda _a, _r: {"ok": True})
    with pytest.raises(HTTPError) as refused:
        pipeline(object())
    assert refused.value.status == 503


def test_the_variants_refresh_warms_the_api_only_after_its_first_interval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'cloud.db'}")
    db.expand(engine, get_release("1.1"))
    app = ComputeApp(config=None, engine=engine, validator=_Validator(), conductor=None)
    warm = threading.Event()
    waits: list[float] = []
    real_wait = threading.Event.wait

    def recorded_wait(self: threading.Event, timeout: float | None = None) -> bool:
        if self is not warm and timeout is not None:  # the refresh loop's timer (Thread.start waits too)
            waits.append(timeout)
            timeout = 0.01
        return real_wait(self, timeout)

    monkeypatch.setattr(threading.Event, "wait", recorded_wait)
    threading.Thread(target=compute_api._refresh_caches, args=(app, warm), daemon=True).start()
    assert warm.wait(10), "the refresh never warmed the API"
    assert waits[0] == compute_api.CACHE_REFRESH_SECONDS  # the bug: a whole interval before the first pass
