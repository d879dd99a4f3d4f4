"""Where uploads come in: the cameras' FTP server."""
