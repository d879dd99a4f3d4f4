"""Real servers for the tests (moto, SMTP sink, FTP, broker), each started on a loopback port 0."""
