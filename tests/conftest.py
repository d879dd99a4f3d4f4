"""Shared fixtures: each lives in tests/support/ and starts a real server on a loopback port."""

pytest_plugins = [
    "tests.support.aws",
    "tests.support.ftp",
    "tests.support.smtp",
    "tests.support.mail_camera",
    "tests.support.mqtt",
    "tests.support.webhook",
    "tests.support.service",
    "tests.support.web",
]
