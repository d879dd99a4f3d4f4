"""ipcam-analysis: an FTP server for IP cameras that analyses each snapshot and notifies on what matters."""

__version__ = "2.0.0.dev0"
