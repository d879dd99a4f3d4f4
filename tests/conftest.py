"""Shared fixtures: each lives in harness/ (beside tests/, as bench/ uses it too) and starts a
real server on a loopback port."""

pytest_plugins = [
    "harness.aws",
    "harness.ftp",
    "harness.smtp",
    "harness.mail_camera",
    "harness.mqtt",
    "harness.webhook",
    "harness.onvif",
    "harness.service",
    # After harness.service, which it imports: a plugin imported earlier is not assert-rewritten.
    "harness.postgres",
    "harness.backends",
    "harness.nodes",
    "harness.web",
    "harness.crash",
]
