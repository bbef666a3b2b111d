"""API keys: created once in plain text, stored hashed with a salt, revocable."""

import json

import pytest

from service.keys import KeyStore, role_allows


def test_create_verify_and_store_only_hashes(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.create("qgis team", "viewer")
    rec = store.verify(key)
    assert rec is not None and rec.role == "viewer" and rec.name == "qgis team"
    text = (tmp_path / "keys.json").read_text()
    secret = key.split("_", 2)[2]
    assert secret not in text and key not in text
    saved = json.loads(text)["keys"][0]
    assert len(saved["salt"]) == 32 and len(saved["hash"]) == 64
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600


def test_same_secret_different_salt_gives_different_hashes(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    store.create("a", "viewer")
    store.create("b", "viewer")
    hashes = [k["hash"] for k in json.loads((tmp_path / "keys.json").read_text())["keys"]]
    salts = [k["salt"] for k in json.loads((tmp_path / "keys.json").read_text())["keys"]]
    assert len(set(hashes)) == 2 and len(set(salts)) == 2


def test_wrong_secret_and_malformed_keys_fail(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.create("a", "analyst")
    prefix, key_id, secret = key.split("_", 2)
    assert store.verify(f"{prefix}_{key_id}_{secret[:-1]}x") is None
    for bad in (None, "", "svk", "svk__", "abc_def_ghi", key + "x"):
        assert store.verify(bad) is None


def test_revoke_keeps_the_record_and_stops_the_key(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.create("old laptop", "viewer")
    key_id = key.split("_")[1]
    out = store.revoke(key_id)
    assert out["revoked"] is not None
    assert store.verify(key) is None
    listed = store.list()
    assert [k["key_id"] for k in listed] == [key_id]
    assert "hash" not in listed[0] and "salt" not in listed[0]
    with pytest.raises(KeyError, match="nope"):
        store.revoke("nope")


def test_a_second_store_sees_changes_on_disk(tmp_path):
    server, cli = KeyStore(tmp_path / "k.json"), KeyStore(tmp_path / "k.json")
    key = cli.create("a", "viewer")
    assert server.verify(key) is not None
    cli.revoke(key.split("_")[1])
    assert server.verify(key) is None


def test_bad_role_and_name(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    with pytest.raises(ValueError, match="'admin'"):
        store.create("x", "admin")
    with pytest.raises(ValueError, match="name"):
        store.create("  ", "viewer")


def test_roles_are_ordered():
    assert role_allows("analyst", "viewer") and role_allows("viewer", "viewer")
    assert not role_allows("viewer", "analyst") and not role_allows("nobody", "viewer")
