"""The real parts the tests and the benchmarks run the service against (moto, an SMTP sink, FTP
and e-mail cameras, mosquitto, the service as a real process), each on a loopback port chosen at
random. Outside tests/ because bench/ uses them too; tests/conftest.py registers the fixtures."""
