"""A database password, in any form libpq takes, is never printed nor logged."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.aws import Moto
from harness.service import CLI, base_config, service_environment, write_config
from ipcam_analysis.config import load_config
from ipcam_analysis.masking import SecretMaskingFilter
from ipcam_analysis.store.database_url import database_url_secrets, masked_database_url

SECRET = "Db-S3cret@pw"  # percent-encoded in a URL: Db-S3cret%40pw
URLS = {
    "userinfo": "postgresql://dbuser:Db-S3cret%40pw@db.example:5432/ipcam",
    "query": "postgresql://dbuser@db.example/ipcam?sslmode=require&password=Db-S3cret%40pw",
    "encoded-key": "postgresql://dbuser@db.example/ipcam?pass%77ord=Db-S3cret%40pw",
    "both": "postgres://dbuser:Db-S3cret%40pw@h1,h2/ipcam?password=Db-S3cret%40pw",
}
MASKED = {
    "userinfo": "postgresql://dbuser:****@db.example:5432/ipcam",
    "query": "postgresql://dbuser@db.example/ipcam?sslmode=require&password=****",
    "encoded-key": "postgresql://dbuser@db.example/ipcam?pass%77ord=****",
    "both": "postgres://dbuser:****@h1,h2/ipcam?password=****",
}


# The backend fixture's own database URL (IPCAM_DATABASE_URL) would replace the one written.
@pytest.mark.embedded_only
@pytest.mark.parametrize("form", URLS)
def test_check_config_masks_the_database_password(tmp_path: Path, aws: Moto, form: str) -> None:
    path = write_config(tmp_path, base_config(tmp_path, database={"url": URLS[form]}))
    result = subprocess.run(
        [*CLI, "--check-config", "-c", str(path)],
        cwd=tmp_path,
        env=service_environment(aws),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["database"]["url"] == MASKED[form]
    for shown in (SECRET, "S3cret%40pw", "S3cret"):
        assert shown not in result.stdout + result.stderr


@pytest.mark.embedded_only
@pytest.mark.parametrize("form", URLS)
def test_the_log_masks_the_database_password(tmp_path: Path, form: str) -> None:
    config = load_config(
        write_config(tmp_path, base_config(tmp_path, database={"url": URLS[form]}))
    )
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "Cannot use %s: the password %s is wrong", None, None
    )
    record.args = (URLS[form], SECRET)
    SecretMaskingFilter(config.secrets()).filter(record)
    assert "S3cret" not in record.getMessage()


@pytest.mark.parametrize(
    ("conninfo", "masked", "secret"),
    [
        (
            "host=db user=u password=plain-pw dbname=x",
            "host=db user=u password=**** dbname=x",
            "plain-pw",
        ),
        ("host=db password = 'two words' port=5", "host=db password = **** port=5", "two words"),
        (r"password='it\'s' host=db", "password=**** host=db", "it's"),
    ],
)
def test_key_value_connection_strings_are_masked(conninfo: str, masked: str, secret: str) -> None:
    assert masked_database_url(conninfo) == masked
    assert secret in database_url_secrets(conninfo)
