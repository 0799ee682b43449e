"""Bundled data files; installed inside the package as ``workbench._bundled`` (see README.md here)."""
