"""Provider keys are encrypted at rest: the table holds no plaintext, the API shows only the last 4
characters, the workers' model spec gets the real key, keys rotate, and the migration encrypts rows
stored in plaintext before it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, select, text

from api import create_app
from models.db import Database, alembic_config
from models.orm import LLMConfig
from services import crypto, llm_configs
from services.execution import spec_for
from services.settings import load_settings
from tests.conftest import ProjectHandle, make_project

PROVIDER_KEY = "sk-live-0123456789abcdefWXYZ"
K1, K2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _stored_keys(app: Flask) -> list[str]:
    with app.extensions["assay_db"].engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT api_key FROM llm_configs ORDER BY id"))]


def _create(project: ProjectHandle, name: str = "L", key: str = PROVIDER_KEY) -> dict:
    res = project.post("llm_configs", json={"name": name, "llm_model_name": "m", "api_key": key})
    assert res.status_code == 201, res.get_data(as_text=True)
    return res.get_json()


def test_the_key_column_holds_no_plaintext(app: Flask, project: ProjectHandle) -> None:
    created = _create(project)
    project.put(f"llm_configs/{created['id']}", json={"name": "L", "llm_model_name": "m", "api_key": PROVIDER_KEY})
    (stored,) = _stored_keys(app)
    assert PROVIDER_KEY not in stored and PROVIDER_KEY[-8:] not in stored and stored.startswith("fernet:")
    assert created["api_key"] == "...WXYZ"
    assert project.get(f"llm_configs/{created['id']}").get_json()["api_key"] == "...WXYZ"


def test_the_workers_get_the_real_key(app: Flask, project: ProjectHandle) -> None:
    config_id = _create(project)["id"]
    with app.extensions["assay_db"].session() as session:
        spec = spec_for(session.get(LLMConfig, config_id), app.config["ASSAY_SETTINGS"])
    assert spec.api_key == PROVIDER_KEY


@pytest.fixture
def keyed_app(database_url: str) -> Iterator[Callable[[str], Flask]]:
    apps: list[Flask] = []

    def make(keys: str) -> Flask:
        apps.append(create_app({"database_url": database_url, "auto_migrate": False, "encryption_keys": keys}))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["assay_db"].dispose()


def test_keys_rotate(keyed_app: Callable[[str], Flask]) -> None:
    old = keyed_app(K1)
    project = make_project(old, "P")
    config_id = _create(project)["id"]
    (under_k1,) = _stored_keys(old)
    new = keyed_app(f"{K2},{K1}")  # the new key first, the old one still opens old rows
    with new.extensions["assay_db"].session() as session:
        assert session.get(LLMConfig, config_id).api_key == PROVIDER_KEY
        assert llm_configs.reencrypt_keys(session) == 1
    (under_k2,) = _stored_keys(new)
    assert under_k2 != under_k1 and PROVIDER_KEY not in under_k2
    assert crypto.Keyring([K2.encode()]).decrypt(under_k2) == PROVIDER_KEY


def test_a_key_no_configured_key_opens_reads_as_unset(keyed_app: Callable[[str], Flask]) -> None:
    old = keyed_app(K1)
    project = make_project(old, "P")
    config_id = _create(project)["id"]
    keyed_app(K2)  # K1 dropped: the row cannot be decrypted any more
    res = project.get(f"llm_configs/{config_id}")
    assert res.status_code == 200 and res.get_json()["api_key"] is None


def _database_at_0007_with_a_plaintext_key(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0007")
    engine = create_engine(url)
    with engine.begin() as conn:
        stamps = "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
        org_columns = "name, domain, created_at, updated_at"
        conn.execute(text(f"INSERT INTO organizations ({org_columns}) VALUES ('o', 'd', {stamps})"))
        columns = "organization_id, name, description, created_at, updated_at"
        conn.execute(text(f"INSERT INTO projects ({columns}) VALUES (1, 'p', '', {stamps})"))
        conn.execute(
            text(
                "INSERT INTO llm_configs (project_id, name, description, llm_model_name, api_key, max_connections,"
                " inference_type, created_at, updated_at) VALUES (1, 'c', '', 'm', :key, 10, 'openai',"
                f" {stamps})"
            ),
            {"key": PROVIDER_KEY},
        )
    engine.dispose()
    return url


def _stored(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        (stored,) = conn.execute(text("SELECT api_key FROM llm_configs")).scalars()
    engine.dispose()
    return stored


def test_the_migration_encrypts_plaintext_rows(tmp_path: Path) -> None:
    url = _database_at_0007_with_a_plaintext_key(tmp_path)
    crypto.configure(load_settings({"encryption_keys": K1}))
    Database(url).migrate()
    stored = _stored(url)
    assert PROVIDER_KEY not in stored and crypto.Keyring([K1.encode()]).decrypt(stored) == PROVIDER_KEY


def test_without_a_configured_key_rows_stay_readable_until_rotate_keys(tmp_path: Path) -> None:
    url = _database_at_0007_with_a_plaintext_key(tmp_path)
    crypto.configure(load_settings({"encryption_keys": "", "secret_key": None}))
    database = Database(url)
    database.migrate()  # only this host's key file: encrypting would strand workers elsewhere
    assert _stored(url) == PROVIDER_KEY
    crypto.configure(load_settings({"encryption_keys": K1}))
    with database.session() as session:
        assert session.scalars(select(LLMConfig)).one().api_key == PROVIDER_KEY
        assert llm_configs.reencrypt_keys(session) == 1
    database.dispose()
    assert crypto.Keyring([K1.encode()]).decrypt(_stored(url)) == PROVIDER_KEY != _stored(url)
