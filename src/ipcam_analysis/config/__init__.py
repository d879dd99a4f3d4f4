"""The configuration: one typed model, loaded once from YAML, compatible with the original's
config.yaml (`model.py`), per-camera settings (`cameras.py`), loading (`loading.py`), the
masked dump (`dump.py`) and one-line validation messages (`messages.py`)."""

from ipcam_analysis.config.cameras import CameraConfig
from ipcam_analysis.config.loading import load_config
from ipcam_analysis.config.model import AppConfig, RetryConfig, WebConfig
from ipcam_analysis.errors import ConfigError
from ipcam_analysis.rules.camera import CameraSettings

__all__ = [
    "AppConfig",
    "CameraConfig",
    "CameraSettings",
    "ConfigError",
    "RetryConfig",
    "WebConfig",
    "load_config",
]
