from pettwin_checks.cloud_run.check import PettwinCloudRunCheck  # noqa: F401
